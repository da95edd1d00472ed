package eval

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"dejavu/kernels"
	"dejavu/model"
)

// fixture is what testdata/gen/gen_eval.py writes for a tiny model.
type fixture struct {
	Model    string `json:"model"`
	Ctx      int    `json:"ctx"`
	BOS      int    `json:"bos"`
	IDs      []int  `json:"ids"`
	Windows  refPPL `json:"windows"`
	LlamaCpp refPPL `json:"llamacpp"`
	LogLik   []struct {
		Context      []int   `json:"context"`
		Continuation []int   `json:"continuation"`
		LogLik       float64 `json:"loglik"`
		Greedy       bool    `json:"greedy"`
	} `json:"loglik"`
}

type refPPL struct {
	Perplexity float64 `json:"perplexity"`
	StdErr     float64 `json:"stderr"`
	NLL        float64 `json:"nll"`
	Tokens     int     `json:"tokens"`
}

var fixtureModels = []string{"llama-silu", "opt-preln"}

// loadFixture opens a tiny model and its reference numbers.
func loadFixture(t *testing.T, name string) (*fixture, *model.Session) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "testdata", "eval", name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var f fixture
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	m, err := model.Load(filepath.Join("..", "testdata", "models", name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	pool := kernels.NewPool(0)
	t.Cleanup(pool.Close)
	return &f, m.NewSession(pool, 0)
}

func relDiff(got, want float64) float64 { return math.Abs(got-want) / math.Abs(want) }

// TestPerplexityMatchesTransformers checks both protocols against
// transformers (float64) within 0.1% relative.
func TestPerplexityMatchesTransformers(t *testing.T) {
	for _, name := range fixtureModels {
		f, s := loadFixture(t, name)
		for _, c := range []struct {
			p   Protocol
			ref refPPL
		}{{Windows, f.Windows}, {LlamaCpp, f.LlamaCpp}} {
			calls := 0
			res, err := Perplexity(s, f.IDs, PerplexityOptions{Ctx: f.Ctx, Protocol: c.p, BOS: f.BOS,
				Progress: func(done, total int) { calls++ }})
			if err != nil {
				t.Fatalf("%s %s: %v", name, c.p, err)
			}
			if res.Tokens != c.ref.Tokens {
				t.Errorf("%s %s: %d tokens scored, transformers %d", name, c.p, res.Tokens, c.ref.Tokens)
			}
			if calls != res.Windows || res.Windows != len(f.IDs)/f.Ctx {
				t.Errorf("%s %s: %d progress calls, %d windows", name, c.p, calls, res.Windows)
			}
			if d := relDiff(res.Perplexity, c.ref.Perplexity); d > 1e-3 {
				t.Errorf("%s %s: perplexity %.6f, transformers %.6f (rel %.2g)", name, c.p, res.Perplexity, c.ref.Perplexity, d)
			}
			if d := relDiff(res.StdErr, c.ref.StdErr); d > 1e-3 {
				t.Errorf("%s %s: stderr %.6f, transformers %.6f (rel %.2g)", name, c.p, res.StdErr, c.ref.StdErr, d)
			}
			t.Logf("%s %s: ppl %.6f (transformers %.6f) ± %.4f over %d tokens", name, c.p, res.Perplexity, c.ref.Perplexity, res.StdErr, res.Tokens)
		}
	}
}

// TestLogLikelihoodMatchesTransformers checks summed log-likelihoods within
// 1e-4 and the greedy flag, both from an empty cache and through one Scorer
// that reuses the cache across consecutive cases.
func TestLogLikelihoodMatchesTransformers(t *testing.T) {
	for _, name := range fixtureModels {
		f, s := loadFixture(t, name)
		sc := NewScorer(s)
		for i, c := range f.LogLik {
			ll, greedy, err := sc.LogLikelihood(c.Context, c.Continuation)
			if err != nil {
				t.Fatalf("%s case %d: %v", name, i, err)
			}
			if math.Abs(ll-c.LogLik) > 1e-4 || greedy != c.Greedy {
				t.Errorf("%s case %d (scorer): loglik %.6f greedy %v, transformers %.6f %v", name, i, ll, greedy, c.LogLik, c.Greedy)
			}
		}
		// Once more in reverse order, so the cache holds other prefixes.
		for i := len(f.LogLik) - 1; i >= 0; i-- {
			c := f.LogLik[i]
			ll, greedy, err := sc.LogLikelihood(c.Context, c.Continuation)
			if err != nil {
				t.Fatalf("%s case %d: %v", name, i, err)
			}
			if math.Abs(ll-c.LogLik) > 1e-4 || greedy != c.Greedy {
				t.Errorf("%s case %d (scorer, reversed): loglik %.6f greedy %v, transformers %.6f %v", name, i, ll, greedy, c.LogLik, c.Greedy)
			}
		}
		for i, c := range f.LogLik {
			ll, greedy, err := LogLikelihood(s, c.Context, c.Continuation)
			if err != nil {
				t.Fatalf("%s case %d: %v", name, i, err)
			}
			if math.Abs(ll-c.LogLik) > 1e-4 || greedy != c.Greedy {
				t.Errorf("%s case %d: loglik %.6f greedy %v, transformers %.6f %v", name, i, ll, greedy, c.LogLik, c.Greedy)
			}
		}
	}
}

// TestScorerLeftTruncation: a context too long for the session loses its
// first tokens, as the harness truncates from the left.
func TestScorerLeftTruncation(t *testing.T) {
	f, s := loadFixture(t, "llama-silu")
	ctx, cont := f.IDs[:70], f.IDs[70:75] // 70 + 5 - 1 = 74 fed > 64
	got, g1, err := LogLikelihood(s, ctx, cont)
	if err != nil {
		t.Fatal(err)
	}
	want, g2, err := LogLikelihood(s, ctx[10:], cont)
	if err != nil {
		t.Fatal(err)
	}
	if got != want || g1 != g2 {
		t.Errorf("truncated loglik %v %v, explicit %v %v", got, g1, want, g2)
	}
	if _, _, err := LogLikelihood(s, ctx[:2], f.IDs[:70]); err == nil || !strings.Contains(err.Error(), "does not fit") {
		t.Errorf("continuation longer than the context: err %v", err)
	}
	if _, _, err := LogLikelihood(s, nil, cont); err == nil {
		t.Error("empty context: no error")
	}
	if _, _, err := LogLikelihood(s, ctx[:3], nil); err == nil {
		t.Error("empty continuation: no error")
	}
}

// TestPerplexityErrors: too few tokens and bad options give clear errors.
func TestPerplexityErrors(t *testing.T) {
	f, s := loadFixture(t, "opt-preln")
	for _, c := range []struct {
		ids  []int
		o    PerplexityOptions
		want string
	}{
		{f.IDs[:63], PerplexityOptions{Ctx: 64}, "63 tokens are fewer than one window of 64 tokens"},
		{f.IDs[:127], PerplexityOptions{Ctx: 64, Protocol: LlamaCpp, BOS: 2}, "needs at least 2×ctx = 128 tokens"},
		{f.IDs, PerplexityOptions{Ctx: 65}, "exceeds the model's context of 64 tokens"},
		{f.IDs, PerplexityOptions{Ctx: 1}, "at least 2 tokens"},
		{f.IDs, PerplexityOptions{Ctx: 16, Protocol: "sliding"}, `unknown perplexity protocol "sliding"`},
	} {
		_, err := Perplexity(s, c.ids, c.o)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%d ids, %+v: err %v, want %q", len(c.ids), c.o, err, c.want)
		}
	}
	// Exactly one window is enough for the windows protocol.
	res, err := Perplexity(s, f.IDs[:64], PerplexityOptions{Ctx: 64})
	if err != nil || res.Tokens != 63 || res.Windows != 1 {
		t.Errorf("one window: %+v, %v", res, err)
	}
	if _, err := ParseProtocol("llamacpp"); err != nil {
		t.Error(err)
	}
}

// TestStats checks llama.cpp's standard error on a hand example.
func TestStats(t *testing.T) {
	nlls := []float64{1, 2, 3, 4}
	var s, s2 float64
	for _, v := range nlls {
		s, s2 = s+v, s2+v*v
	}
	nll, ppl, se := stats(s, s2, len(nlls))
	// mean 2.5, var = 7.5 - 6.25 = 1.25, stderr = e^2.5 · sqrt(1.25/3)
	if nll != 2.5 || math.Abs(ppl-math.Exp(2.5)) > 1e-12 || math.Abs(se-math.Exp(2.5)*math.Sqrt(1.25/3)) > 1e-12 {
		t.Errorf("stats: %v %v %v", nll, ppl, se)
	}
}
