package sparsity

import (
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
