package sparsity

import (
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"dejavu/kernels"
	"dejavu/model"
)

func loadTiny(t *testing.T, name string) *model.Model {
	t.Helper()
	m, err := model.Load(filepath.Join("..", "testdata", "models", name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func randomDocs(m *model.Model, docs, n int, seed uint64) [][]int {
	rng := rand.New(rand.NewPCG(seed, 1))
	out := make([][]int, docs)
	for i := range out {
		for j := 0; j < n; j++ {
			out[i] = append(out[i], 3+rng.IntN(m.Cfg.Vocab-3))
		}
	}
	return out
}

// collectTrain records random-id activations of m and trains predictors.
func collectTrain(t *testing.T, m *model.Model, pool *kernels.Pool, dir string) (*Dataset, *Predictors) {
	t.Helper()
	data := filepath.Join(dir, "act")
	man, err := Collect(m, pool, randomDocs(m, 12, 90, 1), data, CollectOptions{Window: 32, BOS: m.Cfg.BOS})
	if err != nil {
		t.Fatal(err)
	}
	if man.Tokens != 12*90 {
		t.Fatalf("recorded %d tokens, want %d", man.Tokens, 12*90)
	}
	ds, err := OpenDataset(data)
	if err != nil {
		t.Fatal(err)
	}
	p, err := Train(m, pool, ds, TrainOptions{Rank: 8, Epochs: 2, Batch: 64})
	if err != nil {
		t.Fatal(err)
	}
	return ds, p
}

func TestCollectTrainLoadRoundTrip(t *testing.T) {
	pool := kernels.NewPool(2)
	defer pool.Close()
	for _, name := range []string{"opt-preln", "llama-relu-sharded"} {
		t.Run(name, func(t *testing.T) {
			m := loadTiny(t, name)
			dir := t.TempDir()
			_, p := collectTrain(t, m, pool, dir)
			c := m.Cfg
			if len(p.Info.Stats) != c.Layers {
				t.Fatalf("%d layer stats, want %d", len(p.Info.Stats), c.Layers)
			}
			for _, s := range p.Info.Stats {
				if s.Recall < 0.99 || s.Budget%8 != 0 || s.Budget > c.FFN || s.TrueDensity <= 0 {
					t.Errorf("layer %d: %+v", s.Layer, s)
				}
			}
			path := filepath.Join(dir, DefaultFileName)
			if err := p.Save(path); err != nil {
				t.Fatal(err)
			}
			q, err := Load(path, m)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(q.mlpK, p.mlpK) || !slices.Equal(q.headK, p.headK) {
				t.Errorf("budgets after load %v %v, want %v %v", q.mlpK, q.headK, p.mlpK, p.headK)
			}
			rng := rand.New(rand.NewPCG(3, 4))
			x := make([]float32, c.Hidden)
			// The default (calibrated thresholds: any count) and the
			// calibrated budgets (exactly mlpK neurons).
			for _, budgets := range []bool{false, true} {
				for _, pr := range []*Predictors{p, q} {
					if err := pr.SetSelection(Selection{Budgets: budgets}); err != nil {
						t.Fatal(err)
					}
				}
				for l := 0; l < c.Layers; l++ {
					for i := range x {
						x[i] = float32(rng.NormFloat64())
					}
					a := p.MLP(l, x, nil)
					b := q.MLP(l, x, nil)
					if !slices.Equal(a, b) || budgets && len(a) != p.mlpK[l] || !slices.IsSorted(a) {
						t.Errorf("budgets %v, layer %d: selections differ after load or are malformed: %v vs %v", budgets, l, a, b)
					}
					if l+1 < c.Layers {
						if ha, hb := p.Heads(l, x, nil), q.Heads(l, x, nil); !slices.Equal(ha, hb) || len(ha) != p.headK[l] {
							t.Errorf("layer %d heads: %v vs %v", l, ha, hb)
						}
					}
				}
			}
			// Selection is allocation-free.
			dst := make([]int32, 0, c.FFN)
			if n := testing.AllocsPerRun(20, func() { dst = q.MLP(0, x, dst[:0]); dst = q.Heads(0, x, dst[:0]) }); n != 0 {
				t.Errorf("selection allocates %v times per call", n)
			}
		})
	}
}

// TestSparsityIsApplied fails if decoding with predictors silently stopped
// being sparse: the reported density must be the selected one (< 1) and
// the logits must move away from dense.
func TestSparsityIsApplied(t *testing.T) {
	pool := kernels.NewPool(2)
	defer pool.Close()
	m := loadTiny(t, "opt-preln")
	_, p := collectTrain(t, m, pool, t.TempDir())
	if err := p.SetSelection(Selection{MLPDensity: 0.25, HeadDensity: 0.5}); err != nil {
		t.Fatal(err)
	}
	m.PrepareSparse()
	ids := randomDocs(m, 1, 20, 9)[0]
	a, err := TopOneAgreement(m, pool, p, ids[:4], 16)
	if err != nil {
		t.Fatal(err)
	}
	c := m.Cfg
	d := a.Density
	wantHeads := (float64(c.Heads) + float64(c.Layers-1)*float64(c.Heads/2)) / float64(c.Heads*c.Layers)
	if d.Tokens != 15 || d.MLP() != 0.25 || d.Heads() != wantHeads {
		t.Fatalf("density %+v (mlp %v heads %v), want 15 steps at mlp 0.25, heads %v", d, d.MLP(), d.Heads(), wantHeads)
	}
	// The logits of a sparse step differ from dense.
	dense := m.NewSession(pool, 0)
	sparse := m.NewSession(pool, 0)
	dense.Forward(ids[:4], false)
	sparse.Forward(ids[:4], false)
	sparse.SetSelector(p)
	ld, _ := dense.Forward(ids[4:5], false)
	ld = slices.Clone(ld)
	ls, _ := sparse.Forward(ids[4:5], false)
	if slices.Equal(ld, ls) {
		t.Fatal("sparse decode step gave the dense logits: sparsity is not applied")
	}
}

func TestRefusals(t *testing.T) {
	pool := kernels.NewPool(2)
	defer pool.Close()
	m := loadTiny(t, "opt-preln")
	other := loadTiny(t, "llama-relu-sharded")
	dir := t.TempDir()
	ds, p := collectTrain(t, m, pool, dir)
	path := filepath.Join(dir, DefaultFileName)
	if err := p.Save(path); err != nil {
		t.Fatal(err)
	}
	expect := func(what string, err error, sub string) {
		t.Helper()
		if err == nil || !strings.Contains(err.Error(), sub) {
			t.Errorf("%s: error %v, want one mentioning %q", what, err, sub)
		}
	}
	// Predictors for another model.
	_, err := Load(path, other)
	expect("other model", err, "another model")
	// Activations of another model.
	_, err = Train(other, pool, ds, TrainOptions{Rank: 8, Epochs: 1})
	expect("train on other model's data", err, "another model")
	// A flipped byte in the weights.
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	bad := slices.Clone(b)
	bad[len(bad)-3] ^= 0x40
	badPath := filepath.Join(dir, "bad.safetensors")
	os.WriteFile(badPath, bad, 0o644)
	_, err = Load(badPath, m)
	expect("corrupted", err, "damaged")
	// A truncated file.
	os.WriteFile(badPath, b[:len(b)/2], 0o644)
	_, err = Load(badPath, m)
	expect("truncated", err, "damaged")
	// Not a predictors file at all.
	_, err = Load(filepath.Join("..", "testdata", "models", "opt-preln", "model.safetensors"), m)
	expect("model file", err, "not a predictors file")

	// A dataset whose part is damaged, or whose manifest is missing.
	part := filepath.Join(ds.Dir, "l00.act.bits")
	pb, _ := os.ReadFile(part)
	pb[0] ^= 1
	os.WriteFile(part, pb, 0o644)
	_, err = OpenDataset(ds.Dir)
	expect("damaged part", err, "SHA-256")
	os.Remove(filepath.Join(ds.Dir, ManifestName))
	_, err = OpenDataset(ds.Dir)
	expect("no manifest", err, "interrupted")
	// Collect never replaces a directory that is not a dataset.
	notData := filepath.Join(dir, "notdata")
	os.MkdirAll(notData, 0o755)
	os.WriteFile(filepath.Join(notData, "x"), []byte("keep"), 0o644)
	_, err = Collect(m, pool, randomDocs(m, 1, 10, 1), notData, CollectOptions{BOS: -1})
	expect("replace foreign dir", err, "refusing")
	if _, serr := os.Stat(filepath.Join(notData, "x")); serr != nil {
		t.Error("collect touched a foreign directory")
	}
	if !errors.Is(nil, nil) {
		t.Fatal()
	}
}

func TestTopK(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for trial := 0; trial < 200; trial++ {
		n := 1 + rng.IntN(300)
		z := make([]float32, n)
		for i := range z {
			z[i] = float32(rng.IntN(20)) // many ties
		}
		k := rng.IntN(n + 2)
		got := topK(z, k, make([]float32, n), nil)
		idx := make([]int32, n)
		for i := range idx {
			idx[i] = int32(i)
		}
		slices.SortStableFunc(idx, func(a, b int32) int {
			switch {
			case z[a] > z[b]:
				return -1
			case z[a] < z[b]:
				return 1
			}
			return 0
		})
		want := slices.Clone(idx[:min(k, n)])
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Fatalf("n=%d k=%d: got %v want %v", n, k, got, want)
		}
	}
}

// TestMassBudgets: mass-calibrated budgets grow with the target and stay
// within bounds. (The decode-mode evaluation of selections is tested in
// package eval: TestRunSweep.)
func TestMassBudgets(t *testing.T) {
	pool := kernels.NewPool(2)
	defer pool.Close()
	m := loadTiny(t, "opt-preln")
	_, p := collectTrain(t, m, pool, t.TempDir())
	// Mass-calibrated budgets grow with the target and stay within bounds.
	var prev []int
	for _, mass := range []float64{0.5, 0.9, 0.99, 1} {
		if err := p.SetSelection(Selection{MLPMass: mass, HeadMass: mass}); err != nil {
			t.Fatal(err)
		}
		mb, hb := p.Budgets()
		for l, k := range mb {
			if k%8 != 0 || k < 8 || k > m.Cfg.FFN || prev != nil && k < prev[l] {
				t.Errorf("mass %v: budgets %v after %v", mass, mb, prev)
			}
		}
		for _, k := range hb {
			if k < 1 || k > m.Cfg.Heads {
				t.Errorf("mass %v: head budgets %v", mass, hb)
			}
		}
		prev = mb
	}
}

func TestCoverCurve(t *testing.T) {
	pool := kernels.NewPool(2)
	defer pool.Close()
	// Two rows of 4: logits rank the masses.
	zs := []float32{4, 3, 2, 1, 1, 2, 3, 4}
	mass := []float32{0.5, 0.3, 0.2, 0, 0, 0, 0, 1}
	got := coverCurve(pool, zs, mass, 2, 4, 1)
	want := []float32{0.75, 0.9, 1, 1}
	for i := range want {
		if math.Abs(float64(got[i]-want[i])) > 1e-6 {
			t.Fatalf("curve %v, want %v", got, want)
		}
	}
	if k := budgetFor(got, 0.85, 1, 4); k != 2 {
		t.Errorf("budget for 0.85: %d, want 2", k)
	}
	labels := headMassLabels([]float32{0.1, 0.6, 0.3, 0}, 4, 0.8)
	if labels[0] != 0b0110 {
		t.Errorf("mass labels %04b, want 0110", labels[0])
	}
}

// TestThresholdSpecs: "auto" selects with the calibrated thresholds,
// "auto-D" lowers them (density grows with D, all neurons once D is
// large), a number is one threshold for all layers, and bad specs are
// refused.
func TestThresholdSpecs(t *testing.T) {
	pool := kernels.NewPool(2)
	defer pool.Close()
	m := loadTiny(t, "opt-preln")
	_, p := collectTrain(t, m, pool, t.TempDir())
	m.PrepareSparse()
	ids := randomDocs(m, 1, 20, 9)[0]
	density := func(spec string) float64 {
		var sel Selection
		if err := sel.SetMLPThreshold(spec); err != nil {
			t.Fatal(err)
		}
		if err := p.SetSelection(sel); err != nil {
			t.Fatal(err)
		}
		a, err := TopOneAgreement(m, pool, p, ids[:4], 16)
		if err != nil {
			t.Fatal(err)
		}
		return a.Density.MLP()
	}
	var sel Selection
	if err := sel.SetMLPThreshold("auto-0.5"); err != nil || !sel.Thresholds || sel.ThresholdShift != 0.5 {
		t.Errorf("auto-0.5: %+v, %v", sel, err)
	}
	prev := density("auto+2")
	for _, spec := range []string{"auto", "auto-0.5", "auto-2", "auto-1000"} {
		d := density(spec)
		if d < prev {
			t.Errorf("%s: MLP density %v below %v of a higher threshold", spec, d, prev)
		}
		prev = d
	}
	if prev != 1 {
		t.Errorf("thresholds lowered by 1000 select %v of the neurons, want all", prev)
	}
	if d := density("-1e9"); d != 1 {
		t.Errorf("threshold -1e9: density %v", d)
	}
	for _, bad := range []string{"", "autox", "auto0.5", "auto-", "x", "NaN"} {
		if err := new(Selection).SetMLPThreshold(bad); err == nil {
			t.Errorf("threshold spec %q accepted", bad)
		}
	}
}

// TestLayerInputPredictors: MLP predictors trained on the layer's input
// say so (model.LayerInputMLP) through a save and load, differ from those
// of the MLP block's input, and the input cannot be changed afterwards;
// random predictors take either input; unknown inputs are refused.
func TestLayerInputPredictors(t *testing.T) {
	pool := kernels.NewPool(2)
	defer pool.Close()
	m := loadTiny(t, "opt-preln")
	dir := t.TempDir()
	ds, blockP := collectTrain(t, m, pool, dir)
	if blockP.MLPFromLayerInput() {
		t.Fatal("default predictors read the layer's input")
	}
	p, err := Train(m, pool, ds, TrainOptions{Rank: 8, Epochs: 2, Batch: 64, MLPInput: MLPInputLayer})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "layer.safetensors")
	if err := p.Save(path); err != nil {
		t.Fatal(err)
	}
	q, err := Load(path, m)
	if err != nil {
		t.Fatal(err)
	}
	if !p.MLPFromLayerInput() || !q.MLPFromLayerInput() || q.Info.MLPInput != MLPInputLayer {
		t.Fatalf("layer-input predictors: %v, after load %v (%q)", p.MLPFromLayerInput(), q.MLPFromLayerInput(), q.Info.MLPInput)
	}
	if slices.Equal(p.MLPPredictor(0).Bias, blockP.MLPPredictor(0).Bias) {
		t.Error("the layer's input trained the same predictor as the MLP block's")
	}
	if err := q.SetRandomMLPInput(MLPInputBlock); err == nil {
		t.Error("trained predictors changed their input")
	}
	if _, err := Train(m, pool, ds, TrainOptions{Rank: 8, Epochs: 1, MLPInput: "attention"}); err == nil || !strings.Contains(err.Error(), "attention") {
		t.Errorf("unknown input: %v", err)
	}
	r, err := RandomPredictors(m, 0.25, 0.5, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.SetRandomMLPInput(MLPInputLayer); err != nil || !r.MLPFromLayerInput() {
		t.Errorf("random predictors of the layer's input: %v", err)
	}
	if err := r.SetRandomMLPInput("bogus"); err == nil {
		t.Error("unknown input accepted")
	}
}
