package bench

import (
	"math/bits"
	"math/rand/v2"

	"dejavu/model"
)

// RandomSelector picks a fixed fraction of neurons and heads uniformly at
// random for every token: the kernel-speed view of DejaVu, measurable
// before predictors exist (as the paper's own latency benchmark does).
type RandomSelector struct {
	ffn, heads  int
	mlpK, headK int
	rng         *rand.PCG // the concrete generator: no interface call per draw
	bits        []uint64  // one bit per neuron or head
}

// NewRandomSelector selects round(mlp·FFN) neurons and round(heads·Heads)
// heads (at least one of each) per layer and token.
func NewRandomSelector(c model.Config, mlp, heads float64, seed uint64) *RandomSelector {
	k := func(d float64, n int) int { return min(n, max(1, int(d*float64(n)+0.5))) }
	return &RandomSelector{ffn: c.FFN, heads: c.Heads, mlpK: k(mlp, c.FFN), headK: k(heads, c.Heads),
		rng: rand.NewPCG(seed, 7), bits: make([]uint64, (max(c.FFN, c.Heads)+63)/64)}
}

func (r *RandomSelector) pick(n, k int, dst []int32) []int32 {
	// Floyd's sampling into a bitmap, read back in order: k random draws
	// and n/64 words, where a shuffle and a sort cost ~n + k·log k (the
	// selector's time counts in the sparse step's).
	b := r.bits[:(n+63)/64]
	clear(b)
	for j := n - k; j < n; j++ {
		// t uniform in [0, j] by a multiply-shift (Lemire) of 64 random
		// bits; the bias, under 2⁻⁵⁰ here, does not matter to a benchmark.
		hi, _ := bits.Mul64(r.rng.Uint64(), uint64(j+1))
		t := int(hi)
		if b[t>>6]&(1<<(t&63)) != 0 {
			t = j
		}
		b[t>>6] |= 1 << (t & 63)
	}
	for w, v := range b {
		for v != 0 {
			dst = append(dst, int32(w<<6+bits.TrailingZeros64(v)))
			v &= v - 1
		}
	}
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
