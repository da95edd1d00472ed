package model

import (
	"fmt"
	"math"

	"dejavu/kernels"
)

// maxBatch is how many prompt tokens one batched forward step processes.
const maxBatch = 64

// Session is one sequence being processed: its KV cache, position and
// scratch buffers. A session is used by one goroutine at a time; several
// sessions may share a model and a pool.
type Session struct {
	m      *Model
	exec   *kernels.Exec
	maxCtx int
	pos    int

	// KV cache, per layer, head-major: KVHeads × maxCtx × HeadDim, so that
	// one head's keys (values) are one contiguous stream for the attention
	// kernels (see storeKV).
	k, v [][]float32

	cos, sin []float32 // maxCtx × HeadDim/2 (Llama family)

	// Deferred keys and values (kvcache.go): per layer, how many leading
	// positions of each key/value head the cache holds, and the attention
	// inputs of the sparse decode steps (maxCtx × Hidden, allocated when a
	// head of the layer first falls behind).
	kvDone         [][]int32
	kvIn           [][]float32
	kvNeed, kvFrom []int32
	eagerKV        bool // tests: every sparse step computes every head's K and V

	// Scratch, sized for maxBatch tokens.
	x, xn, q, kk, vv, att, tmp, gate, up, e []float32
	logits                                  []float32 // Vocab
	attn                                    attnTask

	// Sparse decoding (see sparse.go).
	sel                       Selector
	neurons, heads, nextHeads []int32
	act, act2                 []float32
	oRows                     []int32
	oCoef                     []float32
	nact                      neuronAct // the fused MLP's activation (sparse.go)
	density                   Density
	look                      *lookahead // asynchronous head prediction (SetAsync)
	maskBatches               bool       // SetSparseBatches (masked.go)
	headMask, nextMask        []bool     // maxBatch × Heads
	maskIn                    []float32  // maxBatch × Hidden: the layer input, for a LayerInputMLP selector

	// Recording for predictor training (see record.go).
	rec                              Recorder
	recAttn, recMLP, recHead, recRow []float32
}

// NewSession makes a session with room for maxCtx tokens (≤ 0 or larger than
// the model's max_position_embeddings: the model's maximum).
func (m *Model) NewSession(pool *kernels.Pool, maxCtx int) *Session {
	c := m.Cfg
	if maxCtx <= 0 || maxCtx > c.MaxPos {
		maxCtx = c.MaxPos
	}
	kvd := c.KVHeads * c.HeadDim
	qd := c.Heads * c.HeadDim
	maxCols := max(c.Hidden, c.FFN, qd, c.ProjDim)
	s := &Session{m: m, exec: kernels.NewExec(pool, maxCols), maxCtx: maxCtx,
		k: make([][]float32, c.Layers), v: make([][]float32, c.Layers),
		kvDone: make([][]int32, c.Layers), kvIn: make([][]float32, c.Layers),
		kvNeed: make([]int32, 0, c.KVHeads), kvFrom: make([]int32, 0, c.KVHeads)}
	for i := range s.k {
		s.k[i] = make([]float32, maxCtx*kvd)
		s.v[i] = make([]float32, maxCtx*kvd)
		s.kvDone[i] = make([]int32, c.KVHeads)
	}
	B := maxBatch
	s.x = make([]float32, B*c.Hidden)
	s.xn = make([]float32, B*c.Hidden)
	s.q = make([]float32, B*qd)
	s.kk = make([]float32, B*kvd)
	s.vv = make([]float32, B*kvd)
	s.att = make([]float32, B*qd)
	s.tmp = make([]float32, B*max(c.Hidden, c.ProjDim))
	s.gate = make([]float32, B*c.FFN)
	s.up = make([]float32, B*c.FFN)
	s.e = make([]float32, B*c.ProjDim)
	s.logits = make([]float32, B*c.Vocab)
	s.attn.scores = make([][]float32, pool.Threads())
	for i := range s.attn.scores {
		s.attn.scores[i] = make([]float32, maxCtx)
	}
	if c.Family == Llama {
		s.cos, s.sin = ropeTables(c, maxCtx)
	}
	return s
}

// Pos is the number of tokens in the cache.
func (s *Session) Pos() int { return s.pos }

// MaxCtx is the cache capacity in tokens.
func (s *Session) MaxCtx() int { return s.maxCtx }

// Model is the session's model.
func (s *Session) Model() *Model { return s.m }

// Reset empties the cache.
func (s *Session) Reset() { s.Truncate(0) }

// Truncate drops cached tokens from position n on.
func (s *Session) Truncate(n int) {
	if n < s.pos && n >= 0 {
		s.pos = n
		for _, done := range s.kvDone {
			for g := range done {
				done[g] = min(done[g], int32(n))
			}
		}
	}
}

// Forward appends ids to the sequence and returns next-token logits. With
// all set it returns len(ids) rows of Vocab logits (a new slice); otherwise
// the row of the last position, which the next call overwrites. Prompts are
// processed in batches of up to 64 tokens; one id is a decode step that
// allocates nothing.
func (s *Session) Forward(ids []int, all bool) ([]float32, error) {
	c := s.m.Cfg
	if len(ids) == 0 {
		return nil, fmt.Errorf("model: forward of no tokens")
	}
	if s.pos+len(ids) > s.maxCtx {
		return nil, fmt.Errorf("model: %d tokens at position %d exceed the context of %d tokens", len(ids), s.pos, s.maxCtx)
	}
	for i, id := range ids {
		if id < 0 || id >= c.Vocab {
			return nil, fmt.Errorf("model: token id %d at index %d is outside the vocabulary [0, %d)", id, i, c.Vocab)
		}
	}
	var out []float32
	if all {
		out = make([]float32, len(ids)*c.Vocab)
	}
	for start := 0; start < len(ids); start += maxBatch {
		chunk := ids[start:min(start+maxBatch, len(ids))]
		rows := 0
		switch {
		case all:
			rows = len(chunk)
		case start+len(chunk) == len(ids):
			rows = 1
		}
		if len(chunk) == 1 && s.sel != nil {
			s.sparseStep(chunk[0])
		} else {
			s.step(chunk, rows)
		}
		n := len(chunk)
		if all {
			copy(out[start*c.Vocab:], s.logits[:n*c.Vocab])
		}
	}
	if all {
		return out, nil
	}
	return s.logits[:c.Vocab], nil
}

// step runs n ≤ maxBatch tokens through the model and computes the logits
// of the last rows tokens into s.logits (rows may be 0).
func (s *Session) step(ids []int, rows int) {
	m, c := s.m, s.m.Cfg
	n, d := len(ids), c.Hidden
	x := s.x[:n*d]
	s.embed(ids, x)
	for li := range m.Layers {
		l := &m.Layers[li]
		if c.Family == OPT {
			s.optBlock(li, l, x, n)
		} else {
			s.llamaBlock(li, l, x, n)
		}
	}
	s.pos += n

	// Final norm, projection, head — only for the rows whose logits are wanted.
	if rows == 0 {
		return
	}
	h := x[(n-rows)*d:]
	xn := s.xn[:rows*d]
	for r := 0; r < rows; r++ {
		s.norm(xn[r*d:(r+1)*d], h[r*d:(r+1)*d], m.NormW, m.NormB)
	}
	in := xn
	if m.ProjOut != nil {
		pd := c.ProjDim
		s.exec.MatMul(s.tmp[:rows*pd], m.ProjOut.W, xn, rows)
		in = s.tmp[:rows*pd]
	}
	s.exec.MatMul(s.logits[:rows*c.Vocab], m.Head, in, rows)
}

func (s *Session) norm(dst, x, w, b []float32) {
	if w == nil { // post-LN OPT has no final norm
		copy(dst, x)
		return
	}
	if s.m.Cfg.Family == OPT {
		kernels.LayerNorm(dst, x, w, b, s.m.Cfg.NormEps)
	} else {
		kernels.RMSNorm(dst, x, w, s.m.Cfg.NormEps)
	}
}

func (s *Session) embed(ids []int, x []float32) {
	m, c := s.m, s.m.Cfg
	d := c.Hidden
	if m.ProjIn != nil {
		pd := c.ProjDim
		e := s.e[:len(ids)*pd]
		for i, id := range ids {
			m.Embed.Row(id, e[i*pd:(i+1)*pd])
		}
		s.exec.MatMul(x, m.ProjIn.W, e, len(ids))
	} else {
		for i, id := range ids {
			m.Embed.Row(id, x[i*d:(i+1)*d])
		}
	}
	if c.Family == OPT {
		row := s.tmp[:d]
		for i := range ids {
			m.Pos.Row(s.pos+i+2, row) // OPT's learned positions start at offset 2
			kernels.Add(x[i*d:(i+1)*d], row)
		}
	}
}

// linear computes y = W x + b for n rows.
func (s *Session) linear(y []float32, l *Linear, x []float32, n int) {
	s.exec.MatMul(y, l.W, x, n)
	if l.B != nil {
		r := l.W.Rows
		for i := 0; i < n; i++ {
			kernels.Add(y[i*r:(i+1)*r], l.B)
		}
	}
}

// attention computes the attention output of n new tokens into s.att from
// the normalized input xn, storing their K and V in the cache.
func (s *Session) attention(li int, l *Layer, xn []float32, n int) {
	c := s.m.Cfg
	hd, qd, kvd := c.HeadDim, c.Heads*c.HeadDim, c.KVHeads*c.HeadDim
	q, k, v := s.q[:n*qd], s.kk[:n*kvd], s.vv[:n*kvd]
	s.catchUpKV(li) // every head attends: heads that sparse steps skipped first
	s.linear(q, &l.Q, xn, n)
	s.linear(k, &l.K, xn, n)
	s.linear(v, &l.V, xn, n)
	if c.Family == Llama {
		half := hd / 2
		for i := 0; i < n; i++ {
			p := s.pos + i
			cs, sn := s.cos[p*half:(p+1)*half], s.sin[p*half:(p+1)*half]
			for h := 0; h < c.Heads; h++ {
				kernels.RoPE(q[i*qd+h*hd:i*qd+(h+1)*hd], cs, sn, c.Interleave)
			}
			for h := 0; h < c.KVHeads; h++ {
				kernels.RoPE(k[i*kvd+h*hd:i*kvd+(h+1)*hd], cs, sn, c.Interleave)
			}
		}
	}
	s.storeKV(li, k, v, n)
	s.attn = attnTask{s: s, li: li, n: n, scores: s.attn.scores}
	s.exec.Pool.Parallel(n*c.Heads, 1, &s.attn)
	s.attn.s = nil
}

// storeKV writes the keys and values of n new tokens (n rows of
// KVHeads·HeadDim) into layer li's head-major cache at positions pos…;
// every head must be complete up to pos.
func (s *Session) storeKV(li int, k, v []float32, n int) {
	c := s.m.Cfg
	hd, kvd := c.HeadDim, c.KVHeads*c.HeadDim
	kc, vc := s.k[li], s.v[li]
	for g := 0; g < c.KVHeads; g++ {
		s.kvDone[li][g] = int32(s.pos + n)
		base := (g*s.maxCtx + s.pos) * hd
		for i := 0; i < n; i++ {
			copy(kc[base+i*hd:base+(i+1)*hd], k[i*kvd+g*hd:i*kvd+(g+1)*hd])
			copy(vc[base+i*hd:base+(i+1)*hd], v[i*kvd+g*hd:i*kvd+(g+1)*hd])
		}
	}
}

type attnTask struct {
	s      *Session
	li, n  int
	scores [][]float32
	heads  []int32 // when set (one token): only these heads
}

// Run computes (token, head) pairs [start, end), or entries of heads: the
// scores of the query against the cached keys of its key/value head
// (kernels.AttnScores), their softmax (kernels.AttnSoftmax, normalized at
// the end), and the weighted sum of the cached values (kernels.AttnAccum),
// the keys and values each one contiguous stream of the head-major cache.
func (t *attnTask) Run(worker, start, end int) {
	s := t.s
	c := s.m.Cfg
	hd, qd := c.HeadDim, c.Heads*c.HeadDim
	group := c.Heads / c.KVHeads
	scale := float32(1 / math.Sqrt(float64(hd)))
	kc, vc := s.k[t.li], s.v[t.li]
	for j := start; j < end; j++ {
		i, h := j/c.Heads, j%c.Heads
		if t.heads != nil {
			i, h = 0, int(t.heads[j])
		}
		p := s.pos + i
		g := h / group
		q := s.q[i*qd+h*hd : i*qd+(h+1)*hd]
		lo := 0
		if c.Window > 0 && p-c.Window+1 > 0 {
			lo = p - c.Window + 1
		}
		base := (g*s.maxCtx + lo) * hd
		sc := t.scores[worker][:p+1-lo]
		kernels.AttnScores(sc, q, kc[base:], hd, scale)
		inv := 1 / kernels.AttnSoftmax(sc) // unnormalized: out is scaled instead
		out := s.att[i*qd+h*hd : i*qd+(h+1)*hd]
		clear(out)
		kernels.AttnAccum(out, sc, vc[base:], hd)
		for e := range out {
			out[e] *= inv
		}
	}
}

func (s *Session) optBlock(li int, l *Layer, x []float32, n int) {
	c := s.m.Cfg
	d := c.Hidden
	xn, tmp := s.xn[:n*d], s.tmp[:n*d]
	ln := func(dst, src, w, b []float32) {
		for i := 0; i < n; i++ {
			kernels.LayerNorm(dst[i*d:(i+1)*d], src[i*d:(i+1)*d], w, b, c.NormEps)
		}
	}
	mask := s.masking()
	if mask {
		s.maskBegin(li, x, n)
	}
	// Attention.
	if s.rec != nil {
		copy(s.recAttn, x)
	}
	in := x
	if c.PreLN {
		ln(xn, x, l.AttnNormW, l.AttnNormB)
		in = xn
	}
	s.attention(li, l, in, n)
	if s.rec != nil {
		s.headNorms(l, n)
	}
	if mask {
		s.maskHeads(n)
	}
	s.linear(tmp, &l.O, s.att[:n*c.Heads*c.HeadDim], n)
	kernels.Add(x, tmp)
	if !c.PreLN {
		ln(x, x, l.AttnNormW, l.AttnNormB)
	}
	// MLP.
	if s.rec != nil {
		copy(s.recMLP, x)
	}
	in = x
	if c.PreLN {
		ln(xn, x, l.MLPNormW, l.MLPNormB)
		in = xn
	}
	up := s.up[:n*c.FFN]
	s.linear(up, &l.Up, in, n)
	c.Act.Apply(up)
	if s.rec != nil {
		s.rec.Layer(li, n, s.recAttn[:n*d], s.recMLP[:n*d], up, s.recHead[:n*c.Heads])
	}
	if mask {
		s.maskNeurons(li, x, up, n)
	}
	s.linear(tmp, &l.Down, up, n)
	kernels.Add(x, tmp)
	if !c.PreLN {
		ln(x, x, l.MLPNormW, l.MLPNormB)
	}
}

func (s *Session) llamaBlock(li int, l *Layer, x []float32, n int) {
	c := s.m.Cfg
	d := c.Hidden
	xn, tmp := s.xn[:n*d], s.tmp[:n*d]
	mask := s.masking()
	if mask {
		s.maskBegin(li, x, n)
	}
	if s.rec != nil {
		copy(s.recAttn, x)
	}
	for i := 0; i < n; i++ {
		kernels.RMSNorm(xn[i*d:(i+1)*d], x[i*d:(i+1)*d], l.AttnNormW, c.NormEps)
	}
	s.attention(li, l, xn, n)
	if s.rec != nil {
		s.headNorms(l, n)
	}
	if mask {
		s.maskHeads(n)
	}
	s.linear(tmp, &l.O, s.att[:n*c.Heads*c.HeadDim], n)
	kernels.Add(x, tmp)
	if s.rec != nil {
		copy(s.recMLP, x)
	}
	for i := 0; i < n; i++ {
		kernels.RMSNorm(xn[i*d:(i+1)*d], x[i*d:(i+1)*d], l.MLPNormW, c.NormEps)
	}
	gate, up := s.gate[:n*c.FFN], s.up[:n*c.FFN]
	s.linear(gate, &l.Gate, xn, n)
	s.linear(up, &l.Up, xn, n)
	c.Act.Apply(gate)
	if s.rec != nil {
		s.rec.Layer(li, n, s.recAttn[:n*d], s.recMLP[:n*d], gate, s.recHead[:n*c.Heads])
	}
	for i := range gate {
		gate[i] *= up[i]
	}
	if mask {
		s.maskNeurons(li, x, gate, n)
	}
	s.linear(tmp, &l.Down, gate, n)
	kernels.Add(x, tmp)
}

// ropeTables computes cos and sin of every position's rotary angles, in
// float32 as Hugging Face does, with the configured frequency scaling.
func ropeTables(c Config, maxCtx int) (cos, sin []float32) {
	half := c.HeadDim / 2
	inv := make([]float32, half)
	for i := range inv {
		inv[i] = float32(1 / math.Pow(c.RopeTheta, float64(2*i)/float64(c.HeadDim)))
	}
	if sc := c.RopeScale; sc != nil {
		for i, f := range inv {
			inv[i] = float32(scaleFreq(float64(f), sc))
		}
	}
	cos = make([]float32, maxCtx*half)
	sin = make([]float32, maxCtx*half)
	for p := 0; p < maxCtx; p++ {
		for i, f := range inv {
			a := float64(float32(p) * f)
			cos[p*half+i] = float32(math.Cos(a))
			sin[p*half+i] = float32(math.Sin(a))
		}
	}
	return cos, sin
}

// scaleFreq applies linear or llama3 frequency scaling to one inverse frequency.
func scaleFreq(f float64, sc *RopeScaling) float64 {
	if sc.Type == "linear" {
		return f / sc.Factor
	}
	old := float64(sc.OrigMaxPosition)
	lowWavelen := old / sc.LowFreqFactor
	highWavelen := old / sc.HighFreqFactor
	wavelen := 2 * math.Pi / f
	switch {
	case wavelen < highWavelen:
		return f
	case wavelen > lowWavelen:
		return f / sc.Factor
	}
	smooth := (old/wavelen - sc.LowFreqFactor) / (sc.HighFreqFactor - sc.LowFreqFactor)
	return (1-smooth)*f/sc.Factor + smooth*f
}
