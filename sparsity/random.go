package sparsity

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"

	"dejavu/internal/half"
	"dejavu/kernels"
	"dejavu/model"
)

// RandomPredictors are predictors of the size Train would give m (MLP rank
// AutoRank at 10% of each layer's bytes, head predictors of rank Heads,
// f16 weights) with random weights, selecting the top mlpDensity·FFN
// neurons and headDensity·Heads heads of every layer. Their choices are
// meaningless; their cost is that of trained predictors, so sparse decode
// speed can be measured with the predictors' own work included on models
// that have none (`dejavu bench --synthetic NAME --random-predictors`).
func RandomPredictors(m *model.Model, mlpDensity, headDensity float64, seed uint64) (*Predictors, error) {
	if mlpDensity <= 0 || mlpDensity > 1 || headDensity <= 0 || headDensity > 1 {
		return nil, fmt.Errorf("sparsity: random predictors: densities must lie in (0, 1], got mlp %v, heads %v", mlpDensity, headDensity)
	}
	c := m.Cfg
	norm := "layernorm"
	if c.Family == model.Llama {
		norm = "rms"
	}
	p := &Predictors{Fingerprint: Fingerprint(m), Info: Info{Model: m.Source + " (random predictors)", Layers: c.Layers,
		Hidden: c.Hidden, FFN: c.FFN, Heads: c.Heads, Norm: norm, Kind: "linear-lowrank"}}
	rng := rand.New(rand.NewPCG(seed, 0x7a11))
	for l := 0; l < c.Layers; l++ {
		r := AutoRank(m, l, 0.1)
		p.mlp = append(p.mlp, randomLowRank(rng, c.Hidden, r, c.FFN))
		st := LayerStats{Layer: l, Rank: r, LayerBytes: layerBytes(m, l), Budget: c.FFN}
		if l+1 < c.Layers {
			p.head = append(p.head, randomLowRank(rng, c.Hidden, c.Heads, c.Heads))
			st.HeadBudget = c.Heads
		}
		st.PredictorBytes = p.mlp[l].A.Bytes() + p.mlp[l].B.Bytes() + 4*int64(c.FFN)
		if l < len(p.head) {
			st.PredictorBytes += p.head[l].A.Bytes() + p.head[l].B.Bytes() + 4*int64(c.Heads)
		}
		p.Info.Stats = append(p.Info.Stats, st)
	}
	if err := p.finish(); err != nil {
		return nil, err
	}
	if err := p.SetSelection(Selection{MLPDensity: mlpDensity, HeadDensity: headDensity}); err != nil {
		return nil, err
	}
	return p, nil
}

// randomLowRank is an in→r→out map with f16 weights of unit-scale output.
func randomLowRank(rng *rand.Rand, in, r, out int) lowRank {
	mat := func(rows, cols int) kernels.Mat {
		b := make([]byte, 2*rows*cols)
		s := 1 / math.Sqrt(float64(cols))
		for i := 0; i < rows*cols; i++ {
			binary.LittleEndian.PutUint16(b[2*i:], half.F32ToF16(float32(rng.NormFloat64()*s)))
		}
		w, err := kernels.NewMat(kernels.F16, rows, cols, b)
		if err != nil {
			panic(err) // sizes are consistent by construction
		}
		return w
	}
	return lowRank{A: mat(r, in), B: mat(out, r), Bias: make([]float32, out)}
}
