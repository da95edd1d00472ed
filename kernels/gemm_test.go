package kernels

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestGEMMMatchesReference checks Exec.MatMul (the blocked GEMM with the
// assembly kernels, the row-block path in pure Go) against a float64
// reference for every kernel set, dtype, 1 and 2 threads, odd shapes around
// every blocking boundary (row panels of 8/16/32, K blocks of 256, input
// panels of 6/12 and passes of 64), unaligned storage, and outputs poisoned
// with NaN so that every element must be written exactly where it belongs.
func TestGEMMMatchesReference(t *testing.T) {
	type shape struct{ rows, cols, n int }
	var shapes []shape
	r0 := rand.New(rand.NewPCG(11, 12))
	for i := 0; i < 40; i++ {
		shapes = append(shapes, shape{1 + r0.IntN(70), 1 + r0.IntN(70), 1 + r0.IntN(70)})
	}
	shapes = append(shapes,
		shape{1, 1, 2}, shape{70, 70, 70}, shape{32, 16, 12}, shape{33, 17, 13},
		shape{64, 256, 64}, shape{65, 257, 65}, shape{31, 255, 7}, shape{96, 512, 24},
		shape{100, 600, 37}, shape{47, 1000, 9}, shape{130, 333, 130}, shape{16, 8, 6},
		shape{8, 9, 5}, shape{200, 40, 64}, shape{15, 513, 11},
	)
	forEachKernel(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(13, 14))
		for _, threads := range []int{1, 2} {
			pool := NewPool(threads)
			for _, dt := range []DType{F32, F16, BF16} {
				for si, sh := range shapes {
					off := si % 4
					m, vals := offsetMat(r, dt, sh.rows, sh.cols, off)
					e := NewExec(pool, sh.cols)
					x := randVec(r, sh.n*sh.cols+1, off)
					x[sh.n*sh.cols] = float32(math.NaN()) // past the inputs: never read
					buf := make([]float32, sh.n*sh.rows+2*off+1)
					for i := range buf {
						buf[i] = float32(math.NaN())
					}
					y := buf[off : off+sh.n*sh.rows]
					e.MatMul(y, m, x, sh.n)
					for i, v := range buf {
						if (i < off || i >= off+len(y)) && !math.IsNaN(float64(v)) {
							t.Fatalf("%v %+v: wrote outside y (element %d)", dt, sh, i-off)
						}
					}
					for b := 0; b < sh.n; b++ {
						xb := x[b*sh.cols : (b+1)*sh.cols]
						for i := 0; i < sh.rows; i++ {
							if err := checkDot(y[b*sh.rows+i], vals[i*sh.cols:(i+1)*sh.cols], xb); err != nil {
								t.Fatalf("%v %+v threads=%d off=%d y[%d][%d]: %v", dt, sh, threads, off, b, i, err)
							}
						}
					}
				}
			}
			pool.Close()
		}
	})
}

// TestGEMMLargeBatchAndReuse runs batches beyond one pass (n > 64) and
// reuses one Exec across shapes and dtypes, with y holding stale values.
func TestGEMMLargeBatchAndReuse(t *testing.T) {
	forEachKernel(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(15, 16))
		pool := NewPool(2)
		defer pool.Close()
		e := NewExec(pool, 300)
		for _, sh := range [][3]int{{77, 300, 150}, {5, 3, 200}, {64, 300, 65}, {40, 129, 128}} {
			rows, cols, n := sh[0], sh[1], sh[2]
			for _, dt := range []DType{BF16, F32, F16} {
				m, vals := offsetMat(r, dt, rows, cols, 1)
				x := randVec(r, n*cols, 0)
				y := randVec(r, n*rows, 0)
				e.MatMul(y, m, x, n)
				for b := 0; b < n; b++ {
					for i := 0; i < rows; i++ {
						if err := checkDot(y[b*rows+i], vals[i*cols:(i+1)*cols], x[b*cols:(b+1)*cols]); err != nil {
							t.Fatalf("%v %v y[%d][%d]: %v", dt, sh, b, i, err)
						}
					}
				}
			}
		}
	})
}

// TestGEMMPackMatchesGo checks every packing kernel against the Go
// conversion element by element, including partial row and column groups
// and a non-zero column offset.
func TestGEMMPackMatchesGo(t *testing.T) {
	r := rand.New(rand.NewPCG(17, 18))
	for _, k := range archKernels {
		mr, _, _ := archGemmShape(k.id)
		for _, dt := range []DType{F32, F16, BF16} {
			for _, sh := range [][4]int{{mr, 64, 0, 64}, {mr, 300, 17, 256}, {mr - 3, 100, 5, 77}, {5, 40, 0, 40}, {mr + 7, 50, 1, 33}} {
				rows, cols, kb, kc := sh[0], sh[1], sh[2], sh[3]
				m, vals := offsetMat(r, dt, rows+3, cols, 1)
				i0 := 3
				pr := min(rows, mr)
				dst := make([]float32, kc*mr)
				for i := range dst {
					dst[i] = float32(math.NaN())
				}
				m.gemmPack(k.id, dst, i0, pr, kb, kc, mr)
				for kk := 0; kk < kc; kk++ {
					for rr := 0; rr < mr; rr++ {
						want := float32(0)
						if rr < pr {
							want = vals[(i0+rr)*cols+kb+kk]
						}
						if got := dst[kk*mr+rr]; got != want {
							t.Fatalf("%s %v %v: dst[k=%d][r=%d] = %v, want %v", k.name, dt, sh, kk, rr, got, want)
						}
					}
				}
			}
		}
	}
}

// TestGEMMDoesNotAllocate checks that MatMul allocates nothing per call.
func TestGEMMDoesNotAllocate(t *testing.T) {
	forEachKernel(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(19, 20))
		pool := NewPool(2)
		defer pool.Close()
		e := NewExec(pool, 300)
		m, _ := offsetMat(r, F16, 100, 300, 1)
		x := randVec(r, 70*300, 0)
		y := make([]float32, 70*100)
		if n := testing.AllocsPerRun(10, func() { e.MatMul(y, m, x, 70) }); n != 0 {
			t.Fatalf("%v allocations per MatMul", n)
		}
	})
}

// TestGEMMEveryPanelWidth calls the GEMM directly (MatMul sends batches
// under gemmMinN to the GEMV) for every n from 1 to 26, so that every
// microkernel width of every kernel set runs.
func TestGEMMEveryPanelWidth(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	pool := NewPool(2)
	defer pool.Close()
	for _, k := range archKernels {
		kern = k
		for _, dt := range []DType{F32, F16, BF16} {
			rows, cols := 37+r.IntN(40), 250+r.IntN(30)
			m, vals := offsetMat(r, dt, rows, cols, 3)
			e := NewExec(pool, cols)
			for n := 1; n <= 26; n++ {
				x := randVec(r, n*cols, 1)
				y := make([]float32, n*rows)
				for i := range y {
					y[i] = float32(math.NaN())
				}
				e.gemm(y, m, x, n)
				for b := 0; b < n; b++ {
					for i := 0; i < rows; i++ {
						if err := checkDot(y[b*rows+i], vals[i*cols:(i+1)*cols], x[b*cols:(b+1)*cols]); err != nil {
							t.Fatalf("%s %v %dx%d n=%d y[%d][%d]: %v", k.name, dt, rows, cols, n, b, i, err)
						}
					}
				}
			}
		}
	}
	SetPureGo(false)
}
