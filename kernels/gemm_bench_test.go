package kernels

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// BenchmarkFMAPeak measures the f32 FMA throughput of one core: a loop of
// 24 independent VFMADD231PS on zmm (AVX-512) or ymm (AVX2) registers, so
// neither latency nor memory limits it. GFLOP/s counts 2 flops per lane.
func BenchmarkFMAPeak(b *testing.B) {
	for _, k := range archKernels {
		b.Run(k.name, func(b *testing.B) {
			const iters = 1 << 20
			flops := 0
			start := time.Now()
			for b.Loop() {
				flops += fmaPeakRun(k.id, iters)
			}
			b.ReportMetric(float64(flops)/time.Since(start).Seconds()/1e9, "GFLOP/s")

		})
	}
}

// BenchmarkGEMM is Exec.MatMul on prompt-sized products (n inputs of a
// Rows×Cols weight matrix): "gemm" is the blocked GEMM, "gemv" the previous
// path (the GEMV kernel per input over 64 KB weight blocks), "go" pure Go
// (small shapes only). GFLOP/s counts 2·Rows·Cols·n flops per call.
func BenchmarkGEMM(b *testing.B) {
	defer SetPureGo(false)
	defer func() { gemmEnabled = true }()
	r := rand.New(rand.NewPCG(1, 5))
	for _, sh := range [][3]int{{4096, 4096, 64}, {2048, 8192, 64}, {512, 2048, 64}, {2048, 512, 64}, {512, 2048, 16}, {512, 2048, 8}, {512, 2048, 6}, {512, 2048, 4}, {512, 2048, 2}, {4096, 4096, 8}} {
		rows, cols, n := sh[0], sh[1], sh[2]
		for _, dt := range []DType{F32, F16, BF16} {
			if dt == BF16 && rows != 512 {
				continue
			}
			m, _ := offsetMat(r, dt, rows, cols, 0)
			x := randVec(r, n*cols, 0)
			y := make([]float32, n*rows)
			for _, threads := range []int{1, 2} {
				pool := NewPool(threads)
				e := NewExec(pool, cols)
				for _, impl := range []string{"gemm", "gemv", "go"} {
					if impl == "go" && rows*cols > 1<<20 {
						continue
					}
					b.Run(fmt.Sprintf("%dx%dx%d/%v/t%d/%s", rows, cols, n, dt, threads, impl), func(b *testing.B) {
						SetPureGo(impl == "go")
						gemmEnabled = impl == "gemm"
						e.MatMul(y, m, x, n)
						start := time.Now()
						calls := 0
						for b.Loop() {
							e.MatMul(y, m, x, n)
							calls++
						}
						flops := 2 * float64(rows*cols*n) * float64(calls)
						b.ReportMetric(flops/time.Since(start).Seconds()/1e9, "GFLOP/s")

					})
				}
				pool.Close()
			}
		}
	}
}
