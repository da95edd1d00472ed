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

// TestRandomSelectorPicks checks the selections: k sorted, distinct indices
// below n, and every index chosen about k/n of the time.
func TestRandomSelectorPicks(t *testing.T) {
	c := model.Config{FFN: 200, Heads: 12}
	s := NewRandomSelector(c, 0.1, 0.5, 3)
	counts := make([]int, c.FFN)
	const reps = 2000
	for range reps {
		got := s.MLP(0, nil, nil)
		if len(got) != 20 {
			t.Fatalf("picked %d neurons, want 20", len(got))
		}
		for i, v := range got {
			if v < 0 || int(v) >= c.FFN || i > 0 && v <= got[i-1] {
				t.Fatalf("selection %v is not sorted, distinct and in range", got)
			}
			counts[v]++
		}
		if h := s.Heads(0, nil, []int32{99}); len(h) != 7 || h[0] != 99 {
			t.Fatalf("heads %v: want 99 then 6 heads appended", h)
		}
	}
	for i, n := range counts { // mean 200, sd ≈ 13.4
		if n < 130 || n > 270 {
			t.Fatalf("neuron %d chosen %d times in %d, want about %d", i, n, reps, reps/10)
		}
	}
}
