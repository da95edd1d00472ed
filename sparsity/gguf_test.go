package sparsity

import (
	"path/filepath"
	"strings"
	"testing"

	"dejavu/kernels"
	"dejavu/model"
)

// TestPredictorsOnGGUF: predictors trained on a GGUF model (an f16 copy of
// a fixture) load for that file and decode it sparsely, and for the same
// f16 weights loaded from the safetensors (q/k rows in the other RoPE
// layout); the same weights in other precisions (the f32 safetensors, a
// Q8_0 GGUF) are other models to the fingerprint and are refused.
func TestPredictorsOnGGUF(t *testing.T) {
	pool := kernels.NewPool(2)
	defer pool.Close()
	src := loadTiny(t, "llama-relu-sharded")
	dir := t.TempDir()
	write := func(name string, dt kernels.DType) *model.Model {
		path := filepath.Join(dir, name)
		if err := model.WriteGGUF(path, src, model.GGUFWriteOptions{DType: dt}); err != nil {
			t.Fatal(err)
		}
		m, err := model.Load(path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.Close() })
		return m
	}
	g := write("f16.gguf", kernels.F16)
	_, p := collectTrain(t, g, pool, dir)
	path := filepath.Join(dir, "pred.safetensors")
	if err := p.Save(path); err != nil {
		t.Fatal(err)
	}
	q, err := Load(path, g)
	if err != nil {
		t.Fatalf("predictors trained on the GGUF do not load for it: %v", err)
	}
	if err := q.SetSelection(Selection{MLPDensity: 0.25, HeadDensity: 0.5}); err != nil {
		t.Fatal(err)
	}
	g.PrepareSparse()
	a, err := TopOneAgreement(g, pool, q, randomDocs(g, 1, 20, 3)[0][:4], 12)
	if err != nil {
		t.Fatal(err)
	}
	if d := a.Density; d.Tokens != 11 || d.MLP() != 0.25 || d.Heads() >= 1 {
		t.Errorf("sparse decode of the GGUF: density %+v", d)
	}
	h := loadTiny(t, "llama-relu-sharded")
	if err := h.Quantize(kernels.F16); err != nil {
		t.Fatal(err)
	}
	if Fingerprint(h) != Fingerprint(g) {
		t.Errorf("f16 safetensors fingerprint %.12s differs from its f16 GGUF's %.12s", Fingerprint(h), Fingerprint(g))
	}
	if _, err := Load(path, h); err != nil {
		t.Errorf("predictors of the f16 GGUF refused for the same f16 weights from safetensors: %v", err)
	}
	for what, other := range map[string]*model.Model{"the f32 safetensors": src, "a Q8_0 GGUF": write("q8.gguf", kernels.Q8_0)} {
		if _, err := Load(path, other); err == nil || !strings.Contains(err.Error(), "another model") {
			t.Errorf("predictors of the f16 GGUF loaded for %s: %v", what, err)
		}
	}
}

// TestLegacyFingerprint: predictors stamped with the first fingerprint
// version (architecture name in the hash) still load for their model;
// another stamp is refused.
func TestLegacyFingerprint(t *testing.T) {
	pool := kernels.NewPool(2)
	defer pool.Close()
	m := loadTiny(t, "opt-preln")
	dir := t.TempDir()
	_, p := collectTrain(t, m, pool, dir)
	if legacyFingerprint(m) == Fingerprint(m) {
		t.Fatal("legacy and current fingerprints coincide")
	}
	for _, c := range []struct {
		fp string
		ok bool
	}{{legacyFingerprint(m), true}, {Fingerprint(m), true}, {strings.Repeat("0", 64), false}} {
		p.Fingerprint = c.fp
		path := filepath.Join(dir, "p.safetensors")
		if err := p.Save(path); err != nil {
			t.Fatal(err)
		}
		_, err := Load(path, m)
		if (err == nil) != c.ok {
			t.Errorf("fingerprint %.12s: load error %v, want ok %v", c.fp, err, c.ok)
		}
	}
}
