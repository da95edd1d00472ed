package bench

import (
	"path/filepath"
	"testing"

	"dejavu/kernels"
	"dejavu/model"
)

func TestRunReportsConsistentNumbers(t *testing.T) {
	m, err := model.Load(filepath.Join("..", "testdata", "models", "llama-silu"))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	pool := kernels.NewPool(2)
	defer pool.Close()
	r, err := Run(m, pool, Options{PromptLen: 8, Gen: 8, BandwidthBytes: 32 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if r.DecodeMsMedian <= 0 || r.DecodeMsP90 < r.DecodeMsMedian || r.MachineGBps <= 0 || r.PromptTokPerS <= 0 {
		t.Fatalf("implausible result %+v", r)
	}
	if r.BytesPerToken != m.WeightBytes() {
		t.Fatalf("bytes per token %d, model has %d", r.BytesPerToken, m.WeightBytes())
	}
	if _, err := Run(m, pool, Options{PromptLen: 60, Gen: 10}); err == nil {
		t.Fatal("more tokens than positions: no error")
	}
}

func TestSyntheticShapes(t *testing.T) {
	m, err := model.Synthetic("opt-125m", kernels.F16, 1)
	if err != nil {
		t.Fatal(err)
	}
	// OPT-125m: 125.2M parameters, of which 38.6M are the tied embedding (read once per token as the head).
	if got := m.WeightBytes(); got < 2*120e6 || got > 2*126e6 {
		t.Fatalf("opt-125m weight bytes %d, want about 2 × 125M", got)
	}
	if _, err := model.Synthetic("gpt-5", kernels.F16, 1); err == nil {
		t.Fatal("unknown synthetic shape: no error")
	}
}
