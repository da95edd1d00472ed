package model

import "math"

// Recorder receives, during dense forward steps, what DejaVu's predictors
// learn from. For each layer of a step of n tokens it gets (all row-major,
// valid only during the call):
//   - attnIn: n×Hidden, the residual stream entering the attention block
//     (before its norm);
//   - mlpIn: n×Hidden, the residual stream entering the MLP block;
//   - act: n×FFN, the MLP activations: act(fc1) for OPT, act(gate) for gated
//     MLPs (a neuron with act = 0 contributes nothing);
//   - headNorm: n×Heads, the L2 norm of each head's contribution to the
//     attention block's output (its slice of the output projection applied
//     to its attention output).
type Recorder interface {
	Layer(l, n int, attnIn, mlpIn, act, headNorm []float32)
}

// SetRecorder makes dense forward steps report to rec (nil stops it).
func (s *Session) SetRecorder(rec Recorder) {
	s.rec = rec
	if rec != nil && s.recAttn == nil {
		c := s.m.Cfg
		s.recAttn = make([]float32, maxBatch*c.Hidden)
		s.recMLP = make([]float32, maxBatch*c.Hidden)
		s.recHead = make([]float32, maxBatch*c.Heads)
		s.recRow = make([]float32, c.Heads*c.HeadDim)
	}
}

// headNorms computes ‖O[:, h] · att_h‖ for each token and head into s.recHead.
func (s *Session) headNorms(l *Layer, n int) {
	c := s.m.Cfg
	hd, qd := c.HeadDim, c.Heads*c.HeadDim
	sq := s.recHead[:n*c.Heads]
	clear(sq)
	row := s.recRow[:qd]
	for r := 0; r < c.Hidden; r++ {
		l.O.W.Row(r, row)
		for i := 0; i < n; i++ {
			att := s.att[i*qd : (i+1)*qd]
			for h := 0; h < c.Heads; h++ {
				var v float32
				for e := h * hd; e < (h+1)*hd; e++ {
					v += row[e] * att[e]
				}
				sq[i*c.Heads+h] += v * v
			}
		}
	}
	for i, v := range sq {
		sq[i] = sqrt32(v)
	}
}

func sqrt32(v float32) float32 { return float32(math.Sqrt(float64(v))) }
