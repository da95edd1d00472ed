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
	// block (the residual stream before the block's norm), or from the one
	// entering the layer when the selector says so (LayerInputMLP).
	MLP(l int, x []float32, dst []int32) []int32
	// Heads picks heads of layer l+1 from the hidden state entering layer
	// l's attention block (the lookahead); layer 0 computes all heads.
	Heads(l int, x []float32, dst []int32) []int32
}

// LayerInputMLP is implemented by a Selector whose MLP method reads the
// hidden state entering the layer (the attention block's input, before its
// norm), as DejaVu's reference code feeds its MLP predictors, instead of
// the one entering the MLP block: the neurons are then chosen at the start
// of the layer, and a GPU can run that prediction beside the attention.
type LayerInputMLP interface {
	MLPFromLayerInput() bool
}

// mlpFromLayerInput reports whether sel's MLP predictions read the layer's
// input.
func mlpFromLayerInput(sel Selector) bool {
	li, ok := sel.(LayerInputMLP)
	return ok && li.MLPFromLayerInput()
}

// sparseWeights are the neuron-major matrices of the sparse path: one
// neuron (one head dimension) is one contiguous row.
type sparseWeights struct {
	// Per layer, FFN rows: a neuron's rows of the first MLP matrices (gate
	// and up, or up) and of the transposed down projection side by side
	// (kernels.Interleave), read by kernels.Exec.SparseMLP; segs is how
	// many segments a row has (3 for gated MLPs, else 2). Empty (no rows)
	// for a layer whose weights are quantized: that layer has downT.
	mlp  []kernels.Mat
	segs int
	// Per layer without fused rows: Downᵀ, FFN×Hidden (else empty).
	downT []kernels.Mat
	oT    []kernels.Mat // per layer: Oᵀ, (Heads·HeadDim)×Hidden
}

// PrepareSparse builds the neuron-major copies that sparse decoding reads:
// the attention output projection transposed, and per MLP neuron its rows
// of the up (and gate) projection beside its column of the down projection
// (f32, f16 and bf16 weights; quantized ones get the transposed down
// projection and gather the up rows in place). It is idempotent; the
// copies live on the heap (huge pages) beside the mapped weights.
func (m *Model) PrepareSparse() {
	if m.sparse != nil {
		return
	}
	n := len(m.Layers)
	sw := &sparseWeights{oT: make([]kernels.Mat, n), mlp: make([]kernels.Mat, n), downT: make([]kernels.Mat, n), segs: 2}
	if n > 0 && m.Layers[0].Gate.W.Rows > 0 {
		sw.segs = 3
	}
	for i := range m.Layers {
		l := &m.Layers[i]
		switch dT := l.Down.W.Transpose(); {
		case !fusable(l):
			sw.downT[i] = dT
		case sw.segs == 3:
			sw.mlp[i] = kernels.Interleave(l.Gate.W, l.Up.W, dT)
		default:
			sw.mlp[i] = kernels.Interleave(l.Up.W, dT)
		}
		sw.oT[i] = l.O.W.Transpose()
	}
	m.sparse = sw
}

// fusedMaxRowBytes bounds the rows the fused MLP copy is made for. The
// copy holds the first MLP matrices a second time (the originals stay for
// prompts): opt-1.3b in f16 needs 1.8 GB of sparse copies instead of 1.0,
// a gated 7B model 8.7 GB instead of 2.9. On 4 KiB rows it gained 0-4%
// (docs/kernels-sparse.md, session 4); on 1 KiB rows (the test-beds) the
// MLP's sixteen short row streams are what it fixes: 6-10% of the whole
// sparse step at 48% of testbed-llama-relu's neurons. So: short rows only,
// which are small models, where the copy is small too. (A variable for
// TestFusedMLPSpeed.)
var fusedMaxRowBytes = 2 << 10

// fusable reports whether layer l's MLP matrices are interleaved for
// kernels.Exec.SparseMLP: unquantized, of one dtype and shape, rows
// shorter than fusedMaxRowBytes.
func fusable(l *Layer) bool {
	up, down := l.Up.W, l.Down.W
	if up.DType.RowBytes(up.Cols) >= fusedMaxRowBytes {
		return false
	}
	ok := func(w kernels.Mat) bool {
		return w.DType == up.DType && (w.DType == kernels.F32 || w.DType == kernels.F16 || w.DType == kernels.BF16)
	}
	if !ok(down) || down.Rows != up.Cols || down.Cols != up.Rows {
		return false
	}
	g := l.Gate.W
	return g.Rows == 0 || ok(g) && g.Rows == up.Rows && g.Cols == up.Cols
}

// Density is how much of the model the sparse decode steps computed.
type Density struct {
	Tokens                  int   // sparse decode steps
	MLPComputed, MLPTotal   int64 // neurons
	HeadComputed, HeadTotal int64 // heads
	// Key/value heads whose K and V weights a step read (kvcache.go: a
	// head skipped by earlier steps is caught up in the same read).
	KVComputed, KVTotal int64
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

// Add adds the counts of o to d.
func (d *Density) Add(o Density) {
	d.Tokens += o.Tokens
	d.MLPComputed += o.MLPComputed
	d.MLPTotal += o.MLPTotal
	d.HeadComputed += o.HeadComputed
	d.HeadTotal += o.HeadTotal
	d.KVComputed += o.KVComputed
	d.KVTotal += o.KVTotal
}

// KV is the fraction of key/value heads whose projections the sparse steps
// read (1 when no sparse step ran).
func (d Density) KV() float64 {
	if d.KVTotal == 0 {
		return 1
	}
	return float64(d.KVComputed) / float64(d.KVTotal)
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
	early := mlpFromLayerInput(s.sel)
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
		if early { // before the lookahead starts: never concurrent with it
			s.neurons = s.sel.MLP(li, x, s.neurons[:0])
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
		if !early {
			if la != nil && la.shared {
				la.wait()
			}
			s.neurons = s.sel.MLP(li, x, s.neurons[:0])
		}
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

// sparseAttention adds the selected heads' attention output to x. Keys and
// values are computed for the key/value heads the selected heads read,
// the others later (kvcache.go), so the cache each head reads is exact.
func (s *Session) sparseAttention(li int, l *Layer, in []float32) {
	c := s.m.Cfg
	hd, qd := c.HeadDim, c.Heads*c.HeadDim
	q := s.q[:qd]
	s.exec.BlockMatVec(q, l.Q.W, in, s.heads, hd)
	if l.Q.B != nil {
		for _, h := range s.heads {
			kernels.Add(q[int(h)*hd:int(h+1)*hd], l.Q.B[int(h)*hd:int(h+1)*hd])
		}
	}
	if c.Family == Llama {
		half := hd / 2
		p := s.pos
		cs, sn := s.cos[p*half:(p+1)*half], s.sin[p*half:(p+1)*half]
		for _, h := range s.heads {
			kernels.RoPE(q[int(h)*hd:int(h+1)*hd], cs, sn, c.Interleave)
		}
	}
	s.sparseKV(li, l, in)
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
	out := s.tmp[:c.Hidden]
	if l.Down.B != nil {
		copy(out, l.Down.B)
	} else {
		clear(out)
	}
	if sw := s.m.sparse; sw.mlp[li].Rows > 0 {
		s.nact = neuronAct{act: c.Act, gated: sw.segs == 3, gateB: l.Gate.B, upB: l.Up.B}
		s.exec.SparseMLP(out, sw.mlp[li], sw.segs, in, sel, a, s.act2[:len(sel)], &s.nact)
		s.nact = neuronAct{}
		kernels.Add(x, out)
		return
	}
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
	s.exec.AccumRows(out, s.m.sparse.downT[li], sel, a)
	kernels.Add(x, out)
}

// neuronAct applies the MLP's biases and activation to one fused pass of
// kernels.Exec.SparseMLP (the same arithmetic as the unfused path: bias,
// then the activation, or the gated activation of gate and up).
type neuronAct struct {
	act        kernels.Act
	gated      bool
	gateB, upB []float32
}

func (n *neuronAct) Activate(a, b []float32, rows []int32) {
	if !n.gated {
		if n.upB != nil {
			for k, i := range rows {
				a[k] += n.upB[i]
			}
		}
		n.act.Apply(a)
		return
	}
	if n.gateB != nil {
		for k, i := range rows {
			a[k] += n.gateB[i]
			b[k] += n.upB[i]
		}
	}
	n.act.GatedAct(a, b)
}
