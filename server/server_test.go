package server

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"dejavu"
	"dejavu/generate"
)

const testModelPath = "../../shared/data/models/testbed-opt-relu"

var (
	modelOnce sync.Once
	testModel *dejavu.Model
	modelErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if testModel != nil {
		testModel.Close()
	}
	os.Exit(code)
}

// loadModel loads the test-bed model once, or skips the test when
// ../shared/data is absent.
func loadModel(t testing.TB) *dejavu.Model {
	t.Helper()
	if _, err := os.Stat(testModelPath); err != nil {
		t.Skip("../shared/data is not present")
	}
	modelOnce.Do(func() { testModel, modelErr = dejavu.Load(testModelPath, dejavu.Options{}) })
	if modelErr != nil {
		t.Fatal(modelErr)
	}
	return testModel
}

// testLogger sends the server's log lines to the test log (dropping those
// that come after the test's end).
func testLogger(t testing.TB) *slog.Logger {
	w := &testWriter{t: t}
	t.Cleanup(func() {
		w.mu.Lock()
		w.done = true
		w.mu.Unlock()
	})
	return slog.New(slog.NewTextHandler(w, nil))
}

type testWriter struct {
	t    testing.TB
	mu   sync.Mutex
	done bool
}

func (w *testWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimRight(string(b), "\n"))
	}
	return len(b), nil
}

// newTestServer serves the test-bed model on a loopback listener.
func newTestServer(t testing.TB, cfg Config) (*Server, *httptest.Server) {
	t.Helper()
	m := loadModel(t)
	cfg.ModelPath = testModelPath
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	s, err := New(m, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(func() {
		ts.Close()
		s.gens.wait(false)
	})
	return s, ts
}

const model = "testbed-opt-relu"

func post(t testing.TB, url, body string) (int, http.Header, []byte) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, b
}

func get(t testing.TB, url string) (int, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// answer is the part of a non-streamed answer the tests look at.
type answer struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Model   string `json:"model"`
	Choices []struct {
		Text    string `json:"text"`
		Message struct {
			Role    string `json:"role"`
			Content string `json:"content"`
		} `json:"message"`
		FinishReason string `json:"finish_reason"`
	} `json:"choices"`
	Usage usage `json:"usage"`
}

func (a answer) text() string { return a.Choices[0].Text + a.Choices[0].Message.Content }

func complete(t testing.TB, url, body string) answer {
	t.Helper()
	code, _, b := post(t, url, body)
	if code != http.StatusOK {
		t.Fatalf("%s: status %d: %s", body, code, b)
	}
	var a answer
	if err := json.Unmarshal(b, &a); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	if len(a.Choices) != 1 {
		t.Fatalf("%d choices: %s", len(a.Choices), b)
	}
	return a
}

// streamed is a parsed event stream.
type streamed struct {
	text   string
	finish string
	role   string
	usage  *usage
	done   bool
	events int
	errEv  string
}

// readStream reads Server-Sent Events until [DONE] or the end of the body.
func readStream(t testing.TB, body io.Reader) streamed {
	t.Helper()
	var st streamed
	sc := bufio.NewScanner(body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			continue
		}
		data, ok := strings.CutPrefix(line, "data: ")
		if !ok {
			t.Fatalf("not an SSE data line: %q", line)
		}
		if st.done {
			t.Fatalf("event after [DONE]: %q", line)
		}
		if data == "[DONE]" {
			st.done = true
			continue
		}
		st.events++
		var ev struct {
			Choices []struct {
				Text  *string `json:"text"`
				Delta struct {
					Role    string  `json:"role"`
					Content *string `json:"content"`
				} `json:"delta"`
				FinishReason *string `json:"finish_reason"`
			} `json:"choices"`
			Usage *usage           `json:"usage"`
			Error *json.RawMessage `json:"error"`
		}
		if err := json.Unmarshal([]byte(data), &ev); err != nil {
			t.Fatalf("event %q: %v", data, err)
		}
		if ev.Error != nil {
			st.errEv = string(*ev.Error)
		}
		if ev.Usage != nil {
			st.usage = ev.Usage
		}
		for _, c := range ev.Choices {
			if c.Text != nil {
				st.text += *c.Text
			}
			if c.Delta.Content != nil {
				st.text += *c.Delta.Content
			}
			if c.Delta.Role != "" {
				st.role = c.Delta.Role
			}
			if c.FinishReason != nil {
				st.finish = *c.FinishReason
			}
		}
	}
	return st
}

func stream(t testing.TB, url, body string) streamed {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("%s: status %d: %s", body, resp.StatusCode, b)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type %q", ct)
	}
	return readStream(t, resp.Body)
}

func gauge(g prometheus.Gauge) float64 {
	var m dto.Metric
	g.Write(&m)
	return m.GetGauge().GetValue()
}

func counter(c prometheus.Counter) float64 {
	var m dto.Metric
	c.Write(&m)
	return m.GetCounter().GetValue()
}

// waitFor polls cond for up to d.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestModelsAndHealth(t *testing.T) {
	s, ts := newTestServer(t, Config{})
	code, b := get(t, ts.URL+"/v1/models")
	var list struct {
		Object string        `json:"object"`
		Data   []modelObject `json:"data"`
	}
	if err := json.Unmarshal(b, &list); code != 200 || err != nil || list.Object != "list" || len(list.Data) != 1 ||
		list.Data[0].ID != model || list.Data[0].Object != "model" {
		t.Fatalf("/v1/models: %d %s", code, b)
	}
	if code, b := get(t, ts.URL+"/v1/models/"+model); code != 200 || !strings.Contains(string(b), `"id":"`+model+`"`) {
		t.Errorf("/v1/models/%s: %d %s", model, code, b)
	}
	if code, b := get(t, ts.URL+"/v1/models/other"); code != 404 || !strings.Contains(string(b), "model_not_found") {
		t.Errorf("/v1/models/other: %d %s", code, b)
	}
	if code, b := get(t, ts.URL+"/health"); code != 200 || !strings.Contains(string(b), `"status":"ok"`) {
		t.Errorf("/health: %d %s", code, b)
	}
	s.draining.Store(true)
	if code, b := get(t, ts.URL+"/health"); code != 503 {
		t.Errorf("/health while draining: %d %s", code, b)
	}
	s.draining.Store(false)
	if s.HasChatTemplate() {
		t.Errorf("the test-bed model has no chat template")
	}
}

// TestCompletionMatchesLibrary checks the server's text and usage against
// the library's generation with the same options.
func TestCompletionMatchesLibrary(t *testing.T) {
	m := loadModel(t)
	_, ts := newTestServer(t, Config{})
	prompt := "Once upon a time"
	for _, temp := range []float64{0, 0.9} {
		a := complete(t, ts.URL+"/v1/completions",
			fmt.Sprintf(`{"model":%q,"prompt":%q,"max_tokens":8,"temperature":%v,"seed":42}`, model, prompt, temp))
		ids, _ := m.Tok.Encode(prompt)
		res, err := m.GenerateIDs(context.Background(), ids, dejavu.GenerateOptions{MaxTokens: 8,
			Sampling: generate.Options{Temperature: temp, TopP: 1, Seed: 42}})
		if err != nil {
			t.Fatal(err)
		}
		if a.text() != validUTF8(res.Text) {
			t.Errorf("temperature %v: server %q, library %q", temp, a.text(), res.Text)
		}
		if a.Usage != (usage{len(ids), len(res.OutputIDs), len(ids) + len(res.OutputIDs)}) {
			t.Errorf("usage %+v, want %d + %d", a.Usage, len(ids), len(res.OutputIDs))
		}
		if a.Object != "text_completion" || a.Model != model || !strings.HasPrefix(a.ID, "cmpl-") {
			t.Errorf("answer %+v", a)
		}
		if want := map[string]string{"eos": "stop", "length": "length"}[res.Stop]; a.Choices[0].FinishReason != want {
			t.Errorf("finish_reason %q, library stop %q", a.Choices[0].FinishReason, res.Stop)
		}
	}
	// A prompt of token ids gives the same as its text.
	ids, _ := m.Tok.Encode(prompt)
	b, _ := json.Marshal(ids)
	a1 := complete(t, ts.URL+"/v1/completions", fmt.Sprintf(`{"model":%q,"prompt":%s,"max_tokens":4,"temperature":0}`, model, b))
	a2 := complete(t, ts.URL+"/v1/completions", fmt.Sprintf(`{"model":%q,"prompt":[%q],"max_tokens":4,"temperature":0}`, model, prompt))
	if a1.text() != a2.text() || a1.Usage != a2.Usage {
		t.Errorf("ids prompt %q %+v, text prompt %q %+v", a1.text(), a1.Usage, a2.text(), a2.Usage)
	}
}

// TestStreamIdentical checks that streamed text is byte-identical to the
// non-streamed text for the same seed, on both endpoints, with and without
// stop strings.
func TestStreamIdentical(t *testing.T) {
	_, ts := newTestServer(t, Config{})
	bodies := []string{
		`{"model":%q,"prompt":"The little dog","max_tokens":10,"temperature":1.0,"seed":%d%s}`,
		`{"model":%q,"messages":[{"role":"system","content":"Be kind."},{"role":"user","content":"Hi there"}],"max_tokens":10,"temperature":0.8,"seed":%d%s}`,
	}
	for i, tmpl := range bodies {
		url := ts.URL + "/v1/completions"
		if i == 1 {
			url = ts.URL + "/v1/chat/completions"
		}
		for seed := 1; seed <= 2; seed++ {
			for _, extra := range []string{"", `,"stop":["e","\n"]`} {
				body := fmt.Sprintf(tmpl, model, seed, extra)
				a := complete(t, url, body)
				st := stream(t, url, strings.Replace(body, "{", `{"stream":true,"stream_options":{"include_usage":true},`, 1))
				if st.text != a.text() || st.finish != a.Choices[0].FinishReason || !st.done {
					t.Errorf("%s:\nstreamed %q (%s, done %v)\n    whole %q (%s)", body, st.text, st.finish, st.done, a.text(), a.Choices[0].FinishReason)
				}
				if st.usage == nil || *st.usage != a.Usage {
					t.Errorf("%s: streamed usage %+v, whole %+v", body, st.usage, a.Usage)
				}
				if i == 1 && (st.role != "assistant" || a.Choices[0].Message.Role != "assistant") {
					t.Errorf("chat roles %q %q", st.role, a.Choices[0].Message.Role)
				}
				if extra != "" && (strings.Contains(a.text(), "e") || strings.Contains(a.text(), "\n")) {
					t.Errorf("%s: stop string in %q", body, a.text())
				}
			}
		}
	}
	// Without stream_options there is no usage chunk.
	st := stream(t, ts.URL+"/v1/completions", fmt.Sprintf(`{"model":%q,"prompt":"Hi","max_tokens":2,"stream":true}`, model))
	if st.usage != nil || !st.done {
		t.Errorf("usage without include_usage: %+v", st)
	}
}

// TestStop cuts a greedy generation at stop strings found in it.
func TestStop(t *testing.T) {
	_, ts := newTestServer(t, Config{})
	url := ts.URL + "/v1/completions"
	base := fmt.Sprintf(`{"model":%q,"prompt":"Once upon a time","max_tokens":12,"temperature":0`, model)
	full := complete(t, url, base+"}").text()
	if len(full) < 10 {
		t.Fatalf("generation too short for the test: %q", full)
	}
	for _, tc := range []struct {
		stop string // JSON
		want string
	}{
		{fmt.Sprintf("%q", full[5:8]), full[:strings.Index(full, full[5:8])]},
		{fmt.Sprintf("[%q, %q]", full[7:9], full[3:5]), full[:min(strings.Index(full, full[7:9]), strings.Index(full, full[3:5]))]},
		{`"never-in-the-text"`, full},
		{`["", null]`, ""}, // invalid: null in the list
		{`[]`, full},
	} {
		body := base + `,"stop":` + tc.stop + "}"
		if tc.stop == `["", null]` {
			if code, _, b := post(t, url, body); code != 400 {
				t.Errorf("stop %s: %d %s", tc.stop, code, b)
			}
			continue
		}
		a := complete(t, url, body)
		wantFinish := "stop"
		if tc.want == full {
			wantFinish = "length"
		}
		if a.text() != tc.want || a.Choices[0].FinishReason != wantFinish {
			t.Errorf("stop %s: got %q (%s), want %q (%s)", tc.stop, a.text(), a.Choices[0].FinishReason, tc.want, wantFinish)
		}
		st := stream(t, url, strings.Replace(body, "{", `{"stream":true,`, 1))
		if st.text != tc.want || st.finish != wantFinish {
			t.Errorf("stop %s streamed: got %q (%s), want %q", tc.stop, st.text, st.finish, tc.want)
		}
	}
}

func TestStopper(t *testing.T) {
	for _, tc := range []struct {
		stops  []string
		pieces []string
		want   []string // what emit receives
		stop   bool
	}{
		{nil, []string{"ab", "cd"}, []string{"ab", "cd"}, false},
		{[]string{"END"}, []string{"abc E", "N", "D more"}, []string{"abc "}, true},
		{[]string{"END"}, []string{"abc E", "N", "d"}, []string{"abc ", "ENd"}, false},
		{[]string{"xy", "abc"}, []string{"ab", "x", "y"}, []string{"ab"}, true}, // "ab" held (start of "abc") until "x" comes
		{[]string{"é!"}, []string{"café", "!"}, []string{"caf"}, true},
		{[]string{"aa"}, []string{"a", "a"}, nil, true},
	} {
		var got []string
		st := &stopper{stops: tc.stops, emit: func(s string) error { got = append(got, s); return nil }}
		stopped := false
		for _, p := range tc.pieces {
			if err := st.write(p); err == errStopString {
				stopped = true
				break
			} else if err != nil {
				t.Fatal(err)
			}
		}
		if !stopped {
			st.flush()
		}
		want := tc.want
		if strings.Join(got, "|") != strings.Join(want, "|") || stopped != tc.stop {
			t.Errorf("stops %q pieces %q: emitted %q (stopped %v), want %q (%v)", tc.stops, tc.pieces, got, stopped, want, tc.stop)
		}
	}
}

func TestValidUTF8(t *testing.T) {
	for in, want := range map[string]string{
		"abc": "abc", "a\xffb": "a\uFFFDb", "\xe2\x82": "\uFFFD\uFFFD", "é\xc3": "é\uFFFD", "€": "€",
	} {
		if got := validUTF8(in); got != want {
			t.Errorf("validUTF8(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestChat checks the chat endpoint's prompt: the plain fallback without a
// template, and a template's rendering tokenized without special tokens.
func TestChat(t *testing.T) {
	m := loadModel(t)
	_, ts := newTestServer(t, Config{})
	url := ts.URL + "/v1/chat/completions"
	msgs := `[{"role":"system","content":"You are terse."},{"role":"user","content":[{"type":"text","text":"Hi"},{"type":"text","text":"there"}]}]`
	a := complete(t, url, fmt.Sprintf(`{"model":%q,"messages":%s,"max_tokens":3,"temperature":0}`, model, msgs))
	ids, _ := m.Tok.Encode("system: You are terse.\nuser: Hi\nthere\nassistant:")
	if a.Usage.PromptTokens != len(ids) || a.Object != "chat.completion" || !strings.HasPrefix(a.ID, "chatcmpl-") {
		t.Errorf("fallback: %+v, want %d prompt tokens", a, len(ids))
	}
	res, _ := m.GenerateIDs(context.Background(), ids, dejavu.GenerateOptions{MaxTokens: 3})
	if a.text() != validUTF8(res.Text) {
		t.Errorf("fallback: %q, library %q", a.text(), res.Text)
	}

	ct, err := NewChatTemplate(`{% for m in messages %}{% if m.role == 'assistant' and loop.first %}{{ raise_exception('assistant first') }}{% endif %}<{{ m.role }}>{{ m.content | trim }}{{ eos_token }}{% endfor %}{% if add_generation_prompt %}<assistant>{% endif %}`, "<s>", "</s>")
	if err != nil {
		t.Fatal(err)
	}
	_, ts2 := newTestServer(t, Config{ChatTemplate: ct})
	url = ts2.URL + "/v1/chat/completions"
	a = complete(t, url, fmt.Sprintf(`{"model":%q,"messages":[{"role":"user","content":" Hello "}],"max_tokens":2}`, model))
	ids, _ = m.Tok.EncodeNoSpecial("<user>Hello</s><assistant>")
	if a.Usage.PromptTokens != len(ids) {
		t.Errorf("template: %d prompt tokens, want %d", a.Usage.PromptTokens, len(ids))
	}
	code, _, b := post(t, url, fmt.Sprintf(`{"model":%q,"messages":[{"role":"assistant","content":"x"}]}`, model))
	if e := apiErr(t, b); code != 400 || !strings.Contains(e.Message, "assistant first") || deref(e.Param) != "messages" {
		t.Errorf("raise_exception: %d %s", code, b)
	}
}

func apiErr(t testing.TB, b []byte) APIError {
	t.Helper()
	var e struct {
		Error *APIError `json:"error"`
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil || e.Error == nil || e.Error.Message == "" || e.Error.Type == "" {
		t.Fatalf("not an OpenAI error object: %s (%v)", b, err)
	}
	// param and code are present, null or not.
	var raw map[string]map[string]json.RawMessage
	json.Unmarshal(b, &raw)
	for _, k := range []string{"message", "type", "param", "code"} {
		if _, ok := raw["error"][k]; !ok {
			t.Errorf("error object without %q: %s", k, b)
		}
	}
	return *e.Error
}

// TestErrors sends bad requests: each gets the right 4xx and an OpenAI
// error object, and the server keeps working.
func TestErrors(t *testing.T) {
	_, ts := newTestServer(t, Config{Context: 64})
	comp, chat := ts.URL+"/v1/completions", ts.URL+"/v1/chat/completions"
	long := strings.Repeat("word ", 100)
	big := fmt.Sprintf(`{"model":%q,"prompt":%q}`, model, strings.Repeat("a", 1<<20))
	for _, tc := range []struct {
		name, url, body string
		status          int
		param, code     string
	}{
		{"malformed JSON", comp, `{"model":`, 400, "", "invalid_json"},
		{"not JSON", comp, `hello`, 400, "", "invalid_json"},
		{"empty body", comp, ``, 400, "", ""},
		{"array body", comp, `[1]`, 400, "", "invalid_json"},
		{"trailing garbage", comp, `{"model":"x"} x`, 400, "", "invalid_json"},
		{"max_tokens string", comp, `{"model":"` + model + `","prompt":"a","max_tokens":"5"}`, 400, "max_tokens", "invalid_type"},
		{"max_tokens float", comp, `{"model":"` + model + `","prompt":"a","max_tokens":1.5}`, 400, "max_tokens", "invalid_type"},
		{"temperature string", comp, `{"model":"` + model + `","prompt":"a","temperature":"hot"}`, 400, "temperature", "invalid_type"},
		{"stream string", comp, `{"model":"` + model + `","prompt":"a","stream":"yes"}`, 400, "stream", "invalid_type"},
		{"model number", comp, `{"model":5,"prompt":"a"}`, 400, "model", "invalid_type"},
		{"prompt object", comp, `{"model":"` + model + `","prompt":{"a":1}}`, 400, "prompt", "invalid_type"},
		{"prompt missing", comp, `{"model":"` + model + `"}`, 400, "prompt", "missing_required_parameter"},
		{"two prompts", comp, `{"model":"` + model + `","prompt":["a","b"]}`, 400, "prompt", "invalid_value"},
		{"token id out of range", comp, `{"model":"` + model + `","prompt":[1,99999999]}`, 400, "prompt", "invalid_value"},
		{"model missing", comp, `{"prompt":"a"}`, 400, "model", "missing_required_parameter"},
		{"unknown model", comp, `{"model":"gpt-4","prompt":"a"}`, 404, "model", "model_not_found"},
		{"unknown model chat", chat, `{"model":"gpt-4","messages":[{"role":"user","content":"a"}]}`, 404, "model", "model_not_found"},
		{"prompt too long", comp, `{"model":"` + model + `","prompt":"` + long + `"}`, 400, "prompt", "context_length_exceeded"},
		{"messages too long", chat, `{"model":"` + model + `","messages":[{"role":"user","content":"` + long + `"}]}`, 400, "messages", "context_length_exceeded"},
		{"prompt + max_tokens too long", comp, `{"model":"` + model + `","prompt":"Hello there","max_tokens":63}`, 400, "max_tokens", "context_length_exceeded"},
		{"max_tokens 0", comp, `{"model":"` + model + `","prompt":"a","max_tokens":0}`, 400, "max_tokens", "invalid_value"},
		{"max_tokens negative", comp, `{"model":"` + model + `","prompt":"a","max_tokens":-3}`, 400, "max_tokens", "invalid_value"},
		{"max_tokens huge", chat, `{"model":"` + model + `","messages":[{"role":"user","content":"a"}],"max_tokens":1000000}`, 400, "max_tokens", "invalid_value"},
		{"max_tokens overflow", comp, `{"model":"` + model + `","prompt":"a","max_tokens":1e30}`, 400, "max_tokens", "invalid_type"},
		{"n 2", comp, `{"model":"` + model + `","prompt":"a","n":2}`, 400, "n", "invalid_value"},
		{"n 0 chat", chat, `{"model":"` + model + `","messages":[{"role":"user","content":"a"}],"n":0}`, 400, "n", "invalid_value"},
		{"temperature 3", comp, `{"model":"` + model + `","prompt":"a","temperature":3}`, 400, "temperature", "invalid_value"},
		{"temperature negative", comp, `{"model":"` + model + `","prompt":"a","temperature":-0.5}`, 400, "temperature", "invalid_value"},
		{"top_p 1.5", comp, `{"model":"` + model + `","prompt":"a","top_p":1.5}`, 400, "top_p", "invalid_value"},
		{"top_k negative", comp, `{"model":"` + model + `","prompt":"a","top_k":-1}`, 400, "top_k", "invalid_value"},
		{"stop number", comp, `{"model":"` + model + `","prompt":"a","stop":5}`, 400, "stop", "invalid_type"},
		{"five stops", comp, `{"model":"` + model + `","prompt":"a","stop":["a","b","c","d","e"]}`, 400, "stop", "invalid_value"},
		{"stream_options without stream", comp, `{"model":"` + model + `","prompt":"a","stream_options":{"include_usage":true}}`, 400, "stream_options", "invalid_value"},
		{"logprobs", comp, `{"model":"` + model + `","prompt":"a","logprobs":3}`, 400, "logprobs", "unsupported_parameter"},
		{"echo", comp, `{"model":"` + model + `","prompt":"a","echo":true}`, 400, "echo", "unsupported_parameter"},
		{"messages missing", chat, `{"model":"` + model + `"}`, 400, "messages", "invalid_value"},
		{"messages empty", chat, `{"model":"` + model + `","messages":[]}`, 400, "messages", "invalid_value"},
		{"messages string", chat, `{"model":"` + model + `","messages":"hi"}`, 400, "messages", "invalid_type"},
		{"message number", chat, `{"model":"` + model + `","messages":[1]}`, 400, "messages", "invalid_type"},
		{"bad role", chat, `{"model":"` + model + `","messages":[{"role":"wizard","content":"a"}]}`, 400, "messages[0].role", "invalid_value"},
		{"no role", chat, `{"model":"` + model + `","messages":[{"content":"a"}]}`, 400, "messages[0].role", "missing_required_parameter"},
		{"no content", chat, `{"model":"` + model + `","messages":[{"role":"user"}]}`, 400, "messages[0].content", "missing_required_parameter"},
		{"content number", chat, `{"model":"` + model + `","messages":[{"role":"user","content":7}]}`, 400, "messages[0].content", "invalid_type"},
		{"image part", chat, `{"model":"` + model + `","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"x"}}]}]}`, 400, "messages[0].content[0]", "unsupported_parameter"},
		{"tools", chat, `{"model":"` + model + `","messages":[{"role":"user","content":"a"}],"tools":[{"type":"function"}]}`, 400, "tools", "unsupported_parameter"},
		{"invalid UTF-8", comp, "{\"model\":\"" + model + "\",\"prompt\":\"\xff\xfe\"}", 400, "", "invalid_encoding"},
		{"invalid UTF-8 chat", chat, "{\"model\":\"" + model + "\",\"messages\":[{\"role\":\"user\",\"content\":\"a\xc3\"}]}", 400, "", "invalid_encoding"},
		{"oversized body", comp, big, 413, "", "request_too_large"},
	} {
		code, _, b := post(t, tc.url, tc.body)
		if code != tc.status {
			t.Errorf("%s: status %d, want %d: %s", tc.name, code, tc.status, b)
			continue
		}
		e := apiErr(t, b)
		if deref(e.Param) != tc.param || (tc.code != "" && deref(e.Code) != tc.code) {
			t.Errorf("%s: param %q code %q, want %q %q: %s", tc.name, deref(e.Param), deref(e.Code), tc.param, tc.code, b)
		}
		if e.Type != typeInvalidRequest && e.Type != typeNotFound {
			t.Errorf("%s: type %q", tc.name, e.Type)
		}
	}
	// Wrong methods and paths.
	for _, tc := range []struct {
		method, path string
		status       int
	}{
		{"GET", "/v1/completions", 405}, {"POST", "/v1/models", 405}, {"DELETE", "/health", 405},
		{"GET", "/v1/nothing", 404}, {"POST", "/", 404},
	} {
		req, _ := http.NewRequest(tc.method, ts.URL+tc.path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status {
			t.Errorf("%s %s: %d, want %d", tc.method, tc.path, resp.StatusCode, tc.status)
		}
		apiErr(t, b)
	}
	// Still serving.
	a := complete(t, comp, `{"model":"`+model+`","prompt":"Hello","max_tokens":2,"stop":null,"seed":-5,"n":1,"logprobs":null}`)
	if a.Usage.CompletionTokens == 0 {
		t.Errorf("no tokens after the errors: %+v", a)
	}
}
