package kernels

// Exec runs the row-parallel products on a pool. It owns the per-call task
// state and per-worker scratch, so products run without allocating; one
// Exec serves one caller at a time (a model session), many may share a Pool.
type Exec struct {
	Pool    *Pool
	mv      matVecTask
	mm      matMulTask
	gt      gatherTask
	at      accumTask
	mt      mlpTask
	ct      cacheTask
	scratch [][]float32

	// Per-worker partial sums of the accumulating products (AccumRows,
	// SparseMLP) and which workers wrote theirs in the current call.
	part     [][]float32
	partUsed []bool

	// GEMM (gemm.go): packed inputs (gemmMaxN×maxCols) and, per worker,
	// packed weights and the tail tile.
	gm gemmTask
	gx gemmPackX
	xp []float32
}

// NewExec makes an executor on pool whose products have at most maxCols
// columns. It allocates every scratch buffer its products need: per
// worker, a row of maxCols floats and 40 KB for the GEMM; shared, room for
// gemmMaxN (64) packed inputs of maxCols floats.
func NewExec(pool *Pool, maxCols int) *Exec {
	th := pool.Threads()
	e := &Exec{Pool: pool, scratch: make([][]float32, th)}
	for i := range e.scratch {
		e.scratch[i] = make([]float32, maxCols)
	}
	e.mm.scratch = e.scratch
	e.xp = make([]float32, gemmMaxN*maxCols)
	e.gm.wp = make([][]float32, th)
	e.gm.tile = make([][]float32, th)
	for i := 0; i < th; i++ {
		e.gm.wp[i] = make([]float32, gemmMRMax*gemmKC)
		e.gm.tile[i] = make([]float32, gemmMRMax*gemmMaxN)
	}
	return e
}

type matVecTask struct {
	y, x []float32
	w    Mat
}

func (t *matVecTask) Run(_, start, end int) {
	t.w.gemvRows(t.y, t.x, start, end)
}

// MatVec computes y = W x (len(y) = W.Rows, len(x) = W.Cols).
func (e *Exec) MatVec(y []float32, w Mat, x []float32) {
	e.mv = matVecTask{y: y[:w.Rows], x: x[:w.Cols], w: w}
	e.Pool.Parallel(w.Rows, 8, &e.mv)
	e.mv = matVecTask{}
}

// gemmEnabled selects the blocked GEMM for MatMul when assembly kernels
// are active; benchmarks turn it off to measure the GEMV-per-input path.
var gemmEnabled = true

type matMulTask struct {
	y, x    []float32
	n       int
	w       Mat
	scratch [][]float32
}

func (t *matMulTask) Run(worker, start, end int) {
	if t.w.gemmRows(t.y, t.x, t.n, start, end) {
		return
	}
	c, r := t.w.Cols, t.w.Rows
	row := t.scratch[worker][:c]
	for i := start; i < end; i++ {
		t.w.Row(i, row)
		for b := 0; b < t.n; b++ {
			t.y[b*r+i] = Dot(row, t.x[b*c:(b+1)*c])
		}
	}
}

// MatMul computes n products at once: y[b] = W x[b] for b < n, where x is
// n×W.Cols and y is n×W.Rows, both row-major. With the assembly kernels it
// is a blocked GEMM (gemm.go) that reads and converts each weight once per
// 64 inputs; in pure Go each block of weight rows is decoded once and
// applied to all n inputs while it is in cache.
func (e *Exec) MatMul(y []float32, w Mat, x []float32, n int) {
	if n == 1 {
		e.MatVec(y, w, x)
		return
	}
	if n <= 0 || w.Rows == 0 {
		return
	}
	r, c := w.Rows, w.Cols
	y, x = y[:n*r], x[:n*c]
	if c == 0 {
		clear(y)
		return
	}
	if kern.id != 0 && gemmEnabled && n >= gemmMinN {
		if chunk := min(gemmMaxN, len(e.xp)/c); chunk > 0 {
			for b0 := 0; b0 < n; b0 += chunk {
				nb := min(chunk, n-b0)
				e.gemm(y[b0*r:(b0+nb)*r], w, x[b0*c:(b0+nb)*c], nb)
			}
			return
		}
	}
	e.mm.y, e.mm.x, e.mm.n, e.mm.w = y[:n*w.Rows], x[:n*w.Cols], n, w
	e.Pool.Parallel(w.Rows, 8, &e.mm)
	e.mm.y, e.mm.x, e.mm.w = nil, nil, Mat{}
}
