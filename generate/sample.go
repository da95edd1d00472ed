// Package generate turns next-token logits into tokens: temperature, top-k
// and top-p (nucleus) sampling with a seeded generator, and greedy decoding.
package generate

import (
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
)

// Options selects how the next token is chosen.
type Options struct {
	Temperature float64 // 0 = greedy (argmax)
	TopK        int     // keep the K most likely tokens; 0 = all
	TopP        float64 // keep the smallest set whose probability reaches P; 0 or 1 = all
	Seed        uint64
}

// Validate reports options outside their ranges.
func (o Options) Validate() error {
	switch {
	case o.Temperature < 0 || math.IsNaN(o.Temperature) || math.IsInf(o.Temperature, 0):
		return fmt.Errorf("temperature must be ≥ 0, got %v", o.Temperature)
	case o.TopK < 0:
		return fmt.Errorf("top-k must be ≥ 0, got %d", o.TopK)
	case o.TopP < 0 || o.TopP > 1 || math.IsNaN(o.TopP):
		return fmt.Errorf("top-p must be in [0, 1], got %v", o.TopP)
	}
	return nil
}

// Sampler picks tokens from logits. It reuses its buffers: Sample does not
// allocate.
type Sampler struct {
	o     Options
	rng   *rand.Rand
	idx   []int32
	probs []float64
}

// NewSampler makes a sampler for a vocabulary of n tokens.
func NewSampler(n int, o Options) *Sampler {
	return &Sampler{o: o, rng: rand.New(rand.NewPCG(o.Seed, o.Seed^0x9e3779b97f4a7c15)),
		idx: make([]int32, n), probs: make([]float64, n)}
}

// Argmax is the index of the largest value (the first on ties).
func Argmax(x []float32) int {
	b := 0
	for i, v := range x {
		if v > x[b] {
			b = i
		}
	}
	return b
}

// Sample chooses the next token.
func (s *Sampler) Sample(logits []float32) int {
	if s.o.Temperature == 0 || s.o.TopK == 1 {
		return Argmax(logits)
	}
	n := len(logits)
	idx := s.idx[:n]
	for i := range idx {
		idx[i] = int32(i)
	}
	// Order by logit, descending (ties by id, so the order is deterministic).
	slices.SortFunc(idx, func(a, b int32) int {
		if c := cmp.Compare(logits[b], logits[a]); c != 0 {
			return c
		}
		return cmp.Compare(a, b)
	})
	k := n
	if s.o.TopK > 0 && s.o.TopK < n {
		k = s.o.TopK
	}
	p := s.probs[:k]
	inv := 1 / s.o.Temperature
	top := float64(logits[idx[0]])
	var sum float64
	for i := range p {
		p[i] = math.Exp((float64(logits[idx[i]]) - top) * inv)
		sum += p[i]
	}
	if s.o.TopP > 0 && s.o.TopP < 1 {
		var acc float64
		for i := range p {
			acc += p[i] / sum
			if acc >= s.o.TopP {
				k = i + 1
				break
			}
		}
		p = p[:k]
		sum = 0
		for _, v := range p {
			sum += v
		}
	}
	r := s.rng.Float64() * sum
	for i, v := range p {
		r -= v
		if r < 0 {
			return int(idx[i])
		}
	}
	return int(idx[len(p)-1])
}
