package server

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzRequests feeds arbitrary bodies to the request parsing and
// validation of both endpoints (without generating): each is accepted or
// refused with an *APIError of status 4xx, and nothing panics.
func FuzzRequests(f *testing.F) {
	for _, seed := range []string{
		`{"model":"testbed-opt-relu","prompt":"Hello","max_tokens":4}`,
		`{"model":"testbed-opt-relu","prompt":[1,2,3],"stop":["a","b"],"temperature":0.5,"top_p":0.9,"seed":-1}`,
		`{"model":"testbed-opt-relu","prompt":[[5,6]],"stream":true,"stream_options":{"include_usage":true}}`,
		`{"model":"testbed-opt-relu","messages":[{"role":"user","content":"hi"}],"n":1}`,
		`{"model":"testbed-opt-relu","messages":[{"role":"developer","content":[{"type":"text","text":"x"}]},{"role":"assistant","content":null}]}`,
		`{"model":"testbed-opt-relu","messages":[{"role":"user","content":7}]}`,
		`{"model":"x"}`, `[]`, `null`, `"str"`, `{"prompt":`, "\xff", `{"max_tokens":1e400}`,
		`{"model":"testbed-opt-relu","prompt":"\ud800"}`,
	} {
		f.Add(seed)
	}
	m := loadModel(f)
	s, err := New(m, Config{ModelPath: testModelPath, Context: 128, Logger: testLogger(f)})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body string) {
		check := func(err error) {
			if err == nil {
				return
			}
			var ae *APIError
			if !errors.As(err, &ae) || ae.Status < 400 || ae.Status > 499 || ae.Message == "" || ae.Type == "" {
				t.Fatalf("body %q: error %#v", body, err)
			}
		}
		for _, chat := range []bool{false, true} {
			r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
			w := httptest.NewRecorder()
			j := &job{}
			var err error
			if chat {
				var req chatRequest
				if err = s.readJSON(w, r, &req); err == nil {
					err = s.chatJob(&req, j)
				}
			} else {
				var req completionRequest
				if err = s.readJSON(w, r, &req); err == nil {
					err = s.completionJob(&req, j)
				}
			}
			check(err)
			if err == nil && len(j.ids) > 0 && (j.maxTokens < 1 || len(j.ids)+j.maxTokens > s.ctxMax) {
				t.Fatalf("body %q: accepted with %d prompt tokens and max_tokens %d (context %d)", body, len(j.ids), j.maxTokens, s.ctxMax)
			}
		}
	})
}
