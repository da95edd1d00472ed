package sparsity

import (
	"testing"

	"dejavu/kernels"
	"dejavu/model"
)

// BenchmarkPredictorQ8: the MLP predictors of all layers of synthetic
// opt-1.3b (rank from AutoRank, 10% of each layer's bytes) for one token,
// f16 against q8_0 weights, one thread.
func BenchmarkPredictorQ8(b *testing.B) {
	m, err := model.Synthetic("opt-1.3b", kernels.F16, 1)
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	pool := kernels.NewPool(1)
	defer pool.Close()
	x := make([]float32, m.Cfg.Hidden)
	for i := range x {
		x[i] = float32(i%7) - 3
	}
	dst := make([]int32, 0, m.Cfg.FFN)
	for _, dt := range []kernels.DType{kernels.F16, kernels.Q8_0} {
		p, err := RandomPredictors(m, 0.1, 0.5, 1)
		if err != nil {
			b.Fatal(err)
		}
		p.SetPool(pool)
		if dt == kernels.Q8_0 {
			if err := p.Quantize(dt); err != nil {
				b.Fatal(err)
			}
		}
		b.Run(dt.String(), func(b *testing.B) {
			b.SetBytes(p.Bytes())
			for range b.N {
				for l := range m.Cfg.Layers {
					dst = p.MLP(l, x, dst[:0])
				}
			}
		})
	}
}
