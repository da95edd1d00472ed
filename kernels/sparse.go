package kernels

import "math"

// The sparse kernels compute only selected rows of a weight matrix: the
// DejaVu decode step reads the rows of the neurons and heads it needs.

type gatherTask struct {
	y, x []float32
	w    Mat
	rows []int32
	bs   int // rows per selected block (1: single rows)
}

func (t *gatherTask) Run(_, start, end int) {
	if t.bs == 1 {
		for k := start; k < end; k++ {
			t.y[k] = t.w.dotRow(int(t.rows[k]), t.x)
		}
		return
	}
	for k := start; k < end; k++ {
		b := int(t.rows[k]) * t.bs
		t.w.gemvRows(t.y, t.x, b, b+t.bs)
	}
}

// GatherMatVec computes y[k] = W[rows[k]] · x for each selected row
// (y is compact: len(rows) values).
func (e *Exec) GatherMatVec(y []float32, w Mat, x []float32, rows []int32) {
	e.gt = gatherTask{y: y[:len(rows)], x: x[:w.Cols], w: w, rows: rows, bs: 1}
	e.Pool.Parallel(len(rows), 8, &e.gt)
	e.gt = gatherTask{}
}

// BlockMatVec computes the rows of the selected blocks of bs consecutive
// rows (attention heads): y[i] = W[i] · x for i in [b·bs, (b+1)·bs) for b in
// blocks. Other elements of y (len W.Rows) are left as they are.
func (e *Exec) BlockMatVec(y []float32, w Mat, x []float32, blocks []int32, bs int) {
	e.gt = gatherTask{y: y[:w.Rows], x: x[:w.Cols], w: w, rows: blocks, bs: bs}
	e.Pool.Parallel(len(blocks), 1, &e.gt)
	e.gt = gatherTask{}
}

type accumTask struct {
	y    []float32
	w    Mat
	rows []int32
	a    []float32
}

func (t *accumTask) Run(_, start, end int) {
	for k, i := range t.rows {
		t.w.axpyRow(int(i), t.a[k], t.y, start, end)
	}
}

// AccumRows adds Σ_k a[k]·W[rows[k], :] to y (len W.Cols): the product of a
// transposed matrix with a sparse vector. Workers split the columns.
func (e *Exec) AccumRows(y []float32, w Mat, rows []int32, a []float32) {
	e.at = accumTask{y: y[:w.Cols], w: w, rows: rows, a: a[:len(rows)]}
	e.Pool.Parallel(w.Cols, 16, &e.at)
	e.at = accumTask{}
}

// axpyRow adds a·W[i, start:end] to y[start:end].
func (m Mat) axpyRow(i int, a float32, y []float32, start, end int) {
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

// Transpose returns Wᵀ as a new matrix of the same dtype (Cols×Rows), for
// kernels that read one neuron or head as one contiguous row.
func (m Mat) Transpose() Mat {
	t := Mat{Rows: m.Cols, Cols: m.Rows, DType: m.DType}
	r, c := m.Rows, m.Cols
	const blk = 64
	if m.DType == F32 {
		t.f32 = make([]float32, r*c)
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
	t.u16 = make([]uint16, r*c)
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
