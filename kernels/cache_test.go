package kernels

import (
	"math"
	"math/rand/v2"
	"testing"
)

// CacheMatMul writes, for each selected block, exactly the positions from
// its start on, each equal to the dense product (MatVec) of that
// position's input up to the rounding of a reordered sum, and nothing else
// of the cache.
func TestCacheMatMulEqualsMatVec(t *testing.T) {
	forEachKernel(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(23, 24))
		for _, threads := range []int{1, 2} {
			pool := NewPool(threads)
			for _, dt := range []DType{F32, F16, BF16, Q8_0} {
				for _, bs := range []int{1, 3, 8, 64} {
					for _, cols := range []int{5, 64, 2050} {
						if dt == Q8_0 && cols%32 != 0 {
							continue
						}
						nb := 1 + r.IntN(6)
						rows := nb * bs
						w, _ := offsetMat(r, F32, rows, cols, 0)
						w2, _ := offsetMat(r, F32, rows, cols, 0)
						if dt == Q8_0 {
							w, w2 = QuantizeQ8_0(rows, cols, w.f32), QuantizeQ8_0(rows, cols, w2.f32)
						} else if dt != F32 {
							w, _ = offsetMat(r, dt, rows, cols, 1)
							w2, _ = offsetMat(r, dt, rows, cols, 1)
						}
						e := NewExec(pool, cols)
						stride := 2 + r.IntN(9)
						n := 1 + r.IntN(stride)
						x := randVec(r, n*cols, 0)
						// The dense products of every position and the size of
						// their terms (Σ|w·x|), which bounds a reordered sum's error.
						dense, mag := make([][]float32, n), make([][]float32, n)
						dense2, mag2 := make([][]float32, n), make([][]float32, n)
						for j := range n {
							xj := x[j*cols : (j+1)*cols]
							dense[j], mag[j] = make([]float32, rows), termSizes(w, xj)
							dense2[j], mag2[j] = make([]float32, rows), termSizes(w2, xj)
							e.MatVec(dense[j], w, xj)
							e.MatVec(dense2[j], w2, xj)
						}
						for _, blocks := range rowLists(r, nb) {
							x0 := r.IntN(n)
							from := make([]int32, len(blocks))
							for k := range from {
								from[k] = int32(x0 + r.IntN(n-x0+1))
							}
							y, y2 := nanVec(nb*stride*bs), nanVec(nb*stride*bs)
							second := r.IntN(2) == 0
							if second {
								e.CacheMatMul(y, w, y2, w2, x[x0*cols:], x0, n, stride, blocks, from, bs)
							} else {
								e.CacheMatMul(y, w, nil, Mat{}, x[x0*cols:], x0, n, stride, blocks, from, bs)
							}
							written := make([]bool, len(y))
							for k, b := range blocks {
								for j := int(from[k]); j < n; j++ {
									for i := range bs {
										o := (int(b)*stride+j)*bs + i
										written[o] = true
										if ri := int(b)*bs + i; !close32(y[o], dense[j][ri], mag[j][ri]) {
											t.Fatalf("%v bs %d cols %d threads %d blocks %v from %v: head %d position %d row %d = %v, dense %v", dt, bs, cols, threads, blocks, from, b, j, i, y[o], dense[j][int(b)*bs+i])
										}
										if ri := int(b)*bs + i; second && !close32(y2[o], dense2[j][ri], mag2[j][ri]) {
											t.Fatalf("%v second matrix: head %d position %d row %d = %v, dense %v", dt, b, j, i, y2[o], dense2[j][int(b)*bs+i])
										}
									}
								}
							}
							for o := range y {
								if !written[o] && (!math.IsNaN(float64(y[o])) || !math.IsNaN(float64(y2[o]))) {
									t.Fatalf("%v bs %d blocks %v from %v: cache entry %d outside the selection was written", dt, bs, blocks, from, o)
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

// termSizes returns, per row of w, Σ_i |w_i·x_i|.
func termSizes(w Mat, x []float32) []float32 {
	out := make([]float32, w.Rows)
	row := make([]float32, w.Cols)
	for r := range out {
		w.Row(r, row)
		for i, v := range row {
			out[r] += float32(math.Abs(float64(v * x[i])))
		}
	}
	return out
}

// close32 reports whether a and b agree within the rounding of a
// reordered f32 sum whose terms have total size mag.
func close32(a, b, mag float32) bool {
	return math.Abs(float64(a)-float64(b)) <= 1e-6*float64(mag)+1e-30
}
