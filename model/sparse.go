package model

import (
	"runtime"

	"dejavu/kernels"
)

// Selector chooses, for one decode token, the MLP neurons and attention
// heads to compute (DejaVu's contextual sparsity). Results are sorted,
// duplicate-free indices appended to dst[:0].
type Selector interface {
	// MLP picks neurons of layer l from the hidden state entering the MLP
	// block (the residual stream before the block's norm).
	MLP(l int, x []float32, dst []int32) []int32
	// Heads picks heads of layer l+1 from the hidden state entering layer
	// l's attention block (the lookahead); layer 0 computes all heads.
	Heads(l int, x []float32, dst []int32) []int32
}

// sparseWeights are the transposed matrices of the sparse path: one neuron
// (one head dimension) is one contiguous row.
type sparseWeights struct {
	downT, oT []kernels.Mat // per layer: FFN×Hidden and (Heads·HeadDim)×Hidden
}

// PrepareSparse builds the neuron-major copies of the MLP down projection
// and the attention output projection that sparse decoding reads. It is
// idempotent; the copies live on the heap beside the mapped weights.
func (m *Model) PrepareSparse() {
	if m.sparse != nil {
		return
	}
	sw := &sparseWeights{downT: make([]kernels.Mat, len(m.Layers)), oT: make([]kernels.Mat, len(m.Layers))}
	for i := range m.Layers {
		sw.downT[i] = m.Layers[i].Down.W.Transpose()
		sw.oT[i] = m.Layers[i].O.W.Transpose()
	}
	m.sparse = sw
}

// Density is how much of the model the sparse decode steps computed.
type Density struct {
	Tokens                  int   // sparse decode steps
	MLPComputed, MLPTotal   int64 // neurons
	HeadComputed, HeadTotal int64 // heads
}

// MLP is the fraction of MLP neurons computed (1 when no sparse step ran).
func (d Density) MLP() float64 {
	if d.MLPTotal == 0 {
		return 1
	}
	return float64(d.MLPComputed) / float64(d.MLPTotal)
}

// Heads is the fraction of attention heads computed (1 when no sparse step ran).
func (d Density) Heads() float64 {
	if d.HeadTotal == 0 {
		return 1
	}
	return float64(d.HeadComputed) / float64(d.HeadTotal)
}

// SetSelector makes decode steps (one token) sparse with sel; nil restores
// dense decoding. Prompt passes stay dense. The model must have been
// prepared with PrepareSparse.
func (s *Session) SetSelector(sel Selector) {
	if sel != nil && s.m.sparse == nil {
		panic("model: SetSelector before PrepareSparse")
	}
	if s.look != nil {
		s.look.wait()
		s.look.shared = sameSelector(s.look.sel, sel)
	}
	s.sel = sel
	if sel != nil && s.neurons == nil {
		c := s.m.Cfg
		s.neurons = make([]int32, 0, c.FFN)
		s.heads = make([]int32, 0, c.Heads)
		s.nextHeads = make([]int32, 0, c.Heads)
		s.act = make([]float32, c.FFN)
		s.act2 = make([]float32, c.FFN)
		s.oRows = make([]int32, 0, c.Heads*c.HeadDim)
		s.oCoef = make([]float32, 0, c.Heads*c.HeadDim)
	}
}

// lookahead runs Selector.Heads for the next layer on a goroutine of its
// own (DejaVu's asynchronous lookahead). The goroutine references only
// this struct, so a dropped session's cleanup can stop it; start and done
// order every access to l, x and heads between it and the session.
type lookahead struct {
	sel     Selector
	shared  bool      // sel is the session's selector: never run it concurrently with MLP
	l       int       // the layer whose attention input x is
	x       []float32 // a copy of that input (the session goes on changing its own)
	heads   []int32   // the result: heads of layer l+1
	start   chan struct{}
	done    chan struct{}
	busy    bool // a prediction was started and not yet waited for (session side)
	cleanup runtime.Cleanup
}

func (la *lookahead) run() {
	for range la.start {
		la.heads = la.sel.Heads(la.l, la.x, la.heads[:0])
		la.done <- struct{}{}
	}
}

// begin starts predicting the heads of layer l+1 from x, layer l's
// attention input.
func (la *lookahead) begin(l int, x []float32) {
	la.l = l
	copy(la.x, x)
	la.busy = true
	la.start <- struct{}{}
}

// wait returns once no prediction is running.
func (la *lookahead) wait() {
	if la.busy {
		<-la.done
		la.busy = false
	}
}

// SetAsync makes sparse decode steps run the next layer's head prediction
// (Selector.Heads) on a goroutine of its own, concurrently with the current
// layer's computation, using sel (nil: synchronously, on the decoding
// goroutine, the default). A selector is never called concurrently with
// itself: when sel is the session's own selector, the prediction overlaps
// the attention block only and the step waits for it before asking for
// the MLP neurons; a separate selector with its own scratch (sparsity's
// Predictors.Clone, on a one-thread pool so that it does not contend for
// the session's pool) overlaps the attention and the MLP block. The MLP
// prediction itself stays synchronous: its input, the hidden state
// entering the MLP block, exists only after the attention. Decoding gives
// the same tokens either way.
func (s *Session) SetAsync(sel Selector) {
	if s.look != nil {
		s.look.wait()
		s.look.cleanup.Stop()
		close(s.look.start)
		s.look = nil
	}
	if sel == nil {
		return
	}
	c := s.m.Cfg
	la := &lookahead{sel: sel, shared: sameSelector(sel, s.sel), x: make([]float32, c.Hidden),
		heads: make([]int32, 0, c.Heads), start: make(chan struct{}), done: make(chan struct{})}
	go la.run()
	la.cleanup = runtime.AddCleanup(s, func(ch chan struct{}) { close(ch) }, la.start)
	s.look = la
}

// sameSelector reports whether a and b are the same selector (false when
// their dynamic type is not comparable: then they are distinct values).
func sameSelector(a, b Selector) (same bool) {
	defer func() { _ = recover() }()
	return a == b
}

// Density reports what the sparse decode steps computed so far.
func (s *Session) Density() Density { return s.density }

// sparseStep is one decode token through the sparse path.
func (s *Session) sparseStep(id int) {
	m, c := s.m, s.m.Cfg
	d := c.Hidden
	x := s.x[:d]
	s.embed([]int{id}, x)
	s.density.Tokens++
	la := s.look
	for li := range m.Layers {
		l := &m.Layers[li]
		// Heads of this layer: chosen by the previous layer's lookahead.
		s.heads = s.heads[:0]
		if li == 0 {
			for h := 0; h < c.Heads; h++ {
				s.heads = append(s.heads, int32(h))
			}
		} else if la != nil {
			la.wait()
			s.heads = append(s.heads, la.heads...)
		} else {
			s.heads = append(s.heads, s.nextHeads...)
		}
		if li+1 < len(m.Layers) { // the lookahead: heads of the next layer
			if la != nil {
				la.begin(li, x)
			} else {
				s.nextHeads = s.sel.Heads(li, x, s.nextHeads[:0])
			}
		}
		s.density.HeadComputed += int64(len(s.heads))
		s.density.HeadTotal += int64(c.Heads)

		// Attention over the selected heads.
		xn := s.xn[:d]
		in := x
		if c.Family == Llama || c.PreLN {
			s.norm(xn, x, l.AttnNormW, l.AttnNormB)
			in = xn
		}
		s.sparseAttention(li, l, in)
		if c.Family == OPT && !c.PreLN {
			kernels.LayerNorm(x, x, l.AttnNormW, l.AttnNormB, c.NormEps)
		}

		// MLP over the selected neurons.
		if la != nil && la.shared {
			la.wait()
		}
		s.neurons = s.sel.MLP(li, x, s.neurons[:0])
		s.density.MLPComputed += int64(len(s.neurons))
		s.density.MLPTotal += int64(c.FFN)
		in = x
		if c.Family == Llama || c.PreLN {
			s.norm(xn, x, l.MLPNormW, l.MLPNormB)
			in = xn
		}
		s.sparseMLP(li, l, in, x)
		if c.Family == OPT && !c.PreLN {
			kernels.LayerNorm(x, x, l.MLPNormW, l.MLPNormB, c.NormEps)
		}
	}
	s.pos++
	xn := s.xn[:d]
	s.norm(xn, x, m.NormW, m.NormB)
	in := xn
	if m.ProjOut != nil {
		s.exec.MatVec(s.tmp[:c.ProjDim], m.ProjOut.W, xn)
		in = s.tmp[:c.ProjDim]
	}
	s.exec.MatVec(s.logits[:c.Vocab], m.Head, in)
}

// sparseAttention adds the selected heads' attention output to x. K and V
// are computed for all heads so the cache stays exact.
func (s *Session) sparseAttention(li int, l *Layer, in []float32) {
	c := s.m.Cfg
	hd, qd, kvd := c.HeadDim, c.Heads*c.HeadDim, c.KVHeads*c.HeadDim
	q, k, v := s.q[:qd], s.kk[:kvd], s.vv[:kvd]
	s.exec.BlockMatVec(q, l.Q.W, in, s.heads, hd)
	if l.Q.B != nil {
		for _, h := range s.heads {
			kernels.Add(q[int(h)*hd:int(h+1)*hd], l.Q.B[int(h)*hd:int(h+1)*hd])
		}
	}
	s.linear(k, &l.K, in, 1)
	s.linear(v, &l.V, in, 1)
	if c.Family == Llama {
		half := hd / 2
		p := s.pos
		cs, sn := s.cos[p*half:(p+1)*half], s.sin[p*half:(p+1)*half]
		for _, h := range s.heads {
			kernels.RoPE(q[int(h)*hd:int(h+1)*hd], cs, sn, c.Interleave)
		}
		for h := 0; h < c.KVHeads; h++ {
			kernels.RoPE(k[h*hd:(h+1)*hd], cs, sn, c.Interleave)
		}
	}
	s.storeKV(li, k, v, 1)
	s.attn = attnTask{s: s, li: li, n: 1, scores: s.attn.scores, heads: s.heads}
	s.exec.Pool.Parallel(len(s.heads), 1, &s.attn)
	// Output projection: Σ over the selected heads' dimensions of att·Oᵀ rows.
	rows, coef := s.oRows[:0], s.oCoef[:0]
	for _, h := range s.heads {
		for e := int(h) * hd; e < int(h+1)*hd; e++ {
			rows = append(rows, int32(e))
			coef = append(coef, s.att[e])
		}
	}
	out := s.tmp[:c.Hidden]
	if l.O.B != nil {
		copy(out, l.O.B)
	} else {
		clear(out)
	}
	s.exec.AccumRows(out, s.m.sparse.oT[li], rows, coef)
	kernels.Add(s.x[:c.Hidden], out)
}

// sparseMLP adds the selected neurons' MLP output to x.
func (s *Session) sparseMLP(li int, l *Layer, in, x []float32) {
	c := s.m.Cfg
	sel := s.neurons
	a := s.act[:len(sel)]
	if c.Family == OPT {
		s.exec.GatherMatVec(a, l.Up.W, in, sel)
		if l.Up.B != nil {
			for k, i := range sel {
				a[k] += l.Up.B[i]
			}
		}
		c.Act.Apply(a)
	} else {
		up := s.act2[:len(sel)]
		s.exec.GatherMatVec2(a, l.Gate.W, up, l.Up.W, in, sel) // one parallel pass for both
		if l.Gate.B != nil {
			for k, i := range sel {
				a[k] += l.Gate.B[i]
				up[k] += l.Up.B[i]
			}
		}
		c.Act.GatedAct(a, up)
	}
	out := s.tmp[:c.Hidden]
	if l.Down.B != nil {
		copy(out, l.Down.B)
	} else {
		clear(out)
	}
	s.exec.AccumRows(out, s.m.sparse.downT[li], sel, a)
	kernels.Add(x, out)
}
