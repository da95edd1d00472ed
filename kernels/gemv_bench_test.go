package kernels

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// BenchmarkGEMV is one single-threaded y = W x over the whole matrix per
// kernel set; MB/s is weight bytes read per second. On a 32 MiB L3,
// 2048×2048 fits the cache, 8192×2048 is 64 MiB in f32 but only 32 MiB in
// f16/bf16, so those also run 16384×2048 (64 MiB).
func BenchmarkGEMV(b *testing.B) {
	defer SetPureGo(false)
	r := rand.New(rand.NewPCG(1, 1))
	for _, sh := range [][2]int{{2048, 2048}, {8192, 2048}, {16384, 2048}} {
		rows, cols := sh[0], sh[1]
		for _, dt := range []DType{F32, F16, BF16} {
			if rows == 16384 && dt == F32 {
				continue
			}
			m, _ := offsetMat(r, dt, rows, cols, 0)
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
}

// BenchmarkMatVec2 is Exec.MatVec on a 2-thread pool over 8192×2048.
func BenchmarkMatVec2(b *testing.B) {
	defer SetPureGo(false)
	r := rand.New(rand.NewPCG(1, 2))
	pool := NewPool(2)
	defer pool.Close()
	rows, cols := 8192, 2048
	for _, dt := range []DType{F32, F16, BF16} {
		m, _ := offsetMat(r, dt, rows, cols, 0)
		x := randVec(r, cols, 0)
		y := make([]float32, rows)
		e := NewExec(pool, cols)
		for _, name := range kernelNames() {
			b.Run(fmt.Sprintf("%v/%dx%d/%s", dt, rows, cols, name), func(b *testing.B) {
				useKernels(name)
				b.SetBytes(m.Bytes())
				for b.Loop() {
					e.MatVec(y, m, x)
				}
			})
		}
	}
}

// BenchmarkMatMul is a prompt product of n inputs on one thread over
// 2048×2048 f16 (MB/s counts the weights once per call).
func BenchmarkMatMul(b *testing.B) {
	defer SetPureGo(false)
	r := rand.New(rand.NewPCG(1, 3))
	pool := NewPool(1)
	defer pool.Close()
	rows, cols := 2048, 2048
	m, _ := offsetMat(r, F16, rows, cols, 0)
	e := NewExec(pool, cols)
	for _, n := range []int{4, 16} {
		x := randVec(r, n*cols, 0)
		y := make([]float32, n*rows)
		for _, name := range kernelNames() {
			b.Run(fmt.Sprintf("f16/n=%d/%s", n, name), func(b *testing.B) {
				useKernels(name)
				b.SetBytes(m.Bytes())
				for b.Loop() {
					e.MatMul(y, m, x, n)
				}
			})
		}
	}
}

// BenchmarkDot is the attention-sized inner product.
func BenchmarkDot(b *testing.B) {
	defer SetPureGo(false)
	r := rand.New(rand.NewPCG(1, 4))
	for _, n := range []int{64, 128} {
		a, c := randVec(r, n, 0), randVec(r, n, 0)
		for _, name := range kernelNames() {
			b.Run(fmt.Sprintf("%d/%s", n, name), func(b *testing.B) {
				useKernels(name)
				var s float32
				for b.Loop() {
					s += Dot(a, c)
				}
				_ = s
			})
		}
	}
}

// BenchmarkReadBandwidth streams a 256 MiB array once per op (Dot of the
// array with itself): one core reading one sequential stream. The AVX-512
// GEMV, reading eight streams at once, gets more than this out of a core.
func BenchmarkReadBandwidth(b *testing.B) {
	a := make([]float32, 64<<20)
	for i := range a {
		a[i] = 1
	}
	b.SetBytes(int64(len(a)) * 4)
	for b.Loop() {
		Dot(a, a)
	}
}
