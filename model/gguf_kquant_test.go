package model

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"dejavu/kernels"
	"dejavu/tokenizer"
)

// Documented tolerance of llama.cpp's Q4_K_M and Q5_K_M files of the ReLU
// Llama test-bed against its f16 safetensors (docs/benchmarks.md,
// "Q5_K, Q6_K, Q5_0, Q5_1"), over 320 positions of WikiText-2 in one
// prompt pass, with about 2× margin over the measurement.
var kquantTolerance = map[string]struct{ top1, maxRel, meanRel float64 }{
	"Q4_K_M": {0.80, 0.30, 0.15}, // measured 0.9031, 0.1506, 0.0716
	"Q5_K_M": {0.85, 0.20, 0.08}, // measured 0.9313, 0.0952, 0.0403
}

// TestGGUFKQuantLogitsMatchF16 loads GGUF files of testbed-llama-relu
// made by llama-quantize (Q4_K_M mixes Q4_K, Q6_K, Q5_0 and Q8_0; Q5_K_M
// Q5_K, Q6_K, Q5_1 and Q8_0), named in DEJAVU_KQUANT_GGUF (comma-separated
// paths whose names contain Q4_K_M or Q5_K_M; the tests must not need
// llama.cpp, so without it the test skips), and checks the documented
// tolerance of the prompt logits against the f16 safetensors, decode
// against prompt, and sparse decoding with every row selected against
// dense decoding.
func TestGGUFKQuantLogitsMatchF16(t *testing.T) {
	env := os.Getenv("DEJAVU_KQUANT_GGUF")
	if env == "" {
		t.Skip("DEJAVU_KQUANT_GGUF not set (llama-quantize Q4_K_M / Q5_K_M files of testbed-llama-relu)")
	}
	dir := filepath.Join("..", "..", "shared", "data", "models", "testbed-llama-relu")
	text, err := os.ReadFile(filepath.Join("..", "..", "shared", "data", "text", "wikitext-2-raw", "wiki.test.raw"))
	if err != nil {
		t.Skip("shared text not present")
	}
	tok, err := tokenizer.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	ids, err := tok.EncodeNoSpecial(string(text[:8000]))
	if err != nil {
		t.Fatal(err)
	}
	const n = 320
	ref, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()
	if ref.Cfg.BOS >= 0 {
		ids = append([]int{ref.Cfg.BOS}, ids[:n-1]...)
	} else {
		ids = ids[:n]
	}
	pool := kernels.NewPool(2)
	defer pool.Close()
	logits := func(m *Model) []float32 {
		out, err := m.NewSession(pool, n).Forward(ids, true)
		if err != nil {
			t.Fatal(err)
		}
		return append([]float32(nil), out...)
	}
	want := logits(ref)
	for _, path := range strings.Split(env, ",") {
		kind := ""
		for k := range kquantTolerance {
			if strings.Contains(strings.ToUpper(filepath.Base(path)), k) {
				kind = k
			}
		}
		if kind == "" {
			t.Fatalf("%s: name has neither Q4_K_M nor Q5_K_M", path)
		}
		m, err := Load(path)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		types := map[kernels.DType]int{}
		for _, l := range m.Layers {
			for _, w := range []kernels.Mat{l.Q.W, l.K.W, l.V.W, l.O.W, l.Gate.W, l.Up.W, l.Down.W} {
				types[w.DType]++
			}
		}
		types[m.Embed.DType]++
		types[m.Head.DType]++
		got := logits(m)
		top1, maxRel, mean := compareLogits(want, got, n)
		t.Logf("%s %v: vs f16 over %d positions: top-1 agreement %.4f, max|Δ|/max|logit| max %.4f mean %.4f", kind, types, n, top1, maxRel, mean)
		tol := kquantTolerance[kind]
		if top1 < tol.top1 || maxRel > tol.maxRel || mean > tol.meanRel {
			t.Errorf("%s: outside the documented tolerance (top-1 ≥ %v, max rel ≤ %v, mean rel ≤ %v)", kind, tol.top1, tol.maxRel, tol.meanRel)
		}
		// Decode (GEMV) against the prompt pass (GEMM) on the same
		// weights: they differ in how x meets the weights (8-bit x in
		// the products, f32 in the GEMM).
		const nd = 24
		v := m.Cfg.Vocab
		dense := decodeAll(t, m.NewSession(pool, 0), ids[:nd])
		checkRows(t, kind+" decode vs prompt", dense, got[:nd*v], v, 0.1)
		m.PrepareSparse()
		s := m.NewSession(pool, 0)
		s.SetSelector(allSelector{m.Cfg})
		checkRows(t, kind+" sparse(all) vs dense decode", decodeAll(t, s, ids[:nd]), dense, v, 0.1)
		m.Close()
	}
}
