package kernels

import (
	"fmt"
	"math"
	"unsafe"
)

// Attention kernels: one query head against the cached keys and values of
// one key/value head. Cached rows lie stride floats apart (row t of the
// keys starts at k[t·stride]), so the same kernels serve a head-major cache
// (stride = head dimension, one contiguous stream per head) and a
// position-major one (stride = KVHeads·HeadDim).
//
// The pure-Go references are attnScoresGo and attnAccumGo; the assembly
// kernels (attn_amd64.s) take four key rows per pass with one horizontal
// reduction for the four, and keep the output of the value sum in
// registers across all positions.

// AttnScores sets s[t] = scale·(q·K_t) for t < len(s), where K_t is
// k[t·stride : t·stride+len(q)].
func AttnScores(s, q, k []float32, stride int, scale float32) {
	n, c := len(s), len(q)
	if n == 0 {
		return
	}
	if c == 0 {
		clear(s)
		return
	}
	checkStrided(len(k), n, c, stride)
	ca := 0
	if kern.id != 0 {
		ca = archAttnCols(kern.id, c)
	}
	if ca == 0 {
		attnScoresGo(s, q, k, stride, scale)
		return
	}
	archAttnScores(kern.id, unsafe.SliceData(q), unsafe.SliceData(k), stride*4, unsafe.SliceData(s), n, ca, scale)
	if ca < c { // columns the kernel left to Go
		for t := range s {
			row := k[t*stride : t*stride+c]
			var sum float32
			for j := ca; j < c; j++ {
				sum += q[j] * row[j]
			}
			s[t] += sum * scale
		}
	}
}

// AttnAccum adds Σ_t w[t]·V_t to out for t < len(w), where V_t is
// v[t·stride : t·stride+len(out)].
func AttnAccum(out, w, v []float32, stride int) {
	n, c := len(w), len(out)
	if n == 0 || c == 0 {
		return
	}
	checkStrided(len(v), n, c, stride)
	ca := 0
	if kern.id != 0 {
		ca = archAttnCols(kern.id, c)
	}
	if ca == 0 {
		attnAccumGo(out, w, v, stride)
		return
	}
	archAttnAccum(kern.id, unsafe.SliceData(v), stride*4, unsafe.SliceData(w), unsafe.SliceData(out), n, ca)
	if ca < c { // columns the kernel left to Go
		attnAccumGo(out[ca:], w, v[ca:], stride)
	}
}

// AttnSoftmax replaces s by exp(s − max s) and returns their sum: the
// softmax is s divided by it, which attention applies to the weighted sum
// of the values instead (hd divisions rather than len(s)). The AVX-512
// kernel evaluates exp as Cephes' expf does (relative error about 1e-7).
func AttnSoftmax(s []float32) float32 {
	if len(s) == 0 {
		return 0
	}
	if kern.id != 0 {
		if sum, ok := archAttnExp(kern.id, unsafe.SliceData(s), len(s)); ok {
			return sum
		}
	}
	return attnSoftmaxGo(s)
}

// attnSoftmaxGo is the pure-Go AttnSoftmax.
func attnSoftmaxGo(s []float32) float32 {
	m := s[0]
	for _, v := range s[1:] {
		m = max(m, v)
	}
	var sum float32
	for i, v := range s {
		e := float32(math.Exp(float64(v - m)))
		s[i] = e
		sum += e
	}
	return sum
}

// checkStrided panics unless n rows of c floats, stride apart, fit in size
// floats: the assembly kernels trust the extent.
func checkStrided(size, n, c, stride int) {
	if stride < 0 || (n-1)*stride+c > size {
		panic(fmt.Sprintf("kernels: %d rows of %d floats at stride %d exceed %d floats", n, c, stride, size))
	}
}

// attnScoresGo is the pure-Go AttnScores.
func attnScoresGo(s, q, k []float32, stride int, scale float32) {
	c := len(q)
	for t := range s {
		s[t] = dotGo(q, k[t*stride:t*stride+c]) * scale
	}
}

// attnAccumGo is the pure-Go AttnAccum.
func attnAccumGo(out, w, v []float32, stride int) {
	c := len(out)
	for t, a := range w {
		row := v[t*stride : t*stride+c]
		for e := range out {
			out[e] += a * row[e]
		}
	}
}
