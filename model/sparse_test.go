package model

import (
	"math/rand/v2"
	"path/filepath"
	"testing"

	"dejavu/kernels"
)

// allSelector computes everything: the sparse path must then equal dense.
type allSelector struct{ c Config }

func (a allSelector) MLP(_ int, _ []float32, dst []int32) []int32 {
	for i := 0; i < a.c.FFN; i++ {
		dst = append(dst, int32(i))
	}
	return dst
}

func (a allSelector) Heads(_ int, _ []float32, dst []int32) []int32 {
	for i := 0; i < a.c.Heads; i++ {
		dst = append(dst, int32(i))
	}
	return dst
}

// halfSelector keeps every other neuron and head.
type halfSelector struct{ c Config }

func (h halfSelector) MLP(_ int, _ []float32, dst []int32) []int32 {
	for i := 0; i < h.c.FFN; i += 2 {
		dst = append(dst, int32(i))
	}
	return dst
}

func (h halfSelector) Heads(_ int, _ []float32, dst []int32) []int32 {
	for i := 1; i < h.c.Heads; i += 2 {
		dst = append(dst, int32(i))
	}
	return dst
}

func decodeAll(t *testing.T, s *Session, ids []int) []float32 {
	t.Helper()
	var out []float32
	for _, id := range ids {
		row, err := s.Forward([]int{id}, false)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, row...)
	}
	return out
}

func TestSparseWithAllRowsEqualsDense(t *testing.T) {
	pool := kernels.NewPool(2)
	defer pool.Close()
	for _, name := range tinyModels {
		m, err := Load(filepath.Join("..", "testdata", "models", name))
		if err != nil {
			t.Fatal(err)
		}
		m.PrepareSparse()
		ids, want := refLogits(t, filepath.Join("..", "testdata", "logits", name+".safetensors"))
		s := m.NewSession(pool, 0)
		s.SetSelector(allSelector{m.Cfg})
		got := decodeAll(t, s, ids)
		checkRows(t, name+" sparse(all)", got, want, m.Cfg.Vocab, 1e-4)
		d := s.Density()
		if d.Tokens != len(ids) || d.MLP() != 1 || d.Heads() != 1 {
			t.Errorf("%s: density %+v, want all computed over %d tokens", name, d, len(ids))
		}

		// Half the rows: the density says so and the logits move.
		s2 := m.NewSession(pool, 0)
		s2.SetSelector(halfSelector{m.Cfg})
		half := decodeAll(t, s2, ids)
		d = s2.Density()
		wantHeads := (float64(m.Cfg.Heads)/2*float64(m.Cfg.Layers-1) + float64(m.Cfg.Heads)) / float64(m.Cfg.Heads*m.Cfg.Layers)
		if d.MLP() != 0.5 || d.Heads() != wantHeads {
			t.Errorf("%s: half density mlp %v heads %v, want 0.5 and %v", name, d.MLP(), d.Heads(), wantHeads)
		}
		same := true
		for i := range half {
			if half[i] != got[i] {
				same = false
				break
			}
		}
		if same {
			t.Errorf("%s: skipping half the rows changed nothing: sparsity is not applied", name)
		}
		m.Close()
	}
}

// oracleSelector picks exactly the neurons whose ReLU activation is
// non-zero (computed densely): for a ReLU MLP the output must not change.
type oracleSelector struct {
	m   *Model
	ln  []float32
	pre []float32
}

func (o *oracleSelector) MLP(l int, x []float32, dst []int32) []int32 {
	c := o.m.Cfg
	L := &o.m.Layers[l]
	if c.PreLN {
		kernels.LayerNorm(o.ln, x, L.MLPNormW, L.MLPNormB, c.NormEps)
	} else {
		copy(o.ln, x)
	}
	for i := 0; i < c.FFN; i++ {
		row := make([]float32, c.Hidden)
		L.Up.W.Row(i, row)
		v := kernels.Dot(row, o.ln) + L.Up.B[i]
		if v > 0 {
			dst = append(dst, int32(i))
		}
	}
	return dst
}

func (o *oracleSelector) Heads(_ int, _ []float32, dst []int32) []int32 {
	return allSelector{o.m.Cfg}.Heads(0, nil, dst)
}

func TestSparseOracleReLUIsExact(t *testing.T) {
	pool := kernels.NewPool(1)
	defer pool.Close()
	for _, name := range []string{"opt-preln", "opt-postln"} {
		m, err := Load(filepath.Join("..", "testdata", "models", name))
		if err != nil {
			t.Fatal(err)
		}
		m.PrepareSparse()
		ids, want := refLogits(t, filepath.Join("..", "testdata", "logits", name+".safetensors"))
		s := m.NewSession(pool, 0)
		s.SetSelector(&oracleSelector{m: m, ln: make([]float32, m.Cfg.Hidden)})
		got := decodeAll(t, s, ids)
		checkRows(t, name+" oracle", got, want, m.Cfg.Vocab, 1e-4)
		if d := s.Density().MLP(); d >= 0.9 || d <= 0.1 {
			t.Errorf("%s: oracle MLP density %v: expected ReLU zeros to be skipped", name, d)
		}
		m.Close()
	}
}

func TestSparseKernelsMatchDense(t *testing.T) {
	pool := kernels.NewPool(2)
	defer pool.Close()
	r := rand.New(rand.NewPCG(3, 4))
	m, err := Load(filepath.Join("..", "testdata", "models", "mistral-headdim"))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	w := m.Layers[0].Down.W // f16, 64×96
	e := kernels.NewExec(pool, w.Cols)
	x := make([]float32, w.Cols)
	for i := range x {
		x[i] = float32(r.NormFloat64())
	}
	dense := make([]float32, w.Rows)
	e.MatVec(dense, w, x)
	rows := []int32{0, 3, 17, 63}
	g := make([]float32, len(rows))
	e.GatherMatVec(g, w, x, rows)
	for k, i := range rows {
		if diff := g[k] - dense[i]; diff > 1e-4 || diff < -1e-4 {
			t.Errorf("gather row %d: %v, dense %v", i, g[k], dense[i])
		}
	}
	// AccumRows over all rows of Wᵀ with coefficients x equals W x.
	wt := w.Transpose()
	all := make([]int32, wt.Rows)
	for i := range all {
		all[i] = int32(i)
	}
	acc := make([]float32, wt.Cols)
	e.AccumRows(acc, wt, all, x)
	for i := range acc {
		if diff := acc[i] - dense[i]; diff > 1e-4 || diff < -1e-4 {
			t.Errorf("accum col %d: %v, dense %v", i, acc[i], dense[i])
		}
	}
}
