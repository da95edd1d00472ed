package kernels

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// BenchmarkQ4GEMV is single-threaded GEMV over 16384×2048 weights in
// Q4_0, Q4_K and Q8_0 (16.0, 18.0 and 34 MiB), per kernel set; MB/s is
// weight bytes per second and weights/s = MB/s × weights per byte.
func BenchmarkQ4GEMV(b *testing.B) {
	defer SetPureGo(false)
	r := rand.New(rand.NewPCG(3, 3))
	rows, cols := 16384, 2048
	for _, dt := range []DType{Q8_0, Q4_0, Q4_K} {
		var m Mat
		if dt == Q8_0 {
			m, _ = offsetQ8(r, rows, cols, 0)
		} else {
			m, _, _ = randQ4(r, dt, rows, cols, 0)
		}
		x := randVec(r, cols, 0)
		y := make([]float32, rows)
		for _, name := range kernelNames() {
			if name == "go" {
				continue
			}
			b.Run(fmt.Sprintf("%v/%s", dt, name), func(b *testing.B) {
				useKernels(name)
				b.SetBytes(m.Bytes())
				for b.Loop() {
					m.gemvRows(y, x, 0, rows)
				}
			})
		}
	}
}

// BenchmarkQ4QuantizeX is the per-product cost of quantizing x for the Q4
// kernels (2048 values).
func BenchmarkQ4QuantizeX(b *testing.B) {
	x := randVec(rand.New(rand.NewPCG(4, 4)), 2048, 0)
	b.SetBytes(int64(4 * len(x)))
	for b.Loop() {
		q4XPool.Put(quantizeQ4X(x))
	}
}
