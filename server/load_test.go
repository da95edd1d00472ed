package server

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestLoad is a bounded load test on loopback: DEJAVU_LOAD_CLIENTS
// concurrent clients (default 32) send DEJAVU_LOAD_REQUESTS requests in all
// (default 320; completions and chat, streamed and not, max_tokens 4) to a
// server with --parallel 2 --queue 16. Every answer must be a 200 or a 429
// with Retry-After (no 5xx, no transport error; a client told to retry
// waits 0.5 to 1.5 times Retry-After before its next request), every request must be
// logged once, and the goroutine count must come back to its baseline. It
// prints throughput and latency percentiles. Run it with
//
//	DEJAVU_LOADTEST=1 go test ./server/ -run TestLoad -v
//
// It is skipped otherwise, and with -short.
func TestLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	if os.Getenv("DEJAVU_LOADTEST") == "" {
		t.Skip("set DEJAVU_LOADTEST=1 to run the load test")
	}
	clients, total := envInt(t, "DEJAVU_LOAD_CLIENTS", 32), envInt(t, "DEJAVU_LOAD_REQUESTS", 320)
	const maxTokens = 4
	m := loadModel(t)
	runtime.GC()
	baseline := runtime.NumGoroutine()

	var logged atomic.Int64
	log := slog.New(countLines{&logged})
	s, err := New(m, Config{ModelPath: testModelPath, Parallel: 2, Queue: 16, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	tr := &http.Transport{MaxIdleConnsPerHost: clients, MaxConnsPerHost: clients}
	client := &http.Client{Transport: tr, Timeout: 2 * time.Minute}

	type result struct {
		status  int
		latency time.Duration
		ttft    time.Duration // streamed: time to the first text event
		tokens  int
		err     string
	}
	results := make([]result, total)
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for c := range clients {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(c), 1))
			for {
				i := int(next.Add(1) - 1)
				if i >= total {
					return
				}
				streamed, chat := i%2 == 1, i%4 >= 2
				url := ts.URL + "/v1/completions"
				body := fmt.Sprintf(`{"model":%q,"prompt":"Once upon a time number %d","max_tokens":%d,"seed":%d,"stream":%v,"stream_options":%s}`,
					model, i, maxTokens, i, streamed, map[bool]string{true: `{"include_usage":true}`, false: "null"}[streamed])
				if chat {
					url = ts.URL + "/v1/chat/completions"
					body = fmt.Sprintf(`{"model":%q,"messages":[{"role":"user","content":"Tell me story %d"}],"max_tokens":%d,"seed":%d,"stream":%v}`,
						model, i, maxTokens, i, streamed)
				}
				t0 := time.Now()
				resp, err := client.Post(url, "application/json", strings.NewReader(body))
				if err != nil {
					results[i] = result{err: err.Error()}
					continue
				}
				r := result{status: resp.StatusCode}
				switch {
				case resp.StatusCode == 200 && streamed:
					br := bufio.NewReader(resp.Body)
					done := false
					for {
						line, err := br.ReadString('\n')
						if strings.HasPrefix(line, "data: ") && r.ttft == 0 && (strings.Contains(line, `"text":"`) || strings.Contains(line, `"content":"`)) &&
							!strings.Contains(line, `"content":""`) && !strings.Contains(line, `"text":""`) {
							r.ttft = time.Since(t0)
						}
						if strings.HasPrefix(line, "data: [DONE]") {
							done = true
						}
						if err != nil {
							break
						}
					}
					if !done {
						r.err = "stream without [DONE]"
					}
					r.tokens = maxTokens
				case resp.StatusCode == 200:
					b, _ := io.ReadAll(resp.Body)
					if !strings.Contains(string(b), `"completion_tokens"`) {
						r.err = "no usage: " + string(b)
					}
					r.tokens = maxTokens
				case resp.StatusCode == http.StatusTooManyRequests:
					b, _ := io.ReadAll(resp.Body)
					if resp.Header.Get("Retry-After") == "" || !strings.Contains(string(b), "rate_limit_error") {
						r.err = "bad 429: " + string(b)
					}
					// Back off as told, with jitter: 0.5 to 1.5 times Retry-After.
					ra, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
					time.Sleep(time.Duration(float64(ra) * (0.5 + rng.Float64()) * float64(time.Second)))
				default:
					b, _ := io.ReadAll(resp.Body)
					r.err = fmt.Sprintf("status %d: %s", resp.StatusCode, b)
				}
				resp.Body.Close()
				r.latency = time.Since(t0)
				results[i] = r
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	ts.Close()
	tr.CloseIdleConnections()

	var ok, busy int
	var lat, ttft []time.Duration
	for i, r := range results {
		switch {
		case r.err != "":
			t.Errorf("request %d: %s", i, r.err)
		case r.status == 200:
			ok++
			lat = append(lat, r.latency)
			if r.ttft > 0 {
				ttft = append(ttft, r.ttft)
			}
		case r.status == http.StatusTooManyRequests:
			busy++
		}
	}
	if ok == 0 {
		t.Fatal("no request succeeded")
	}
	if n := logged.Load(); n != int64(total) {
		t.Errorf("%d request log lines for %d requests", n, total)
	}
	slices.Sort(lat)
	slices.Sort(ttft)
	t.Logf("%d clients, %d requests (max_tokens %d, parallel 2, queue 16) in %.2fs: %d ok, %d rejected with 429, 0 errors",
		clients, total, maxTokens, elapsed.Seconds(), ok, busy)
	t.Logf("throughput: %.1f ok requests/s, %.1f generated tokens/s; %.1f requests/s answered",
		float64(ok)/elapsed.Seconds(), float64(ok*maxTokens)/elapsed.Seconds(), float64(total)/elapsed.Seconds())
	t.Logf("latency of ok requests: p50 %v, p90 %v, p99 %v, max %v", pct(lat, 50), pct(lat, 90), pct(lat, 99), lat[len(lat)-1])
	if len(ttft) > 0 {
		t.Logf("time to first text (streamed): p50 %v, p90 %v, p99 %v", pct(ttft, 50), pct(ttft, 90), pct(ttft, 99))
	}

	// Everything the load started has ended.
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > baseline && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > baseline {
		buf := make([]byte, 1<<20)
		t.Errorf("%d goroutines after the load, %d before:\n%s", n, baseline, buf[:runtime.Stack(buf, true)])
	} else {
		t.Logf("goroutines: %d before, %d after", baseline, n)
	}
	if s.admitted.Load() != 0 || gauge(s.met.queueDepth) != 0 || gauge(s.met.active) != 0 {
		t.Errorf("admitted %d, queue %v, active %v after the load", s.admitted.Load(), gauge(s.met.queueDepth), gauge(s.met.active))
	}
}

// countLines is a slog handler that counts the "request" lines.
type countLines struct{ n *atomic.Int64 }

func (c countLines) Enabled(context.Context, slog.Level) bool { return true }

func (c countLines) Handle(_ context.Context, r slog.Record) error {
	if r.Message == "request" {
		c.n.Add(1)
	}
	return nil
}

func (c countLines) WithAttrs([]slog.Attr) slog.Handler { return c }

func (c countLines) WithGroup(string) slog.Handler { return c }

func pct(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	return d[min(len(d)-1, len(d)*p/100)].Round(time.Millisecond)
}

func envInt(t *testing.T, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		t.Fatalf("%s=%q: want a positive integer", name, v)
	}
	return n
}
