package sparsity

import (
	"fmt"

	"dejavu/kernels"
)

// Quantize stores the MLP predictors' low-rank matrices as dt (only
// kernels.Q8_0: llama.cpp's 8-bit blocks, 1.06 bytes a weight instead of
// 2), so that a decode step reads about half the predictor bytes. The rank
// is padded with zero rows of A and zero columns of B to a whole block (32),
// which leaves the logits as they were; the head predictors (rank Heads,
// a few KB) stay as they are. Quantizing changes the logits slightly, so
// the calibrated thresholds select slightly different neurons: measured
// in docs/sparsity.md ("8-bit predictors").
func (p *Predictors) Quantize(dt kernels.DType) error {
	if dt != kernels.Q8_0 {
		return fmt.Errorf("sparsity: predictors can be stored as q8_0 only, not %v", dt)
	}
	for l, lr := range p.mlp {
		if lr.A.DType == kernels.Q8_0 {
			continue
		}
		if lr.A.Cols%kernels.Q8Block != 0 {
			return fmt.Errorf("sparsity: q8_0 predictors need a hidden size in multiples of %d, have %d", kernels.Q8Block, lr.A.Cols)
		}
		p.mlp[l] = quantizeLowRank(lr)
	}
	pool := (*kernels.Pool)(nil)
	if p.exec != nil {
		pool = p.exec.Pool
	}
	p.initScratch(pool) // the padded rank may be larger
	return nil
}

func quantizeLowRank(lr lowRank) lowRank {
	r, in, out := lr.A.Rows, lr.A.Cols, lr.B.Rows
	rp := (r + kernels.Q8Block - 1) / kernels.Q8Block * kernels.Q8Block
	a := make([]float32, rp*in)
	for i := range r {
		lr.A.Row(i, a[i*in:(i+1)*in])
	}
	b := make([]float32, out*rp)
	for o := range out {
		lr.B.Row(o, b[o*rp:o*rp+r])
	}
	return lowRank{A: kernels.QuantizeQ8_0(rp, in, a), B: kernels.QuantizeQ8_0(out, rp, b), Bias: lr.Bias}
}
