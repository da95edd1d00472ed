package server

import (
	"fmt"
	"strings"
	"testing"

	"dejavu"
)

// everyOther computes every other MLP neuron and all heads.
type everyOther struct{ ffn, heads int }

func (e everyOther) MLP(_ int, _ []float32, dst []int32) []int32 {
	for i := 0; i < e.ffn; i += 2 {
		dst = append(dst, int32(i))
	}
	return dst
}

func (e everyOther) Heads(_ int, _ []float32, dst []int32) []int32 {
	for i := 0; i < e.heads; i++ {
		dst = append(dst, int32(i))
	}
	return dst
}

// TestSparseServing: with a selector the server decodes sparsely and
// /metrics reports the density actually used.
func TestSparseServing(t *testing.T) {
	m := loadModel(t)
	calls := 0
	_, ts := newTestServer(t, Config{NewSelector: func() dejavu.Selector {
		calls++
		return everyOther{m.Cfg.FFN, m.Cfg.Heads}
	}})
	a := complete(t, ts.URL+"/v1/completions", fmt.Sprintf(`{"model":%q,"prompt":"Once upon a time","max_tokens":4,"temperature":0}`, model))
	if a.Usage.CompletionTokens != 4 || calls != 1 {
		t.Fatalf("usage %+v, selector made %d times", a.Usage, calls)
	}
	_, b := get(t, ts.URL+"/metrics")
	if !strings.Contains(string(b), `dejavu_sparsity_density{kind="mlp"} 0.5`) {
		t.Errorf("metrics do not report MLP density 0.5:\n%s", grepLines(string(b), "dejavu_sparsity_density"))
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
