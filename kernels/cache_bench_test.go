package kernels

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// BenchmarkCacheMatMul: K and V rows of half the heads of two 64 MiB f16
// matrices (64-row heads of 2048 columns, opt-1.3b's row size; larger than
// the caches, as in decoding), one thread, for m positions per head (m = 1:
// a decode step's own position; more: heads catching up), beside
// BlockMatVec reading the same rows for one position.
func BenchmarkCacheMatMul(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	const heads, hd, cols, stride = 256, 64, 2048, 8
	w, _ := offsetMat(r, F16, heads*hd, cols, 0)
	w2, _ := offsetMat(r, F16, heads*hd, cols, 0)
	pool := NewPool(1)
	defer pool.Close()
	e := NewExec(pool, cols)
	x := randVec(r, stride*cols, 0)
	y, y2 := make([]float32, heads*stride*hd), make([]float32, heads*stride*hd)
	blocks := randRows(r, heads, heads/2)
	bytes := 2 * int64(len(blocks)) * hd * cols * 2
	defer SetPureGo(false)
	for _, name := range kernelNames()[1:] { // the assembly kernel sets
		useKernels(name)
		b.Run(name, func(b *testing.B) { benchCacheMatMul(b, e, w, w2, x, y, y2, blocks, bytes) })
	}
}

func benchCacheMatMul(b *testing.B, e *Exec, w, w2 Mat, x, y, y2 []float32, blocks []int32, bytes int64) {
	const heads, hd, stride = 256, 64, 8
	b.Run("block", func(b *testing.B) {
		b.SetBytes(bytes)
		for range b.N {
			e.BlockMatVec(y[:heads*hd], w, x, blocks, hd)
			e.BlockMatVec(y2[:heads*hd], w2, x, blocks, hd)
		}
	})
	for _, m := range []int{1, 2, 3, 4} {
		from := make([]int32, len(blocks))
		for k := range from {
			from[k] = int32(stride - m)
		}
		b.Run(fmt.Sprintf("m=%d", m), func(b *testing.B) {
			b.SetBytes(bytes)
			for range b.N {
				e.CacheMatMul(y, w, y2, w2, x, 0, stride, stride, blocks, from, hd)
			}
		})
	}
}
