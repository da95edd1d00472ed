package sparsity

import "dejavu/kernels"

// Accessors for other backends (the CUDA backend in package cuda), which run
// the predictors on their own devices.

// LowRank is one predictor's weights: logits z = B·(A·x̂) + Bias, where x̂
// is the input standardized (see Predictors.RMSInput).
type LowRank struct {
	A, B kernels.Mat // Rank×In, Out×Rank
	Bias []float32   // Out
}

// MLPPredictor returns layer l's neuron predictor (input: the hidden state
// entering the MLP block).
func (p *Predictors) MLPPredictor(l int) LowRank {
	lr := p.mlp[l]
	return LowRank{A: lr.A, B: lr.B, Bias: lr.Bias}
}

// HeadPredictor returns the lookahead predictor that picks layer l+1's
// heads from layer l's attention input; ok is false on the last layer.
func (p *Predictors) HeadPredictor(l int) (lr LowRank, ok bool) {
	if l < 0 || l >= len(p.head) {
		return LowRank{}, false
	}
	h := p.head[l]
	return LowRank{A: h.A, B: h.B, Bias: h.Bias}, true
}

// RMSInput reports how inputs are standardized before the predictors:
// x / rms(x) when true, (x − mean) / std(x) otherwise (both with ε = 1e-5,
// no affine weights).
func (p *Predictors) RMSInput() bool { return p.rms }

// LayerSelection is how layer l's logits become a selection under the
// current Selection: the top mlpK neurons, or, when useThreshold, the
// neurons whose logit exceeds threshold; and the top headK heads of layer
// l+1 (0 on the last layer).
func (p *Predictors) LayerSelection(l int) (mlpK int, threshold float32, useThreshold bool, headK int) {
	t := p.thr[l]
	if l < len(p.headK) {
		headK = p.headK[l]
	}
	return p.mlpK[l], t, t == t, headK
}
