package generate

import (
	"math"
	"testing"
)

func TestGreedy(t *testing.T) {
	s := NewSampler(4, Options{})
	if got := s.Sample([]float32{0.1, 3, -1, 2.9}); got != 1 {
		t.Fatalf("greedy picked %d, want 1", got)
	}
}

func TestTopKAndTopPRestrict(t *testing.T) {
	logits := []float32{5, 4, 3, 0, -1, -2}
	s := NewSampler(len(logits), Options{Temperature: 1, TopK: 2, Seed: 7})
	for i := 0; i < 500; i++ {
		if id := s.Sample(logits); id > 1 {
			t.Fatalf("top-k 2 sampled id %d", id)
		}
	}
	// p(0) ≈ 0.66, p(0)+p(1) ≈ 0.90: top-p 0.8 keeps exactly ids 0 and 1.
	s = NewSampler(len(logits), Options{Temperature: 1, TopP: 0.8, Seed: 7})
	seen := map[int]int{}
	for i := 0; i < 2000; i++ {
		seen[s.Sample(logits)]++
	}
	if len(seen) != 2 || seen[0] == 0 || seen[1] == 0 {
		t.Fatalf("top-p 0.8 sampled %v, want ids 0 and 1 only", seen)
	}
}

func TestDistributionAndSeed(t *testing.T) {
	logits := []float32{0, float32(math.Log(3))} // p = 1/4, 3/4
	a := NewSampler(2, Options{Temperature: 1, Seed: 42})
	b := NewSampler(2, Options{Temperature: 1, Seed: 42})
	ones := 0
	const n = 20000
	for i := 0; i < n; i++ {
		x, y := a.Sample(logits), b.Sample(logits)
		if x != y {
			t.Fatal("same seed, different samples")
		}
		ones += x
	}
	if f := float64(ones) / n; math.Abs(f-0.75) > 0.02 {
		t.Fatalf("p(1) = %.3f, want 0.75", f)
	}
}

func TestValidate(t *testing.T) {
	for _, o := range []Options{{Temperature: -1}, {TopK: -2}, {TopP: 1.5}, {Temperature: math.NaN()}} {
		if o.Validate() == nil {
			t.Errorf("%+v: no error", o)
		}
	}
}

func TestSampleDoesNotAllocate(t *testing.T) {
	logits := make([]float32, 1000)
	for i := range logits {
		logits[i] = float32(i%17) * 0.3
	}
	s := NewSampler(len(logits), Options{Temperature: 0.8, TopK: 40, TopP: 0.9, Seed: 1})
	if a := testing.AllocsPerRun(100, func() { s.Sample(logits) }); a != 0 {
		t.Fatalf("Sample allocates %.1f times", a)
	}
}
