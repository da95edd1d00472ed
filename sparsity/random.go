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
//
// Each layer also gets a calibrated logit threshold, stored as Train
// stores its own (LayerStats.Threshold): the (1 − mlpDensity) quantile of
// the layer's logits over randomStdInputs random standardized inputs.
// Their logits are B·A·x̂ with x̂ of unit scale and A, B random of
// unit-scale output, about N(0, 1) whatever the input, so the threshold
// selects about mlpDensity·FFN neurons of any token. The stats' budgets
// are those of the densities, so SetSelection(Selection{}) selects the
// MLP by these thresholds and headDensity·Heads heads (top-k): the
// selection of trained predictors by default, and the one the GPU runs
// in a single kernel (pred_mlp).
func RandomPredictors(m *model.Model, mlpDensity, headDensity float64, seed uint64) (*Predictors, error) {
	return randomPredictors(m, Fingerprint(m), mlpDensity, headDensity, seed)
}

// RandomPredictorsForConfig is RandomPredictors for a model whose weights
// are not on the host (a synthetic shape built on a GPU): the shapes come
// from c, the layers' bytes (which set the MLP rank) from c and the weight
// type dt. The predictors have no fingerprint: sparsity.Load would refuse
// them for any model.
func RandomPredictorsForConfig(c model.Config, dt kernels.DType, source string, mlpDensity, headDensity float64, seed uint64) (*Predictors, error) {
	return randomPredictors(shapeModel(c, dt, source), "", mlpDensity, headDensity, seed)
}

// AutoRankForConfig is AutoRank for layer l of a model of shape c with
// weights of type dt (every layer of a synthetic shape has the same): the
// MLP predictor rank RandomPredictorsForConfig gives it at frac of the
// layer's bytes.
func AutoRankForConfig(c model.Config, dt kernels.DType, l int, frac float64) int {
	return AutoRank(shapeModel(c, dt, ""), l, frac)
}

// shapeModel is a model with c's layer shapes and no weights: matrices of
// type dt with rows and columns but no data, enough for AutoRank and
// layerBytes (nothing may read its rows).
func shapeModel(c model.Config, dt kernels.DType, source string) *model.Model {
	d, f, qd, kvd := c.Hidden, c.FFN, c.Heads*c.HeadDim, c.KVHeads*c.HeadDim
	lin := func(rows, cols int) model.Linear {
		return model.Linear{W: kernels.Mat{Rows: rows, Cols: cols, DType: dt}}
	}
	m := &model.Model{Cfg: c, Source: source, Layers: make([]model.Layer, c.Layers)}
	for i := range m.Layers {
		l := &m.Layers[i]
		l.Q, l.K, l.V, l.O = lin(qd, d), lin(kvd, d), lin(kvd, d), lin(d, qd)
		if c.Family == model.Llama {
			l.Gate = lin(f, d)
		}
		l.Up, l.Down = lin(f, d), lin(d, f)
	}
	return m
}

// SetRandomMLPInput makes random predictors (RandomPredictors,
// RandomPredictorsForConfig) stand for predictors trained on the given
// MLP input (MLPInputBlock or MLPInputLayer): the same weights and
// selections, read from the other hidden state, which moves where the
// prediction runs, not what it costs. Trained predictors refuse: they read
// what they were trained on.
func (p *Predictors) SetRandomMLPInput(in string) error {
	if p.Info.Tokens > 0 {
		return fmt.Errorf("sparsity: these predictors were trained on the MLP input %q; their input cannot change", p.mlpInput())
	}
	if err := checkMLPInput(in); err != nil {
		return fmt.Errorf("sparsity: %w", err)
	}
	p.Info.MLPInput = in
	return nil
}

// randomStdInputs is the number of random inputs the thresholds of random
// predictors are calibrated on.
const randomStdInputs = 32

func randomPredictors(m *model.Model, fp string, mlpDensity, headDensity float64, seed uint64) (*Predictors, error) {
	if mlpDensity <= 0 || mlpDensity > 1 || headDensity <= 0 || headDensity > 1 {
		return nil, fmt.Errorf("sparsity: random predictors: densities must lie in (0, 1], got mlp %v, heads %v", mlpDensity, headDensity)
	}
	c := m.Cfg
	norm := "layernorm"
	if c.Family == model.Llama {
		norm = "rms"
	}
	p := &Predictors{Fingerprint: fp, Info: Info{Model: m.Source + " (random predictors)", Layers: c.Layers,
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
	// The densities' budgets become the calibrated ones (Selection{}).
	for l := range p.Info.Stats {
		st := &p.Info.Stats[l]
		st.Budget, st.PredDensity = p.mlpK[l], float64(p.mlpK[l])/float64(c.FFN)
		if l < len(p.headK) {
			st.HeadBudget, st.HeadDensity = p.headK[l], float64(p.headK[l])/float64(c.Heads)
		}
	}
	p.calibrateThresholds(mlpDensity, randomStdInputs, seed)
	return p, nil
}

// calibrateThresholds sets every layer's Threshold (and ThreshDensity) to
// the logit above which a fraction density of its MLP predictor's logits
// lie, over n random standardized inputs (all neurons at density 1).
func (p *Predictors) calibrateThresholds(density float64, n int, seed uint64) {
	in, F := p.Info.Hidden, p.Info.FFN
	rng := rand.New(rand.NewPCG(seed, 0xca1b))
	x := make([]float32, n*in)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	for i := 0; i < n; i++ {
		standardize(x[i*in:(i+1)*in], x[i*in:(i+1)*in], p.rms)
	}
	pool := kernels.NewPool(0)
	defer pool.Close()
	e := kernels.NewExec(pool, max(in, maxRank(p.mlp)))
	h := make([]float32, n*maxRank(p.mlp))
	z := make([]float32, n*F)
	for l := range p.mlp {
		lr := &p.mlp[l]
		r := lr.A.Rows
		e.MatMul(h[:n*r], lr.A, x, n)
		e.MatMul(z, lr.B, h[:n*r], n)
		for i := 0; i < n; i++ {
			kernels.Add(z[i*F:(i+1)*F], lr.Bias)
		}
		st := &p.Info.Stats[l]
		k := int(math.Round(density * float64(len(z))))
		if k >= len(z) {
			st.Threshold, st.ThreshDensity = -math.MaxFloat32, 1
			continue
		}
		t := kthLargest(z, k+1) // neurons strictly above it: k
		above := 0
		for _, v := range z {
			if v > t {
				above++
			}
		}
		st.Threshold, st.ThreshDensity = t, float64(above)/float64(len(z))
	}
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
