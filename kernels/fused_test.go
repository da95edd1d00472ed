package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

func TestInterleave(t *testing.T) {
	r := rand.New(rand.NewPCG(41, 42))
	for _, dt := range []DType{F32, F16, BF16} {
		for _, sh := range [][2]int{{1, 1}, {3, 7}, {17, 33}, {64, 2050}} {
			rows, cols := sh[0], sh[1]
			for _, k := range []int{1, 2, 3} {
				var mats []Mat
				var vals [][]float32
				for s := 0; s < k; s++ {
					m, v := offsetMat(r, dt, rows, cols, s)
					mats, vals = append(mats, m), append(vals, v)
				}
				w := Interleave(mats...)
				if w.Rows != rows || w.Cols != k*cols || w.DType != dt {
					t.Fatalf("%v %dx%d ×%d: got %v %dx%d", dt, rows, cols, k, w.DType, w.Rows, w.Cols)
				}
				row := make([]float32, k*cols)
				for i := 0; i < rows; i++ {
					w.Row(i, row)
					for s := 0; s < k; s++ {
						for j := 0; j < cols; j++ {
							if got, want := row[s*cols+j], vals[s][i*cols+j]; got != want {
								t.Fatalf("%v %dx%d ×%d: row %d segment %d col %d = %v, want %v", dt, rows, cols, k, i, s, j, got, want)
							}
						}
					}
				}
			}
		}
	}
	for _, bad := range [][2]Mat{
		{MatF32(2, 3, make([]float32, 6)), MatF32(2, 4, make([]float32, 8))},
		{MatF32(2, 3, make([]float32, 6)), MatF32(3, 3, make([]float32, 9))},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Interleave of %dx%d and %dx%d: no panic", bad[0].Rows, bad[0].Cols, bad[1].Rows, bad[1].Cols)
				}
			}()
			Interleave(bad[0], bad[1])
		}()
	}
}

// recordAct checks each pass SparseMLP hands it and turns the gathered
// values into coefficients: a·0.5 + rows/64 (segs 2) or a·b (segs 3),
// recording, per neuron, the gathered values and the coefficient.
type recordAct struct {
	t        *testing.T
	segs     int
	g, u, co []float32 // by neuron
	seen     []int
	err      error
}

func (r *recordAct) Activate(a, b []float32, rows []int32) {
	if len(a) == 0 || len(a) > sparseMLPPass || len(rows) != len(a) || (r.segs == 3) != (b != nil) || b != nil && len(b) != len(a) {
		r.err = fmt.Errorf("pass of %d values, %d rows, b %v", len(a), len(rows), b != nil)
		return
	}
	for k, i := range rows {
		r.seen[i]++
		r.g[i] = a[k]
		if b != nil {
			r.u[i] = b[k]
			a[k] *= b[k]
		} else {
			a[k] = a[k]*0.5 + float32(i)/64
		}
		r.co[i] = a[k]
	}
}

func TestSparseMLPMatchesReference(t *testing.T) {
	forEachKernel(t, testSparseMLP)
}

func testSparseMLP(t *testing.T) {
	r := rand.New(rand.NewPCG(43, 44))
	for _, threads := range []int{1, 2, 3} {
		pool := NewPool(threads)
		for _, dt := range []DType{F32, F16, BF16} {
			for _, segs := range []int{2, 3} {
				for ci, h := range sparseCols {
					if threads > 1 && ci%3 != 0 && h < 513 {
						continue // every tail on one thread; a few with more
					}
					n := 1 + r.IntN(60)
					if h >= 513 {
						n = 300
					}
					var mats []Mat
					var vals [][]float32
					for s := 0; s < segs; s++ {
						m, v := offsetMat(r, dt, n, h, r.IntN(4))
						mats, vals = append(mats, m), append(vals, v)
					}
					w := Interleave(mats...)
					e := NewExec(pool, h)
					x := randVec(r, h, r.IntN(3))
					for _, sel := range rowLists(r, n) {
						ra := &recordAct{t: t, segs: segs, g: make([]float32, n), u: make([]float32, n), co: make([]float32, n), seen: make([]int, n)}
						a, b := nanVec(len(sel)), nanVec(len(sel))
						y := append(randVec(r, h, 0), nanVec(5)...)
						y0 := append([]float32(nil), y...)
						e.SparseMLP(y[:h], w, segs, x, sel, a, b, ra)
						where := fmt.Sprintf("%v segs %d h %d threads %d, %d of %d rows", dt, segs, h, threads, len(sel), n)
						if ra.err != nil {
							t.Fatalf("%s: %v", where, ra.err)
						}
						coef := make([]float32, len(sel))
						for k, i := range sel {
							if ra.seen[i] != 1 {
								t.Fatalf("%s: neuron %d activated %d times", where, i, ra.seen[i])
							}
							if err := checkDot(ra.g[i], vals[0][int(i)*h:int(i+1)*h], x); err != nil {
								t.Fatalf("%s: first segment of neuron %d: %v", where, i, err)
							}
							if segs == 3 {
								if err := checkDot(ra.u[i], vals[1][int(i)*h:int(i+1)*h], x); err != nil {
									t.Fatalf("%s: second segment of neuron %d: %v", where, i, err)
								}
							}
							if a[k] != ra.co[i] {
								t.Fatalf("%s: a[%d] = %v, the coefficient was %v", where, k, a[k], ra.co[i])
							}
							coef[k] = ra.co[i]
						}
						if err := checkAccum(y, y0, vals[segs-1], h, sel, coef); err != nil {
							t.Fatalf("%s: %v", where, err)
						}
						for j := h; j < len(y); j++ {
							if !math.IsNaN(float64(y[j])) {
								t.Fatalf("%s: wrote y[%d] past the output", where, j)
							}
						}
					}
				}
			}
		}
		pool.Close()
	}
}

type reluAct struct{}

func (reluAct) Activate(a, b []float32, _ []int32) {
	for k := range a {
		a[k] = max(a[k], 0)
	}
}

func TestSparseMLPDoesNotAllocate(t *testing.T) {
	forEachKernel(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(45, 46))
		pool := NewPool(2)
		defer pool.Close()
		for _, dt := range []DType{F32, F16, BF16} {
			u, _ := offsetMat(r, dt, 500, 300, 1)
			d, _ := offsetMat(r, dt, 500, 300, 2)
			w := Interleave(u, d)
			e := NewExec(pool, 300)
			x := randVec(r, 300, 0)
			sel := randRows(r, 500, 203)
			y := make([]float32, 300)
			a := make([]float32, len(sel))
			act := reluAct{}
			if n := testing.AllocsPerRun(10, func() {
				e.SparseMLP(y, w, 2, x, sel, a, nil, act)
				e.SparseMLP(y, w, 2, x, sel[:5], a, nil, act)
				e.AccumRows(y, d, sel, a)
			}); n != 0 {
				t.Fatalf("%v: %v allocations per run", dt, n)
			}
		}
	})
}

func TestSparseMLPPanics(t *testing.T) {
	w := Interleave(MatF32(4, 8, make([]float32, 32)), MatF32(4, 8, make([]float32, 32)))
	e := NewExec(NewPool(1), 8)
	defer e.Pool.Close()
	x, y, a := make([]float32, 8), make([]float32, 8), make([]float32, 8)
	for _, c := range []struct {
		segs int
		rows []int32
	}{{2, []int32{4}}, {2, []int32{-1}}, {2, []int32{0, 1, 2, 3, 9}}, {4, []int32{0}}, {3, []int32{0}}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("segs %d rows %v: no panic", c.segs, c.rows)
				}
			}()
			e.SparseMLP(y, w, c.segs, x, c.rows, a, a, reluAct{})
		}()
	}
}
