package bench

import (
	"math/rand/v2"
	"slices"

	"dejavu/model"
)

// RandomSelector picks a fixed fraction of neurons and heads uniformly at
// random for every token: the kernel-speed view of DejaVu, measurable
// before predictors exist (as the paper's own latency benchmark does).
type RandomSelector struct {
	ffn, heads  int
	mlpK, headK int
	rng         *rand.Rand
	perm        []int32
}

// NewRandomSelector selects round(mlp·FFN) neurons and round(heads·Heads)
// heads (at least one of each) per layer and token.
func NewRandomSelector(c model.Config, mlp, heads float64, seed uint64) *RandomSelector {
	k := func(d float64, n int) int { return min(n, max(1, int(d*float64(n)+0.5))) }
	return &RandomSelector{ffn: c.FFN, heads: c.Heads, mlpK: k(mlp, c.FFN), headK: k(heads, c.Heads),
		rng: rand.New(rand.NewPCG(seed, 7)), perm: make([]int32, max(c.FFN, c.Heads))}
}

func (r *RandomSelector) pick(n, k int, dst []int32) []int32 {
	p := r.perm[:n]
	for i := range p {
		p[i] = int32(i)
	}
	for i := 0; i < k; i++ { // partial Fisher–Yates
		j := i + r.rng.IntN(n-i)
		p[i], p[j] = p[j], p[i]
	}
	start := len(dst)
	dst = append(dst, p[:k]...)
	slices.Sort(dst[start:])
	return dst
}

// MLP implements model.Selector.
func (r *RandomSelector) MLP(_ int, _ []float32, dst []int32) []int32 {
	return r.pick(r.ffn, r.mlpK, dst)
}

// Heads implements model.Selector.
func (r *RandomSelector) Heads(_ int, _ []float32, dst []int32) []int32 {
	return r.pick(r.heads, r.headK, dst)
}
