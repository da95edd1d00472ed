package kernels

import (
	"math"
	"unsafe"
)

// GEMM for prompt processing: y[b] = W x[b] for a batch of n inputs, where
// W is Rows×Cols (f32, f16 or bf16, row-major, possibly memory-mapped) and
// x, y are n×Cols and n×Rows row-major f32.
//
// In BLAS terms this is C = X Wᵀ with both operands contiguous along K =
// Cols. The blocking follows Goto and van de Geijn:
//
//   - The inputs are packed once per call (in parallel) into panels of at
//     most nr inputs, k-major: xp[b0*K + k*nb + j] = x[b0+j][k], so the
//     microkernel broadcasts one activation at a time from one stream.
//   - The rows are split over the pool's workers in panels of mr rows. Each
//     worker takes a panel and walks K in blocks of gemmKC columns: it
//     converts the mr×kc weight block to f32 and transposes it, once, into
//     its own scratch (wp[k*mr + r], 32 KB: it stays in L1), then runs the
//     microkernel for every input panel against it, accumulating into y.
//   - The microkernel keeps an mr×nb block of y in registers (AVX-512: 32
//     rows × up to 12 inputs in 24 zmm accumulators; AVX2: 16 × 6 in 12
//     ymm) and per k loads mr/16 (mr/8) weight vectors, broadcasts nb
//     activations and issues 2·nb FMAs.
//
// So every weight is read from memory and converted exactly once per call
// (per 64 inputs), the activations are re-read from L2 once per row panel,
// and the output block is updated once per K block. The last row panel of
// a worker, when shorter than mr, is computed into a per-worker tile and
// copied out, so nothing outside y is ever written.

const (
	// gemmKC is the K block: the packed weight block is mr×gemmKC floats
	// (32 KB for mr = 32). A multiple of 16.
	gemmKC = 256
	// gemmMaxN is the most inputs one pass packs; larger batches run in
	// passes of gemmMaxN (the weights are then re-read per pass).
	gemmMaxN = 64
	// gemmMRMax is the largest row panel of any kernel set.
	gemmMRMax = 32
	// gemmMinN is the smallest batch that MatMul runs as a GEMM: below it
	// packing costs more than it saves, and the GEMV per input (weights
	// re-read from L2) is faster (measured: n = 2, 4 slower, 8 even, 16
	// faster).
	gemmMinN = 8
)

// gemmTask is one GEMM pass: the row panels of y = W x for n ≤ gemmMaxN
// packed inputs.
type gemmTask struct {
	y, x, xp []float32
	w        Mat
	n        int
	id, mr   int
	np       int               // number of input panels
	pb       [gemmMaxN + 1]int // input panel p is [pb[p], pb[p+1])
	wp, tile [][]float32       // per-worker packed weights and tail tile
}

// gemmPackX packs the inputs of a gemmTask, a range of input panels per
// worker.
type gemmPackX struct{ t *gemmTask }

func (g *gemmPackX) Run(_, start, end int) {
	t := g.t
	c := t.w.Cols
	for p := start; p < end; p++ {
		b0, nb := t.pb[p], t.pb[p+1]-t.pb[p]
		dst := t.xp[b0*c : (b0+nb)*c]
		for j := 0; j < nb; j++ {
			src := t.x[(b0+j)*c : (b0+j+1)*c]
			d := dst[j:]
			for k, v := range src {
				d[k*nb] = v
			}
		}
	}
}

// gemm computes y = W x for 1 ≤ n ≤ gemmMaxN inputs with the active
// assembly kernels (kern.id ≠ 0), Rows, Cols > 0 and len(e.xp) ≥ n*Cols.
func (e *Exec) gemm(y []float32, w Mat, x []float32, n int) {
	t := &e.gm
	mr, nr, _ := archGemmShape(kern.id)
	np := (n + nr - 1) / nr
	for p := 0; p <= np; p++ {
		t.pb[p] = p * n / np // balanced: every panel has ⌊n/np⌋ or ⌈n/np⌉ ≤ nr inputs
	}
	t.y, t.x, t.xp = y[:n*w.Rows], x[:n*w.Cols], e.xp[:n*w.Cols]
	t.w, t.n, t.id, t.mr, t.np = w, n, kern.id, mr, np
	e.gx.t = t
	e.Pool.Parallel(np, 1, &e.gx)
	e.Pool.Parallel(w.Rows, mr, t)
	t.y, t.x, t.xp, t.w = nil, nil, nil, Mat{}
}

func (t *gemmTask) Run(worker, start, end int) {
	c, r, mr := t.w.Cols, t.w.Rows, t.mr
	wp := t.wp[worker][:mr*gemmKC]
	tile := t.tile[worker][:mr*t.n]
	for i0 := start; i0 < end; i0 += mr {
		rows := min(mr, end-i0)
		for kb := 0; kb < c; kb += gemmKC {
			kc := min(gemmKC, c-kb)
			acc := 0
			if kb > 0 {
				acc = 1
			}
			t.w.gemmPack(t.id, wp[:kc*mr], i0, rows, kb, kc, mr)
			for p := 0; p < t.np; p++ {
				b0, nb := t.pb[p], t.pb[p+1]-t.pb[p]
				xp := t.xp[b0*c+kb*nb : b0*c+(kb+kc)*nb]
				if rows == mr {
					out := t.y[b0*r+i0 : (b0+nb-1)*r+i0+mr]
					archGemmMicro(t.id, nb, &wp[0], &xp[0], &out[0], r*4, kc, acc)
				} else {
					out := tile[b0*mr : (b0+nb)*mr]
					archGemmMicro(t.id, nb, &wp[0], &xp[0], &out[0], mr*4, kc, acc)
				}
			}
		}
		if rows < mr {
			for b := 0; b < t.n; b++ {
				copy(t.y[b*r+i0:b*r+i0+rows], tile[b*mr:b*mr+rows])
			}
		}
	}
}

// gemmPack converts rows [i0, i0+rows) × columns [kb, kb+kc) of m to f32
// and stores them transposed into dst: dst[k*mr + r] = m[i0+r][kb+k], with
// zeros in rows [rows, mr). Whole groups of 16 (AVX-512) or 8 (AVX2) rows
// and columns go through the assembly kernel of set id, the rest in Go.
func (m Mat) gemmPack(id int, dst []float32, i0, rows, kb, kc, mr int) {
	_, _, g := archGemmShape(id)
	c, es := m.Cols, m.DType.Size()
	kf, rf := kc/g*g, rows/g*g
	if m.DType == Q8_0 || m.DType.isQ4() {
		m.gemmPackQuant(id, dst, i0, rows, kb, kc, mr, g)
		return
	}
	if kf > 0 {
		_ = dst[(kf-1)*mr+rf-1]
		for rg := 0; rg < rf; rg += g {
			p := unsafe.Add(m.rowPtr(i0+rg, i0+rg+g), kb*es)
			archGemmPack(id, m.DType, p, c*es, &dst[rg], mr*4, kf/g)
		}
	}
	for r := 0; r < rows; r++ {
		k0 := kf
		if r >= rf {
			k0 = 0
		}
		m.packRowGo(dst, i0+r, kb, k0, kc, r, mr)
	}
	if rows < mr {
		for k := 0; k < kc; k++ {
			clear(dst[k*mr+rows : (k+1)*mr])
		}
	}
}

// packRowGo sets dst[k*mr + r] = m[i][kb+k] for k0 ≤ k < kc.
func (m Mat) packRowGo(dst []float32, i, kb, k0, kc, r, mr int) {
	if k0 >= kc {
		return
	}
	if m.DType == Q8_0 {
		m.packRowQ8(dst, i, kb, k0, kc, r, mr)
		return
	}
	if m.DType.isQ4() {
		m.packRowQ4(dst, i, kb, k0, kc, r, mr)
		return
	}
	base := i*m.Cols + kb
	switch m.DType {
	case F32:
		for k, v := range m.f32[base+k0 : base+kc] {
			dst[(k0+k)*mr+r] = v
		}
	case F16:
		for k, h := range m.u16[base+k0 : base+kc] {
			dst[(k0+k)*mr+r] = f16Table[h]
		}
	default:
		for k, h := range m.u16[base+k0 : base+kc] {
			dst[(k0+k)*mr+r] = math.Float32frombits(uint32(h) << 16)
		}
	}
}
