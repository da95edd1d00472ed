package model

import (
	"cmp"
	"fmt"
	"slices"
)

// Oracle head selection: the upper bound of what any head predictor can
// reach. In a masked batch (SetSparseBatches) each layer first computes
// every head's attention output, and the oracle keeps, for each position,
// the budget[l] heads whose contributions to the block's output
// (‖O[:, h] · att_h‖, the norm DejaVu's head predictors are trained to
// rank) are largest, and zeroes the others. No predictor can see these
// norms before computing the heads, so this is a measurement of how sparse
// a model's attention is, not a way to run it faster.

// oracleHeads rides in the session's recorder slot, so that the dense
// pass computes the head norms (headNorms) before maskHeads reads them.
type oracleHeads struct {
	budget []int // heads kept per layer
	layer  int   // the layer of the current masked pass (maskBegin)
	order  []int
}

// Layer implements Recorder; the oracle needs nothing recorded.
func (*oracleHeads) Layer(l, n int, attnIn, mlpIn, act, headNorm []float32) {}

// SetOracleHeads makes masked batches keep, in layer l, the budget[l] heads
// of each position with the largest output norms (see above), in place of
// the selector's head choice (the selector still picks the MLP neurons).
// It replaces a Recorder; nil turns it off. Decode steps are not affected.
func (s *Session) SetOracleHeads(budget []int) error {
	c := s.m.Cfg
	if budget == nil {
		if _, ok := s.rec.(*oracleHeads); ok {
			s.SetRecorder(nil)
		}
		return nil
	}
	if len(budget) != c.Layers {
		return fmt.Errorf("model: oracle head budget for %d layers, model has %d", len(budget), c.Layers)
	}
	for l, k := range budget {
		if k < 1 || k > c.Heads {
			return fmt.Errorf("model: oracle head budget %d in layer %d is not in [1, %d]", k, l, c.Heads)
		}
	}
	s.SetRecorder(&oracleHeads{budget: append([]int(nil), budget...), order: make([]int, c.Heads)})
	return nil
}

// oracle returns the session's oracle head selection, if any.
func (s *Session) oracle() *oracleHeads {
	o, _ := s.rec.(*oracleHeads)
	return o
}

// oracleMask replaces the head masks of n rows of the current layer with
// the oracle's choice from the head norms in s.recHead, correcting the
// computed-head count maskBegin made.
func (s *Session) oracleMask(o *oracleHeads, n int) {
	H := s.m.Cfg.Heads
	k := o.budget[o.layer]
	for i := 0; i < n; i++ {
		norms, mask := s.recHead[i*H:(i+1)*H], s.headMask[i*H:(i+1)*H]
		for h, on := range mask {
			if on {
				s.density.HeadComputed--
			}
			o.order[h] = h
		}
		slices.SortStableFunc(o.order, func(a, b int) int { return cmp.Compare(norms[b], norms[a]) })
		clear(mask)
		for _, h := range o.order[:k] {
			mask[h] = true
		}
		s.density.HeadComputed += int64(k)
	}
}
