package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"
	"unsafe"
)

// sparseCols covers the column tails of every kernel: below, at and above
// multiples of 8, 16 and 32.
var sparseCols = []int{1, 3, 7, 8, 9, 15, 16, 17, 24, 31, 32, 33, 47, 48, 63, 64, 65, 100, 513, 2050}

// rowLists returns selections from n rows: none, one (first, last),
// small counts around the four-row pass, sparse sorted lists with large
// gaps, a dense random subset and all rows.
func rowLists(r *rand.Rand, n int) [][]int32 {
	lists := [][]int32{{}, {0}, {int32(n - 1)}}
	for _, k := range []int{2, 3, 4, 5, 7, 8, 9, 13} {
		if k <= n {
			lists = append(lists, randRows(r, n, k))
		}
	}
	if n >= 3 { // first and last rows only: the largest possible gap
		lists = append(lists, []int32{0, int32(n - 1)}, []int32{0, int32(n / 2), int32(n - 1)})
	}
	lists = append(lists, randRows(r, n, (n+9)/10), randRows(r, n, n/2+1))
	all := make([]int32, n)
	for i := range all {
		all[i] = int32(i)
	}
	return append(lists, all)
}

// randRows picks k of n rows at random, sorted and duplicate-free.
func randRows(r *rand.Rand, n, k int) []int32 {
	p := r.Perm(n)[:k]
	rows := make([]int32, k)
	for i, v := range p {
		rows[i] = int32(v)
	}
	slices.Sort(rows)
	return rows
}

// nanVec is n NaNs (poisoned outputs).
func nanVec(n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(math.NaN())
	}
	return v
}

func TestGatherRowsMatchReference(t *testing.T) {
	forEachKernel(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(11, 12))
		for _, dt := range []DType{F32, F16, BF16} {
			for _, cols := range sparseCols {
				rows := 1 + r.IntN(60)
				if cols >= 513 {
					rows = 300
				}
				off := r.IntN(4) // unaligned storage
				m, vals := offsetMat(r, dt, rows, cols, off)
				x := randVec(r, cols, r.IntN(3))
				for _, sel := range rowLists(r, rows) {
					y := nanVec(len(sel) + 5)
					m.gatherRows(y, x, sel)
					for k, i := range sel {
						if err := checkDot(y[k], vals[int(i)*cols:int(i+1)*cols], x); err != nil {
							t.Fatalf("%v %dx%d off %d, %d rows: y[%d] (row %d): %v", dt, rows, cols, off, len(sel), k, i, err)
						}
					}
					for k := len(sel); k < len(y); k++ {
						if !math.IsNaN(float64(y[k])) {
							t.Fatalf("%v %dx%d: gather of %d rows wrote y[%d]", dt, rows, cols, len(sel), k)
						}
					}
				}
			}
		}
	})
}

// checkAccum compares y with y0 + Σ a[k]·row(rows[k]), allowing the error
// of a reordered f32 sum relative to the sum of |terms|.
func checkAccum(y, y0, vals []float32, cols int, rows []int32, a []float32) error {
	for j := 0; j < cols; j++ {
		want, mag := float64(y0[j]), math.Abs(float64(y0[j]))
		for k, i := range rows {
			p := float64(a[k]) * float64(vals[int(i)*cols+j])
			want += p
			mag += math.Abs(p)
		}
		if !(math.Abs(float64(y[j])-want) <= 1e-5*mag+1e-30) {
			return fmt.Errorf("y[%d] = %v, want %v (sum |terms| %v)", j, y[j], want, mag)
		}
	}
	return nil
}

func TestAccumRowsMatchReference(t *testing.T) {
	forEachKernel(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(13, 14))
		for _, dt := range []DType{F32, F16, BF16} {
			for _, cols := range sparseCols {
				rows := 1 + r.IntN(60)
				if cols >= 513 {
					rows = 300
				}
				off := r.IntN(4)
				m, vals := offsetMat(r, dt, rows, cols, off)
				for _, sel := range rowLists(r, rows) {
					a := randVec(r, len(sel), r.IntN(3))
					buf := append(randVec(r, cols, 0), nanVec(5)...)
					y0 := append([]float32(nil), buf...)
					m.accumRows(buf[:cols], sel, a)
					if err := checkAccum(buf, y0, vals, cols, sel, a); err != nil {
						t.Fatalf("%v %dx%d off %d, %d rows: %v", dt, rows, cols, off, len(sel), err)
					}
					for j := cols; j < len(buf); j++ {
						if !math.IsNaN(float64(buf[j])) {
							t.Fatalf("%v %dx%d: accumulate wrote y[%d] past the row", dt, rows, cols, j)
						}
					}
				}
			}
		}
	})
}

// The Exec products split the rows across workers: the results must not
// depend on the split, and gathers of two matrices at once equal two
// gathers.
func TestExecSparseProducts(t *testing.T) {
	forEachKernel(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(15, 16))
		for _, threads := range []int{1, 2, 3} {
			pool := NewPool(threads)
			for _, dt := range []DType{F32, F16, BF16} {
				for _, sh := range [][2]int{{1, 5}, {40, 33}, {700, 130}, {257, 2048}} {
					rows, cols := sh[0], sh[1]
					m, vals := offsetMat(r, dt, rows, cols, 1)
					m2, vals2 := offsetMat(r, dt, rows, cols, 3)
					e := NewExec(pool, cols)
					x := randVec(r, cols, 0)
					for _, sel := range rowLists(r, rows) {
						y1, y2 := nanVec(len(sel)), nanVec(len(sel))
						e.GatherMatVec2(y1, m, y2, m2, x, sel)
						y3 := nanVec(len(sel))
						e.GatherMatVec(y3, m, x, sel)
						for k, i := range sel {
							for _, c := range []struct {
								got  float32
								vals []float32
							}{{y1[k], vals}, {y2[k], vals2}, {y3[k], vals}} {
								if err := checkDot(c.got, c.vals[int(i)*cols:int(i+1)*cols], x); err != nil {
									t.Fatalf("%v %dx%d threads %d, %d rows: row %d: %v", dt, rows, cols, threads, len(sel), i, err)
								}
							}
						}
						a := randVec(r, len(sel), 0)
						y := randVec(r, cols, 0)
						y0 := append([]float32(nil), y...)
						e.AccumRows(y, m, sel, a)
						if err := checkAccum(y, y0, vals, cols, sel, a); err != nil {
							t.Fatalf("%v %dx%d threads %d, %d rows: accumulate: %v", dt, rows, cols, threads, len(sel), err)
						}
					}
				}
			}
			pool.Close()
		}
	})
}

// BlockMatVec computes exactly the rows of the selected blocks: every
// other output keeps its (NaN) value.
func TestBlockMatVecLeavesOtherRows(t *testing.T) {
	forEachKernel(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(17, 18))
		for _, threads := range []int{1, 2} {
			pool := NewPool(threads)
			for _, dt := range []DType{F32, F16, BF16} {
				for _, bs := range []int{1, 3, 8, 64} {
					for _, cols := range []int{5, 64, 2050} {
						nb := 1 + r.IntN(12)
						rows := nb * bs
						m, vals := offsetMat(r, dt, rows, cols, 1)
						e := NewExec(pool, cols)
						x := randVec(r, cols, 0)
						for _, blocks := range rowLists(r, nb) {
							y := nanVec(rows)
							e.BlockMatVec(y, m, x, blocks, bs)
							want := make([]bool, rows)
							for _, b := range blocks {
								for i := int(b) * bs; i < int(b+1)*bs; i++ {
									want[i] = true
								}
							}
							for i := range y {
								if !want[i] {
									if !math.IsNaN(float64(y[i])) {
										t.Fatalf("%v bs %d, blocks %v: row %d outside the blocks was written", dt, bs, blocks, i)
									}
									continue
								}
								if err := checkDot(y[i], vals[i*cols:(i+1)*cols], x); err != nil {
									t.Fatalf("%v bs %d cols %d threads %d, blocks %v: row %d: %v", dt, bs, cols, threads, blocks, i, err)
								}
							}
						}
					}
				}
			}
			pool.Close()
		}
	})
}

func TestSparseProductsDoNotAllocate(t *testing.T) {
	forEachKernel(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(19, 20))
		pool := NewPool(2)
		defer pool.Close()
		for _, dt := range []DType{F32, F16, BF16} {
			m, _ := offsetMat(r, dt, 500, 300, 1)
			e := NewExec(pool, 300)
			x := randVec(r, 300, 0)
			sel := randRows(r, 500, 203)
			y := make([]float32, 500)
			a := randVec(r, len(sel), 0)
			if n := testing.AllocsPerRun(10, func() {
				e.GatherMatVec(y, m, x, sel)
				e.GatherMatVec2(y, m, y[250:], m, x, sel[:100])
				e.AccumRows(y, m, sel[:3], a)
				e.AccumRows(y, m, sel, a)
				e.BlockMatVec(y, m, x, sel[:7], 4)
			}); n != 0 {
				t.Fatalf("%v: %v allocations per run", dt, n)
			}
		}
	})
}

func TestSparseRowOutOfRangePanics(t *testing.T) {
	forEachKernel(t, func(t *testing.T) {
		m := MatF32(4, 8, make([]float32, 32))
		x := make([]float32, 8)
		y := make([]float32, 8)
		for _, rows := range [][]int32{{4}, {-1}, {0, 1, 2, 3, 9}} {
			for _, f := range []func(){
				func() { m.gatherRows(y, x, rows) },
				func() { m.accumRows(y, rows, y) },
			} {
				func() {
					defer func() {
						if recover() == nil {
							t.Errorf("rows %v: no panic", rows)
						}
					}()
					f()
				}()
			}
		}
	})
}

// TestSparseKernelVariants reruns the gather, accumulate and fused MLP comparisons
// with every row length sent to the sixteen-, eight- and four-rows-per-pass
// AVX-512 kernels without prefetch (which normally serve rows of 2 KiB and
// more), so that every kernel meets every column tail (and the Q8_0
// gathers every row count).
func TestSparseKernelVariants(t *testing.T) {
	defer func(mr, n int) { sparsePrefetchMaxRow, sparseRows = mr, n }(sparsePrefetchMaxRow, sparseRows)
	for _, rows := range []int{16, 8, 4} {
		sparsePrefetchMaxRow, sparseRows = 0, rows
		name := fmt.Sprintf("rows%d", rows)
		t.Run(name+"/gather", TestGatherRowsMatchReference)
		t.Run(name+"/accum", TestAccumRowsMatchReference)
		t.Run(name+"/q8", TestQ8SparseMatchReference)
		t.Run(name+"/mlp", TestSparseMLPMatchesReference)
	}
}

// TestHugeBytes: the buffer has the asked length, is zeroed, and (on
// Linux, from 2 MiB on) starts on a 2 MiB boundary; Transpose uses it.
func TestHugeBytes(t *testing.T) {
	for _, n := range []int{0, 1, 4096, 2 << 20, 5<<20 + 3} {
		b := HugeBytes(n)
		if len(b) != n {
			t.Fatalf("HugeBytes(%d) has length %d", n, len(b))
		}
		for i, v := range b {
			if v != 0 {
				t.Fatalf("HugeBytes(%d)[%d] = %d", n, i, v)
			}
		}
		if p := uintptr(unsafe.Pointer(unsafe.SliceData(b))); runtime.GOOS == "linux" && n >= 2<<20 && p%(2<<20) != 0 {
			t.Fatalf("HugeBytes(%d) at %#x: not 2 MiB-aligned", n, p)
		}
	}
}
