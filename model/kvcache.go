package model

import "dejavu/kernels"

// Deferred keys and values. A sparse decode step computes K and V only for
// the key/value heads its selected heads read; the skipped heads' entries
// are computed later, when a step selects the head again or a dense pass
// needs every head, from the attention inputs the sparse steps keep. The
// cache a head reads is therefore always complete (the values equal eager
// computation up to the rounding of the dot kernels), while each decode
// step reads the K and V weights of its selected heads only: DejaVu's head
// sparsity applied to all four attention projections instead of two.
//
// Catching a head up over m positions reads its weight rows once and applies
// them to the m inputs while they are in cache (kernels.CacheMatMul), so the
// weight traffic of K and V follows the head density; the arithmetic is
// that of eager computation, done later. The price is memory: Hidden floats
// per position and layer for the kept inputs (half the KV cache of a model
// with as many key/value heads as heads), allocated only for a layer where
// some head falls behind.

// sparseKV brings the key/value heads that layer li's selected heads read
// up to date, including the current position pos whose attention input is
// in, and keeps in for the heads it leaves behind.
func (s *Session) sparseKV(li int, l *Layer, in []float32) {
	c := s.m.Cfg
	group := int32(c.Heads / c.KVHeads)
	need := s.kvNeed[:0]
	if s.eagerKV {
		for g := range c.KVHeads {
			need = append(need, int32(g))
		}
	} else {
		for _, h := range s.heads { // sorted: key/value heads ascend
			if g := h / group; len(need) == 0 || need[len(need)-1] != g {
				need = append(need, g)
			}
		}
	}
	s.kvNeed = need
	s.density.KVComputed += int64(len(need))
	s.density.KVTotal += int64(c.KVHeads)
	d := c.Hidden
	if s.kvIn[li] == nil && len(need) < c.KVHeads {
		// The first head of this layer to fall behind (an allocation of
		// address space: untouched pages cost no memory).
		s.kvIn[li] = make([]float32, s.maxCtx*d)
	}
	if kin := s.kvIn[li]; kin != nil {
		copy(kin[s.pos*d:(s.pos+1)*d], in)
		s.fillKV(li, l, need, kin, 0, s.pos+1)
		return
	}
	// No head of this layer was ever left behind: all are complete up to
	// pos and all are needed now; in is the only input.
	s.fillKV(li, l, need, in, s.pos, s.pos+1)
}

// catchUpKV computes the entries that sparse steps left out of layer li's
// cache, so that every head is complete up to pos.
func (s *Session) catchUpKV(li int) {
	if s.kvIn[li] == nil {
		return
	}
	need := s.kvNeed[:0]
	for g, done := range s.kvDone[li] {
		if int(done) < s.pos {
			need = append(need, int32(g))
		}
	}
	s.kvNeed = need
	s.fillKV(li, &s.m.Layers[li], need, s.kvIn[li], 0, s.pos)
}

// fillKV computes keys and values of layer li for the key/value heads need,
// each from the first position it lacks up to n (exclusive), from the
// attention inputs x of positions x0…n-1 (Hidden floats each): the
// projections, their biases and (Llama) the rotary embedding, in the order
// of the dense path.
func (s *Session) fillKV(li int, l *Layer, need []int32, x []float32, x0, n int) {
	if len(need) == 0 {
		return
	}
	c := s.m.Cfg
	hd := c.HeadDim
	done := s.kvDone[li]
	from := s.kvFrom[:0]
	for _, g := range need {
		from = append(from, done[g])
	}
	s.kvFrom = from
	kc, vc := s.k[li], s.v[li]
	s.exec.CacheMatMul(kc, l.K.W, vc, l.V.W, x, x0, n, s.maxCtx, need, from, hd)
	half := hd / 2
	for k, g := range need {
		for p := int(from[k]); p < n; p++ {
			o := (int(g)*s.maxCtx + p) * hd
			kr, vr := kc[o:o+hd], vc[o:o+hd]
			if l.K.B != nil {
				kernels.Add(kr, l.K.B[int(g)*hd:int(g+1)*hd])
			}
			if l.V.B != nil {
				kernels.Add(vr, l.V.B[int(g)*hd:int(g+1)*hd])
			}
			if c.Family == Llama {
				kernels.RoPE(kr, s.cos[p*half:(p+1)*half], s.sin[p*half:(p+1)*half], c.Interleave)
			}
		}
		done[g] = int32(n)
	}
}
