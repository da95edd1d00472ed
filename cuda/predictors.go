package cuda

import (
	"fmt"

	"dejavu/internal/half"
	"dejavu/kernels"
	"dejavu/model"
	"dejavu/sparsity"
)

// gpuPredictors are trained DejaVu predictors on the GPU: per layer the
// low-rank MLP predictor and (all layers but the last) the lookahead head
// predictor, f16, with their selection rules. The weights belong to the
// model (uploaded once per predictor set, see predWeights); the rest is
// the session's.
type gpuPredictors struct {
	rms         bool
	layerIn     bool // the MLP predictors read the layer's input (sparsity.MLPInputLayer): run beside the attention
	mlp, head   []lowRankGPU
	mlpK, headK []int
	thr         []float32
	useThr      []bool
	ones        uint64 // Hidden × 1.0: standardization has no affine weights
	xs, h, z    uint64 // scratch: standardized input, rank-sized products, logits
	hH, zH, xsH uint64 // the head predictor's (it may run beside the MLP predictor); xsH: two inputs, by layer parity
	ws          uint64 // select_multi's counters and histograms (zeroed; each launch leaves them zeroed)
	allocs      []uint64
}

// predWeights are one predictor set's weights on the GPU, kept by the
// model (Model.preds) for every session that uses the set.
type predWeights struct {
	mlp, head []lowRankGPU
	maxRank   int
	keep      []float32 // the host slice the key points into: keeps its address unique while cached
	allocs    []uint64
}

// predKey identifies a predictor set by its weights, so that clones
// (sparsity.Predictors.Clone, one per session) share one upload: the
// address of the first MLP predictor's bias, which clones share; the
// *Predictors itself when there is none.
type predKey struct {
	bias   *float32
	p      *sparsity.Predictors
	layers int
	q8     bool // the MLP predictors are Q8_0 (Quantize keeps the biases: a set quantized after an upload is uploaded again)
}

func keyOf(p *sparsity.Predictors) predKey {
	k := predKey{layers: p.Info.Layers}
	if p.Info.Layers > 0 {
		k.q8 = p.MLPPredictor(0).A.DType == kernels.Q8_0
		if b := p.MLPPredictor(0).Bias; len(b) > 0 {
			k.bias = &b[0]
			return k
		}
	}
	k.p = p
	return k
}

// predictorWeights returns p's weights on the GPU, uploading them on first
// use (device thread). The cache lives until the model is closed; weights
// changed in place on the host after the upload are not seen.
func (g *Model) predictorWeights(p *sparsity.Predictors) (*predWeights, error) {
	key := keyOf(p)
	if pw := g.preds[key]; pw != nil {
		return pw, nil
	}
	c := g.Cfg
	up := &Model{dev: g.dev}
	pw := &predWeights{maxRank: 1}
	if key.bias != nil {
		pw.keep = p.MLPPredictor(0).Bias
	}
	lowRank := func(lr sparsity.LowRank, what string) (lowRankGPU, error) {
		var r lowRankGPU
		var err error
		m := up.mats
		if lr.A.DType == kernels.Q8_0 && lr.B.DType == kernels.Q8_0 { // sparsity.Predictors.Quantize
			m = func(what string, _ bool, ws ...kernels.Mat) (mat, error) { return up.q8Mat(what, ws[0]) }
		}
		if r.a, err = m(what+" A", false, lr.A); err != nil {
			return r, err
		}
		if r.b, err = m(what+" B", false, lr.B); err != nil {
			return r, err
		}
		r.bias, err = up.vecs(what+" bias", lr.Bias)
		return r, err
	}
	for l := 0; l < c.Layers; l++ {
		r, err := lowRank(p.MLPPredictor(l), fmt.Sprintf("layer %d MLP predictor", l))
		if err != nil {
			freeAll(up.allocs)
			return nil, err
		}
		pw.mlp = append(pw.mlp, r)
		pw.maxRank = max(pw.maxRank, r.a.rows)
		if hp, ok := p.HeadPredictor(l); ok {
			r, err := lowRank(hp, fmt.Sprintf("layer %d head predictor", l))
			if err != nil {
				freeAll(up.allocs)
				return nil, err
			}
			pw.head = append(pw.head, r)
			pw.maxRank = max(pw.maxRank, r.a.rows)
		}
	}
	pw.allocs = up.allocs
	if g.preds == nil {
		g.preds = map[predKey]*predWeights{}
	}
	g.preds[key] = pw
	g.predUp++
	return pw, nil
}

// q8Mat uploads the Q8_0 matrix w as gemv_q8 reads it: the int8 quants
// row-major, then (from the next multiple of 256 bytes) the f16 scales,
// both recovered by q8Split.
func (g *Model) q8Mat(what string, w kernels.Mat) (mat, error) {
	q, sc, err := q8Split(w)
	if err != nil {
		return mat{}, fmt.Errorf("cuda: %s: %w", what, err)
	}
	m := mat{rows: w.Rows, cols: w.Cols, q8: true}
	off := (int64(len(q)) + 255) &^ 255
	p, err := g.alloc(off+int64(2*len(sc)), what)
	if err != nil {
		return mat{}, err
	}
	m.p, m.s = p, p+uint64(off)
	if err := htod(g.dev, m.p, q, what); err != nil {
		return mat{}, err
	}
	return m, htod(g.dev, m.s, sc, what+" scales")
}

// q8Split returns the quants (row-major, rows × cols) and the f16 scales
// (rows × cols/32) of the Q8_0 matrix w. kernels.Mat does not expose its
// blocks; requantizing a decoded row (kernels.QuantizeRow, llama.cpp's
// rule) gives them back, and every block is checked to decode to the same
// values.
func q8Split(w kernels.Mat) ([]int8, []uint16, error) {
	if w.DType != kernels.Q8_0 || w.Cols%kernels.Q8Block != 0 {
		return nil, nil, fmt.Errorf("not a Q8_0 matrix of whole blocks (%v, %d columns)", w.DType, w.Cols)
	}
	const bb = 2 + kernels.Q8Block // f16 scale, 32 int8
	nb := w.Cols / kernels.Q8Block
	q := make([]int8, w.Rows*w.Cols)
	sc := make([]uint16, w.Rows*nb)
	row := make([]float32, w.Cols)
	for i := 0; i < w.Rows; i++ {
		w.Row(i, row)
		blocks, err := kernels.QuantizeRow(kernels.Q8_0, row)
		if err != nil {
			return nil, nil, err
		}
		for b := 0; b < nb; b++ {
			blk := blocks[b*bb : (b+1)*bb]
			h := uint16(blk[0]) | uint16(blk[1])<<8
			d := half.F16ToF32(h)
			sc[i*nb+b] = h
			out := q[i*w.Cols+b*kernels.Q8Block:]
			for j, x := range row[b*kernels.Q8Block : (b+1)*kernels.Q8Block] {
				out[j] = int8(blk[2+j])
				if float32(out[j])*d != x {
					return nil, nil, fmt.Errorf("row %d block %d: %g is not a multiple of the scale %g", i, b, x, d)
				}
			}
		}
	}
	return q, sc, nil
}

func freeAll(ps []uint64) {
	for _, p := range ps {
		free(p)
	}
}

type lowRankGPU struct {
	a, b mat
	bias uint64
}

// SetPredictors makes decode steps sparse with trained predictors running
// on the GPU, inside the step's CUDA graph: for each layer the lookahead
// head predictor (layer l's attention input → layer l+1's heads; layer 0
// computes all heads) and the MLP predictor (the hidden state entering the
// MLP → its neurons; with predictors of the layer's input,
// sparsity.MLPInputLayer, on the side stream too, beside the attention,
// joined before the up GEMV), each a standardization, two GEMVs and a top-k
// selection kernel — or, for a threshold, the second GEMV compares and
// compacts its outputs itself — with the budgets of p's current Selection
// (call again after p.SetSelection). nil turns sparse decoding off. As in
// DejaVu, the head predictor runs on a second stream (a fork and join in
// the graph), beside the layer's attention and MLP
// (DEJAVU_CUDA_LOOKAHEAD=0: in line). The predictors' weights are
// uploaded once per model: sessions given p or its clones share them.
func (s *Session) SetPredictors(p *sparsity.Predictors) error {
	if p == nil {
		return s.setRandomSparse(0, 0, 0)
	}
	c := s.m.Cfg
	in := p.Info
	if in.Layers != c.Layers || in.Hidden != c.Hidden || in.FFN != c.FFN || in.Heads != c.Heads {
		return fmt.Errorf("cuda: predictors of shape (layers %d, hidden %d, ffn %d, heads %d) do not fit the model (%d, %d, %d, %d)",
			in.Layers, in.Hidden, in.FFN, in.Heads, c.Layers, c.Hidden, c.FFN, c.Heads)
	}
	old := s.sparse
	s.sparse = nil
	return s.d.do(func() error {
		s.clearSparse(old)
		pw, err := s.m.predictorWeights(p)
		if err != nil {
			return err
		}
		up := &Model{dev: s.d}
		gp := &gpuPredictors{rms: p.RMSInput(), layerIn: p.MLPFromLayerInput(), mlp: pw.mlp, head: pw.head}
		fail := func(err error) error {
			freeAll(up.allocs)
			return err
		}
		maxRank, kMLP, kHeads := pw.maxRank, 1, 1
		for l := 0; l < c.Layers; l++ {
			k, thr, useThr, hk := p.LayerSelection(l)
			gp.mlpK, gp.thr, gp.useThr, gp.headK = append(gp.mlpK, k), append(gp.thr, thr), append(gp.useThr, useThr), append(gp.headK, hk)
			if useThr {
				k = c.FFN
			}
			kMLP = max(kMLP, k)
			kHeads = max(kHeads, hk)
		}
		ones := make([]float32, c.Hidden)
		for i := range ones {
			ones[i] = 1
		}
		if gp.ones, err = up.vecs("predictor input weights", ones); err != nil {
			return fail(err)
		}
		if err := s.predScratch(up, gp, maxRank); err != nil {
			return fail(err)
		}
		L, F, H := c.Layers, c.FFN, c.Heads
		sp := &sparseState{kMLP: kMLP, kHeads: kHeads, pred: gp, selInts: 2*L + L*F + L*H, counts: make([]int32, 2*L)}
		if sp.sel, err = up.alloc(int64(4*sp.selInts), "sparse selection"); err != nil {
			return fail(err)
		}
		if err := check("cuMemsetD32Async selection", drv.cuMemsetD32Async(sp.sel, 0, uint64(sp.selInts), s.d.stream)); err != nil {
			return fail(err)
		}
		gp.allocs = up.allocs
		s.sparse = sp
		return nil
	})
}

// predScratch allocates (with up) gp's scratch for predictors of rank at
// most maxRank: the standardized inputs (the head predictor's two, by
// layer parity), the rank-sized products, the logits, and select_multi's
// and pred_mlp's counters (zeroed).
func (s *Session) predScratch(up *Model, gp *gpuPredictors, maxRank int) error {
	c := s.m.Cfg
	for _, b := range []struct {
		p *uint64
		n int
	}{{&gp.xs, c.Hidden}, {&gp.h, maxRank}, {&gp.z, max(c.FFN, c.Heads)}, {&gp.ws, selectWords + 2}, {&gp.hH, maxRank}, {&gp.zH, c.Heads}, {&gp.xsH, 2 * c.Hidden}} {
		var err error
		if *b.p, err = up.alloc(int64(4*b.n), "predictor scratch"); err != nil {
			return err
		}
	}
	return zero(s.d, gp.ws, selectWords+2, "select counters")
}

// selectWords is the size of select_multi's workspace: 16 counters and
// three 2048-bin histograms (pred_mlp's two barrier counters follow).
const selectWords = 16 + 3*2048

// selectStaticSmem bounds select_multi's static shared memory (its 2048-bin
// histogram and a few words; 8272 bytes with nvcc 13.0).
const selectStaticSmem = 9 * 1024

// zero sets n words at p to 0 and waits (device thread).
func zero(d *Device, p uint64, n int, what string) error {
	if err := check("cuMemsetD32Async "+what, drv.cuMemsetD32Async(p, 0, uint64(n), d.stream)); err != nil {
		return err
	}
	return d.sync("zeroing " + what)
}

// selectGrid is the number of blocks select_multi uses for n keys: a
// power of two, about 512 keys a block, at most 32 (all resident at once:
// the kernel has grid barriers).
func (d *Device) selectGrid(n int) int {
	if d.selG > 0 {
		return d.selG
	}
	g := 1
	for g < 32 && g*512 < n && 2*g <= d.SMs {
		g *= 2
	}
	return g
}

// predict runs one predictor on s.x: standardize, z = B·(A·x̂) + bias,
// then select into out/count (device thread). head: the head predictor
// (its own scratch: it may run on the side stream beside the MLP
// predictor). std, when set, is x̂ already standardized (by the model's
// norm kernel, normStd); else the standardization is done by each block of
// the first GEMV (its input prologue; DEJAVU_CUDA_PRED_NORM=1: a norm_rows
// kernel). A threshold selection of an MLP predictor is done by the
// second GEMV (compare and compact; the first zeroes the count;
// DEJAVU_CUDA_THR=kernel: by the selection kernel); top-k by select_small
// (n ≤ 1024) or the multi-block select_multi (DEJAVU_CUDA_SELECT=fast:
// select_fast); DEJAVU_CUDA_SELECT=legacy runs the norm kernel and the
// one-block select_rows, as before.
func (s *Session) predict(pr *gpuPredictors, lr *lowRankGPU, n, k int, thr float32, useThr bool, out, count uint64, head bool, std uint64) error {
	rms, ut := 0, 0
	if pr.rms {
		rms = 1
	}
	if useThr {
		ut = 1
	}
	if !s.d.selOld {
		z := pr.z
		if head {
			z = pr.zH
		}
		compact := useThr && !head && !s.d.thrKernel
		zero := uint64(0)
		if compact {
			zero = count
		}
		h, err := s.predictA(pr, lr, head, std, zero)
		if err != nil {
			return err
		}
		b := gemvOp{w: lr.b, x: h, bias: lr.bias, y: z, rows: n, act: -1}
		if lr.b.q8 {
			b.wprFix = s.d.q8TPR[1]
		}
		if compact {
			b.selOut, b.selCount, b.thr = out, count, thr
		}
		if err := s.gemv(b); err != nil || compact {
			return err
		}
		if n <= 1024 {
			return s.d.launch("select_small", [3]int{1, 1, 1}, [3]int{blocks(n, 32) * 32, 1, 1}, 4*n, z, n, k, thr, ut, out, count)
		}
		g := s.d.selectGrid(n)
		if !head && s.d.selFast && 4*n <= s.d.maxSmem-selectStaticSmem { // one workspace: the MLP predictors'
			return s.d.launch("select_fast", [3]int{g, 1, 1}, [3]int{512, 1, 1}, 4*n, z, n, k, thr, ut, out, count, pr.ws)
		}
		if !head && 4*blocks(n, g) <= s.d.maxSmem-selectStaticSmem {
			return s.d.launch("select_multi", [3]int{g, 1, 1}, [3]int{512, 1, 1}, 4*blocks(n, g), z, n, k, thr, ut, out, count, pr.ws)
		}
		return s.selectRows(z, n, k, thr, ut, out, count) // more than 1024 heads, or too many neurons for shared memory
	}
	if err := s.standardize(pr, pr.xs, rms); err != nil {
		return err
	}
	if err := s.gemv(gemvOp{w: lr.a, x: pr.xs, y: pr.h, rows: lr.a.rows, act: -1}); err != nil {
		return err
	}
	if err := s.gemv(gemvOp{w: lr.b, x: pr.h, bias: lr.bias, y: pr.z, rows: n, act: -1}); err != nil {
		return err
	}
	return s.selectRows(pr.z, n, k, thr, ut, out, count)
}

// standardize launches norm_rows writing the predictors' input, s.x
// standardized ((x − mean)·rsqrt(var + 1e-5); rms: without the mean), into
// out.
func (s *Session) standardize(pr *gpuPredictors, out uint64, rms int) error {
	return s.d.launch("norm_rows", [3]int{1, 1, 1}, [3]int{s.normThreads(), 1, 1}, 0, s.x, pr.ones, uint64(0), out, uint64(0),
		s.m.Cfg.Hidden, float32(1e-5), rms, 0, uint64(0), float32(0))
}

// predictA launches a predictor's first GEMV, A·x̂ (x̂ as predict says),
// into the predictor's rank-sized scratch, which it returns; zero, when
// set, is an int32 the kernel sets to 0 (the threshold selection's count).
func (s *Session) predictA(pr *gpuPredictors, lr *lowRankGPU, head bool, std, zero uint64) (uint64, error) {
	rms := 0
	if pr.rms {
		rms = 1
	}
	h, xs := pr.h, pr.xs
	if head {
		h, xs = pr.hH, pr.xsH
	}
	a := gemvOp{w: lr.a, x: s.x, normW: pr.ones, fuse: true, eps: 1e-5, rms: rms, y: h, rows: lr.a.rows, act: -1, zero: zero}
	if std != 0 {
		a.x, a.normW, a.fuse = std, 0, false
	} else if s.d.predNorm {
		if err := s.standardize(pr, xs, rms); err != nil {
			return 0, err
		}
		a.x, a.normW, a.fuse = xs, 0, false
	}
	if lr.a.q8 {
		a.wprFix = s.d.q8TPR[0]
	}
	if err := s.gemv(a); err != nil {
		return 0, err
	}
	if std == 0 && s.d.stream == s.d.side { // the main stream may now change x
		if err := check("cuEventRecord", drv.cuEventRecord(s.d.ev[1], s.d.side)); err != nil {
			return 0, err
		}
	}
	return h, nil
}

// q8TPR is the threads a row of a Q8_0 matrix of cols columns that
// gemv_q8 and pred_mlp start from: enough for at most two blocks of 32
// weights each (at most max, a power of two).
func q8TPR(cols, max int) int {
	nb := cols / 32
	tpr := 1
	for 2*tpr < nb && tpr < max {
		tpr *= 2
	}
	return tpr
}

// predMLPSmem is pred_mlp's dynamic shared memory for an MLP of hidden
// size cols and a predictor of rank R.
func predMLPSmem(cols, R int) int {
	return 4*(16+48+16+256+256) + 4*cols + 4*((cols/32+3)&^3) + 4*((R/32+3)&^3) + cols + R
}

// predMLPGrid is pred_mlp's threads a neuron (tpb) and grid for layer
// li's predictor: neurons in at most two blocks of 32 weights a thread,
// fewer threads a neuron (more neurons a block) while the grid would not
// be resident at once (the kernel has a barrier); ok is false when even
// one thread a neuron leaves it too large, or a neuron's row needs more
// than 32 threads. The neurons are spread evenly over every resident
// block (v17; DEJAVU_CUDA_PRED_MLP_GRID=pow2: 256/tpb a block, as many
// blocks as that takes — opt-13b's 160 blocks on 132 SMs left 28 SMs
// twice the neurons of the others).
func (s *Session) predMLPGrid(lr *lowRankGPU, li int) (tpb, grid int, ok bool) {
	R, cols, n := lr.b.cols, lr.a.cols, lr.b.rows
	tpb = q8TPR(R, 64)
	if tpb > 32 {
		return 0, 0, false
	}
	resident := s.d.resident(s.m.layers[li].up.kernel("pred_mlp"), predMLPSmem(cols, R))
	for {
		grid = blocks(n, 256/tpb)
		if grid <= resident {
			if s.d.pmPow2 {
				return tpb, grid, true
			}
			// As many blocks as are resident (at most 256/tpb neurons each),
			// but at least 8 neurons a block: a small MLP keeps few blocks.
			return tpb, max(grid, min(resident, blocks(n, 8))), true
		}
		if tpb == 1 {
			return 0, 0, false
		}
		tpb /= 2
	}
}

// canPredMLP reports whether layer li's MLP predictor and up GEMV can run
// as one pred_mlp kernel: Q8_0 predictor matrices, a threshold compacted
// on the GPU, the predictor's standardization of the model's kind (when
// the model's norm is applied: normW set), its shared memory under 48
// KiB and a grid resident at once (predMLPGrid).
func (s *Session) canPredMLP(pr *gpuPredictors, li int, normW uint64) bool {
	lr := &pr.mlp[li]
	if pr.layerIn || !s.d.predMLP || s.d.selOld || s.d.thrKernel || !pr.useThr[li] || !lr.a.q8 || !lr.b.q8 || lr.a.cols%32 != 0 || lr.b.cols%32 != 0 {
		return false
	}
	if normW != 0 && pr.rms != (s.m.Cfg.Family == model.Llama) {
		return false
	}
	if lr.a.rows != lr.b.cols || predMLPSmem(lr.a.cols, lr.b.cols) > 48*1024 {
		return false
	}
	_, _, ok := s.predMLPGrid(lr, li)
	return ok
}

// predMLP launches pred_mlp for layer li: the MLP predictor (standardizing
// x, the hidden state entering the MLP, itself), its threshold selection
// into out/count and the up GEMV up of the selected neurons, whose input
// is x normalized with normW/normB (none when normW is 0; up.x is not
// read).
func (s *Session) predMLP(pr *gpuPredictors, li int, x, normW, normB, out, count uint64, up gemvOp) error {
	lr := &pr.mlp[li]
	R, cols := lr.b.cols, lr.a.cols
	tpb, grid, ok := s.predMLPGrid(lr, li)
	if !ok {
		return fmt.Errorf("cuda: layer %d: no pred_mlp grid for this predictor", li)
	}
	rms := 0
	if pr.rms {
		rms = 1
	}
	return s.d.launch(up.w.kernel("pred_mlp"), [3]int{grid, 1, 1}, b256, predMLPSmem(cols, R),
		x, normW, normB, s.m.Cfg.NormEps, rms, lr.a.p, lr.a.s, R, q8TPR(cols, 256), pr.h, pr.ws+4*selectWords, lr.b.p, lr.b.s,
		lr.bias, lr.b.rows, tpb, pr.thr[li], out, count, up.w.p, up.bias, up.y, cols, up.gateOff, up.act)
}

// selectRows launches the one-block select_rows on z (keys in shared
// memory when they fit).
func (s *Session) selectRows(z uint64, n, k int, thr float32, ut int, out, count uint64) error {
	smem, keys := 4*n, 1
	if smem > s.d.maxSmem {
		smem, keys = 0, 0
	}
	threads := min(1024, blocks(n, 32)*32) // the 32 heads of a head predictor: one warp
	return s.d.launch("select_rows", [3]int{1, 1, 1}, [3]int{threads, 1, 1}, smem, z, n, k, thr, ut, out, count, keys)
}
