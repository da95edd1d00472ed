package kernels

import (
	"fmt"
	"math/rand/v2"
	"testing"
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
