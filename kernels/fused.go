package kernels

import (
	"fmt"
	"unsafe"
)

// Fused sparse MLP: a selected neuron i needs row i of the first MLP
// matrix (gate and up for gated MLPs) for a dot product with the input,
// then row i of the transposed second matrix for an accumulation. Interleave
// lays those rows side by side, one neuron's rows one contiguous stream
// (8 KiB for opt-1.3b in f16), on huge pages; Exec.SparseMLP then takes the
// selected neurons sixteen at a time: gather their first segment(s), apply
// the bias and activation, and accumulate their last segment, whose first
// lines the hardware prefetcher is already fetching as the gather ends. On
// the development machine (10% of 8192 neurons, 4 KiB rows, one thread)
// that read 22.4-22.6 GB/s against 20.5-20.6 for a gather of the up
// projection in place (heap pages) and an accumulation over a separate
// huge-page copy of the down projection; most of that gain is the up rows
// being on huge pages (docs/kernels-sparse.md, session 4). Interleave
// copies the up (and gate) rows: memory for a second copy of them.

// sparseMLPPass is how many neurons a fused pass gathers before it
// accumulates them: one pass of the sixteen-row kernels.
const sparseMLPPass = 16

// Interleave returns a matrix whose row i is row i of each of mats in turn
// (Rows × len(mats)·Cols), in HugeBytes memory. The matrices must share
// dtype and shape; the dtype must be f32, f16 or bf16.
func Interleave(mats ...Mat) Mat {
	if len(mats) == 0 {
		panic("kernels: Interleave of no matrices")
	}
	m0 := mats[0]
	for _, m := range mats {
		if m.DType != m0.DType || m.Rows != m0.Rows || m.Cols != m0.Cols {
			panic(fmt.Sprintf("kernels: Interleave of %v %d×%d and %v %d×%d", m0.DType, m0.Rows, m0.Cols, m.DType, m.Rows, m.Cols))
		}
	}
	if m0.DType != F32 && m0.DType != F16 && m0.DType != BF16 {
		panic(fmt.Sprintf("kernels: Interleave of %v matrices", m0.DType))
	}
	k, rb := len(mats), m0.DType.RowBytes(m0.Cols)
	buf := HugeBytes(m0.Rows * k * rb)
	if rb > 0 {
		for s, m := range mats {
			src := unsafe.Slice((*byte)(m.rowPtr(0, m.Rows)), m.Rows*rb)
			for i := 0; i < m0.Rows; i++ {
				copy(buf[(i*k+s)*rb:(i*k+s+1)*rb], src[i*rb:(i+1)*rb])
			}
		}
	}
	out, err := NewMat(m0.DType, m0.Rows, k*m0.Cols, buf)
	if err != nil {
		panic(err)
	}
	return out
}

// NeuronAct turns the gathered values of a fused pass into the
// coefficients of the accumulation: a[k] (and b[k], the second gathered
// segment, when the matrix has three) belong to neuron rows[k]; the
// coefficients go to a. Exec.SparseMLP calls it once per pass of up to
// sixteen neurons, from the worker that gathered them.
type NeuronAct interface {
	Activate(a, b []float32, rows []int32)
}

// segGather sets y[k] = (segment s of row rows[k])·x, segments being h
// columns wide.
func (m Mat) segGather(s, h int, y, x []float32, rows []int32) {
	n := len(rows)
	y, x = y[:n], x[:h]
	ca := 0
	if kern.id != 0 {
		ca = archSparseCols(kern.id, m.DType, h)
	}
	if ca > 0 {
		base := unsafe.Add(m.rowPtr(0, m.Rows), s*m.DType.RowBytes(h))
		sparseGatherAsm(m.DType, base, m.DType.RowBytes(m.Cols), x, y, rows, ca)
	}
	if ca < h {
		for k, i := range rows {
			off := int(i)*m.Cols + s*h
			var sum float32
			for j := ca; j < h; j++ {
				sum += m.at(off+j) * x[j]
			}
			if ca == 0 {
				y[k] = sum
			} else {
				y[k] += sum
			}
		}
	}
}

// segAccum adds Σ_k a[k]·(segment s of row rows[k]) to y[:h].
func (m Mat) segAccum(s, h int, y []float32, rows []int32, a []float32) {
	n := len(rows)
	y, a = y[:h], a[:n]
	ca := 0
	if kern.id != 0 {
		ca = archSparseCols(kern.id, m.DType, h)
	}
	if ca > 0 {
		base := unsafe.Add(m.rowPtr(0, m.Rows), s*m.DType.RowBytes(h))
		sparseAccumAsm(m.DType, base, m.DType.RowBytes(m.Cols), y, rows, a, ca)
	}
	if ca < h {
		for k, i := range rows {
			off := int(i)*m.Cols + s*h
			for j := ca; j < h; j++ {
				y[j] += a[k] * m.at(off+j)
			}
		}
	}
}

// mlpRows runs the fused passes over rows (see SparseMLP), adding into y.
func (m Mat) mlpRows(segs int, y, x []float32, rows []int32, a, b []float32, act NeuronAct) {
	h := m.Cols / segs
	for p := 0; p < len(rows); p += sparseMLPPass {
		e := min(p+sparseMLPPass, len(rows))
		r, ap := rows[p:e], a[p:e]
		m.segGather(0, h, ap, x, r)
		var bp []float32
		if segs == 3 {
			bp = b[p:e]
			m.segGather(1, h, bp, x, r)
		}
		act.Activate(ap, bp, r)
		m.segAccum(segs-1, h, y, r, ap)
	}
}

// mlpTask splits the selected neurons among workers, as accumTask does.
type mlpTask struct {
	y, x, a, b []float32
	w          Mat
	segs       int
	rows       []int32
	act        NeuronAct
	partial    [][]float32
	used       []bool
}

func (t *mlpTask) Run(worker, start, end int) {
	y := t.y
	if worker > 0 {
		y = t.partial[worker][:len(y)]
		clear(y)
		t.used[worker] = true
	}
	var b []float32
	if t.b != nil {
		b = t.b[start:end]
	}
	t.w.mlpRows(t.segs, y, t.x, t.rows[start:end], t.a[start:end], b, t.act)
}

// SparseMLP adds the selected neurons' MLP output to y: w is
// Interleave(U, Dᵀ) (segs = 2) or Interleave(G, U, Dᵀ) (segs = 3), each
// segment h = len(x) = len(y) columns. For each neuron i = rows[k] it sets
// a[k] = G[i]·x (b[k] = U[i]·x when segs = 3), lets act turn them into the
// coefficient a[k], and adds a[k]·Dᵀ[i] to y; on return a holds the
// coefficients. Workers split the neurons, sixteen per pass, each adding
// into its own buffer (kept in e), summed into y at the end.
func (e *Exec) SparseMLP(y []float32, w Mat, segs int, x []float32, rows []int32, a, b []float32, act NeuronAct) {
	if segs != 2 && segs != 3 || w.Cols%segs != 0 {
		panic(fmt.Sprintf("kernels: SparseMLP over %d segments of a %d-column matrix", segs, w.Cols))
	}
	h := w.Cols / segs
	n := len(rows)
	w.checkRows(rows)
	t := &e.mt
	*t = mlpTask{y: y[:h], x: x[:h], a: a[:n], w: w, segs: segs, rows: rows, act: act}
	if segs == 3 {
		t.b = b[:n]
	}
	t.partial, t.used = e.partials(h)
	grain := (sparseGrain(w.DType.RowBytes(w.Cols)) + sparseMLPPass - 1) &^ (sparseMLPPass - 1)
	e.Pool.Parallel(n, grain, t)
	for i, u := range t.used {
		if u {
			Add(t.y, t.partial[i][:h])
		}
	}
	*t = mlpTask{}
}

// partials returns per-worker buffers of at least cols floats (worker 0's
// is unused) and cleared flags of which were written, kept in e.
func (e *Exec) partials(cols int) ([][]float32, []bool) {
	threads := e.Pool.Threads()
	if len(e.part) != threads || threads > 1 && len(e.part[1]) < cols {
		e.part = make([][]float32, threads)
		for i := 1; i < threads; i++ {
			e.part[i] = make([]float32, cols)
		}
		e.partUsed = make([]bool, threads)
	}
	clear(e.partUsed)
	return e.part, e.partUsed
}
