package server

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"dejavu"
	"dejavu/generate"
)

// TestConcurrentRequests runs several requests at once: each gets the text
// the library generates for it alone (its own KV cache).
func TestConcurrentRequests(t *testing.T) {
	m := loadModel(t)
	s, ts := newTestServer(t, Config{Parallel: 3, Queue: 8})
	prompts := []string{"Once upon a time", "The cat sat", "In a small village there lived", "Hello", "Tom and Lily went", "Why"}
	want := make([]string, len(prompts))
	for i, p := range prompts {
		ids, _ := m.Tok.Encode(p)
		res, err := m.GenerateIDs(context.Background(), ids, dejavu.GenerateOptions{MaxTokens: 6,
			Sampling: generate.Options{Temperature: 0.9, TopP: 1, Seed: uint64(i)}})
		if err != nil {
			t.Fatal(err)
		}
		want[i] = validUTF8(res.Text)
	}
	var wg sync.WaitGroup
	got := make([]string, len(prompts))
	for i, p := range prompts {
		wg.Go(func() {
			body := fmt.Sprintf(`{"model":%q,"prompt":%q,"max_tokens":6,"temperature":0.9,"seed":%d}`, model, p, i)
			if i%2 == 1 {
				got[i] = stream(t, ts.URL+"/v1/completions", strings.Replace(body, "{", `{"stream":true,`, 1)).text
			} else {
				got[i] = complete(t, ts.URL+"/v1/completions", body).text()
			}
		})
	}
	wg.Wait()
	for i := range prompts {
		if got[i] != want[i] {
			t.Errorf("prompt %q: got %q, want %q", prompts[i], got[i], want[i])
		}
	}
	if n := s.admitted.Load(); n != 0 {
		t.Errorf("%d requests still admitted", n)
	}
}

// startStream starts a long streamed completion and returns once its
// first event has arrived; cancel ends the client's side.
func startStream(t *testing.T, url string, maxTokens int) (resp *http.Response, r *bufio.Reader, cancel context.CancelFunc) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	body := fmt.Sprintf(`{"model":%q,"prompt":"Once upon a time","max_tokens":%d,"temperature":0,"stream":true}`, model, maxTokens)
	req, _ := http.NewRequestWithContext(ctx, "POST", url+"/v1/completions", strings.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		cancel()
		t.Fatalf("status %d", resp.StatusCode)
	}
	r = bufio.NewReader(resp.Body)
	line, err := r.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "data: {") {
		cancel()
		t.Fatalf("first event %q: %v", line, err)
	}
	return resp, r, cancel
}

// TestBusy fills the generation slot and the queue: the next request is
// answered 429 with Retry-After, and clients that leave free their places.
func TestBusy(t *testing.T) {
	s, ts := newTestServer(t, Config{Parallel: 1, Queue: 1})
	resp, _, cancelA := startStream(t, ts.URL, 1000)
	defer resp.Body.Close()
	defer cancelA()

	// B waits in the queue.
	ctxB, cancelB := context.WithCancel(context.Background())
	doneB := make(chan error, 1)
	go func() {
		req, _ := http.NewRequestWithContext(ctxB, "POST", ts.URL+"/v1/completions",
			strings.NewReader(fmt.Sprintf(`{"model":%q,"prompt":"Hi","max_tokens":2}`, model)))
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		doneB <- err
	}()
	waitFor(t, 5*time.Second, "B to queue", func() bool { return gauge(s.met.queueDepth) == 1 })

	// C is turned away, streamed or not.
	for _, stream := range []bool{false, true} {
		code, h, b := post(t, ts.URL+"/v1/completions", fmt.Sprintf(`{"model":%q,"prompt":"Hi","max_tokens":2,"stream":%v}`, model, stream))
		if code != http.StatusTooManyRequests || h.Get("Retry-After") != "1" {
			t.Fatalf("busy: %d, Retry-After %q: %s", code, h.Get("Retry-After"), b)
		}
		if e := apiErr(t, b); e.Type != typeRateLimit {
			t.Errorf("busy error type %q", e.Type)
		}
	}
	// Other endpoints still answer.
	if code, _ := get(t, ts.URL+"/health"); code != 200 {
		t.Errorf("health while busy: %d", code)
	}

	// B leaves the queue.
	cancelB()
	if err := <-doneB; !errors.Is(err, context.Canceled) {
		t.Errorf("B: %v", err)
	}
	waitFor(t, 2*time.Second, "B to leave the queue", func() bool { return gauge(s.met.queueDepth) == 0 && s.admitted.Load() == 1 })

	// A leaves: its generation stops within a token or so.
	before := counter(s.met.outTok)
	t0 := time.Now()
	cancelA()
	waitFor(t, 2*time.Second, "A's generation to stop", func() bool { return s.admitted.Load() == 0 })
	t.Logf("generation stopped %v after the client left", time.Since(t0))
	if gauge(s.met.active) != 0 {
		t.Errorf("active generations %v", gauge(s.met.active))
	}
	if n := counter(s.met.outTok) - before; n >= 1000 || n == 0 {
		t.Errorf("A generated %v tokens", n)
	}
	// Served again.
	complete(t, ts.URL+"/v1/completions", fmt.Sprintf(`{"model":%q,"prompt":"Hi","max_tokens":2}`, model))
}

// TestDisconnect cancels a non-streamed generation when its client leaves.
func TestDisconnect(t *testing.T) {
	s, ts := newTestServer(t, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "POST", ts.URL+"/v1/completions",
		strings.NewReader(fmt.Sprintf(`{"model":%q,"prompt":"Once","max_tokens":1500,"temperature":0}`, model)))
	t0 := time.Now()
	_, err := http.DefaultClient.Do(req)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("want the client to time out, got %v", err)
	}
	waitFor(t, 2*time.Second, "the generation to stop", func() bool { return s.admitted.Load() == 0 })
	if d := time.Since(t0); d > 2*time.Second {
		t.Errorf("generation ran %v", d)
	}
	if n := counter(s.met.outTok); n >= 1500 {
		t.Errorf("generated %v tokens", n)
	}
}

// TestDrain stops a server while a stream is in flight: the stream
// finishes, new connections are refused and Run returns nil.
func TestDrain(t *testing.T) {
	m := loadModel(t)
	s, err := New(m, Config{ModelPath: testModelPath, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String()
	ctx, stop := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- s.Run(ctx, ln) }()

	resp, r, cancel := startStream(t, url, 20)
	defer cancel()
	defer resp.Body.Close()
	stop() // as SIGTERM does
	waitFor(t, 2*time.Second, "draining", func() bool { return s.draining.Load() })
	waitFor(t, 2*time.Second, "the listener to close", func() bool {
		c, err := net.DialTimeout("tcp", ln.Addr().String(), 100*time.Millisecond)
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	st := readStream(t, r)
	if !st.done || st.finish != "length" {
		t.Errorf("in-flight stream cut: %+v", st)
	}
	select {
	case err := <-ran:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return")
	}
}

// TestDrainTimeout cancels what is still running after the drain timeout.
func TestDrainTimeout(t *testing.T) {
	m := loadModel(t)
	s, err := New(m, Config{ModelPath: testModelPath, Logger: testLogger(t), DrainTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- s.Run(ctx, ln) }()
	resp, r, cancel := startStream(t, "http://"+ln.Addr().String(), 1500)
	defer cancel()
	defer resp.Body.Close()
	t0 := time.Now()
	stop()
	select {
	case err := <-ran:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return")
	}
	if d := time.Since(t0); d > 2*time.Second {
		t.Errorf("Run took %v with a drain timeout of 200ms", d)
	}
	if s.admitted.Load() != 0 {
		t.Errorf("generations left running")
	}
	b, _ := io.ReadAll(r)
	if strings.Contains(string(b), "[DONE]") {
		t.Errorf("the cut stream ended normally")
	}
}
