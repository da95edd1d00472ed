package sparsity

import (
	"math"
	"math/rand/v2"

	"dejavu/kernels"
)

// initLowRank sets the trainer's A (r×d) and Bᵀ (F×r) to the best rank-r
// approximation of W' (its top right singular subspace Q: A = Q, Bᵀ = W'Qᵀ,
// found by subspace iteration on W'ᵀW') and the bias to b'.
func initLowRank(t *trainer, w, b []float32, rng *rand.Rand) {
	d, F, r := t.d.in, t.d.out, t.r
	e := t.exec
	wt := make([]float32, d*F)
	transpose(wt, w, F, d)
	g := make([]float32, d*d)
	e.MatMul(g, kernels.MatF32(d, F, wt), wt, d) // g = W'ᵀW'
	q := make([]float32, r*d)
	for i := range q {
		q[i] = float32(rng.NormFloat64())
	}
	orthonormalize(q, r, d)
	y := make([]float32, r*d)
	for it := 0; it < 12; it++ {
		e.MatMul(y, kernels.MatF32(d, d, g), q, r)
		q, y = y, q
		orthonormalize(q, r, d)
	}
	copy(t.A, q)
	e.MatMul(t.Bt, kernels.MatF32(r, d, q), w, F)
	copy(t.c, b)
}

// orthonormalize makes the rows of q (r×d) orthonormal (modified Gram–Schmidt).
func orthonormalize(q []float32, r, d int) {
	for i := 0; i < r; i++ {
		qi := q[i*d : (i+1)*d]
		for j := 0; j < i; j++ {
			qj := q[j*d : (j+1)*d]
			p := kernels.Dot(qi, qj)
			for k := range qi {
				qi[k] -= p * qj[k]
			}
		}
		n := float32(math.Sqrt(float64(kernels.Dot(qi, qi))))
		if n < 1e-20 {
			n = 1
		}
		for k := range qi {
			qi[k] /= n
		}
	}
}
