package model

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"dejavu/kernels"
)

// tableSelector replays precomputed selections: sel[tok][l] for the MLP,
// heads[tok][l] for the heads, tok set by the caller before each step.
type tableSelector struct {
	tok        int
	mlp, heads [][][]int32
}

func (t *tableSelector) MLP(l int, _ []float32, dst []int32) []int32 {
	return append(dst, t.mlp[t.tok][l]...)
}

func (t *tableSelector) Heads(l int, _ []float32, dst []int32) []int32 {
	return append(dst, t.heads[t.tok][l]...)
}

// TestFusedMLPSpeed compares, in one process and token by token, dense
// decoding with sparse decoding through the fused MLP (kernels.SparseMLP
// over the interleaved up/downᵀ rows) and through the separate gather and
// accumulate (up rows in place, downᵀ copy), the same random selections
// (10% of neurons, 50% of heads) for both sparse sessions. A measurement,
// not a check:
//
//	DEJAVU_FUSED=opt-1.3b [DEJAVU_FUSED_THREADS=1] [DEJAVU_FUSED_PROMPT=128]
//	[DEJAVU_FUSED_GEN=64] go test ./model -run FusedMLPSpeed -v
func TestFusedMLPSpeed(t *testing.T) {
	name := os.Getenv("DEJAVU_FUSED")
	if name == "" {
		t.Skip("set DEJAVU_FUSED=<synthetic model name> to run")
	}
	env := func(k string, def int) int {
		if v, err := strconv.Atoi(os.Getenv(k)); err == nil {
			return v
		}
		return def
	}
	threads, prompt, gen := env("DEJAVU_FUSED_THREADS", 1), env("DEJAVU_FUSED_PROMPT", 128), env("DEJAVU_FUSED_GEN", 64)
	m, err := Synthetic(name, kernels.F16, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer func(n int) { fusedMaxRowBytes = n }(fusedMaxRowBytes)
	fusedMaxRowBytes = 1 << 30 // fuse whatever the row length
	m.PrepareSparse()
	if m.sparse.mlp[0].Rows == 0 {
		t.Fatal("no fused MLP matrices")
	}
	mu := separateMLP(m)
	// The same with Oᵀ on ordinary heap pages.
	mh := *m
	mh.sparse = &sparseWeights{oT: make([]kernels.Mat, len(m.Layers)), mlp: m.sparse.mlp, segs: m.sparse.segs}
	for i, w := range m.sparse.oT {
		v := make([]float32, w.Rows*w.Cols)
		for j := 0; j < w.Rows; j++ {
			w.Row(j, v[j*w.Cols:(j+1)*w.Cols])
		}
		if mh.sparse.oT[i], err = kernels.MatF32(w.Rows, w.Cols, v).Quantize(w.DType); err != nil {
			t.Fatal(err)
		}
	}
	c := m.Cfg
	r := rand.New(rand.NewPCG(3, 4))
	pick := func(n, k int) []int32 {
		p := r.Perm(n)[:k]
		s := make([]int32, k)
		for i, v := range p {
			s[i] = int32(v)
		}
		slices.Sort(s)
		return s
	}
	sel := &tableSelector{}
	for range gen {
		var ml, hl [][]int32
		for range c.Layers {
			ml = append(ml, pick(c.FFN, (c.FFN+5)/10))
			hl = append(hl, pick(c.Heads, c.Heads/2))
		}
		sel.mlp, sel.heads = append(sel.mlp, ml), append(sel.heads, hl)
	}
	pool := kernels.NewPool(threads)
	defer pool.Close()
	ids := make([]int, prompt)
	for i := range ids {
		ids[i] = r.IntN(c.Vocab)
	}
	names := []string{"dense", "fused", "separate", "oT-heap"}
	sess := []*Session{m.NewSession(pool, prompt+gen), m.NewSession(pool, prompt+gen), mu.NewSession(pool, prompt+gen), mh.NewSession(pool, prompt+gen)}
	for _, s := range sess[1:] {
		s.SetSelector(sel)
	}
	for _, s := range sess {
		if _, err := s.Forward(ids, false); err != nil {
			t.Fatal(err)
		}
	}
	ms := make([][]float64, len(sess))
	var rf, rs, rh []float64
	for i := 0; i < gen; i++ {
		sel.tok = i
		step := make([]float64, len(sess))
		for j := range sess {
			k := (i + j) % len(sess) // rotate which goes first
			t0 := time.Now()
			if _, err := sess[k].Forward([]int{(i*31 + 7) % c.Vocab}, false); err != nil {
				t.Fatal(err)
			}
			step[k] = float64(time.Since(t0).Nanoseconds()) / 1e6
			ms[k] = append(ms[k], step[k])
		}
		rf = append(rf, step[0]/step[1])
		rs = append(rs, step[0]/step[2])
		rh = append(rh, step[0]/step[3])
	}
	var line string
	for k, n := range names {
		line += fmt.Sprintf("%s %.2f ms  ", n, kernels.Median(ms[k]))
	}
	t.Logf("%s f16, %d threads, prompt %d, %d steps each: %s", name, threads, prompt, gen, line)
	t.Logf("speed-up: fused %.3fx (median of per-step %.3fx), separate %.3fx (%.3fx), fused, Oᵀ on heap pages %.3fx (%.3fx)",
		kernels.Median(ms[0])/kernels.Median(ms[1]), kernels.Median(rf), kernels.Median(ms[0])/kernels.Median(ms[2]), kernels.Median(rs),
		kernels.Median(ms[0])/kernels.Median(ms[3]), kernels.Median(rh))
}

// separateMLP returns a copy of m (sharing its weights) whose sparse path
// uses the separate gather and accumulate instead of the fused matrices.
func separateMLP(m *Model) *Model {
	mu := *m
	mu.sparse = &sparseWeights{oT: m.sparse.oT, mlp: make([]kernels.Mat, len(m.Layers)), downT: make([]kernels.Mat, len(m.Layers))}
	for i := range m.Layers {
		mu.sparse.downT[i] = m.Layers[i].Down.W.Transpose()
	}
	return &mu
}

// The fused MLP (kernels.SparseMLP over interleaved rows) decodes as the
// separate gather, bias, activation and accumulate do: same selections,
// logits equal within f32 rounding, on every tiny architecture (gated and
// not, with and without MLP biases) and 1 or 2 threads.
func TestFusedMLPMatchesSeparate(t *testing.T) {
	for _, threads := range []int{1, 2} {
		pool := kernels.NewPool(threads)
		for _, name := range tinyModels {
			m, err := Load(filepath.Join("..", "testdata", "models", name))
			if err != nil {
				t.Fatal(err)
			}
			m.PrepareSparse()
			for i := range m.Layers {
				if m.sparse.mlp[i].Rows == 0 || m.sparse.downT[i].Rows != 0 {
					t.Fatalf("%s (%s): layer %d has no fused MLP matrix", name, m.Layers[i].Up.W.DType, i)
				}
			}
			if want := 2 + btoi(m.Layers[0].Gate.W.Rows > 0); m.sparse.segs != want {
				t.Fatalf("%s: %d segments, want %d", name, m.sparse.segs, want)
			}
			ids, _ := refLogits(t, filepath.Join("..", "testdata", "logits", name+".safetensors"))
			var out [2][]float32
			for k, mm := range []*Model{m, separateMLP(m)} {
				s := mm.NewSession(pool, 0)
				s.SetSelector(newFixedSelector(m.Cfg, 0.3, 0.5))
				out[k] = decodeAll(t, s, ids)
			}
			checkRows(t, fmt.Sprintf("%s fused vs separate, %d threads", name, threads), out[0], out[1], m.Cfg.Vocab, 1e-5)
			m.Close()
		}
		pool.Close()
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// A layer with quantized MLP weights keeps the separate path while the
// others are fused; decoding then equals the all-separate model's.
func TestFusedMLPMixedLayers(t *testing.T) {
	pool := kernels.NewPool(2)
	defer pool.Close()
	m, err := Load(filepath.Join("..", "testdata", "models", "opt-preln"))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	l := &m.Layers[1]
	if l.Up.W, err = l.Up.W.Quantize(kernels.Q8_0); err != nil {
		t.Fatal(err)
	}
	if l.Down.W, err = l.Down.W.Quantize(kernels.Q8_0); err != nil {
		t.Fatal(err)
	}
	m.PrepareSparse()
	if m.sparse.mlp[0].Rows == 0 || m.sparse.downT[0].Rows != 0 || m.sparse.mlp[1].Rows != 0 || m.sparse.downT[1].Rows == 0 {
		t.Fatalf("layer 0 fused %v, layer 1 separate %v", m.sparse.mlp[0].Rows > 0, m.sparse.downT[1].Rows > 0)
	}
	ids, _ := refLogits(t, filepath.Join("..", "testdata", "logits", "opt-preln.safetensors"))
	var out [2][]float32
	for k, mm := range []*Model{m, separateMLP(m)} {
		s := mm.NewSession(pool, 0)
		s.SetSelector(newFixedSelector(m.Cfg, 0.3, 0.5))
		out[k] = decodeAll(t, s, ids)
	}
	checkRows(t, "opt-preln, layer 1 in Q8_0: fused vs separate", out[0], out[1], m.Cfg.Vocab, 1e-5)
}
