package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// reqInfo collects what a handler learns about its request for the log
// line and the metrics.
type reqInfo struct {
	id                   string
	model                string
	stream               bool
	promptTok, outTok    int
	finish               string
	err                  string
	queued               time.Duration
	ttft                 time.Duration
	canceled             bool
	haveTokens, haveTTFT bool
}

type infoKey struct{}

func infoFrom(ctx context.Context) *reqInfo {
	i, _ := ctx.Value(infoKey{}).(*reqInfo)
	return i
}

// statusWriter records the status and size of a response.
type statusWriter struct {
	http.ResponseWriter
	status int
	n      int64
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.n += int64(n)
	return n, err
}

// FlushError sends buffered data to the client and reports a failure
// (http.ResponseController uses it).
func (w *statusWriter) FlushError() error {
	return http.NewResponseController(w.ResponseWriter).Flush()
}

// Flush sends buffered data to the client.
func (w *statusWriter) Flush() { w.FlushError() }

// Unwrap lets http.ResponseController reach the connection's writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// endpoints are the metric labels of the routes; anything else is "other".
var endpoints = map[string]bool{
	"/v1/models": true, "/v1/completions": true, "/v1/chat/completions": true,
	"/health": true, "/metrics": true,
}

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	route := func(path, method string, h http.HandlerFunc) {
		mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			if r.Method != method && !(method == http.MethodGet && r.Method == http.MethodHead) {
				w.Header().Set("Allow", method)
				s.writeError(w, r, &APIError{Status: http.StatusMethodNotAllowed, Type: typeInvalidRequest,
					Message: fmt.Sprintf("%s %s is not supported: use %s", r.Method, r.URL.Path, method)})
				return
			}
			h(w, r)
		})
	}
	route("/v1/models", http.MethodGet, s.handleModels)
	route("/v1/models/", http.MethodGet, s.handleModel)
	route("/v1/completions", http.MethodPost, s.handleCompletions)
	route("/v1/chat/completions", http.MethodPost, s.handleChat)
	route("/health", http.MethodGet, s.handleHealth)
	route("/metrics", http.MethodGet, s.met.handler.ServeHTTP)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, r, &APIError{Status: http.StatusNotFound, Type: typeNotFound,
			Message: fmt.Sprintf("no endpoint %s %s", r.Method, r.URL.Path)})
	})
	return s.middleware(mux)
}

// middleware logs one line per request, counts it in the metrics and turns
// a handler's panic into a 500.
func (s *Server) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		info := &reqInfo{}
		sw := &statusWriter{ResponseWriter: w}
		r = r.WithContext(context.WithValue(r.Context(), infoKey{}, info))
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				s.log.Error("panic", "path", r.URL.Path, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
				if sw.status == 0 {
					s.writeError(sw, r, errors.New("internal error"))
				}
				info.err = fmt.Sprint(p)
			}
			status := sw.status
			if status == 0 {
				if r.Context().Err() != nil {
					status = 499
				} else {
					status = http.StatusOK
				}
			}
			ep := r.URL.Path
			if strings.HasPrefix(ep, "/v1/models/") {
				ep = "/v1/models"
			}
			if !endpoints[ep] {
				ep = "other"
			}
			d := time.Since(start)
			s.met.requests.WithLabelValues(ep, strconv.Itoa(status)).Inc()
			s.met.duration.WithLabelValues(ep).Observe(d.Seconds())
			attrs := []slog.Attr{
				slog.String("method", r.Method), slog.String("path", r.URL.Path),
				slog.Int("status", status), slog.Float64("duration_ms", ms(d)),
				slog.Int64("bytes", sw.n), slog.String("remote", r.RemoteAddr),
			}
			if info.id != "" {
				attrs = append(attrs, slog.String("id", info.id))
			}
			if info.model != "" {
				attrs = append(attrs, slog.String("model", info.model), slog.Bool("stream", info.stream))
			}
			if info.haveTokens {
				attrs = append(attrs, slog.Int("prompt_tokens", info.promptTok),
					slog.Int("completion_tokens", info.outTok), slog.Float64("queue_ms", ms(info.queued)))
			}
			if info.haveTTFT {
				attrs = append(attrs, slog.Float64("ttft_ms", ms(info.ttft)))
			}
			if info.finish != "" {
				attrs = append(attrs, slog.String("finish_reason", info.finish))
			}
			if info.canceled {
				attrs = append(attrs, slog.Bool("canceled", true))
			}
			level := slog.LevelInfo
			if info.err != "" {
				attrs = append(attrs, slog.String("error", info.err))
				if status >= 500 {
					level = slog.LevelError
				}
			}
			s.log.LogAttrs(context.Background(), level, "request", attrs...)
		}()
		next.ServeHTTP(sw, r)
	})
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func (s *Server) writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.Encode(v)
}

type modelObject struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	OwnedBy string `json:"owned_by"`
}

func (s *Server) modelObject() modelObject {
	return modelObject{ID: s.id, Object: "model", Created: s.created, OwnedBy: "dejavu"}
}

func (s *Server) handleModels(w http.ResponseWriter, r *http.Request) {
	s.writeJSON(w, http.StatusOK, map[string]any{"object": "list", "data": []modelObject{s.modelObject()}})
}

func (s *Server) handleModel(w http.ResponseWriter, r *http.Request) {
	id := strings.TrimPrefix(r.URL.Path, "/v1/models/")
	if id != s.id {
		s.writeError(w, r, s.unknownModel(id))
		return
	}
	s.writeJSON(w, http.StatusOK, s.modelObject())
}

func (s *Server) unknownModel(id string) *APIError {
	return &APIError{Status: http.StatusNotFound, Type: typeInvalidRequest,
		Message: fmt.Sprintf("the model %q does not exist: this server serves %q", id, s.id),
		Param:   strPtr("model"), Code: strPtr("model_not_found")}
}

func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	if s.draining.Load() {
		s.writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "draining"})
		return
	}
	s.writeJSON(w, http.StatusOK, map[string]any{"status": "ok", "model": s.id})
}

// bodyTimeout bounds the time to read a request body, and eventTimeout
// the time to write one streamed event to a client.
const (
	bodyTimeout  = 30 * time.Second
	eventTimeout = 30 * time.Second
)

// readJSON reads a request body of at most MaxBodyBytes of valid UTF-8 and
// decodes the JSON object in it into v.
func (s *Server) readJSON(w http.ResponseWriter, r *http.Request, v any) error {
	// A slow sender gets bodyTimeout to send the body; no deadline is set
	// for the whole request, as one would also cut long generations.
	rc := http.NewResponseController(w)
	rc.SetReadDeadline(time.Now().Add(bodyTimeout))
	body := http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes)
	data, err := io.ReadAll(body)
	rc.SetReadDeadline(time.Time{})
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return &APIError{Status: http.StatusRequestEntityTooLarge, Type: typeInvalidRequest,
				Message: fmt.Sprintf("the request body is larger than %d bytes", s.cfg.MaxBodyBytes), Code: strPtr("request_too_large")}
		}
		return invalid("", "", "reading the request body: %v", err)
	}
	b := string(data)
	if !utf8.ValidString(b) {
		return invalid("", "invalid_encoding", "the request body is not valid UTF-8")
	}
	if strings.TrimSpace(b) == "" {
		return invalid("", "", "the request body is empty: send a JSON object")
	}
	if err := json.Unmarshal(data, v); err != nil {
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &se):
			return invalid("", "invalid_json", "the request body is not valid JSON: %v (at byte %d)", se, se.Offset)
		case errors.As(err, &te):
			if te.Field == "" {
				return invalid("", "invalid_json", "the request body must be a JSON object, not %s", te.Value)
			}
			field := strings.ReplaceAll(te.Field, "commonRequest.", "") // the embedded struct's name is no JSON field
			return invalid(field, "invalid_type", "invalid type for %q: expected %s, got %s", field, jsonKind(te.Type.String()), te.Value)
		default:
			var ae *APIError
			if errors.As(err, &ae) {
				return ae
			}
			return invalid("", "invalid_json", "the request body is not valid JSON: %v", err)
		}
	}
	return nil
}

// jsonKind names a Go type the way a JSON client thinks of it.
func jsonKind(t string) string {
	t = strings.TrimLeft(t, "*")
	switch {
	case strings.HasPrefix(t, "[]"):
		return "an array"
	case strings.HasPrefix(t, "int"), strings.HasPrefix(t, "uint"):
		return "an integer"
	case strings.HasPrefix(t, "float"):
		return "a number"
	case t == "string":
		return "a string"
	case t == "bool":
		return "a boolean"
	case strings.HasPrefix(t, "server."):
		return "an object"
	}
	return t
}
