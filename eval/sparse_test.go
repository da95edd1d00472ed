package eval

import (
	"math"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"dejavu/kernels"
	"dejavu/model"
	"dejavu/sparsity"
)

// allSelector computes every neuron and head: the sparse decode path at
// density 1.
type allSelector struct{ ffn, heads int }

func (a allSelector) MLP(l int, x []float32, dst []int32) []int32 {
	for i := 0; i < a.ffn; i++ {
		dst = append(dst, int32(i))
	}
	return dst
}

func (a allSelector) Heads(l int, x []float32, dst []int32) []int32 {
	for i := 0; i < a.heads; i++ {
		dst = append(dst, int32(i))
	}
	return dst
}

// tinyPredictors trains DejaVu predictors for the tiny model m on random
// ids (as the sparsity tests do) in a few seconds.
func tinyPredictors(t *testing.T, m *model.Model, pool *kernels.Pool) *sparsity.Predictors {
	t.Helper()
	rng := rand.New(rand.NewPCG(1, 1))
	docs := make([][]int, 12)
	for i := range docs {
		for j := 0; j < 90; j++ {
			docs[i] = append(docs[i], 3+rng.IntN(m.Cfg.Vocab-3))
		}
	}
	data := filepath.Join(t.TempDir(), "act")
	if _, err := sparsity.Collect(m, pool, docs, data, sparsity.CollectOptions{Window: 32, BOS: m.Cfg.BOS}); err != nil {
		t.Fatal(err)
	}
	ds, err := sparsity.OpenDataset(data)
	if err != nil {
		t.Fatal(err)
	}
	p, err := sparsity.Train(m, pool, ds, sparsity.TrainOptions{Rank: 8, Epochs: 2, Batch: 64})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func loadTinyModel(t *testing.T, name string) (*model.Model, *kernels.Pool) {
	t.Helper()
	m, err := model.Load(filepath.Join("..", "testdata", "models", name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	pool := kernels.NewPool(2)
	t.Cleanup(pool.Close)
	m.PrepareSparse()
	return m, pool
}

// TestDecodeModeMatchesPromptMode: feeding tokens one at a time, densely
// or through the sparse path with a selector that computes everything,
// gives the prompt-mode perplexity within 1e-4 relative.
func TestDecodeModeMatchesPromptMode(t *testing.T) {
	f, _ := loadFixture(t, "opt-preln")
	m, pool := loadTinyModel(t, "opt-preln")
	for _, p := range []Protocol{Windows, LlamaCpp} {
		o := PerplexityOptions{Ctx: f.Ctx, Protocol: p, BOS: f.BOS}
		prompt, err := Perplexity(m.NewSession(pool, 0), f.IDs, o)
		if err != nil {
			t.Fatal(err)
		}
		o.Decode = true
		dense, err := Perplexity(m.NewSession(pool, 0), f.IDs, o)
		if err != nil {
			t.Fatal(err)
		}
		s := m.NewSession(pool, 0)
		s.SetSelector(allSelector{m.Cfg.FFN, m.Cfg.Heads})
		full, err := Perplexity(s, f.IDs, o)
		if err != nil {
			t.Fatal(err)
		}
		d := s.Density()
		if d.Tokens != full.Windows*(f.Ctx-1) || d.MLP() != 1 || d.Heads() != 1 {
			t.Errorf("%s: density %+v after %d windows: the decode steps did not all go through the sparse path", p, d, full.Windows)
		}
		for what, r := range map[string]Result{"dense decode": dense, "sparse decode at density 1": full} {
			if r.Tokens != prompt.Tokens || relDiff(r.Perplexity, prompt.Perplexity) > 1e-4 {
				t.Errorf("%s %s: perplexity %.6f over %d tokens, prompt mode %.6f over %d", p, what, r.Perplexity, r.Tokens, prompt.Perplexity, prompt.Tokens)
			}
		}
	}
}

// TestSparsePerplexity: with trained predictors the decode-mode perplexity
// is computed at the selected densities and differs from dense; with
// MaxTokens only the first tokens count.
func TestSparsePerplexity(t *testing.T) {
	f, _ := loadFixture(t, "opt-preln")
	m, pool := loadTinyModel(t, "opt-preln")
	pred := tinyPredictors(t, m, pool)
	if err := pred.SetSelection(sparsity.Selection{MLPDensity: 0.25, HeadDensity: 0.5}); err != nil {
		t.Fatal(err)
	}
	o := PerplexityOptions{Ctx: f.Ctx, BOS: f.BOS, Decode: true, MaxTokens: 2*f.Ctx + 5}
	dense, err := Perplexity(m.NewSession(pool, 0), f.IDs, o)
	if err != nil {
		t.Fatal(err)
	}
	if dense.Windows != 2 {
		t.Errorf("MaxTokens %d with ctx %d: %d windows, want 2", o.MaxTokens, f.Ctx, dense.Windows)
	}
	s := m.NewSession(pool, 0)
	s.SetSelector(pred)
	sparse, err := Perplexity(s, f.IDs, o)
	if err != nil {
		t.Fatal(err)
	}
	d := s.Density()
	if d.MLP() >= 1 || d.Heads() >= 1 || d.Tokens != sparse.Tokens {
		t.Errorf("density %+v (mlp %.3f, heads %.3f), want < 1 over %d steps", d, d.MLP(), d.Heads(), sparse.Tokens)
	}
	if sparse.Perplexity == dense.Perplexity || math.IsNaN(sparse.Perplexity) {
		t.Errorf("sparse perplexity %.6f, dense %.6f: want a different finite value", sparse.Perplexity, dense.Perplexity)
	}
	t.Logf("dense %.4f, sparse %.4f at mlp %.3f heads %.3f", dense.Perplexity, sparse.Perplexity, d.MLP(), d.Heads())

	// Masked batches (prompt mode) compute the same selection.
	mb := m.NewSession(pool, 0)
	mb.SetSelector(pred.Clone())
	mb.SetSparseBatches(true)
	po := o
	po.Decode = false
	masked, err := Perplexity(mb, f.IDs, po)
	if err != nil {
		t.Fatal(err)
	}
	if relDiff(masked.Perplexity, sparse.Perplexity) > 1e-5 || mb.Density() != d {
		t.Errorf("masked batches: perplexity %.6f density %+v; decode mode %.6f %+v", masked.Perplexity, mb.Density(), sparse.Perplexity, d)
	}

	// Compare: identical sessions agree exactly; the sparse one does not.
	ref := m.NewSession(pool, 0)
	same := m.NewSession(pool, 0)
	full := m.NewSession(pool, 0)
	full.SetSelector(allSelector{m.Cfg.FFN, m.Cfg.Heads})
	sp := m.NewSession(pool, 0)
	sp.SetSelector(pred.Clone())
	rs, err := CompareMany(ref, []Session{same, full, sp}, f.IDs, o)
	if err != nil {
		t.Fatal(err)
	}
	if r := rs[0]; r.KLMean != 0 || r.KLP99 != 0 || r.KLMax != 0 || r.Top1Agreement != 1 || r.Test.Perplexity != r.Ref.Perplexity {
		t.Errorf("dense vs dense: %+v, want KL 0 and agreement 1", r)
	}
	if r := rs[1]; r.KLMax > 1e-6 || r.Top1Agreement != 1 {
		t.Errorf("dense vs sparse path at density 1: %+v, want KL ≈ 0 and agreement 1", r)
	}
	r := rs[2]
	if r.KLMean <= 0 || r.KLMax < r.KLP99 || r.Top1Agreement > 1 || r.Tokens != sparse.Tokens {
		t.Errorf("dense vs sparse: %+v", r)
	}
	if relDiff(r.Test.Perplexity, sparse.Perplexity) > 1e-9 || relDiff(r.Ref.Perplexity, dense.Perplexity) > 1e-9 {
		t.Errorf("compare's perplexities %.6f / %.6f differ from Perplexity's %.6f / %.6f", r.Ref.Perplexity, r.Test.Perplexity, dense.Perplexity, sparse.Perplexity)
	}
	t.Logf("compare: KL mean %.4g p99 %.4g, agreement %.3f", r.KLMean, r.KLP99, r.Top1Agreement)
}

// TestDecodeScorerMatchesTransformers: decode-mode log-likelihoods match
// the reference like prompt-mode ones.
func TestDecodeScorerMatchesTransformers(t *testing.T) {
	f, s := loadFixture(t, "opt-preln")
	sc := NewScorer(s)
	sc.Decode = true
	for i, c := range f.LogLik {
		ll, greedy, err := sc.LogLikelihood(c.Context, c.Continuation)
		if err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		if math.Abs(ll-c.LogLik) > 1e-4 || greedy != c.Greedy {
			t.Errorf("case %d (decode): loglik %.6f greedy %v, transformers %.6f %v", i, ll, greedy, c.LogLik, c.Greedy)
		}
	}
}
