package sparsity

import (
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"

	"dejavu/kernels"
	"dejavu/model"
)

// TestRandomPredictors: the size training would give, the densities asked
// for, and a clear error for impossible densities.
func TestRandomPredictors(t *testing.T) {
	m, err := model.Synthetic("opt-125m", kernels.F16, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	p, err := RandomPredictors(m, 0.1, 0.5, 1)
	if err != nil {
		t.Fatal(err)
	}
	c := m.Cfg
	mlp, heads := p.Budgets()
	for l := range mlp {
		if want := (c.FFN/10 + 7) / 8 * 8; mlp[l] < want-8 || mlp[l] > want+8 {
			t.Errorf("layer %d: %d neurons, want about %d", l, mlp[l], want)
		}
	}
	for l := range heads {
		if heads[l] != c.Heads/2 {
			t.Errorf("layer %d: %d heads, want %d", l+1, heads[l], c.Heads/2)
		}
	}
	var layer int64
	for l := range p.Info.Stats {
		layer += p.Info.Stats[l].LayerBytes
	}
	if frac := float64(p.Bytes()) / float64(layer); frac < 0.05 || frac > 0.12 {
		t.Errorf("predictors are %.3f of the layers' bytes, want about 0.1", frac)
	}
	x := make([]float32, c.Hidden)
	for i := range x {
		x[i] = float32(i%7) - 3
	}
	if got := p.MLP(1, x, nil); len(got) != mlp[1] {
		t.Errorf("MLP selected %d neurons, budget %d", len(got), mlp[1])
	}
	if got := p.Heads(0, x, nil); len(got) != heads[0] {
		t.Errorf("Heads selected %d, budget %d", len(got), heads[0])
	}
	if _, err := RandomPredictors(m, 0, 0.5, 1); err == nil {
		t.Error("density 0 accepted")
	}
}

// TestRandomPredictorsForConfig: predictors built from a configuration
// alone have the ranks, layer bytes, budgets and weights that
// RandomPredictors gives a model with those shapes and weight type.
func TestRandomPredictorsForConfig(t *testing.T) {
	syn, err := model.Synthetic("opt-125m", kernels.F16, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer syn.Close()
	models := []*model.Model{syn}
	for _, name := range []string{"opt-projinout", "mistral-headdim", "llama-relu-sharded", "qwen2-bias"} {
		models = append(models, loadTiny(t, name))
	}
	for _, m := range models {
		dt := m.Layers[0].Up.W.DType
		want, err := RandomPredictors(m, 0.2, 0.5, 7)
		if err != nil {
			t.Fatal(err)
		}
		got, err := RandomPredictorsForConfig(m.Cfg, dt, m.Source, 0.2, 0.5, 7)
		if err != nil {
			t.Fatal(err)
		}
		if got.Fingerprint != "" || want.Fingerprint == "" {
			t.Errorf("%s: fingerprints %q (config) and %q (model)", m.Source, got.Fingerprint, want.Fingerprint)
		}
		if got.Bytes() != want.Bytes() || got.Info.Model != want.Info.Model || got.Info.Norm != want.Info.Norm {
			t.Errorf("%s: %d bytes, model %q, norm %q; want %d, %q, %q", m.Source, got.Bytes(), got.Info.Model, got.Info.Norm,
				want.Bytes(), want.Info.Model, want.Info.Norm)
		}
		if !reflect.DeepEqual(got.Info.Stats, want.Info.Stats) {
			t.Errorf("%s: stats\n%+v\nwant\n%+v", m.Source, got.Info.Stats, want.Info.Stats)
		}
		for l := 0; l < m.Cfg.Layers; l++ {
			if AutoRank(m, l, 0.1) != got.Info.Stats[l].Rank || layerBytes(m, l) != got.Info.Stats[l].LayerBytes {
				t.Errorf("%s layer %d: rank %d, %d layer bytes; want %d, %d", m.Source, l, got.Info.Stats[l].Rank,
					got.Info.Stats[l].LayerBytes, AutoRank(m, l, 0.1), layerBytes(m, l))
			}
			a, b := got.MLPPredictor(l), want.MLPPredictor(l)
			ra, rb := make([]float32, a.A.Cols), make([]float32, b.A.Cols)
			a.A.Row(a.A.Rows-1, ra)
			b.A.Row(b.A.Rows-1, rb)
			if a.A.Rows != b.A.Rows || a.B.Rows != b.B.Rows || !slices.Equal(ra, rb) {
				t.Errorf("%s layer %d: MLP predictors differ", m.Source, l)
			}
		}
	}
	if _, err := RandomPredictorsForConfig(syn.Cfg, kernels.F16, "x", 0.1, 1.5, 1); err == nil {
		t.Error("head density 1.5 accepted")
	}
}

// TestRandomThresholds: the calibrated thresholds of random predictors
// select about the asked density of neurons of inputs of any offset and
// scale, in f16 and q8_0; the default selection uses them with the head
// budgets of the asked head density, and density 1 selects every neuron.
func TestRandomThresholds(t *testing.T) {
	cfg, err := model.SyntheticConfig("opt-125m")
	if err != nil {
		t.Fatal(err)
	}
	llama := loadTiny(t, "llama-silu")
	for _, tc := range []struct {
		c   model.Config
		mlp float64
	}{{cfg, 0.1}, {cfg, 0.3}, {llama.Cfg, 0.25}, {cfg, 1}} {
		p, err := RandomPredictorsForConfig(tc.c, kernels.F16, "test", tc.mlp, 0.5, 3)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, thr, _ := p.LayerSelection(0); thr {
			t.Error("RandomPredictors select by threshold unless told")
		}
		if err := p.SetSelection(Selection{}); err != nil {
			t.Fatal(err)
		}
		c := tc.c
		for q := range 2 {
			if q == 1 {
				if c.Hidden%kernels.Q8Block != 0 {
					continue
				}
				if err := p.Quantize(kernels.Q8_0); err != nil {
					t.Fatal(err)
				}
			}
			rng := rand.New(rand.NewPCG(9, 9))
			x := make([]float32, c.Hidden)
			for l := 0; l < c.Layers; l++ {
				_, _, useThr, hk := p.LayerSelection(l)
				if !useThr {
					t.Fatalf("layer %d: default selection is not by threshold", l)
				}
				if want := int(math.Round(0.5 * float64(c.Heads))); l+1 < c.Layers && hk != want {
					t.Errorf("layer %d: %d heads, want %d", l, hk, want)
				}
				if d := p.Info.Stats[l].ThreshDensity; math.Abs(d-tc.mlp) > 0.01 {
					t.Errorf("layer %d: calibrated density %.4f, want %.2f", l, d, tc.mlp)
				}
				n, tokens := 0, 16
				for range tokens {
					off, scale := float32(rng.NormFloat64()), float32(0.1+5*rng.Float64())
					for i := range x {
						x[i] = off + scale*float32(rng.NormFloat64())
					}
					n += len(p.MLP(l, x, nil))
				}
				got := float64(n) / float64(tokens*c.FFN)
				tol := 0.03
				if c.FFN < 1000 {
					tol = 0.08 // 96 neurons: a few a token
				}
				if math.Abs(got-tc.mlp) > tol {
					t.Errorf("%s (q8 %v) layer %d: density %.4f at the threshold, want %.2f", c.Arch, q == 1, l, got, tc.mlp)
				}
			}
		}
	}
}
