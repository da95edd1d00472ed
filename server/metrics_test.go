package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestMetricsAndLogs checks /metrics after a few requests and the one JSON
// log line per request.
func TestMetricsAndLogs(t *testing.T) {
	var logs syncBuffer
	_, ts := newTestServer(t, Config{Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	a := complete(t, ts.URL+"/v1/completions", fmt.Sprintf(`{"model":%q,"prompt":"Once upon a time","max_tokens":3}`, model))
	stream(t, ts.URL+"/v1/chat/completions", fmt.Sprintf(`{"model":%q,"messages":[{"role":"user","content":"Hi"}],"max_tokens":2,"stream":true}`, model))
	post(t, ts.URL+"/v1/completions", `{"model":"nope","prompt":"x"}`)
	get(t, ts.URL+"/nowhere")
	code, b := get(t, ts.URL+"/metrics")
	if code != 200 {
		t.Fatalf("/metrics: %d", code)
	}
	text := string(b)
	for _, want := range []string{
		`dejavu_requests_total{endpoint="/v1/completions",status="200"} 1`,
		`dejavu_requests_total{endpoint="/v1/completions",status="404"} 1`,
		`dejavu_requests_total{endpoint="/v1/chat/completions",status="200"} 1`,
		`dejavu_requests_total{endpoint="other",status="404"} 1`,
		"dejavu_prompt_tokens_total ",
		"dejavu_completion_tokens_total ",
		"dejavu_queue_depth 0",
		"dejavu_active_generations 0",
		"dejavu_time_to_first_token_seconds_bucket{le=",
		"dejavu_time_to_first_token_seconds_count 2",
		"dejavu_time_per_output_token_milliseconds_bucket{le=",
		"dejavu_time_per_output_token_milliseconds_count 2",
		`dejavu_sparsity_density{kind="mlp"} 1`,
		"dejavu_request_duration_seconds_bucket{endpoint=",
		"go_goroutines ",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if !strings.Contains(text, fmt.Sprintf("dejavu_completion_tokens_total %d", a.Usage.CompletionTokens+2)) {
		t.Errorf("completion tokens: want %d + 2 in\n%s", a.Usage.CompletionTokens, grep(text, "dejavu_completion_tokens_total"))
	}

	// One log line per request (the /metrics one is written as it ends).
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if len(lines) < 4 {
		t.Fatalf("%d log lines:\n%s", len(lines), logs.String())
	}
	var first map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &first); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"time", "level", "msg", "method", "path", "status", "duration_ms", "id", "model", "prompt_tokens", "completion_tokens", "ttft_ms", "finish_reason"} {
		if _, ok := first[k]; !ok {
			t.Errorf("log line lacks %q: %s", k, lines[0])
		}
	}
	if first["msg"] != "request" || first["path"] != "/v1/completions" || first["status"] != float64(200) {
		t.Errorf("log line: %s", lines[0])
	}
	var third map[string]any
	json.Unmarshal([]byte(lines[2]), &third)
	if third["status"] != float64(404) || third["error"] == nil {
		t.Errorf("error log line: %s", lines[2])
	}
}

func grep(text, prefix string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
