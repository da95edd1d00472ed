package kernels

import (
	"fmt"
	"math"
	"unsafe"
)

// The sparse kernels compute only selected rows of a weight matrix: the
// DejaVu decode step reads the rows of the neurons and heads it needs.
//
// Two products cover the sparse MLP and attention:
//   - gather: y[k] = W[rows[k]]·x (the first MLP matrix, gate/up, Q), and
//   - accumulate: y += Σ_k a[k]·W[rows[k], :] over a transposed,
//     neuron-major matrix (the second MLP matrix, the output projection).
//
// Selected rows are scattered, so the hardware prefetchers, which follow
// sequential streams, lose track at every row jump. The assembly kernels
// (sparse_amd64.s) take several rows per pass, sharing each load of x or y
// between them: with AVX-512 sixteen (or eight) row streams in flight,
// which hides most of each row's start; the four-row kernels (AVX2, and
// the last rows of a list) prefetch the rows a few passes ahead in
// software. The pure-Go reference is Mat.dotRowGo and Mat.axpyRow row by
// row.

// sparsePrefetchBytes is about how many bytes of selected rows ahead of the
// current pass the sparse kernels prefetch (rounded to whole passes of
// four rows, at least one pass).
var sparsePrefetchBytes = 8 << 10

// sparsePrefetchMaxRow is the row size from which the four-row kernels
// prefetch nothing: measured on the development machine (f16, 10% of the
// rows of 64 MiB matrices), software prefetch gained ~10% on 1 KiB rows
// and lost ~8% on 4 KiB rows, where the hardware prefetchers follow each
// row alone.
var sparsePrefetchMaxRow = 2 << 10

// sparseRows is how many rows per pass the AVX-512 kernels take: 16 (when
// cols is a multiple of 32), 8, or 4 (the four-row kernels, with software
// prefetch for short rows, also take the last n%8 rows). More row streams
// in flight hide more of each row's start (page walk, prefetcher
// training), better than software prefetch does: on 10% of 4 KiB rows
// eight rows per pass gained ~20% over four and sixteen another ~2-3%; on
// 1 KiB rows sixteen rows without prefetch gained ~20% over four with it
// (docs/kernels-sparse.md). Smaller values are for benchmarks and tests.
var sparseRows = 16

// prefetchDist is the prefetch distance in list entries (a multiple of 4)
// for rows of rowBytes bytes; 0 (long rows, or sparsePrefetchBytes = 0)
// prefetches the rows being read, which amounts to none.
func prefetchDist(rowBytes int) int {
	if sparsePrefetchBytes <= 0 || rowBytes >= sparsePrefetchMaxRow {
		return 0
	}
	pass := 4 * max(rowBytes, 1)
	return 4 * max(1, (sparsePrefetchBytes+pass-1)/pass)
}

// sparsePartBytes is the least work, in bytes of weights, worth handing to
// another worker: less than that costs more to hand over than to read.
const sparsePartBytes = 32 << 10

// sparseGrain is the row grain (a multiple of 4) of a parallel split over
// rows of rowBytes bytes.
func sparseGrain(rowBytes int) int {
	g := (sparsePartBytes + max(rowBytes, 1) - 1) / max(rowBytes, 1)
	return max(4, (g+3)&^3)
}

// checkRows panics unless every index is a row of m: the assembly kernels
// trust them.
func (m Mat) checkRows(rows []int32) {
	for _, i := range rows {
		if i < 0 || int(i) >= m.Rows {
			panic(fmt.Sprintf("kernels: row %d outside a %d×%d matrix", i, m.Rows, m.Cols))
		}
	}
}

// at returns element off (row-major) of m.
func (m Mat) at(off int) float32 {
	switch m.DType {
	case F32:
		return m.f32[off]
	case F16:
		return f16Table[m.u16[off]]
	case Q8_0:
		return m.atQ8(off)
	case BF16:
		return math.Float32frombits(uint32(m.u16[off]) << 16)
	default: // the block types of q4.go
		return m.atQ4(off)
	}
}

// gatherRows sets y[k] = W[rows[k]]·x for k < len(rows) with the active
// kernels; it writes no other element of y.
func (m Mat) gatherRows(y, x []float32, rows []int32) {
	n, c := len(rows), m.Cols
	y = y[:n]
	x = x[:c]
	if n == 0 {
		return
	}
	m.checkRows(rows)
	if m.DType.isQ4() { // q4.go
		m.gatherRowsQ4(y, x, rows)
		return
	}
	ca := 0
	if kern.id != 0 {
		ca = archSparseCols(kern.id, m.DType, c)
	}
	if ca == 0 {
		for k, i := range rows {
			y[k] = m.dotRowGo(int(i), x)
		}
		return
	}
	sparseGatherAsm(m.DType, m.rowPtr(0, m.Rows), m.DType.RowBytes(c), x, y, rows, ca)
	if ca < c { // columns the kernel left to Go
		for k, i := range rows {
			off := int(i) * c
			var s float32
			for j := ca; j < c; j++ {
				s += m.at(off+j) * x[j]
			}
			y[k] += s
		}
	}
}

// sparseGatherAsm sets y[k] = (row rows[k])·x over the ca leading columns
// with the assembly kernels, row i starting at w + i·stride bytes
// (len(rows) > 0, every index valid).
func sparseGatherAsm(dt DType, w unsafe.Pointer, stride int, x, y []float32, rows []int32, ca int) {
	n := len(rows)
	xp := unsafe.SliceData(x)
	n4 := n &^ 3
	if n4 > 0 {
		archGather(kern.id, dt, w, stride, xp, unsafe.SliceData(y), unsafe.SliceData(rows), n4, prefetchDist(dt.RowBytes(ca)), ca)
	}
	if n4 < n { // the last 1-3 rows: a pass padded with copies of the last row
		var r4 [4]int32
		var y4 [4]float32
		for j := range r4 {
			r4[j] = rows[min(n4+j, n-1)]
		}
		archGather(kern.id, dt, w, stride, xp, &y4[0], &r4[0], 4, 0, ca)
		copy(y[n4:n], y4[:])
	}
}

// sparseAccumAsm adds Σ_k a[k]·(row rows[k]) to y over the ca leading
// columns with the assembly kernels (rows as for sparseGatherAsm).
func sparseAccumAsm(dt DType, w unsafe.Pointer, stride int, y []float32, rows []int32, a []float32, ca int) {
	n := len(rows)
	yp := unsafe.SliceData(y)
	n4 := n &^ 3
	if n4 > 0 {
		archAccum(kern.id, dt, w, stride, yp, unsafe.SliceData(a), unsafe.SliceData(rows), n4, prefetchDist(dt.RowBytes(ca)), ca)
	}
	if n4 < n { // the last 1-3 rows: a pass padded with the last row times 0
		var r4 [4]int32
		var a4 [4]float32
		for j := range r4 {
			r4[j] = rows[min(n4+j, n-1)]
		}
		copy(a4[:], a[n4:n])
		archAccum(kern.id, dt, w, stride, yp, &a4[0], &r4[0], 4, 0, ca)
	}
}

// accumRows adds Σ_k a[k]·W[rows[k], :] to y[:Cols] with the active kernels.
func (m Mat) accumRows(y []float32, rows []int32, a []float32) {
	n, c := len(rows), m.Cols
	y = y[:c]
	a = a[:n]
	if n == 0 || c == 0 {
		return
	}
	m.checkRows(rows)
	ca := 0
	if kern.id != 0 && !m.DType.isQ4() { // Q4 rows: Go only (q4.go)
		ca = archSparseCols(kern.id, m.DType, c)
	}
	if ca == 0 {
		for k, i := range rows {
			m.axpyRow(int(i), a[k], y, 0, c)
		}
		return
	}
	sparseAccumAsm(m.DType, m.rowPtr(0, m.Rows), m.DType.RowBytes(c), y, rows, a, ca)
	if ca < c { // columns the kernel left to Go
		for k, i := range rows {
			m.axpyRow(int(i), a[k], y, ca, c)
		}
	}
}

// gatherTask computes products over a virtual list of rows: rows1 of w1
// into y1, then rows2 of w2 into y2 (gather), or blocks of bs consecutive
// rows of w1 (bs > 0, BlockMatVec).
type gatherTask struct {
	y1, y2, x    []float32
	w1, w2       Mat
	rows1, rows2 []int32
	bs           int
}

func (t *gatherTask) Run(_, start, end int) {
	if t.bs > 0 {
		bs := t.bs
		for r := start; r < end; {
			b := r / bs
			e := min(end, (b+1)*bs)
			shift := (int(t.rows1[b]) - b) * bs // list position → matrix row
			t.w1.gemvRows(t.y1, t.x, shift+r, shift+e)
			r = e
		}
		return
	}
	n1 := len(t.rows1)
	if start < n1 {
		e := min(end, n1)
		t.w1.gatherRows(t.y1[start:e], t.x, t.rows1[start:e])
	}
	if end > n1 {
		s := max(start, n1) - n1
		t.w2.gatherRows(t.y2[s:end-n1], t.x, t.rows2[s:end-n1])
	}
}

// GatherMatVec computes y[k] = W[rows[k]] · x for each selected row
// (y is compact: len(rows) values). Rows are indices of W; the list need
// not be sorted, though sorted lists read memory in order.
func (e *Exec) GatherMatVec(y []float32, w Mat, x []float32, rows []int32) {
	e.GatherMatVec2(y, w, nil, Mat{}, x, rows)
}

// GatherMatVec2 computes the gathers of two matrices over the same input
// and rows in one parallel pass: y1[k] = W1[rows[k]]·x and, if y2 is not
// nil, y2[k] = W2[rows[k]]·x (the gate and up projections of a gated MLP).
// W1 and W2 must have the same number of columns.
func (e *Exec) GatherMatVec2(y1 []float32, w1 Mat, y2 []float32, w2 Mat, x []float32, rows []int32) {
	n := len(rows)
	t := &e.gt
	*t = gatherTask{y1: y1[:n], x: x[:w1.Cols], w1: w1, rows1: rows}
	total := n
	if y2 != nil {
		if w2.Cols != w1.Cols {
			panic(fmt.Sprintf("kernels: GatherMatVec2 of %d and %d columns", w1.Cols, w2.Cols))
		}
		t.y2, t.w2, t.rows2 = y2[:n], w2, rows
		total += n
	}
	e.Pool.Parallel(total, sparseGrain(w1.DType.RowBytes(w1.Cols)), t)
	*t = gatherTask{}
}

// BlockMatVec computes the rows of the selected blocks of bs consecutive
// rows (attention heads): y[i] = W[i] · x for i in [b·bs, (b+1)·bs) for b in
// blocks. Other elements of y (len W.Rows) are left as they are.
func (e *Exec) BlockMatVec(y []float32, w Mat, x []float32, blocks []int32, bs int) {
	if bs <= 0 || len(blocks) == 0 {
		return
	}
	t := &e.gt
	*t = gatherTask{y1: y[:w.Rows], x: x[:w.Cols], w1: w, rows1: blocks, bs: bs}
	grain := max(1, sparsePartBytes/max(1, w.DType.RowBytes(w.Cols)))
	e.Pool.Parallel(len(blocks)*bs, grain, t)
	*t = gatherTask{}
}

// accumTask splits the selected rows among workers: worker 0 adds its
// share into y, the others into their own zeroed part of partial, which
// AccumRows then adds to y.
type accumTask struct {
	y       []float32
	w       Mat
	rows    []int32
	a       []float32
	partial [][]float32 // per worker, kept in the Exec (partials)
	used    []bool      // which workers wrote their part this call
}

func (t *accumTask) Run(worker, start, end int) {
	y := t.y
	if worker > 0 {
		y = t.partial[worker][:len(y)]
		clear(y)
		t.used[worker] = true
	}
	t.w.accumRows(y, t.rows[start:end], t.a[start:end])
}

// AccumRows adds Σ_k a[k]·W[rows[k], :] to y (len W.Cols): the product of a
// transposed matrix with a sparse vector. Workers split the selected rows,
// each summing into its own buffer (kept in e, so calls do not allocate
// once they have seen the widest W), and the partial sums are added at the
// end.
func (e *Exec) AccumRows(y []float32, w Mat, rows []int32, a []float32) {
	y = y[:w.Cols]
	a = a[:len(rows)]
	t := &e.at
	t.partial, t.used = e.partials(w.Cols)
	t.y, t.w, t.rows, t.a = y, w, rows, a
	e.Pool.Parallel(len(rows), sparseGrain(w.DType.RowBytes(w.Cols)), t)
	for i, u := range t.used {
		if u {
			Add(y, t.partial[i][:len(y)])
		}
	}
	*t = accumTask{}
}

// axpyRow adds a·W[i, start:end] to y[start:end] (the pure-Go reference of
// the accumulate kernels).
func (m Mat) axpyRow(i int, a float32, y []float32, start, end int) {
	if m.DType == Q8_0 {
		m.axpyRowQ8(i, a, y, start, end)
		return
	}
	if m.DType.isQ4() {
		m.axpyRowQ4(i, a, y, start, end)
		return
	}
	off := i * m.Cols
	y = y[start:end]
	switch m.DType {
	case F32:
		src := m.f32[off+start : off+end]
		for j, v := range src {
			y[j] += a * v
		}
	case F16:
		src := m.u16[off+start : off+end]
		for j, h := range src {
			y[j] += a * f16Table[h]
		}
	default:
		src := m.u16[off+start : off+end]
		for j, h := range src {
			y[j] += a * math.Float32frombits(uint32(h)<<16)
		}
	}
}

// Transpose returns Wᵀ as a new matrix (Cols×Rows), for kernels that read
// one neuron or head as one contiguous row: of the same dtype for f32, f16
// and bf16; block-quantized matrices see transposeQuant.
func (m Mat) Transpose() Mat {
	if m.DType == Q8_0 || m.DType.isQ4() {
		return m.transposeQuant()
	}
	t := Mat{Rows: m.Cols, Cols: m.Rows, DType: m.DType}
	r, c := m.Rows, m.Cols
	const blk = 64
	if r*c == 0 {
		return t
	}
	// The copies are read one scattered row at a time: huge pages save a
	// TLB miss per row (HugeBytes).
	buf := unsafe.Pointer(unsafe.SliceData(HugeBytes(r * c * m.DType.Size())))
	if m.DType == F32 {
		t.f32 = unsafe.Slice((*float32)(buf), r*c)
		for i0 := 0; i0 < r; i0 += blk {
			for j0 := 0; j0 < c; j0 += blk {
				for i := i0; i < min(i0+blk, r); i++ {
					for j := j0; j < min(j0+blk, c); j++ {
						t.f32[j*r+i] = m.f32[i*c+j]
					}
				}
			}
		}
		return t
	}
	t.u16 = unsafe.Slice((*uint16)(buf), r*c)
	for i0 := 0; i0 < r; i0 += blk {
		for j0 := 0; j0 < c; j0 += blk {
			for i := i0; i < min(i0+blk, r); i++ {
				for j := j0; j < min(j0+blk, c); j++ {
					t.u16[j*r+i] = m.u16[i*c+j]
				}
			}
		}
	}
	return t
}

// transposeQuant returns the transpose of a block-quantized matrix (Q8_0,
// Q4_0, Q4_K) in Q8_0: decoded to f32, transposed and quantized again. Each
// new block gathers 32 weights of 32 different original rows, so every
// weight is rounded a second time, to within half a Q8_0 step of its new
// block — for the Q4 types a fraction of their own 4-bit step, where a
// second 4-bit rounding would roughly double the error the sparse path
// reads. When the new rows (the old Rows) are not a multiple of 32 the
// transpose is kept in f16 instead.
func (m Mat) transposeQuant() Mat {
	r, c := m.Rows, m.Cols
	v := make([]float32, r*c)
	for i := 0; i < r; i++ {
		m.Row(i, v[i*c:(i+1)*c])
	}
	f := MatF32(r, c, v).Transpose()
	if r%Q8Block != 0 {
		out, _ := f.Quantize(F16)
		return out
	}
	return QuantizeQ8_0(c, r, f.f32)
}
