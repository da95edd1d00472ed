package model

import (
	"path/filepath"
	"slices"
	"testing"

	"dejavu/kernels"
)

// TestOracleHeads: with every head in the budget the oracle pass is the
// dense one; with half, exactly half the heads are computed and the logits
// move; the heads kept are those of largest norm; bad budgets are refused.
func TestOracleHeads(t *testing.T) {
	pool := kernels.NewPool(2)
	defer pool.Close()
	name := tinyModels[0]
	m, err := Load(filepath.Join("..", "testdata", "models", name))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	m.PrepareSparse()
	c := m.Cfg
	ids, dense := refLogits(t, filepath.Join("..", "testdata", "logits", name+".safetensors"))
	run := func(k int) ([]float32, Density) {
		s := m.NewSession(pool, 0)
		s.SetSelector(allSelector{c})
		s.SetSparseBatches(true)
		if err := s.SetOracleHeads(slices.Repeat([]int{k}, c.Layers)); err != nil {
			t.Fatal(err)
		}
		got, err := s.Forward(ids, true)
		if err != nil {
			t.Fatal(err)
		}
		return got, s.Density()
	}
	all, d := run(c.Heads)
	checkRows(t, name+" oracle with all heads", all, dense, c.Vocab, 1e-4)
	if d.Heads() != 1 {
		t.Errorf("all heads: head density %v", d.Heads())
	}
	half, d := run(c.Heads / 2)
	if want := float64(c.Heads/2) / float64(c.Heads); d.Heads() != want || d.MLP() != 1 {
		t.Errorf("half the heads: densities heads %v (want %v), mlp %v", d.Heads(), want, d.MLP())
	}
	if slices.Equal(half, dense) {
		t.Error("oracle with half the heads gives the dense logits")
	}

	// The selection itself: the largest norms win, per row.
	s := m.NewSession(pool, 0)
	s.SetSelector(allSelector{c})
	s.SetSparseBatches(true)
	budget := slices.Repeat([]int{2}, c.Layers)
	if err := s.SetOracleHeads(budget); err != nil {
		t.Fatal(err)
	}
	o := s.oracle()
	H := c.Heads
	for i := range H * 2 {
		s.recHead[i] = float32((i*7)%H) + float32(i/H)/10
		s.headMask[i] = true
	}
	s.oracleMask(o, 2)
	for i := range 2 {
		for h := range H {
			want := (i*H+h)*7%H >= H-2
			if s.headMask[i*H+h] != want {
				t.Errorf("row %d head %d (norm %v): kept %v, want %v", i, h, s.recHead[i*H+h], s.headMask[i*H+h], want)
			}
		}
	}
	for _, b := range [][]int{{1}, slices.Repeat([]int{0}, c.Layers), slices.Repeat([]int{H + 1}, c.Layers)} {
		if err := s.SetOracleHeads(b); err == nil {
			t.Errorf("budget %v accepted", b)
		}
	}
	if err := s.SetOracleHeads(nil); err != nil || s.oracle() != nil {
		t.Errorf("SetOracleHeads(nil): %v, oracle %v", err, s.oracle())
	}
}
