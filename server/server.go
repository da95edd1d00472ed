// Package server is dejavu's OpenAI-compatible HTTP server (`dejavu serve`).
//
// Endpoints:
//
//	GET  /v1/models                 the served model (and /v1/models/{id})
//	POST /v1/completions            text completions, streamed with stream: true
//	POST /v1/chat/completions       chat completions, streamed with stream: true
//	GET  /health                    {"status":"ok"} (503 while draining)
//	GET  /metrics                   Prometheus metrics
//
// Requests take max_tokens, temperature, top_p, top_k (an extension), seed,
// stop (a string or up to 4 strings, never part of the output), n (1 only)
// and stream_options.include_usage. Defaults follow OpenAI: temperature 1,
// top_p 1, max_tokens 16 for completions and all the room left in the
// context for chat; top_p 0 means greedy; without a seed each request draws
// one. logprobs, echo, suffix, best_of > 1, tools, non-text content parts
// and non-zero presence or frequency penalties are refused with a 400;
// unknown fields are ignored. Streams are Server-Sent Events ending
// with "data: [DONE]"; the text they carry is byte-identical to the
// non-streamed text for the same request and seed. Text that could be the
// start of a stop string is held back until it is known not to be one.
//
// Every request gets its own KV cache. At most Config.Parallel generations
// run at once and at most Config.Queue more wait for a slot; beyond that a
// request is answered 429 with Retry-After. A client that goes away cancels
// its generation (or its place in the queue) within one token. Errors are
// OpenAI error objects {"error":{"message","type","param","code"}} with a
// 4xx status for bad requests.
//
// The Prometheus metrics (dejavu_requests_total, dejavu_*_tokens_total,
// dejavu_queue_depth, dejavu_time_to_first_token_seconds,
// dejavu_time_per_output_token_milliseconds, dejavu_sparsity_density, ...)
// are listed on the metrics type. Each request is logged as one slog line
// (msg "request") with its method, path, status, duration, id, model, token
// counts, queueing time, time to first token, finish reason and error.
//
// Chat prompts are rendered with the model's chat template
// (chat_template.jinja or tokenizer_config.json's chat_template, run by a
// Jinja engine) and tokenized without added special tokens, as
// transformers' apply_chat_template does. Without a template, the plain
// format of FallbackPrompt is used ("role: content" lines, then
// "assistant:"), tokenized with the default special tokens.
package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"dejavu"
)

// Config configures a Server. The zero value of each field means its default.
type Config struct {
	// ModelPath is where the model was loaded from: the chat template is
	// read from it, and its base name (without extension) is the model id
	// unless ModelID is set.
	ModelPath string
	// ModelID is the name clients give as "model" (default: from ModelPath).
	ModelID string
	// Parallel bounds the generations that run at once (default 2).
	Parallel int
	// Queue bounds the requests waiting for a generation slot (default 16;
	// negative: none wait).
	Queue int
	// Context is the context size in tokens that prompt plus generation must
	// fit (default and maximum: the model's max_position_embeddings).
	Context int
	// MaxBodyBytes bounds request bodies (default 1 MiB).
	MaxBodyBytes int64
	// DrainTimeout is how long Run waits for in-flight requests after its
	// context ends before cancelling them (default 30 s).
	DrainTimeout time.Duration
	// RetryAfter is the Retry-After of a 429 answer (default 1 s).
	RetryAfter time.Duration
	// NewSelector, if set, makes decoding sparse (DejaVu): it is called once
	// per generation for a selector of its own (predictors keep per-call
	// scratch). The densities used are reported by dejavu_sparsity_density.
	NewSelector func() dejavu.Selector
	// ChatTemplate overrides the model's chat template (nil: the model's).
	ChatTemplate *ChatTemplate
	// Logger receives one line per request (default: JSON on stderr).
	Logger *slog.Logger
}

// Server serves one model over HTTP. Create it with New.
type Server struct {
	m       *dejavu.Model
	cfg     Config
	id      string
	created int64
	ctxMax  int
	chat    *ChatTemplate
	log     *slog.Logger
	met     *metrics
	handler http.Handler

	slots    chan struct{} // one token per running generation
	admitted atomic.Int64  // running + waiting
	maxAdmit int64

	draining atomic.Bool
	gens     inflight // generations in progress
}

// inflight counts generations in progress; once closed it refuses new
// ones, so that nothing reads the model after Run has returned.
type inflight struct {
	mu     sync.Mutex
	cond   sync.Cond
	n      int
	closed bool
}

// add counts a new generation, or reports false once closed.
func (f *inflight) add() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return false
	}
	f.n++
	return true
}

func (f *inflight) done() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.n--; f.n == 0 && f.cond.L != nil {
		f.cond.Broadcast()
	}
}

// wait waits until no generation is in progress; with close set, it
// refuses new ones from then on.
func (f *inflight) wait(close bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.cond.L == nil {
		f.cond.L = &f.mu
	}
	f.closed = f.closed || close
	for f.n > 0 {
		f.cond.Wait()
	}
}

// New makes a server for m. The model must stay open while the server runs.
func New(m *dejavu.Model, cfg Config) (*Server, error) {
	if cfg.Parallel <= 0 {
		cfg.Parallel = 2
	}
	if cfg.Queue == 0 {
		cfg.Queue = 16
	} else if cfg.Queue < 0 {
		cfg.Queue = 0
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 1 << 20
	}
	if cfg.DrainTimeout <= 0 {
		cfg.DrainTimeout = 30 * time.Second
	}
	if cfg.RetryAfter <= 0 {
		cfg.RetryAfter = time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewJSONHandler(os.Stderr, nil))
	}
	s := &Server{m: m, cfg: cfg, id: cfg.ModelID, created: time.Now().Unix(), log: cfg.Logger,
		slots: make(chan struct{}, cfg.Parallel), maxAdmit: int64(cfg.Parallel + cfg.Queue)}
	if s.id == "" {
		base := filepath.Base(filepath.Clean(cfg.ModelPath))
		s.id = strings.TrimSuffix(base, filepath.Ext(base))
		if s.id == "" || s.id == "." || s.id == string(filepath.Separator) {
			s.id = "dejavu"
		}
	}
	s.ctxMax = m.Cfg.MaxPos
	if cfg.Context > 0 && cfg.Context < s.ctxMax {
		s.ctxMax = cfg.Context
	}
	s.chat = cfg.ChatTemplate
	if s.chat == nil && cfg.ModelPath != "" {
		ct, err := LoadChatTemplate(cfg.ModelPath)
		if err != nil {
			return nil, err
		}
		s.chat = ct
	}
	s.met = newMetrics()
	s.handler = s.routes()
	return s, nil
}

// ModelID is the model's name in the API.
func (s *Server) ModelID() string { return s.id }

// HasChatTemplate reports whether chat prompts use a chat template (rather
// than the plain fallback format).
func (s *Server) HasChatTemplate() bool { return s.chat != nil }

// Handler is the server's HTTP handler.
func (s *Server) Handler() http.Handler { return s.handler }

// Run serves on ln until ctx ends, then drains: it stops accepting
// connections, lets in-flight requests (queued ones included) finish for up
// to Config.DrainTimeout, cancels those still running after that, waits for
// their generations to stop and returns. It returns nil after a drain and
// the listener's error if serving fails. The model may be closed once Run
// has returned.
func (s *Server) Run(ctx context.Context, ln net.Listener) error {
	hard, cancelHard := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelHard()
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		BaseContext:       func(net.Listener) context.Context { return hard },
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		s.gens.wait(true)
		return err
	case <-ctx.Done():
	}
	s.draining.Store(true)
	s.log.Info("draining", "timeout", s.cfg.DrainTimeout.String())
	dctx, cancel := context.WithTimeout(context.Background(), s.cfg.DrainTimeout)
	defer cancel()
	err := srv.Shutdown(dctx)
	if err != nil {
		s.log.Warn("drain timed out: cancelling the requests left", "error", err.Error())
		cancelHard()
		srv.Close()
	}
	<-served
	s.gens.wait(true)
	s.log.Info("stopped")
	return nil
}

// admit takes a place among the running and waiting requests and waits for
// a generation slot. It returns release (to call when the generation ends)
// or errBusy when the queue is full, or ctx's error if the client went away
// while waiting.
func (s *Server) admit(ctx context.Context) (release func(), err error) {
	if s.admitted.Add(1) > s.maxAdmit {
		s.admitted.Add(-1)
		return nil, errBusy
	}
	s.met.queueDepth.Inc()
	select {
	case s.slots <- struct{}{}:
		s.met.queueDepth.Dec()
	case <-ctx.Done():
		s.met.queueDepth.Dec()
		s.admitted.Add(-1)
		return nil, ctx.Err()
	}
	s.met.active.Inc()
	return func() {
		s.met.active.Dec()
		<-s.slots
		s.admitted.Add(-1)
	}, nil
}

var errBusy = errors.New("server busy")

// newID makes a response id such as "cmpl-3f2a…".
func newID(prefix string) string {
	var b [12]byte
	rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// String describes the server for logs.
func (s *Server) String() string {
	return fmt.Sprintf("model %s (context %d, parallel %d, queue %d, chat template %v)",
		s.id, s.ctxMax, s.cfg.Parallel, s.cfg.Queue, s.chat != nil)
}
