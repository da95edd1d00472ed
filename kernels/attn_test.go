package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// attnCase is a strided key/value cache with a guard zone after the last
// row's columns that must stay untouched.
func attnData(r *rand.Rand, n, cols, stride int) []float32 {
	v := make([]float32, (n-1)*stride+cols)
	for i := range v {
		v[i] = float32(r.NormFloat64())
	}
	return v
}

func TestAttnKernelsMatchReference(t *testing.T) {
	forEachKernel(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(21, 22))
		for _, cols := range []int{1, 7, 8, 9, 15, 16, 17, 24, 32, 48, 63, 64, 65, 80, 96, 128, 129, 192, 200, 256} {
			for _, n := range []int{1, 2, 3, 4, 5, 7, 8, 9, 33} {
				for _, stride := range []int{cols, cols + 3, 4 * cols} {
					name := fmt.Sprintf("cols=%d/n=%d/stride=%d", cols, n, stride)
					q := make([]float32, cols)
					for i := range q {
						q[i] = float32(r.NormFloat64())
					}
					k := attnData(r, n, cols, stride)
					scale := float32(0.125)
					got := nanVec(n + 1)
					AttnScores(got[:n], q, k, stride, scale)
					if !math.IsNaN(float64(got[n])) {
						t.Fatalf("%s: scores wrote past the end", name)
					}
					for i := 0; i < n; i++ {
						want := refDot(q, k[i*stride:i*stride+cols]) * float64(scale)
						if d := math.Abs(float64(got[i]) - want); d > 1e-5*(1+math.Sqrt(float64(cols))) {
							t.Fatalf("%s: score %d = %v, want %v", name, i, got[i], want)
						}
					}

					w := make([]float32, n)
					for i := range w {
						w[i] = r.Float32()
					}
					out := make([]float32, cols+1)
					init := make([]float64, cols)
					for i := range init {
						init[i] = r.NormFloat64()
						out[i] = float32(init[i])
					}
					out[cols] = float32(math.NaN())
					AttnAccum(out[:cols], w, k, stride)
					if !math.IsNaN(float64(out[cols])) {
						t.Fatalf("%s: accum wrote past the end", name)
					}
					for e := 0; e < cols; e++ {
						want := init[e]
						for i := 0; i < n; i++ {
							want += float64(w[i]) * float64(k[i*stride+e])
						}
						if d := math.Abs(float64(out[e]) - want); d > 1e-5*(1+float64(n)) {
							t.Fatalf("%s: out[%d] = %v, want %v", name, e, out[e], want)
						}
					}
				}
			}
		}
	})
}

func TestAttnSoftmaxMatchesReference(t *testing.T) {
	forEachKernel(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(23, 24))
		for _, n := range []int{1, 2, 15, 16, 17, 31, 33, 100, 1024, 1027} {
			for _, spread := range []float64{0.1, 3, 30, 300} {
				s := make([]float32, n+1)
				for i := range s {
					s[i] = float32(spread * r.NormFloat64())
				}
				s[n] = float32(math.NaN())
				want := make([]float64, n)
				m := math.Inf(-1)
				for _, v := range s[:n] {
					m = max(m, float64(v))
				}
				var wsum float64
				for i, v := range s[:n] {
					want[i] = math.Exp(float64(v - float32(m))) // the difference in float32, as the kernels take it
					wsum += want[i]
				}
				sum := AttnSoftmax(s[:n])
				if !math.IsNaN(float64(s[n])) {
					t.Fatalf("n=%d: wrote past the end", n)
				}
				if d := math.Abs(float64(sum)-wsum) / wsum; d > 1e-5 {
					t.Fatalf("n=%d spread=%v: sum %v, want %v", n, spread, sum, wsum)
				}
				for i, w := range want {
					if d := math.Abs(float64(s[i]) - w); d > 1e-6*w+1e-37 {
						t.Fatalf("n=%d spread=%v: exp %d = %v, want %v", n, spread, i, s[i], w)
					}
				}
			}
		}
	})
}

func TestAttnKernelsCheckExtent(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("no panic for rows past the end of the cache")
		}
	}()
	AttnScores(make([]float32, 4), make([]float32, 8), make([]float32, 3*16+7), 16, 1)
}

// BenchmarkAttn is one decode token's attention reads for the test-bed's
// shape (8 heads of 64, 1024 cached positions) over 8 layers' caches (so
// that they don't stay in cache), head-major (stride 64) or position-major
// (stride 512).
func BenchmarkAttn(b *testing.B) {
	const heads, hd, ctx, layers = 8, 64, 1024, 8
	r := rand.New(rand.NewPCG(1, 2))
	ks := make([][]float32, layers)
	vs := make([][]float32, layers)
	for i := range ks {
		ks[i] = attnData(r, heads*ctx, hd, hd)
		vs[i] = attnData(r, heads*ctx, hd, hd)
	}
	q := make([]float32, hd)
	s := make([]float32, ctx)
	out := make([]float32, hd)
	// The code before these kernels: Dot per position, then a Go loop.
	b.Run("dot+go/stride=512", func(b *testing.B) {
		b.SetBytes(2 * heads * ctx * hd * 4 * layers)
		for b.Loop() {
			for l := 0; l < layers; l++ {
				for h := 0; h < heads; h++ {
					for t := range s {
						s[t] = Dot(q, ks[l][t*heads*hd+h*hd:]) * 0.125
					}
					attnAccumGo(out, s, vs[l][h*hd:], heads*hd)
				}
			}
		}
	})
	for _, name := range kernelNames() {
		for _, stride := range []int{hd, heads * hd} {
			b.Run(fmt.Sprintf("%s/stride=%d", name, stride), func(b *testing.B) {
				useKernels(name)
				defer SetPureGo(false)
				b.SetBytes(2 * heads * ctx * hd * 4 * layers)
				for b.Loop() {
					for l := 0; l < layers; l++ {
						for h := 0; h < heads; h++ {
							off := h * ctx * hd // head-major
							if stride != hd {
								off = h * hd // position-major
							}
							AttnScores(s, q, ks[l][off:], stride, 0.125)
							AttnAccum(out, s, vs[l][off:], stride)
						}
					}
				}
			})
		}
	}
}
