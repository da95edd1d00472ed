package server

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"
)

// stopper passes generated text on to emit, cutting it before the first
// stop string and holding back any tail that could be the start of one.
// Streamed and non-streamed answers both go through it, so they carry the
// same text.
type stopper struct {
	stops []string
	emit  func(string) error
	buf   string
}

// write adds text. It returns errStopString once a stop string has been
// seen (the text before it has been emitted), or emit's error.
func (s *stopper) write(t string) error {
	if len(s.stops) == 0 {
		if t == "" {
			return nil
		}
		return s.emit(t)
	}
	s.buf += t
	cut := -1
	for _, stop := range s.stops {
		if i := strings.Index(s.buf, stop); i >= 0 && (cut < 0 || i < cut) {
			cut = i
		}
	}
	if cut >= 0 {
		out := s.buf[:cut]
		s.buf = ""
		if out != "" {
			if err := s.emit(out); err != nil {
				return err
			}
		}
		return errStopString
	}
	keep := 0
	for _, stop := range s.stops {
		for k := min(len(stop)-1, len(s.buf)); k > keep; k-- {
			if strings.HasSuffix(s.buf, stop[:k]) {
				keep = k
				break
			}
		}
	}
	out := s.buf[:len(s.buf)-keep]
	s.buf = s.buf[len(s.buf)-keep:]
	if out == "" {
		return nil
	}
	return s.emit(out)
}

// flush emits the held-back text at the end of a generation.
func (s *stopper) flush() error {
	out := s.buf
	s.buf = ""
	if out == "" {
		return nil
	}
	return s.emit(out)
}

// validUTF8 replaces each byte that is not part of a valid UTF-8 character
// with U+FFFD. Generated pieces never split a valid character (the
// tokenizer's stream holds incomplete ones back), so applying it piece by
// piece gives the same text as applying it to the whole.
func validUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			b.WriteString("\uFFFD")
		} else {
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

// sse writes Server-Sent Events.
type sse struct {
	w   http.ResponseWriter
	rc  *http.ResponseController
	err error
}

func newSSE(w http.ResponseWriter) *sse {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	return &sse{w: w, rc: http.NewResponseController(w)}
}

// send writes one "data: <json>" event and flushes it; after a failed
// write it does nothing and returns that error.
func (e *sse) send(v any) error {
	var b bytes.Buffer
	b.WriteString("data: ")
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return err
	}
	b.WriteByte('\n') // Encode ended the JSON with one newline; an event ends with a blank line
	return e.raw(b.Bytes())
}

func (e *sse) raw(b []byte) error {
	if e.err != nil {
		return e.err
	}
	// A client that stops reading must not hold a generation slot forever.
	e.rc.SetWriteDeadline(time.Now().Add(eventTimeout))
	if _, err := e.w.Write(b); err != nil {
		e.err = err
		return err
	}
	if err := e.rc.Flush(); err != nil {
		e.err = err
	}
	return e.err
}

// serveStream answers j as Server-Sent Events: chunks of text, a last
// chunk with the finish reason, the usage chunk if asked for, and
// "data: [DONE]". An error after the start is sent as an error event.
func (s *Server) serveStream(w http.ResponseWriter, r *http.Request, j *job) {
	ctx := r.Context()
	info := infoFrom(ctx)
	ev := newSSE(w)
	object := "text_completion"
	if j.chat {
		object = "chat.completion.chunk"
	}
	chunk := func(text string, finish *string, role bool) map[string]any {
		c := map[string]any{"index": 0, "logprobs": nil, "finish_reason": finish}
		if j.chat {
			delta := map[string]any{}
			if role {
				delta["role"] = "assistant"
				delta["content"] = ""
			} else if finish == nil {
				delta["content"] = text
			}
			c["delta"] = delta
		} else {
			c["text"] = text
		}
		return map[string]any{"id": j.id, "object": object, "created": j.start.Unix(), "model": s.id, "choices": []any{c}}
	}
	if j.chat {
		ev.send(chunk("", nil, true))
	}
	out, err := s.run(ctx, j, func(t string) error { return ev.send(chunk(t, nil, false)) })
	if err != nil {
		if ctx.Err() != nil || ev.err != nil {
			info.canceled = true
			return
		}
		info.err = err.Error()
		ev.send(map[string]any{"error": &APIError{Message: err.Error(), Type: typeServer}})
		return
	}
	ev.send(chunk("", &out.finish, false))
	if j.includeUsage {
		ev.send(map[string]any{"id": j.id, "object": object, "created": j.start.Unix(), "model": s.id,
			"choices": []any{}, "usage": out.usage})
	}
	ev.raw([]byte("data: [DONE]\n\n"))
}
