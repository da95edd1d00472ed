package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"dejavu"
	"dejavu/server"
	"dejavu/sparsity"
)

func newServe() *cobra.Command {
	var (
		mf           modelFlags
		sp           sparseFlags
		addr         string
		cfg          server.Config
		drainSeconds float64
	)
	c := &cobra.Command{
		Use:   "serve",
		Short: "Serve the model over an OpenAI-compatible HTTP API",
		Long: `Serve the model over HTTP with OpenAI's API: GET /v1/models,
POST /v1/completions and POST /v1/chat/completions (streamed with
"stream": true), GET /health and GET /metrics (Prometheus).

At most --parallel generations run at once and at most --queue more wait;
beyond that requests are answered 429 with Retry-After. SIGTERM or Ctrl-C
stops accepting connections, lets in-flight requests finish (for up to
--drain seconds) and exits 0. One JSON log line per request goes to stderr.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			path, err := mf.path()
			if err != nil {
				return err
			}
			log := slog.New(slog.NewJSONHandler(cmd.ErrOrStderr(), nil))
			m, err := dejavu.Load(path, dejavu.Options{Threads: mf.threads, Tokenizer: mf.tokenizer})
			if err != nil {
				return err
			}
			defer m.Close()
			sel, err := sp.selector(cmd, m)
			if err != nil {
				return err
			}
			if p, ok := sel.(*sparsity.Predictors); ok {
				cfg.NewSelector = func() dejavu.Selector { return p.Clone() } // one per generation
			}
			cfg.ModelPath = path
			cfg.Logger = log
			cfg.DrainTimeout = time.Duration(drainSeconds * float64(time.Second))
			if cfg.Queue == 0 {
				cfg.Queue = -1 // Config's zero value means the default
			}
			srv, err := server.New(m, cfg)
			if err != nil {
				return err
			}
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				return fmt.Errorf("listen: %w", err)
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			log.Info("serving", "addr", "http://"+ln.Addr().String(), "model", srv.ModelID(), "path", path,
				"parallel", cfg.Parallel, "queue", cfg.Queue, "chat_template", srv.HasChatTemplate())
			return srv.Run(ctx, ln)
		},
	}
	mf.register(c)
	mf.registerDevice(c)
	sp.register(c)
	f := c.Flags()
	f.StringVar(&addr, "addr", "127.0.0.1:8080", "address to listen on")
	f.IntVar(&cfg.Parallel, "parallel", 2, "generations that run at once")
	f.IntVar(&cfg.Queue, "queue", 16, "requests that may wait for a generation slot (beyond that: 429)")
	f.IntVar(&cfg.Context, "ctx", 0, "context size in tokens for prompt plus generation (0: the model's maximum)")
	f.StringVar(&cfg.ModelID, "model-id", "", "the model's name in the API (default: the model path's base name)")
	f.Int64Var(&cfg.MaxBodyBytes, "max-body", 1<<20, "largest request body in bytes")
	f.Float64Var(&drainSeconds, "drain", 30, "seconds to let in-flight requests finish on SIGTERM")
	return c
}
