package kernels

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// BenchmarkQ8GEMV compares single-threaded Q8_0 and f16 GEMV on 16384×2048
// (34 MiB in Q8_0, 64 MiB in f16: both beyond a 32 MiB L3) per kernel set;
// MB/s is weight bytes read per second, so tokens/s scale as MB/s divided
// by bytes, and Q8_0 wins while its MB/s stays above 53% of f16's.
func BenchmarkQ8GEMV(b *testing.B) {
	defer SetPureGo(false)
	r := rand.New(rand.NewPCG(1, 1))
	rows, cols := 16384, 2048
	for _, dt := range []DType{F16, Q8_0} {
		var m Mat
		if dt == Q8_0 {
			m, _ = offsetQ8(r, rows, cols, 0)
		} else {
			m, _ = offsetMat(r, dt, rows, cols, 0)
		}
		x := randVec(r, cols, 0)
		y := make([]float32, rows)
		for _, name := range kernelNames() {
			b.Run(fmt.Sprintf("%v/%dx%d/%s", dt, rows, cols, name), func(b *testing.B) {
				useKernels(name)
				b.SetBytes(m.Bytes())
				for b.Loop() {
					m.gemvRows(y, x, 0, rows)
				}
			})
		}
	}
}

// BenchmarkQ8Sparse is the gather and accumulate of 10% of the rows
// (sorted, random) of 16384×2048 matrices, f16 against Q8_0, single-threaded
// with the best kernels; MB/s counts the selected rows' bytes.
func BenchmarkQ8Sparse(b *testing.B) {
	r := rand.New(rand.NewPCG(2, 2))
	rows, cols := 16384, 2048
	sel := randRows(r, rows, rows/10)
	for _, dt := range []DType{F16, Q8_0} {
		var m Mat
		if dt == Q8_0 {
			m, _ = offsetQ8(r, rows, cols, 0)
		} else {
			m, _ = offsetMat(r, dt, rows, cols, 0)
		}
		x := randVec(r, cols, 0)
		y := make([]float32, max(len(sel), cols))
		a := randVec(r, len(sel), 0)
		bytes := int64(len(sel)) * int64(dt.RowBytes(cols))
		b.Run(fmt.Sprintf("gather/%v", dt), func(b *testing.B) {
			b.SetBytes(bytes)
			for b.Loop() {
				m.gatherRows(y, x, sel)
			}
		})
		b.Run(fmt.Sprintf("accum/%v", dt), func(b *testing.B) {
			b.SetBytes(bytes)
			for b.Loop() {
				m.accumRows(y[:cols], sel, a)
			}
		})
	}
}

// BenchmarkQ8Integer interleaves, call by call, the single-threaded f16
// GEMV and the Q8_0 GEMV with the f32 kernels (q8Integer = false) and the
// integer ones, on 16384×2048 (beyond the L3) and 256×2048 (in cache), and
// the gathers and accumulations of 10% of the rows of the large matrices
// (Q8_0 accumulate: four rows per pass against eight); reports the median
// rate of each in weight bytes (GB/s) and in weights per ns (Gw/s).
func BenchmarkQ8Integer(b *testing.B) {
	defer func(v bool, n int) { q8Integer, sparseRows = v, n }(q8Integer, sparseRows)
	r := rand.New(rand.NewPCG(3, 3))
	for _, rows := range []int{16384, 256} {
		cols := 2048
		f16, _ := offsetMat(r, F16, rows, cols, 0)
		q8, _ := offsetQ8(r, rows, cols, 0)
		x := randVec(r, cols, 0)
		y := make([]float32, max(rows, cols))
		sel := randRows(r, rows, rows/10)
		a := randVec(r, len(sel), 0)
		type op struct {
			name    string
			m       Mat
			integer bool
			kind    int // 0 GEMV, 1 gather, 2 accumulate
			rows    int // sparseRows
		}
		ops := []op{{"f16", f16, false, 0, 16}, {"q8f32", q8, false, 0, 16}, {"q8int", q8, true, 0, 16}}
		if rows > 256 {
			ops = append(ops, op{"gather-f16", f16, false, 1, 16}, op{"gather-q8f32", q8, false, 1, 16}, op{"gather-q8int", q8, true, 1, 16},
				op{"accum-f16", f16, false, 2, 16}, op{"accum-q8-4rows", q8, false, 2, 4}, op{"accum-q8-8rows", q8, false, 2, 16})
		}
		b.Run(fmt.Sprintf("%dx%d", rows, cols), func(b *testing.B) {
			rates := make([][]float64, len(ops))
			for b.Loop() {
				for j, o := range ops {
					q8Integer, sparseRows = o.integer, o.rows
					n := o.m.Rows
					t0 := time.Now()
					switch o.kind {
					case 1:
						o.m.gatherRows(y, x, sel)
						n = len(sel)
					case 2:
						o.m.accumRows(y[:cols], sel, a)
						n = len(sel)
					default:
						o.m.gemvRows(y, x, 0, rows)
					}
					rates[j] = append(rates[j], float64(n*cols)/float64(time.Since(t0).Nanoseconds()))
				}
			}
			for j, o := range ops {
				w := Median(rates[j])
				b.ReportMetric(w, o.name+"-Gw/s")
				b.ReportMetric(w*float64(o.m.DType.RowBytes(cols))/float64(cols), o.name+"-GB/s")
			}
		})
	}
}
