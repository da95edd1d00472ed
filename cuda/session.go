package cuda

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"sort"

	"dejavu/model"
)

// maxBatch is how many prompt tokens one batched (cuBLAS) step processes:
// each batch reads every weight once (v17: 512, was 128 — opt-6.7b's
// 512-token prompt read its 13 GB four times).
const maxBatch = 512

// Session is one sequence on the GPU: its KV cache (f32, head-major per
// layer, as on the CPU), position and scratch buffers. Like
// model.Session, it is used by one goroutine at a time.
//
// Decode steps (one token) run the package's GEMV kernels and are captured
// in a CUDA graph on first use, then replayed: the position and the token
// id live in device memory (io), so one graph serves every position. Set
// DEJAVU_CUDA_GRAPH=0 to launch the kernels one by one instead.
type Session struct {
	m      *Model
	d      *Device
	maxCtx int
	pos    int

	io                                       uint64 // int32: position, then the step's ids
	x, xn, qkv, att, up, h, e, tmp, logits   uint64 // f32 scratch
	x16, att16, h16, e16                     uint64 // f16 scratch (cuBLAS inputs)
	kc, vc                                   uint64 // Layers × KVHeads × maxCtx × HeadDim f32
	attnPart, attnCnt                        uint64 // decode attention: Heads × maxSplits partial rows (HeadDim + 2 f32), Heads counters
	cos, sin                                 uint64 // Llama: maxCtx × HeadDim/2
	allocs                                   []uint64
	hostIO                                   []int32
	hostLogits                               []float32
	smem                                     int // attention's dynamic shared memory
	useGraph                                 bool
	graphs                                   [3]uintptr // executable graphs: dense, random sparse, predicted sparse
	sparse                                   *sparseState
	density                                  model.Density
	qkvRows, upRows, qd, kvd, hd, gateOff, V int
	pending                                  error // from SetRandomSparse

	// Deferred keys and values (docs/gpu.md, "Deferred K/V" and v14): while
	// kvActive, kvDone holds per layer two rows of per-key/value-head counts
	// of the leading positions the cache holds (Layers × 2 × KVHeads int32;
	// the step at position p reads row p&1 and writes row (p+1)&1, see
	// kvDoneAt), then per layer the key/value heads the last step computed
	// (Layers int32), then the block counter of the ticket (kvTicket);
	// kvIn the sparse steps' attention inputs (Layers ×
	// maxCtx × Hidden f32, allocated by the first deferred step).
	kvDone, kvIn uint64
	kvActive     bool
	kvNoRoom     bool // the inputs' buffer could not be allocated: eager
	kvClamp      int  // a truncation to apply to kvDone before the next step (-1: none)
	kvStat       []int32
}

// sparseState is the selection of the sparse decode path, in device memory
// (sel): per layer the MLP neuron count and head count (ints 2l, 2l+1),
// then the neuron lists (Layers × FFN), then the head lists (Layers ×
// Heads). Random selections are drawn on the host once (nPool different
// ones) and copied into sel before each step, in stream order.
type sparseState struct {
	kMLP, kHeads int // selected per layer (random), or the most (predictors), for grid sizes
	sel, pool    uint64
	nPool, step  int
	kvSel        []int // random: per pool entry, the key/value heads its selection reads (layers ≥ 1)
	selInts      int
	pred         *gpuPredictors // trained predictors choose the selection on the GPU
	counts       []int32        // host copy of the counts (predictors)
}

// everyHead reports whether layer li of a model with heads heads computes
// all of them: layer 0 always, the others when the selection takes every
// head (a head density of 1, or a head predictor whose top-k is all
// heads). Such a layer reads no head list, and no predictor chooses its
// heads.
func (sp *sparseState) everyHead(li, heads int) bool {
	switch {
	case li == 0:
		return true
	case sp.pred != nil:
		return sp.pred.headK[li-1] >= heads
	}
	return sp.kHeads >= heads
}

// selectsHeads reports whether any layer of the L reads a head selection
// (only then do sparse steps defer keys and values).
func (sp *sparseState) selectsHeads(L, heads int) bool {
	for li := 1; li < L; li++ {
		if !sp.everyHead(li, heads) {
			return true
		}
	}
	return false
}

// allocs is the device memory of the state.
func (sp *sparseState) allocs() []uint64 {
	a := []uint64{sp.sel, sp.pool}
	if sp.pred != nil {
		a = append(a, sp.pred.allocs...)
	}
	return a
}

const nPool = 8

// NewSession makes a session with room for maxCtx tokens (≤ 0 or larger
// than the model's max_position_embeddings: the model's maximum; at most
// what the attention kernel's shared memory holds, about 50 000 on an H100).
func (g *Model) NewSession(maxCtx int) (*Session, error) {
	c := g.Cfg
	if maxCtx <= 0 || maxCtx > c.MaxPos {
		maxCtx = c.MaxPos
	}
	s := &Session{m: g, d: g.dev, maxCtx: maxCtx, useGraph: os.Getenv("DEJAVU_CUDA_GRAPH") != "0", kvClamp: -1}
	s.hd, s.qd, s.kvd = c.HeadDim, c.Heads*c.HeadDim, c.KVHeads*c.HeadDim
	s.qkvRows = s.qd + 2*s.kvd
	s.upRows = c.FFN
	if c.Family == model.Llama {
		s.upRows, s.gateOff = 2*c.FFN, c.FFN
	}
	s.V = c.Vocab
	if s.hd%2 != 0 {
		return nil, fmt.Errorf("cuda: head_dim %d is odd: the decode kernels pair rows", s.hd)
	}
	s.smem = 4 * (5*s.hd + 33 + maxCtx)
	if s.smem > g.dev.maxSmem {
		return nil, fmt.Errorf("cuda: a context of %d tokens needs %d bytes of shared memory in the attention kernel; the GPU allows %d", maxCtx, s.smem, g.dev.maxSmem)
	}
	s.hostIO = make([]int32, 1+maxBatch)
	s.hostLogits = make([]float32, c.Vocab)
	err := g.dev.do(func() error { return s.init() })
	if err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func (s *Session) init() error {
	c := s.m.Cfg
	B := int64(maxBatch)
	d, pd := int64(c.Hidden), int64(c.ProjDim)
	f32 := func(n int64, what string) (uint64, error) {
		p, err := s.d.alloc(4*n, what)
		if err == nil {
			s.allocs = append(s.allocs, p)
		}
		return p, err
	}
	f16 := func(n int64, what string) (uint64, error) { return f32((n+1)/2, what) }
	kv := int64(c.Layers) * int64(s.kvd) * int64(s.maxCtx)
	bufs := []struct {
		p    *uint64
		n    int64
		half bool
		what string
	}{
		{&s.io, 1 + B, false, "step ids"}, {&s.x, B * d, false, "hidden states"}, {&s.xn, B * max(d, pd), false, "normalized states"},
		{&s.qkv, B * int64(s.qkvRows), false, "q|k|v"}, {&s.att, B * int64(s.qd), false, "attention output"},
		{&s.up, B * int64(s.upRows), false, "mlp up"}, {&s.h, int64(c.FFN), false, "mlp activations"},
		{&s.e, B * pd, false, "embeddings"}, {&s.tmp, B * pd, false, "projection"}, {&s.logits, B * int64(c.Vocab), false, "logits"},
		{&s.x16, B * max(d, pd), true, "f16 states"}, {&s.att16, B * int64(s.qd), true, "f16 attention"},
		{&s.h16, B * int64(c.FFN), true, "f16 activations"}, {&s.e16, B * pd, true, "f16 projection"},
		{&s.kc, kv, false, "key cache"}, {&s.vc, kv, false, "value cache"},
		{&s.attnPart, int64(c.Heads) * maxSplits * int64(s.hd+2), false, "attention partial rows"},
		{&s.attnCnt, int64(c.Heads) + 1, false, "attention counters"},
		{&s.kvDone, int64(2*c.Layers*c.KVHeads+c.Layers) + 1, false, "deferred K/V counters"},
	}
	for _, b := range bufs {
		var err error
		if b.half {
			*b.p, err = f16(b.n, b.what)
		} else {
			*b.p, err = f32(b.n, b.what)
		}
		if err != nil {
			return err
		}
	}
	if err := check("cuMemsetD32Async attention counters", drv.cuMemsetD32Async(s.attnCnt, 0, uint64(c.Heads)+1, s.d.stream)); err != nil {
		return err
	}
	if err := check("cuMemsetD32Async deferred K/V counters", drv.cuMemsetD32Async(s.kvDone, 0, uint64(2*c.Layers*c.KVHeads+c.Layers)+1, s.d.stream)); err != nil {
		return err
	}
	if err := s.d.sync("zeroing the attention counters"); err != nil {
		return err
	}
	if c.Family == model.Llama {
		cos, sin := model.RopeTables(c, s.maxCtx)
		var err error
		if s.cos, err = f32(int64(len(cos)), "rope cos"); err != nil {
			return err
		}
		if s.sin, err = f32(int64(len(sin)), "rope sin"); err != nil {
			return err
		}
		if err := htod(s.d, s.cos, cos, "rope cos"); err != nil {
			return err
		}
		if err := htod(s.d, s.sin, sin, "rope sin"); err != nil {
			return err
		}
	}
	return nil
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
		if s.kvClamp < 0 || n < s.kvClamp {
			s.kvClamp = n // applied to kvDone by the next Forward
		}
	}
}

// Density is the fraction of MLP neurons and heads the sparse decode steps
// computed so far (layer 0's heads, always all, included).
func (s *Session) Density() model.Density { return s.density }

// Close frees the session's graphs and device memory.
func (s *Session) Close() error {
	allocs, graphs := s.allocs, s.graphs
	s.allocs, s.graphs = nil, [3]uintptr{}
	var pool []uint64
	if s.sparse != nil {
		pool = s.sparse.allocs()
		s.sparse = nil
	}
	return s.d.do(func() error {
		for _, g := range graphs {
			if g != 0 {
				drv.cuGraphExecDestroy(g)
			}
		}
		for _, p := range append(allocs, pool...) {
			free(p)
		}
		return nil
	})
}

// Forward appends ids to the sequence and returns next-token logits, as
// model.Session.Forward does: with all set, len(ids) rows of Vocab logits
// (a new slice); otherwise the row of the last position, which the next
// call overwrites. Prompts run in batches of up to maxBatch (512) tokens through
// cuBLAS; one id is a decode step (sparse when a selection is set).
func (s *Session) Forward(ids []int, all bool) ([]float32, error) {
	c := s.m.Cfg
	if err := s.pending; err != nil {
		s.pending = nil
		return nil, err
	}
	if len(ids) == 0 {
		return nil, fmt.Errorf("cuda: forward of no tokens")
	}
	if s.pos+len(ids) > s.maxCtx {
		return nil, fmt.Errorf("cuda: %d tokens at position %d exceed the context of %d tokens", len(ids), s.pos, s.maxCtx)
	}
	for i, id := range ids {
		if id < 0 || id >= c.Vocab {
			return nil, fmt.Errorf("cuda: token id %d at index %d is outside the vocabulary [0, %d)", id, i, c.Vocab)
		}
	}
	var out []float32
	if all {
		out = make([]float32, len(ids)*c.Vocab)
	}
	err := s.d.do(func() error {
		if err := s.kvSync(); err != nil {
			return err
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
			var err error
			if len(chunk) == 1 {
				err = s.decode(chunk[0], rows > 0)
				if err == nil && all {
					copy(out[start*c.Vocab:], s.hostLogits)
				}
			} else {
				err = s.prompt(chunk, rows)
				if err == nil && rows > 0 {
					dst := s.hostLogits
					if all {
						dst = out[start*c.Vocab : (start+rows)*c.Vocab]
					}
					err = dtoh(s.d, dst, s.logits, "logits")
				}
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if all {
		return out, nil
	}
	return s.hostLogits, nil
}

// Kernel launch helpers (device thread).

func blocks(n, per int) int { return (n + per - 1) / per }

var b256 = [3]int{256, 1, 1}

// gemvOp is one launch of gemv_f16 or gemv_bf16 (by w's type; see kernels/dejavu.cu).
type gemvOp struct {
	w                   mat
	x, normW, normB     uint64 // input; its norm's weights (0: no norm)
	bias, y             uint64
	idx, count          uint64 // selected rows (0: all rows)
	blk, rows, rowOff   int
	gateOff, act        int
	accumulate, scatter int
	expect              int     // outputs expected (sets warps per row); 0: rows
	fuse                bool    // normalize x in each block's prologue (normW set) with eps and rms below, not the model's
	eps                 float32 // with fuse
	rms                 int     // with fuse: 1 for RMS normalization
	dyn                 bool    // warps per row chosen by the kernel from *count (count set; expect is the most)
	selOut, selCount    uint64  // compare and compact: outputs > thr appended to selOut (count in selCount)
	thr                 float32
	zero                uint64 // an int32 the kernel sets to 0 (the next selection's counter)
	wprFix              int    // warps per row (0: from expect)
}

// wpr picks the warps per row: enough warps in flight on every SM.
func (s *Session) wpr(expect int) int {
	w := max(1, s.d.minWPR)
	for w < 8 && expect*w < 32*s.d.SMs {
		w *= 2
	}
	return w
}

// grid balances units over the resident blocks: every block gets the same
// number of rounds of the grid-stride loop.
func (s *Session) grid(units, maxResident int) int {
	need := blocks(units, 1)
	if need <= maxResident {
		return need
	}
	rounds := blocks(need, maxResident)
	return blocks(need, rounds)
}

func (s *Session) gemv(op gemvOp) error {
	if op.w.q8 {
		return s.gemvQ8(op)
	}
	c := s.m.Cfg
	if op.blk == 0 {
		op.blk = 1
	}
	if op.expect == 0 {
		op.expect = op.rows
	}
	rms, eps := 0, c.NormEps
	if c.Family == model.Llama {
		rms = 1
	}
	if op.fuse {
		rms, eps = op.rms, op.eps
	}
	if op.normW != 0 && !s.d.fuseNorm && !op.fuse {
		if err := s.norm(op.x, op.normW, op.normB, s.xn, 0, 1); err != nil {
			return err
		}
		op.x, op.normW, op.normB = s.xn, 0, 0
	}
	w := s.wpr(op.expect)
	if op.wprFix > 0 {
		w = op.wprFix
	}
	per := 8 / w
	smem, grid := 4*64, blocks(op.expect, per)
	if op.dyn && op.count != 0 {
		// The kernel picks 1-8 warps a row from *count ≤ expect, aiming at
		// 32·SMs warps: that needs fewer than 8·SMs blocks unless more than
		// 64·SMs rows are selected (then the blocks loop).
		w = -32 * s.d.SMs
		grid = min(blocks(op.expect, 8), 8*s.d.SMs)
	}
	name := op.w.kernel("gemv")
	if op.normW != 0 {
		smem = 4 * (64 + op.w.cols)
		grid = s.grid(grid, s.d.resident(name, smem))
	}
	return s.d.launch(name, [3]int{grid, 1, 1}, b256, smem,
		op.w.p, op.x, op.normW, op.normB, eps, rms, op.bias, op.y, op.idx, op.count, op.blk, op.rows, op.rowOff,
		op.w.cols, op.gateOff, op.act, op.accumulate, op.scatter, w, op.thr, op.selOut, op.selCount, op.zero)
}

// gemvQ8 launches gemv_q8 (Q8_0 weights: the 8-bit MLP predictors) for
// op, which may use only what predict does: a plain or fused-norm input,
// bias, compare and compact, zero. Threads per row (tpr): enough for at
// most two blocks of 32 weights each, doubled (up to one block each)
// while the grid would leave SMs idle.
func (s *Session) gemvQ8(op gemvOp) error {
	if op.idx != 0 || op.count != 0 || op.gateOff != 0 || op.accumulate != 0 || op.scatter != 0 || op.act != -1 || op.w.cols%32 != 0 || op.x%16 != 0 {
		return fmt.Errorf("cuda: gemv_q8 does not do this product (%d×%d)", op.w.rows, op.w.cols)
	}
	if op.normW != 0 && !op.fuse {
		return fmt.Errorf("cuda: gemv_q8 normalizes its input only with the predictors' standardization")
	}
	nb := op.w.cols / 32
	tpr := q8TPR(op.w.cols, 256)
	for tpr < 256 && tpr < nb && blocks(op.rows, 256/tpr) < s.d.SMs {
		tpr *= 2
	}
	if op.wprFix > 0 {
		tpr = op.wprFix // tuning: threads (not warps) per row here
	}
	smem := 256 + 4*((nb+3)&^3) + op.w.cols
	if op.normW != 0 {
		smem += 4 * op.w.cols
	}
	return s.d.launch("gemv_q8", [3]int{blocks(op.rows, 256/tpr), 1, 1}, b256, smem,
		op.w.p, op.w.s, op.x, op.normW, op.normB, op.eps, op.rms, op.bias, op.y, op.rows, op.w.cols, tpr, op.thr,
		op.selOut, op.selCount, op.zero, b2i(s.d.q8Warp))
}

// qkvRope launches qkv_rope for layer li: x (normalized with normW/normB
// when set) → q, k, v, rotated, k and v stored at the step's position; or,
// while the session defers K/V, qkv_defer, which reads the head list
// before its PDL wait (decodeKernels makes sure the selection is final by
// then).
func (s *Session) qkvRope(li int, l *layer, x, normW, normB, heads, count uint64, expectHeads int) error {
	c := s.m.Cfg
	kc, vc := s.layerKV(li)
	if normW != 0 && !s.d.fuseNorm {
		if err := s.norm(x, normW, normB, s.xn, 0, 1); err != nil {
			return err
		}
		x, normW, normB = s.xn, 0, 0
	}
	kvUnits := c.KVHeads
	var done, kin, stat uint64
	if s.kvActive {
		// Deferred: the key/value heads the selected heads read, each
		// caught up from its first missing position (qkv_defer).
		done, kin, stat = s.kvDoneAt(li), s.kvInAt(li), s.kvStatAt(li)
		if heads != 0 {
			kvUnits = min(c.KVHeads, expectHeads)
		}
	}
	cur := 1
	if s.d.kvHeads {
		cur |= kvmHeads
	}
	return s.launchQKV(l, x, normW, normB, heads, count, (expectHeads+2*kvUnits)*s.hd/2, kc, vc, done, kin, stat, cur)
}

// qkv_defer's mode bits besides cur (kernels/dejavu.cu, KVM_*).
const (
	kvmEarly = 2  // position and counters read before the PDL wait
	kvmSkip  = 4  // return at once (timing only: Device.kvSkip)
	kvmRows  = 8  // two rows of counters by position parity, no ticket
	kvmHeads = 16 // the head list and the plan from it before the PDL wait (with kvmEarly)
)

// launchQKV launches qkv_rope over about units row pairs, or qkv_defer
// when done is set (deferred K/V; cur = 0: catch-up only, or with kvmHeads
// added; see kernels/dejavu.cu).
func (s *Session) launchQKV(l *layer, x, normW, normB, heads, count uint64, units int, kc, vc, done, kin, stat uint64, cur int) error {
	c := s.m.Cfg
	rms, il := 0, 0
	if c.Family == model.Llama {
		rms = 1
	}
	if c.Interleave {
		il = 1
	}
	w := s.wpr(units)
	if done != 0 && s.d.kvWPR > 0 {
		w = s.d.kvWPR
	}
	smem, grid := 4*64, blocks(units, 8/w)
	if normW != 0 {
		smem = 4 * (64 + l.qkv.cols)
	}
	name := l.qkv.kernel("qkv_rope")
	mode := 0
	if done != 0 {
		smem += 4 * (4*c.KVHeads + 2)
		name = l.qkv.kernel("qkv_defer")
		smem += 4 * (c.Heads + c.KVHeads) // the head list and every done[] (kernels/dejavu.cu)
		if !s.d.kvLate {
			mode |= kvmEarly
		}
		if !s.d.kvTicket {
			mode |= kvmRows
		}
		if s.d.kvSkip {
			mode |= kvmSkip
		}
	}
	// With a norm, at most the resident blocks, which loop (each pays the
	// norm once). Not for qkv_defer: looping blocks were faster timed alone
	// but slower in the decode graph (docs/gpu.md, v14), unless kvLoop.
	if normW != 0 || (done != 0 && s.d.kvLoop) {
		grid = s.grid(grid, s.d.resident(name, smem))
	}
	args := []any{l.qkv.p, x, normW, normB, c.NormEps, rms, l.qkvB, s.qkv, l.qkv.cols, c.Heads, c.KVHeads, s.hd,
		s.cos, s.sin, il, kc, vc, s.maxCtx, s.io, heads, count, w}
	if done != 0 {
		args = append(args, done, kin, s.kvCounter(), stat, c.Heads/c.KVHeads, cur|mode)
	}
	return s.d.launch(name, [3]int{grid, 1, 1}, b256, smem, args...)
}

// Deferred K/V (docs/gpu.md, "Deferred K/V"; the CPU's model/kvcache.go).
// A sparse decode step computes keys and values only for the key/value
// heads its selected heads read; a skipped head catches up (from the
// attention inputs kept in kvIn) when a later step selects it, before a
// prompt pass (which needs every head), or when the session goes back to
// eager computation. DEJAVU_CUDA_KV=eager (Device.eagerKV) computes every
// head at every step instead.

// kvDoneAt is layer li's counters: two rows of KVHeads int32. qkv_defer
// (v14) reads row p&1 and writes row (p+1)&1 at position p (kvTicket:
// row 0 only, moved by the launch's last block, as the first version
// did).
func (s *Session) kvDoneAt(li int) uint64 { return s.kvDone + uint64(2*li*s.m.Cfg.KVHeads)*4 }

// kvRow is the row of the counters that holds the current ones.
func (s *Session) kvRow() int {
	if s.d.kvTicket {
		return 0
	}
	return s.pos & 1
}

func (s *Session) kvStatAt(li int) uint64 {
	c := s.m.Cfg
	return s.kvDone + uint64(2*c.Layers*c.KVHeads+li)*4
}

func (s *Session) kvCounter() uint64 {
	c := s.m.Cfg
	return s.kvDone + uint64(2*c.Layers*c.KVHeads+c.Layers)*4
}

func (s *Session) kvInAt(li int) uint64 {
	return s.kvIn + uint64(li)*uint64(s.maxCtx)*uint64(s.m.Cfg.Hidden)*4
}

// kvCatchUp computes layer li's keys and values that sparse steps left
// out, so that every head is complete up to s.pos (device thread; io[0]
// must hold s.pos).
func (s *Session) kvCatchUp(li int) error {
	c := s.m.Cfg
	l := &s.m.layers[li]
	kc, vc := s.layerKV(li)
	return s.launchQKV(l, s.kvInAt(li), 0, 0, 0, 0, c.KVHeads*s.hd, kc, vc, s.kvDoneAt(li), s.kvInAt(li), s.kvStatAt(li), 0)
}

// kvSync applies a pending truncation to the deferred counters, and when
// eager computation was asked for while steps deferred, catches every
// head up and stops deferring (device thread, before a Forward's work).
func (s *Session) kvSync() error {
	c := s.m.Cfg
	if s.kvClamp >= 0 {
		n := s.kvClamp
		s.kvClamp = -1
		if s.kvActive {
			if err := s.d.launch("kv_clamp", [3]int{1, 1, 1}, b256, 0, s.kvDone, n, 2*c.Layers*c.KVHeads); err != nil {
				return err
			}
		}
	}
	if !s.kvActive || !s.d.eagerKV {
		return nil
	}
	s.hostIO[0] = int32(s.pos)
	if err := htod(s.d, s.io, s.hostIO[:1], "step position"); err != nil {
		return err
	}
	for li := range s.m.layers {
		if err := s.kvCatchUp(li); err != nil {
			return err
		}
	}
	s.kvActive = false
	s.destroyGraphs()
	return nil
}

// kvBegin starts deferring keys and values at a sparse step (device
// thread): the inputs' buffer on first use (where it does not fit, the
// session stays eager), every head complete up to s.pos, and the graphs
// captured again.
func (s *Session) kvBegin() error {
	if s.kvActive || s.d.eagerKV || s.kvNoRoom {
		return nil
	}
	c := s.m.Cfg
	if s.kvIn == 0 {
		p, err := s.d.alloc(int64(c.Layers)*int64(s.maxCtx)*int64(c.Hidden)*4, "deferred K/V inputs")
		if err != nil {
			// No room for the kept inputs (Layers × maxCtx × Hidden f32):
			// the session computes every head's K and V, as before.
			s.kvNoRoom = true
			return nil
		}
		s.kvIn = p
		s.allocs = append(s.allocs, p)
	}
	if err := check("cuMemsetD32Async deferred K/V counters", drv.cuMemsetD32Async(s.kvDone, uint32(s.pos), uint64(2*c.Layers*c.KVHeads), s.d.stream)); err != nil {
		return err
	}
	s.kvActive = true
	s.destroyGraphs()
	return nil
}

// accum launches accum_rows (y += the selected rows of wt weighted by a);
// early says idx and *count may be read before the kernel's PDL wait (see
// accum_rows; a dense product, count = 0, always may).
func (s *Session) accum(wt mat, a, idx, count uint64, blk, K, aByRow int, bias, y uint64, nrm chainNorm, early bool) error {
	gx := blocks(wt.cols, 256)
	mul := s.d.accumMul
	if mul == 0 {
		mul = 4
	}
	// About mul blocks per SM, and (accFloor) never more: a grid a little
	// over mul·SMs leaves a few SMs a block more than the rest (opt-13b's
	// 20 strips × 27 was 540 blocks on 132 SMs).
	gy := blocks(mul*s.d.SMs, gx)
	if s.d.accFloor {
		gy = mul * s.d.SMs / gx
	}
	gy = max(1, min(gy, blocks(K, 32)))
	name := wt.kernel("accum_rows")
	var done uint64
	rms := 0
	if s.m.Cfg.Family == model.Llama {
		rms = 1
	}
	if nrm.out != 0 {
		done = s.attnCnt + 4*uint64(s.m.Cfg.Heads)
	}
	return s.d.launch(name, [3]int{gx, gy, 1}, b256, 0, wt.p, a, idx, count, blk, K, aByRow, wt.cols, bias, y,
		done, nrm.w, nrm.b, nrm.out, s.m.Cfg.NormEps, rms, nrm.std, float32(1e-5), b2i(s.d.accBatch), b2i((early || count == 0) && s.d.accEarly))
}

// accNormCols is the longest row accum_rows' last block normalizes from
// registers (ACC_NORM_PER values a thread of 256, cuda/kernels/dejavu.cu).
const accNormCols = 24 * 256

// chainNorm is the norm that accum_rows' last block applies to the
// finished sum (out = 0: none): weights w, b (LayerNorm) into out, and the
// predictors' standardized copy into std when set.
type chainNorm struct{ w, b, out, std uint64 }

func (s *Session) norm(x, w, b, out, out16 uint64, n int) error {
	return s.normStd(x, w, b, out, out16, n, 0)
}

// normStd is norm; with std set (n = 1) it also writes x standardized with
// the same statistics and ε = 1e-5, no affine weights: the predictors'
// input (their RMSInput must match the model's norm).
func (s *Session) normStd(x, w, b, out, out16 uint64, n int, std uint64) error {
	c := s.m.Cfg
	rms := 0
	if c.Family == model.Llama {
		rms = 1
	}
	return s.d.launch("norm_rows", [3]int{n, 1, 1}, [3]int{s.normThreads(), 1, 1}, 0, x, w, b, out, out16, c.Hidden, c.NormEps, rms,
		b2i(s.m.bf16), std, float32(1e-5))
}

// normThreads is norm_rows' block size for a row of the model's width:
// eight values a thread, the row in registers.
func (s *Session) normThreads() int {
	return min(1024, max(128, blocks(blocks(s.m.Cfg.Hidden, 8), 32)*32))
}

// toF16 rounds activations to the 16-bit type of the model's weights (f16
// or bf16) for cuBLAS.
func (s *Session) toF16(x uint64, ldx int, y uint64, n, d int) error {
	return s.d.launch("to_f16", [3]int{blocks(d, 4*256), n, 1}, b256, 0, x, ldx, y, n, d, b2i(s.m.bf16))
}

func (s *Session) addBias(x, b uint64, n, d int) error {
	if b == 0 {
		return nil
	}
	return s.d.launch("add_bias", [3]int{blocks(d, 4*256), n, 1}, b256, 0, x, b, n, d)
}

func (s *Session) layerKV(li int) (kc, vc uint64) {
	off := uint64(li) * uint64(s.kvd) * uint64(s.maxCtx) * 4
	return s.kc + off, s.vc + off
}

// ropeStore launches rope_store for the step's n tokens of layer li,
// adding the q|k|v bias b first (0: none).
func (s *Session) ropeStore(li, n int, b uint64) error {
	c := s.m.Cfg
	kc, vc := s.layerKV(li)
	il := 0
	if c.Interleave {
		il = 1
	}
	return s.d.launch("rope_store", [3]int{n, blocks(c.Heads+c.KVHeads, 8), 1}, [3]int{256, 1, 1}, 0,
		s.qkv, s.qkvRows, n, c.Heads, c.KVHeads, s.hd, s.cos, s.sin, il, kc, vc, s.maxCtx, s.io, b)
}

// attention launches the attention of the step's n tokens (layer li): for
// one token (decode) attn_split over ⌈positions/splits⌉-position pieces of
// the context, for heads[0 … *count) only when heads is set (expectHeads
// of them at most); for a prompt, or with DEJAVU_CUDA_ATTN=legacy, one
// block per head and token.
func (s *Session) attention(li, n int, heads, count uint64, expectHeads int) error {
	c := s.m.Cfg
	kc, vc := s.layerKV(li)
	scale := float32(1 / math.Sqrt(float64(s.hd)))
	if n == 1 && s.d.attnMode != attnLegacy {
		S := s.splits()
		combine := 1
		if s.d.attnMode == attnSplitCombine {
			combine = 0
		}
		smem := 4 * (5*s.hd + 33 + S + max(blocks(s.maxCtx, S), attnCMin))
		if err := s.d.launch("attn_split", [3]int{S, expectHeads, 1}, [3]int{128, 1, 1}, smem,
			s.qkv, kc, vc, s.att, s.attnPart, s.attnCnt, c.Heads, c.KVHeads, s.hd, s.maxCtx, c.Window, scale, s.io,
			heads, count, combine); err != nil || combine == 1 {
			return err
		}
		return s.d.launch("attn_combine", [3]int{expectHeads, 1, 1}, [3]int{128, 1, 1}, 4*(33+S),
			s.attnPart, s.att, S, s.hd, heads, count)
	}
	if n > 1 && heads == 0 {
		if k, q, threads, smem := s.d.promptKernel(s.hd); k != "" {
			return s.d.launch(k, [3]int{blocks(n, q), c.Heads, 1}, [3]int{threads, 1, 1}, smem,
				s.qkv, s.qkvRows, kc, vc, s.att, s.qd, c.Heads, c.KVHeads, s.hd, s.maxCtx, c.Window, scale, s.io, n)
		}
	}
	return s.d.launch("attention", [3]int{n, c.Heads, 1}, [3]int{128, 1, 1}, s.smem,
		s.qkv, s.qkvRows, kc, vc, s.att, s.qd, c.Heads, c.KVHeads, s.hd, s.maxCtx, c.Window, scale, s.io, heads, count)
}

// attnCMin is the fewest positions an attn_split block takes
// (kernels/dejavu.cu, ATTN_CMIN).
const attnCMin = 8

// Prompt attention kernels (Device.attnPrompt).
const (
	apBlock = iota // attention: one block a query
	apTiles        // attn_prompt: tiles of queries, f32 products
	apTC           // attn_prompt_tc: tiles on the tensor cores, f16 operands
)

// attn_prompt's tiles (kernels/dejavu.cu: AP_Q queries and AP_K keys a
// tile, head dimensions up to 32·AP_E), and attn_prompt_tc's (APT_Q
// queries and as many keys, head dimensions multiples of 16 up to APT_D).
const (
	apQ, apK, apE = 16, 32, 8
	aptQ, aptD    = 64, 128
)

// attnPromptSmem is attn_prompt's dynamic shared memory for head
// dimension hd: the tile's queries, keys (rows padded by 4) and values.
func attnPromptSmem(hd int) int { return 4 * (apQ*hd + apK*(hd+4) + apK*hd) }

// attnPromptTCSmem is attn_prompt_tc's: the tile's f16 queries, keys and
// values, rows padded by 8.
func attnPromptTCSmem(hd int) int { return 2 * 3 * aptQ * (hd + 8) }

// promptKernel is the prompt attention kernel for head dimension hd, the
// queries a block takes, its threads and its shared memory: the tensor
// cores' where the head dimension allows it, else f32 tiles, else ("") one
// block a query.
func (d *Device) promptKernel(hd int) (name string, queries, threads, smem int) {
	if d.attnPrompt == apTC && hd%16 == 0 && hd <= aptD && attnPromptTCSmem(hd) <= d.maxSmem {
		return "attn_prompt_tc", aptQ, 256, attnPromptTCSmem(hd)
	}
	if d.attnPrompt >= apTiles && hd%4 == 0 && hd <= 32*apE && attnPromptSmem(hd) <= d.maxSmem {
		return "attn_prompt", apQ, 128, attnPromptSmem(hd)
	}
	return "", 0, 0, 0
}

// splits is how many pieces decode attention cuts each head's positions
// into: about eight blocks per SM over all heads (33 for opt-6.7b's 32
// heads on an H100, 26 for opt-13b's 40), at most maxSplits and at most a
// piece per cached position.
func (s *Session) splits() int {
	S := s.d.splits
	if S == 0 {
		S = 8 * s.d.SMs / s.m.Cfg.Heads
	}
	return max(1, min(S, maxSplits, s.maxCtx))
}

func (s *Session) embed(n int) error {
	c := s.m.Cfg
	g := s.m
	dst, dim := s.x, c.Hidden
	if g.projIn.p != 0 {
		dst, dim = s.e, c.ProjDim
	}
	if err := s.d.launch("embed_rows", [3]int{blocks(dim, 256), n, 1}, b256, 0, g.embed.p, s.io, dst, n, dim, b2i(g.embed.bf)); err != nil {
		return err
	}
	if g.projIn.p != 0 {
		if n == 1 {
			if err := s.gemv(gemvOp{w: g.projIn, x: s.e, y: s.x, rows: c.Hidden, act: -1}); err != nil {
				return err
			}
		} else {
			if err := s.toF16(s.e, c.ProjDim, s.e16, n, c.ProjDim); err != nil {
				return err
			}
			if err := s.d.gemm(s.x, g.projIn.p, s.e16, n, c.Hidden, c.ProjDim, true, 0, g.bf16); err != nil {
				return err
			}
		}
	}
	if c.Family == model.OPT {
		return s.d.launch("add_pos", [3]int{blocks(c.Hidden, 256), n, 1}, b256, 0, g.pos.p, s.io, s.x, n, c.Hidden, b2i(g.posF32))
	}
	return nil
}

// prompt runs n ≥ 2 tokens through the model with cuBLAS products and
// leaves the logits of the last rows tokens in s.logits.
func (s *Session) prompt(ids []int, rows int) error {
	c := s.m.Cfg
	g := s.m
	n, d := len(ids), c.Hidden
	s.hostIO[0] = int32(s.pos)
	for i, id := range ids {
		s.hostIO[1+i] = int32(id)
	}
	if err := htod(s.d, s.io, s.hostIO[:1+n], "step ids"); err != nil {
		return err
	}
	if err := s.embed(n); err != nil {
		return err
	}
	preLN := c.Family == model.Llama || c.PreLN
	act := int(c.Act)
	gated := 0
	if s.gateOff > 0 {
		gated = 1
	}
	for li := range g.layers {
		l := &g.layers[li]
		steps := []func() error{
			func() error {
				if s.kvActive { // every head attends: those sparse steps skipped first
					if err := s.kvCatchUp(li); err != nil {
						return err
					}
				}
				if preLN {
					return s.norm(s.x, l.attnW, l.attnB, 0, s.x16, n)
				}
				return s.toF16(s.x, d, s.x16, n, d)
			},
			func() error { return s.d.gemm(s.qkv, l.qkv.p, s.x16, n, s.qkvRows, d, true, 0, g.bf16) },
			func() error { return s.ropeStore(li, n, l.qkvB) },
			func() error { return s.attention(li, n, 0, 0, c.Heads) },
			func() error { return s.toF16(s.att, s.qd, s.att16, n, s.qd) },
			func() error { return s.d.gemm(s.x, l.oT.p, s.att16, n, d, s.qd, false, 1, g.bf16) },
			func() error { return s.addBias(s.x, l.oB, n, d) },
			func() error {
				if !preLN {
					return s.norm(s.x, l.attnW, l.attnB, s.x, 0, n)
				}
				return nil
			},
			func() error {
				if preLN {
					return s.norm(s.x, l.mlpW, l.mlpB, 0, s.x16, n)
				}
				return s.toF16(s.x, d, s.x16, n, d)
			},
			func() error { return s.d.gemm(s.up, l.up.p, s.x16, n, s.upRows, d, true, 0, g.bf16) },
			func() error {
				return s.d.launch("act_rows", [3]int{blocks(c.FFN, 4*256), n, 1}, b256, 0, s.up, s.upRows, l.upB, s.h16, n, c.FFN, gated, act, b2i(g.bf16))
			},
			func() error { return s.d.gemm(s.x, l.downT.p, s.h16, n, d, c.FFN, false, 1, g.bf16) },
			func() error { return s.addBias(s.x, l.downB, n, d) },
			func() error {
				if !preLN {
					return s.norm(s.x, l.mlpW, l.mlpB, s.x, 0, n)
				}
				return nil
			},
		}
		for i, st := range steps {
			if err := st(); err != nil {
				return fmt.Errorf("layer %d step %d: %w", li, i, err)
			}
		}
	}
	s.pos += n
	if s.kvActive {
		if err := check("cuMemsetD32Async deferred K/V counters", drv.cuMemsetD32Async(s.kvDone, uint32(s.pos), uint64(2*c.Layers*c.KVHeads), s.d.stream)); err != nil {
			return err
		}
	}
	if rows == 0 {
		return s.d.sync("prompt")
	}
	xs := s.x + uint64((n-rows)*d*4)
	if err := s.norm(xs, g.normW, g.normB, 0, s.x16, rows); err != nil {
		return err
	}
	in, k := s.x16, d
	if g.projOu.p != 0 {
		if err := s.d.gemm(s.tmp, g.projOu.p, s.x16, rows, c.ProjDim, d, true, 0, g.bf16); err != nil {
			return err
		}
		if err := s.toF16(s.tmp, c.ProjDim, s.e16, rows, c.ProjDim); err != nil {
			return err
		}
		in, k = s.e16, c.ProjDim
	}
	return s.d.gemm(s.logits, g.head.p, in, rows, c.Vocab, k, true, 0, g.bf16)
}

// decode runs one token: the step's kernels, replayed from a CUDA graph
// when enabled, then the logits copied to s.hostLogits.
func (s *Session) decode(id int, wantLogits bool) error {
	s.hostIO[0], s.hostIO[1] = int32(s.pos), int32(id)
	if err := check("cuMemcpyHtoDAsync step ids", drv.cuMemcpyHtoDAsync(s.io, ptrOf(s.hostIO), 8, s.d.stream)); err != nil {
		return err
	}
	sp := s.sparse
	c := s.m.Cfg
	if sp != nil && sp.selectsHeads(c.Layers, c.Heads) {
		if err := s.kvBegin(); err != nil {
			return err
		}
	}
	kvTotal := int64(c.KVHeads) * int64(c.Layers)
	mode := 0
	if sp != nil && sp.pred != nil {
		mode = 2
	} else if sp != nil {
		mode = 1
		src := sp.pool + uint64(sp.step%sp.nPool)*uint64(sp.selInts)*4
		if err := check("cuMemcpyDtoDAsync selection", drv.cuMemcpyDtoDAsync(sp.sel, src, uint64(sp.selInts)*4, s.d.stream)); err != nil {
			return err
		}
		if s.kvActive {
			s.density.KVComputed += int64(c.KVHeads) + int64(sp.kvSel[sp.step%sp.nPool])
		} else {
			s.density.KVComputed += kvTotal
		}
		s.density.KVTotal += kvTotal
		sp.step++
		s.density.Tokens++
		s.density.MLPComputed += int64(sp.kMLP) * int64(c.Layers)
		s.density.MLPTotal += int64(c.FFN) * int64(c.Layers)
		s.density.HeadComputed += int64(c.Heads) + int64(sp.kHeads)*int64(c.Layers-1)
		s.density.HeadTotal += int64(c.Heads) * int64(c.Layers)
	}
	if s.useGraph {
		if s.graphs[mode] == 0 {
			if err := s.capture(mode); err != nil {
				return err
			}
		}
		if err := check("cuGraphLaunch", drv.cuGraphLaunch(s.graphs[mode], s.d.stream)); err != nil {
			return err
		}
	} else if err := s.decodeKernels(sp); err != nil {
		return err
	}
	s.pos++
	if mode == 2 {
		if err := dtoh(s.d, sp.counts, sp.sel, "selection counts"); err != nil {
			return err
		}
		s.density.Tokens++
		s.density.MLPTotal += int64(c.FFN) * int64(c.Layers)
		s.density.HeadTotal += int64(c.Heads) * int64(c.Layers)
		s.density.HeadComputed += int64(c.Heads)
		heads := func(l int) int64 { // layer l ≥ 1's selected heads
			if sp.everyHead(l, c.Heads) {
				return int64(c.Heads)
			}
			return int64(sp.counts[2*l+1])
		}
		for l := 0; l < c.Layers; l++ {
			s.density.MLPComputed += int64(sp.counts[2*l])
			if l > 0 {
				s.density.HeadComputed += heads(l)
			}
		}
		s.density.KVTotal += kvTotal
		switch {
		case !s.kvActive:
			s.density.KVComputed += kvTotal
		case c.KVHeads == c.Heads: // one key/value head per head
			s.density.KVComputed += int64(c.KVHeads)
			for l := 1; l < c.Layers; l++ {
				s.density.KVComputed += heads(l)
			}
		default:
			if len(s.kvStat) != c.Layers {
				s.kvStat = make([]int32, c.Layers)
			}
			if err := dtoh(s.d, s.kvStat, s.kvStatAt(0), "deferred K/V heads"); err != nil {
				return err
			}
			for _, n := range s.kvStat {
				s.density.KVComputed += int64(n)
			}
		}
	}
	if !wantLogits {
		return s.d.sync("decode step")
	}
	return dtoh(s.d, s.hostLogits, s.logits, "logits")
}

// capture records one decode step's kernels into an executable graph.
func (s *Session) capture(mode int) error {
	if err := check("cuStreamBeginCapture", drv.cuStreamBeginCapture(s.d.stream, 1 /* THREAD_LOCAL */)); err != nil {
		return err
	}
	var sp *sparseState
	if mode > 0 {
		sp = s.sparse
	}
	kerr := s.decodeKernels(sp)
	var graph uintptr
	err := check("cuStreamEndCapture", drv.cuStreamEndCapture(s.d.stream, &graph))
	if kerr != nil {
		if graph != 0 {
			drv.cuGraphDestroy(graph)
		}
		return fmt.Errorf("capturing the decode step: %w", kerr)
	}
	if err != nil {
		return err
	}
	defer drv.cuGraphDestroy(graph)
	var exec uintptr
	if err := check("cuGraphInstantiateWithFlags", drv.cuGraphInstantiateWithFlags(&exec, graph, 0)); err != nil {
		return err
	}
	s.graphs[mode] = exec
	return nil
}

// decodeKernels launches one token's kernels (GEMVs; the selected rows and
// heads only when sp is set).
func (s *Session) decodeKernels(sp *sparseState) error {
	c := s.m.Cfg
	g := s.m
	preLN := c.Family == model.Llama || c.PreLN
	if err := s.embed(1); err != nil {
		return err
	}
	act := int(c.Act)
	L := c.Layers
	// chain (DEJAVU_CUDA_CHAIN=1; off by default since v17: a norm kernel
	// that loads its weights before its PDL wait now costs less than the
	// last-block tail, docs/gpu.md): each accum_rows' last block applies
	// the norm that follows it (pre-LN: into s.xn, with the predictors'
	// standardized copy; post-LN: in place), so no norm kernel runs after
	// layer 0's first. Not with predictors whose inputs the norms
	// standardize (std) unless chainStd: correct (the head predictor's
	// input is double-buffered by layer parity, as the down accum_rows
	// writes the next one while the side stream may read this one) but
	// slower (opt-6.7b threshold compaction 3.17 → 3.42 ms; docs/gpu.md,
	// v12).
	var pr *gpuPredictors
	if sp != nil {
		pr = sp.pred
	}
	// With predictors on a pre-LN model whose norms run as kernels, the
	// norm kernels also write the predictors' standardized inputs (the
	// same statistics): no standardization of their own, and the head
	// predictor does not read x.
	std := pr != nil && preLN && !s.d.fuseNorm && !s.d.selOld && s.d.predStd && pr.rms == (c.Family == model.Llama)
	// Only rows that accum_rows' last block holds in registers: longer ones
	// it reads three times from L2, which cost opt-30b's 7168-wide rows
	// 1.9 ms a step (dense 23.3 vs 21.4 ms; docs/gpu.md, v17).
	chain := s.d.chain && !s.d.fuseNorm && !s.d.selOld && (!std || s.d.chainStd) && c.Hidden <= accNormCols
	for li := range g.layers {
		l := &g.layers[li]
		var mlpIdx, mlpCnt, headIdx, headCnt uint64
		expMLP, expHeads := c.FFN, c.Heads
		if sp != nil {
			mlpCnt = sp.sel + uint64(2*li)*4
			mlpIdx = sp.sel + uint64(2*L+li*c.FFN)*4
			expMLP = sp.kMLP
			if !sp.everyHead(li, c.Heads) {
				headCnt = sp.sel + uint64(2*li+1)*4
				headIdx = sp.sel + uint64(2*L+L*c.FFN+li*c.Heads)*4
				expHeads = sp.kHeads
			}
		}
		in, attnW, attnB, mlpW, mlpB := s.x, uint64(0), uint64(0), uint64(0), uint64(0)
		if preLN {
			attnW, attnB, mlpW, mlpB = l.attnW, l.attnB, l.mlpW, l.mlpB
		}
		// The lookahead head predictor (layer li+1's heads from this layer's
		// input) runs on the side stream, beside this layer's attention: a
		// fork here, an edge back before the attention output changes x,
		// a join before layer li+1's q|k|v.
		lookahead := pr != nil && s.d.ahead && !s.d.selOld
		// Layer li+1's heads need choosing (not all of them, not past the end).
		choose := pr != nil && li+1 < L && !sp.everyHead(li+1, c.Heads)
		// The MLP predictor reads this layer's input too (sparsity.MLPInputLayer):
		// it runs at the start of the layer, on the side stream with the
		// lookahead (first: its join comes sooner), joined before the up GEMV.
		mlpFirst := pr != nil && pr.layerIn
		mlpSide := mlpFirst && lookahead
		ahead := lookahead && choose
		side := ahead || mlpSide // a fork at the start of the layer
		var stdH, stdM uint64
		if std {
			stdM = pr.xs
			if choose || mlpFirst {
				stdH = pr.xsH + uint64(li%2*c.Hidden)*4 // by parity: layer li-1's down accum_rows may write layer li+1's
			}
			if mlpFirst {
				stdM = stdH // the layer's input, standardized by the attention's norm
			}
		}
		// This layer's kernels read its head selection before their PDL
		// waits: the predictor that wrote it must have finished before the
		// first of them starts. With the lookahead the kernel after the join
		// (in the previous layer) starts only then (its launch is a full
		// dependency); without it, the layer's first kernel on the main
		// stream waits for the previous layer to finish.
		if pr != nil && li > 0 && !lookahead {
			s.d.full = s.d.stream
		}
		if chain && preLN && li > 0 { // the previous layer's down accum_rows wrote s.xn (and stdH)
			in, attnW, attnB = s.xn, 0, 0
		} else if std {
			if err := s.normStd(s.x, attnW, attnB, s.xn, 0, 1, stdH); err != nil {
				return fmt.Errorf("decode layer %d: %w", li, err)
			}
			in, attnW, attnB = s.xn, 0, 0
		}
		// The norms chained into this layer's accum_rows: after the
		// attention (the MLP's) and after the MLP (the next layer's
		// attention norm, or the final norm).
		var nAttn, nMLP chainNorm
		if chain && preLN {
			if !(std && s.canPredMLP(pr, li, mlpW)) { // pred_mlp normalizes the MLP's input itself
				nAttn = chainNorm{w: mlpW, b: mlpB, out: s.xn, std: stdM}
				if mlpFirst {
					nAttn.std = 0 // stdM is the layer's input, which the predictor reads
				}
			}
			if li+1 < L {
				nl := &g.layers[li+1]
				nMLP = chainNorm{w: nl.attnW, b: nl.attnB, out: s.xn}
				if std && li+2 < L && (!sp.everyHead(li+2, c.Heads) || mlpFirst) {
					nMLP.std = pr.xsH + uint64((li+1)%2*c.Hidden)*4
				}
			} else if g.normW != 0 {
				nMLP = chainNorm{w: g.normW, b: g.normB, out: s.xn}
			}
		} else if chain {
			nAttn = chainNorm{w: l.attnW, b: l.attnB, out: s.x}
			nMLP = chainNorm{w: l.mlpW, b: l.mlpB, out: s.x}
		}
		mlpIn := in
		fused := false // the MLP's norm, predictor and up GEMV in one kernel (pred_mlp)
		// Selections copied before the step (random) may be read early too.
		early := sp != nil && sp.pred == nil
		if nAttn.out != 0 && preLN {
			mlpIn = s.xn
		} else if mlpFirst {
			mlpIn = s.x // in may be the attention's normalized input (std); the up GEMV normalizes x itself
		}
		steps := []func() error{
			func() error {
				main := s.d.stream
				if side {
					if err := s.d.edge(0, main, s.d.side); err != nil {
						return err
					}
				}
				// onSide runs f's launches on the side stream when set.
				onSide := func(set bool, f func() error) error {
					if set {
						s.d.stream = s.d.side
					}
					err := f()
					s.d.stream = main
					return err
				}
				if mlpFirst {
					err := onSide(mlpSide, func() error {
						if err := s.predict(pr, &pr.mlp[li], c.FFN, pr.mlpK[li], pr.thr[li], pr.useThr[li], mlpIdx, mlpCnt, false, stdM); err != nil || !mlpSide {
							return err
						}
						return check("cuEventRecord", drv.cuEventRecord(s.d.ev[3], s.d.side))
					})
					if err != nil {
						return err
					}
				}
				if !choose {
					return nil
				}
				out, cnt := sp.sel+uint64(2*L+L*c.FFN+(li+1)*c.Heads)*4, sp.sel+uint64(2*(li+1)+1)*4
				return onSide(ahead, func() error {
					return s.predict(pr, &pr.head[li], c.Heads, pr.headK[li], 0, false, out, cnt, true, stdH)
				})
			},
			func() error { return s.qkvRope(li, l, in, attnW, attnB, headIdx, headCnt, expHeads) },
			func() error { return s.attention(li, 1, headIdx, headCnt, expHeads) },
			func() error {
				if side && stdH == 0 { // the side stream has read x
					if err := check("cuStreamWaitEvent", drv.cuStreamWaitEvent(s.d.stream, s.d.ev[1], 0)); err != nil {
						return err
					}
				}
				blk := 1
				if headIdx != 0 {
					blk = s.hd
				}
				if err := s.accum(l.oT, s.att, headIdx, headCnt, blk, s.qd, 1, l.oB, s.x, nAttn, true); err != nil {
					return err
				}
				if nAttn.out != 0 && preLN {
					mlpW, mlpB = 0, 0 // s.xn holds the MLP's input (and stdM its standardized copy)
				}
				return nil
			},
			func() error {
				if !preLN && nAttn.out == 0 {
					return s.norm(s.x, l.attnW, l.attnB, s.x, 0, 1)
				}
				return nil
			},
			func() error {
				if pr == nil {
					return nil
				}
				if mlpSide { // join: the neurons are chosen; the up GEMV starts after it
					s.d.full = s.d.stream
					return check("cuStreamWaitEvent", drv.cuStreamWaitEvent(s.d.stream, s.d.ev[3], 0))
				}
				if mlpFirst {
					return nil
				}
				if fused = nAttn.out == 0 && s.canPredMLP(pr, li, mlpW); fused {
					return nil // pred_mlp below: the norm, the predictor and the up GEMV in one kernel
				}
				if std && nAttn.out == 0 {
					if err := s.normStd(s.x, mlpW, mlpB, s.xn, 0, 1, stdM); err != nil {
						return err
					}
					mlpW, mlpB, mlpIn = 0, 0, s.xn // the up GEMV reads the normalized copy
				}
				return s.predict(pr, &pr.mlp[li], c.FFN, pr.mlpK[li], pr.thr[li], pr.useThr[li], mlpIdx, mlpCnt, false, stdM)
			},
			func() error {
				// A threshold selects a varying number of neurons (at most
				// expMLP = FFN): the kernel sizes its warps per row from it.
				up := gemvOp{w: l.up, x: mlpIn, normW: mlpW, normB: mlpB, bias: l.upB, y: s.h, idx: mlpIdx, count: mlpCnt,
					rows: c.FFN, gateOff: s.gateOff, act: act, expect: expMLP, dyn: pr != nil && pr.useThr[li], wprFix: s.d.upWPR}
				if fused {
					return s.predMLP(pr, li, s.x, mlpW, mlpB, mlpIdx, mlpCnt, up)
				}
				return s.gemv(up)
			},
			func() error {
				return s.accum(l.downT, s.h, mlpIdx, mlpCnt, 1, c.FFN, 0, l.downB, s.x, nMLP, early || mlpSide)
			},
			func() error {
				if !preLN && nMLP.out == 0 {
					return s.norm(s.x, l.mlpW, l.mlpB, s.x, 0, 1)
				}
				return nil
			},
			func() error {
				if ahead { // join: layer li+1's heads are chosen; the next kernel starts after it
					s.d.full = s.d.stream
					return s.d.edge(2, s.d.side, s.d.stream)
				}
				return nil
			},
		}
		// The join is the last step; DEJAVU_CUDA_JOIN moves it before
		// step joinAt (tuning: where its full edge lands, docs/gpu.md v16).
		if j := s.d.joinAt; j > 0 && j < len(steps)-1 {
			steps = slices.Insert(steps[:len(steps)-1], j, steps[len(steps)-1])
		}
		for i, st := range steps {
			if err := st(); err != nil {
				return fmt.Errorf("decode layer %d step %d: %w", li, i, err)
			}
		}
	}
	fin := gemvOp{x: s.x, normW: g.normW, normB: g.normB, act: -1}
	if chain && preLN && g.normW != 0 && L > 0 { // the last down accum_rows wrote the final norm into s.xn
		fin = gemvOp{x: s.xn, act: -1}
	}
	if g.projOu.p != 0 {
		fin.w, fin.y, fin.rows = g.projOu, s.tmp, c.ProjDim
		if err := s.gemv(fin); err != nil {
			return err
		}
		fin = gemvOp{x: s.tmp, act: -1}
	}
	fin.w, fin.y, fin.rows = g.head, s.logits, c.Vocab
	return s.gemv(fin)
}

// SetRandomSparse makes decode steps sparse with random selections: a
// fraction mlp of each layer's MLP neurons and a fraction heads of the
// heads of layers ≥ 1 (layer 0 computes all heads; K and V are computed
// for the key/value heads the selected heads read, the others later:
// "Deferred K/V" in docs/gpu.md). Eight different random selections (from
// seed) are drawn once and used in turn, one per step. mlp ≤ 0 or heads ≤ 0 turns sparse
// decoding off. This is the paper's random-selection speed measurement.
func (s *Session) SetRandomSparse(mlp, heads float64, seed uint64) {
	s.pending = s.setRandomSparse(mlp, heads, seed) // reported by the next Forward
}

func (s *Session) setRandomSparse(mlp, heads float64, seed uint64) error {
	c := s.m.Cfg
	old := s.sparse
	s.sparse = nil
	err := s.d.do(func() error {
		s.clearSparse(old)
		if mlp <= 0 || heads <= 0 {
			return nil
		}
		L, F, H := c.Layers, c.FFN, c.Heads
		sp := &sparseState{kMLP: clampK(mlp, F), kHeads: clampK(heads, H), nPool: nPool}
		sp.selInts = 2*L + L*F + L*H
		host := make([]int32, sp.selInts*nPool)
		r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
		perm := func(n, k int, dst []int32) {
			p := r.Perm(n)[:k]
			sort.Ints(p)
			for i, v := range p {
				dst[i] = int32(v)
			}
		}
		group := int32(H / c.KVHeads)
		sp.kvSel = make([]int, nPool)
		for j := 0; j < nPool; j++ {
			b := host[j*sp.selInts:]
			for l := 0; l < L; l++ {
				b[2*l], b[2*l+1] = int32(sp.kMLP), int32(sp.kHeads)
				perm(F, sp.kMLP, b[2*L+l*F:])
				hs := b[2*L+L*F+l*H:][:sp.kHeads]
				perm(H, sp.kHeads, hs)
				if l > 0 { // sorted: the key/value heads ascend
					for i, h := range hs {
						if i == 0 || h/group != hs[i-1]/group {
							sp.kvSel[j]++
						}
					}
				}
			}
		}
		var err error
		if sp.sel, err = s.d.alloc(int64(4*sp.selInts), "sparse selection"); err != nil {
			return err
		}
		if sp.pool, err = s.d.alloc(int64(4*len(host)), "random selections"); err != nil {
			free(sp.sel)
			return err
		}
		if err := htod(s.d, sp.pool, host, "random selections"); err != nil {
			free(sp.sel)
			free(sp.pool)
			return err
		}
		s.sparse = sp
		return nil
	})
	return err
}

// clearSparse destroys the sparse graphs and frees old's memory (device thread).
func (s *Session) clearSparse(old *sparseState) {
	for i := 1; i < len(s.graphs); i++ {
		if s.graphs[i] != 0 {
			drv.cuGraphExecDestroy(s.graphs[i])
			s.graphs[i] = 0
		}
	}
	if old != nil {
		for _, p := range old.allocs() {
			free(p)
		}
	}
}

// dropGraphs destroys the captured decode graphs (they are captured again
// on the next step), after a change of how the step is launched.
func (s *Session) dropGraphs() error {
	return s.d.do(func() error {
		s.destroyGraphs()
		return nil
	})
}

// destroyGraphs is dropGraphs on the device thread.
func (s *Session) destroyGraphs() {
	for i, g := range s.graphs {
		if g != 0 {
			drv.cuGraphExecDestroy(g)
			s.graphs[i] = 0
		}
	}
}

func clampK(frac float64, n int) int {
	k := int(math.Round(frac * float64(n)))
	return max(1, min(n, k))
}
