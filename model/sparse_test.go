package model

import (
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
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

type captureRec struct {
	attn, mlp, act, head map[int][]float32
}

func (c *captureRec) Layer(l, n int, attnIn, mlpIn, act, headNorm []float32) {
	c.attn[l] = append(c.attn[l], attnIn...)
	c.mlp[l] = append(c.mlp[l], mlpIn...)
	c.act[l] = append(c.act[l], act...)
	c.head[l] = append(c.head[l], headNorm...)
}

func newCapture() *captureRec {
	return &captureRec{map[int][]float32{}, map[int][]float32{}, map[int][]float32{}, map[int][]float32{}}
}

// The recorder sees the same values whether tokens come as one prompt pass
// or one at a time, and ReLU activations have zeros.
func TestRecorderConsistent(t *testing.T) {
	pool := kernels.NewPool(2)
	defer pool.Close()
	for _, name := range []string{"opt-preln", "llama-relu-sharded"} {
		m, err := Load(filepath.Join("..", "testdata", "models", name))
		if err != nil {
			t.Fatal(err)
		}
		ids := []int{5, 9, 200, 31, 7}
		a, b := newCapture(), newCapture()
		s := m.NewSession(pool, 0)
		s.SetRecorder(a)
		if _, err := s.Forward(ids, false); err != nil {
			t.Fatal(err)
		}
		s2 := m.NewSession(pool, 0)
		s2.SetRecorder(b)
		decodeAll(t, s2, ids)
		for l := 0; l < m.Cfg.Layers; l++ {
			for _, pair := range [][2][]float32{{a.attn[l], b.attn[l]}, {a.mlp[l], b.mlp[l]}, {a.act[l], b.act[l]}, {a.head[l], b.head[l]}} {
				if len(pair[0]) != len(pair[1]) || len(pair[0]) == 0 {
					t.Fatalf("%s layer %d: recorded %d vs %d values", name, l, len(pair[0]), len(pair[1]))
				}
				for i := range pair[0] {
					if d := pair[0][i] - pair[1][i]; d > 1e-4 || d < -1e-4 {
						t.Fatalf("%s layer %d: prompt and decode recordings differ at %d: %v vs %v", name, l, i, pair[0][i], pair[1][i])
					}
				}
			}
			zeros := 0
			for _, v := range a.act[l] {
				if v == 0 {
					zeros++
				}
			}
			if zeros == 0 || zeros == len(a.act[l]) {
				t.Errorf("%s layer %d: %d of %d ReLU activations are zero", name, l, zeros, len(a.act[l]))
			}
		}
		m.Close()
	}
}

// fixedSelector returns the same rows every time: a fixed fraction of the
// neurons and heads, spread over the whole range (stride selection).
type fixedSelector struct {
	neurons, heads []int32
}

func newFixedSelector(c Config, mlp, heads float64) *fixedSelector {
	pick := func(n int, d float64) []int32 {
		k := max(1, int(d*float64(n)+0.5))
		rows := make([]int32, k)
		for i := range rows {
			rows[i] = int32(i * n / k)
		}
		return rows
	}
	return &fixedSelector{pick(c.FFN, mlp), pick(c.Heads, heads)}
}

func (f *fixedSelector) MLP(_ int, _ []float32, dst []int32) []int32 {
	return append(dst, f.neurons...)
}

func (f *fixedSelector) Heads(_ int, _ []float32, dst []int32) []int32 {
	return append(dst, f.heads...)
}

// randomSelector picks new random rows for every layer and token, as the
// bench package's selector does (so the rows come from memory, not cache).
type randomSelector struct {
	r          *rand.Rand
	ffn, heads int
	mlpK, hK   int
	perm       []int32
}

func newRandomSelector(c Config, mlp, heads float64) *randomSelector {
	return &randomSelector{r: rand.New(rand.NewPCG(5, 6)), ffn: c.FFN, heads: c.Heads,
		mlpK: max(1, int(mlp*float64(c.FFN)+0.5)), hK: max(1, int(heads*float64(c.Heads)+0.5)),
		perm: make([]int32, max(c.FFN, c.Heads))}
}

func (r *randomSelector) pick(n, k int, dst []int32) []int32 {
	p := r.perm[:n]
	for i := range p {
		p[i] = int32(i)
	}
	for i := 0; i < k; i++ {
		j := i + r.r.IntN(n-i)
		p[i], p[j] = p[j], p[i]
	}
	start := len(dst)
	dst = append(dst, p[:k]...)
	slices.Sort(dst[start:])
	return dst
}

func (r *randomSelector) MLP(_ int, _ []float32, dst []int32) []int32 {
	return r.pick(r.ffn, r.mlpK, dst)
}

func (r *randomSelector) Heads(_ int, _ []float32, dst []int32) []int32 {
	return r.pick(r.heads, r.hK, dst)
}

func TestSparseDecodeDoesNotAllocate(t *testing.T) {
	for _, name := range []string{"", "llama-silu", "opt-preln"} {
		var m *Model
		if name == "" {
			m = benchModel(t)
		} else {
			var err error
			if m, err = Load(filepath.Join("..", "testdata", "models", name)); err != nil {
				t.Fatal(err)
			}
		}
		m.PrepareSparse()
		pool := kernels.NewPool(2)
		s := m.NewSession(pool, 64)
		if _, err := s.Forward([]int{1, 2, 3}, false); err != nil {
			t.Fatal(err)
		}
		s.SetSelector(newFixedSelector(m.Cfg, 0.3, 0.5))
		allocs := testing.AllocsPerRun(20, func() {
			if _, err := s.Forward([]int{5}, false); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("%s: a sparse decode step allocates %.1f times", m.Source, allocs)
		}
		pool.Close()
		m.Close()
	}
}

// BenchmarkSparseDecodeStep is one sparse token (10% of the neurons, half
// the heads, chosen at random per layer and token) through the KV cache.
func BenchmarkSparseDecodeStep(b *testing.B) {
	m := benchModel(b)
	defer m.Close()
	m.PrepareSparse()
	pool := kernels.NewPool(0)
	defer pool.Close()
	s := m.NewSession(pool, 0)
	s.SetSelector(newRandomSelector(m.Cfg, 0.1, 0.5))
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if s.Pos() == s.MaxCtx() || s.Pos() >= 256 {
			s.Reset()
		}
		if _, err := s.Forward([]int{i % m.Cfg.Vocab}, false); err != nil {
			b.Fatal(err)
		}
	}
}

// inputSelector picks heads and neurons from its input alone (the largest
// entries of x, folded onto the heads and neurons), so that a prediction
// from the wrong hidden state changes the result. Each value has its own
// scratch; it is not safe for concurrent use.
type inputSelector struct {
	c       Config
	mlp, hd float64
	score   []float32
	order   []int32
}

func newInputSelector(c Config, mlp, heads float64) *inputSelector {
	return &inputSelector{c: c, mlp: mlp, hd: heads, score: make([]float32, max(c.FFN, c.Heads)), order: make([]int32, max(c.FFN, c.Heads))}
}

func (s *inputSelector) pick(l int, x []float32, n int, frac float64, dst []int32) []int32 {
	sc := s.score[:n]
	clear(sc)
	for i, v := range x {
		sc[(i*7+l)%n] += v * float32(i%5-2)
	}
	k := max(1, int(frac*float64(n)))
	// Selection by repeated maximum: small n in tests, no allocation.
	for j := 0; j < k; j++ {
		b := -1
		for i, v := range sc {
			if v == v && (b < 0 || v > sc[b]) {
				b = i
			}
		}
		dst = append(dst, int32(b))
		sc[b] = float32(math.NaN())
	}
	slices.Sort(dst)
	return dst
}

func (s *inputSelector) MLP(l int, x []float32, dst []int32) []int32 {
	return s.pick(l, x, s.c.FFN, s.mlp, dst)
}

func (s *inputSelector) Heads(l int, x []float32, dst []int32) []int32 {
	return s.pick(l+1, x, s.c.Heads, s.hd, dst)
}

// TestAsyncLookaheadMatchesSync decodes the same tokens with the head
// lookahead synchronous, asynchronous with the session's own selector and
// asynchronous with a second selector: the logits must be identical.
func TestAsyncLookaheadMatchesSync(t *testing.T) {
	for _, name := range []string{"llama-silu", "opt-preln"} {
		m, err := Load(filepath.Join("..", "testdata", "models", name))
		if err != nil {
			t.Fatal(err)
		}
		m.PrepareSparse()
		pool := kernels.NewPool(2)
		prompt, ids := []int{1, 2, 3, 4}, []int{5, 9, 2, 7, 11, 3, 8, 1}
		run := func(mode int) []float32 {
			s := m.NewSession(pool, 32)
			if _, err := s.Forward(prompt, false); err != nil {
				t.Fatal(err)
			}
			sel := newInputSelector(m.Cfg, 0.3, 0.5)
			s.SetSelector(sel)
			switch mode {
			case 1:
				s.SetAsync(sel)
			case 2:
				s.SetAsync(newInputSelector(m.Cfg, 0.3, 0.5))
			}
			var out []float32
			for _, id := range ids {
				l, err := s.Forward([]int{id}, false)
				if err != nil {
					t.Fatal(err)
				}
				out = append(out, l...)
			}
			s.SetAsync(nil)
			return out
		}
		want := run(0)
		for mode := 1; mode <= 2; mode++ {
			if got := run(mode); !slices.Equal(got, want) {
				t.Errorf("%s: async mode %d: logits differ from synchronous decoding", name, mode)
			}
		}
		pool.Close()
		m.Close()
	}
}

func TestAsyncSparseDecodeDoesNotAllocate(t *testing.T) {
	m := benchModel(t)
	defer m.Close()
	m.PrepareSparse()
	pool := kernels.NewPool(2)
	defer pool.Close()
	s := m.NewSession(pool, 64)
	if _, err := s.Forward([]int{1, 2, 3}, false); err != nil {
		t.Fatal(err)
	}
	sel := newInputSelector(m.Cfg, 0.3, 0.5)
	s.SetSelector(sel)
	for _, la := range []Selector{sel, newInputSelector(m.Cfg, 0.3, 0.5)} {
		s.SetAsync(la)
		allocs := testing.AllocsPerRun(10, func() {
			if _, err := s.Forward([]int{5}, false); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("an asynchronous sparse decode step allocates %.1f times", allocs)
		}
	}
	s.SetAsync(nil)
}

// layerInputSelector is an inputSelector whose MLP predictions read the
// layer's input (LayerInputMLP). In decode steps it counts, per layer,
// MLP calls whose input equals the head prediction's input of that layer
// (the layer's attention input, read just before or after: either order).
type layerInputSelector struct {
	*inputSelector
	heads, mlp [][]float32 // latest inputs per layer
	same, diff int
}

func (s *layerInputSelector) MLPFromLayerInput() bool { return true }

func (s *layerInputSelector) check(l int) {
	if l < len(s.heads) && l < len(s.mlp) && s.heads[l] != nil && s.mlp[l] != nil {
		if slices.Equal(s.heads[l], s.mlp[l]) {
			s.same++
		} else {
			s.diff++
		}
		s.heads[l], s.mlp[l] = nil, nil
	}
}

func keep(dst [][]float32, l int, x []float32) [][]float32 {
	for len(dst) <= l {
		dst = append(dst, nil)
	}
	dst[l] = append([]float32{}, x...)
	return dst
}

func (s *layerInputSelector) Heads(l int, x []float32, dst []int32) []int32 {
	s.heads = keep(s.heads, l, x)
	s.check(l)
	return s.inputSelector.Heads(l, x, dst)
}

func (s *layerInputSelector) MLP(l int, x []float32, dst []int32) []int32 {
	s.mlp = keep(s.mlp, l, x)
	s.check(l)
	return s.inputSelector.MLP(l, x, dst)
}

// TestLayerInputMLP: a LayerInputMLP selector is asked for the neurons with
// the layer's input (what the head lookahead reads), in decode steps and in
// masked batches alike (which agree), and that changes the decode.
func TestLayerInputMLP(t *testing.T) {
	pool := kernels.NewPool(2)
	defer pool.Close()
	for _, name := range []string{"opt-preln", "llama-silu", "opt-postln"} {
		m, err := Load(filepath.Join("..", "testdata", "models", name))
		if err != nil {
			t.Fatal(err)
		}
		m.PrepareSparse()
		ids := []int{1, 5, 9, 2, 7, 11, 3, 8, 4, 6}
		dec := m.NewSession(pool, 0)
		sel := &layerInputSelector{inputSelector: newInputSelector(m.Cfg, 0.4, 0.5)}
		dec.SetSelector(sel)
		want := decodeAll(t, dec, ids)
		if sel.diff != 0 || sel.same != len(ids)*(m.Cfg.Layers-1) {
			t.Errorf("%s decode: %d MLP predictions read the layer's input, %d another (want %d, 0)", name, sel.same, sel.diff, len(ids)*(m.Cfg.Layers-1))
		}
		blk := m.NewSession(pool, 0)
		blk.SetSelector(newInputSelector(m.Cfg, 0.4, 0.5))
		if other := decodeAll(t, blk, ids); slices.Equal(other, want) {
			t.Errorf("%s: predicting from the layer's input decodes as from the MLP block's", name)
		}
		// Batches: equal to the decode, which read the layer's input (and
		// differs from reading the MLP block's).
		bat := m.NewSession(pool, 0)
		bat.SetSelector(&layerInputSelector{inputSelector: newInputSelector(m.Cfg, 0.4, 0.5)})
		bat.SetSparseBatches(true)
		got, err := bat.Forward(ids, true)
		if err != nil {
			t.Fatal(err)
		}
		checkRows(t, name+" layer-input sparse batches vs decode", got, want, m.Cfg.Vocab, 1e-4)
		m.Close()
	}
}
