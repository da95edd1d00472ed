package kernels

// Assembly kernels in attn_amd64.s. attnScores* sets s[t] = scale·dot(q,
// row t) and attnAccum* adds Σ_t w[t]·(row t) to out[:cols], for t < n > 0,
// where row t starts at k (v) + t·stride bytes and has cols > 0 floats. The
// AVX2 kernels need cols to be a multiple of 8, the AVX-512 ones any cols.

//go:noescape
func attnScoresAVX512(q, k *float32, stride int, s *float32, n, cols int, scale float32)

//go:noescape
func attnAccumAVX512(v *float32, stride int, w, out *float32, n, cols int)

//go:noescape
func attnScoresAVX2(q, k *float32, stride int, s *float32, n, cols int, scale float32)

//go:noescape
func attnAccumAVX2(v *float32, stride int, w, out *float32, n, cols int)

// archAttnCols is how many of cols leading columns the attention kernels of
// set id handle; Go does the rest.
func archAttnCols(id, cols int) int {
	if id == idAVX512 {
		return cols
	}
	return cols &^ 7
}

func archAttnScores(id int, q, k *float32, stride int, s *float32, n, cols int, scale float32) {
	if id == idAVX512 {
		attnScoresAVX512(q, k, stride, s, n, cols, scale)
		return
	}
	attnScoresAVX2(q, k, stride, s, n, cols, scale)
}

func archAttnAccum(id int, v *float32, stride int, w, out *float32, n, cols int) {
	if id == idAVX512 {
		attnAccumAVX512(v, stride, w, out, n, cols)
		return
	}
	attnAccumAVX2(v, stride, w, out, n, cols)
}

//go:noescape
func attnMaxAVX512(x *float32, n int) float32

//go:noescape
func attnExpAVX512(x *float32, n int, m float32) float32

// archAttnExp replaces x[:n] by exp(x - max x) and returns their sum, if
// set id has such a kernel (ok).
func archAttnExp(id int, x *float32, n int) (sum float32, ok bool) {
	if id != idAVX512 {
		return 0, false
	}
	return attnExpAVX512(x, n, attnMaxAVX512(x, n)), true
}
