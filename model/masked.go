package model

import "slices"

// Sparse batches: multi-token passes that apply the selector by masking.
// Every position still computes the dense products (GEMM), but only the
// heads and neurons the selector picks for that position contribute to the
// residual stream: their attention outputs and MLP activations are kept,
// the others zeroed before the output and down projections. The result is
// what the sparse decode path computes for the same tokens, up to float
// rounding, at the speed of a prompt pass — the way to evaluate a sparse
// configuration's quality over whole datasets. Speed is measured with
// decode steps (sparse.go), which skip the work instead.

// SetSparseBatches makes passes of more than one token apply the session's
// selector by masking (see above); decode steps stay on the sparse path.
// Off by default: DejaVu keeps prompt processing dense.
func (s *Session) SetSparseBatches(on bool) {
	s.maskBatches = on
	if on && s.headMask == nil {
		c := s.m.Cfg
		s.headMask = make([]bool, maxBatch*c.Heads)
		s.nextMask = make([]bool, maxBatch*c.Heads)
		if s.neurons == nil {
			s.neurons = make([]int32, 0, c.FFN)
			s.nextHeads = make([]int32, 0, c.Heads)
		}
	}
}

// masking reports whether the current batched pass is masked.
func (s *Session) masking() bool { return s.maskBatches && s.sel != nil }

// maskBegin starts layer li of a masked pass over n rows whose residual
// inputs are x: this layer's head masks are the previous layer's lookahead
// (all heads in layer 0), and the lookahead for layer li+1 runs on x, as
// in sparseStep.
func (s *Session) maskBegin(li int, x []float32, n int) {
	c := s.m.Cfg
	H, d := c.Heads, c.Hidden
	if mlpFromLayerInput(s.sel) {
		if s.maskIn == nil {
			s.maskIn = make([]float32, maxBatch*d)
		}
		copy(s.maskIn, x[:n*d])
	}
	s.headMask, s.nextMask = s.nextMask, s.headMask
	cur := s.headMask[:n*H]
	if o := s.oracle(); o != nil {
		o.layer = li
	}
	if li == 0 {
		for i := range cur {
			cur[i] = true
		}
	}
	for _, on := range cur {
		if on {
			s.density.HeadComputed++
		}
	}
	s.density.HeadTotal += int64(n * H)
	// The key/value heads a decode step would read (kvcache.go).
	group := H / c.KVHeads
	for g := range n * c.KVHeads {
		if slices.Contains(cur[g*group:(g+1)*group], true) {
			s.density.KVComputed++
		}
	}
	s.density.KVTotal += int64(n * c.KVHeads)
	if li == 0 {
		s.density.Tokens += n
	}
	if li+1 == len(s.m.Layers) {
		return
	}
	next := s.nextMask[:n*H]
	clear(next)
	for i := 0; i < n; i++ {
		s.nextHeads = s.sel.Heads(li, x[i*d:(i+1)*d], s.nextHeads[:0])
		for _, h := range s.nextHeads {
			next[i*H+int(h)] = true
		}
	}
}

// maskHeads zeroes the attention outputs (s.att) of the heads not selected
// for each of n rows (chosen by the oracle instead, if set: oracle.go).
func (s *Session) maskHeads(n int) {
	if o := s.oracle(); o != nil {
		s.oracleMask(o, n)
	}
	c := s.m.Cfg
	H, hd := c.Heads, c.HeadDim
	for i := 0; i < n; i++ {
		for h := 0; h < H; h++ {
			if !s.headMask[i*H+h] {
				clear(s.att[(i*H+h)*hd : (i*H+h+1)*hd])
			}
		}
	}
}

// maskNeurons zeroes, in each of n rows of act (n × FFN activations, the
// input of the down projection), the neurons the selector does not pick
// from that row's residual x (the MLP block's input, as in sparseStep; the
// layer's input, kept by maskBegin, for a LayerInputMLP selector).
func (s *Session) maskNeurons(li int, x, act []float32, n int) {
	c := s.m.Cfg
	d, f := c.Hidden, c.FFN
	if mlpFromLayerInput(s.sel) {
		x = s.maskIn[:n*d]
	}
	for i := 0; i < n; i++ {
		s.neurons = s.sel.MLP(li, x[i*d:(i+1)*d], s.neurons[:0])
		s.density.MLPComputed += int64(len(s.neurons))
		s.density.MLPTotal += int64(f)
		row, sel := act[i*f:(i+1)*f], s.neurons
		for e := range row {
			if len(sel) > 0 && int(sel[0]) == e {
				sel = sel[1:]
				continue
			}
			row[e] = 0
		}
	}
}
