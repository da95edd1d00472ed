package kernels

import "unsafe"

// Q8_0 assembly kernels in q8_amd64.s (the f32 ones; the dot products
// use the integer kernels of q8x_amd64.go unless x is very wide): gemvQ8* sets y[i] = dot(row i, x)
// for i < rows over rows×cols Q8_0 weights at w (rows > 0, cols a positive
// multiple of 32); gatherQ8* and accumQ8* are the gather and accumulate
// kernels of sparse_amd64.go for Q8_0 rows, with the same arguments, where
// every listed row is read whole (stride = cols/32·34 bytes).

//go:noescape
func gemvQ8AVX512(w *byte, x, y *float32, rows, cols int)

//go:noescape
func gemvQ8AVX2(w *byte, x, y *float32, rows, cols int)

//go:noescape
func gatherQ8AVX512(w unsafe.Pointer, stride int, x, y *float32, rows *int32, n, pfd, cols int)

//go:noescape
func accumQ8AVX512(w unsafe.Pointer, stride int, y, a *float32, rows *int32, n, pfd, cols int)

//go:noescape
func gatherQ8AVX2(w unsafe.Pointer, stride int, x, y *float32, rows *int32, n, pfd, cols int)

//go:noescape
func accumQ8AVX2(w unsafe.Pointer, stride int, y, a *float32, rows *int32, n, pfd, cols int)

// archGemvQ8F32 runs the f32 Q8_0 GEMV of kernel set id.
func archGemvQ8F32(id int, w unsafe.Pointer, x, y *float32, rows, cols int) {
	if id == idAVX512 {
		gemvQ8AVX512((*byte)(w), x, y, rows, cols)
		return
	}
	gemvQ8AVX2((*byte)(w), x, y, rows, cols)
}

// archGatherQ8F32 runs the f32 Q8_0 gather kernel of set id.
func archGatherQ8F32(id int, w unsafe.Pointer, stride int, x, y *float32, rows *int32, n, pfd, cols int) {
	if id == idAVX512 {
		gatherQ8AVX512(w, stride, x, y, rows, n, pfd, cols)
		return
	}
	gatherQ8AVX2(w, stride, x, y, rows, n, pfd, cols)
}

//go:noescape
func accum8Q8AVX512(w unsafe.Pointer, stride int, y, a *float32, rows *int32, n, pfd, cols int)

// archAccumQ8 runs the Q8_0 accumulate kernel of set id: with AVX-512,
// eight rows per pass (q8x_amd64.s) while eight remain, as archAccum.
func archAccumQ8(id int, w unsafe.Pointer, stride int, y, a *float32, rows *int32, n, pfd, cols int) {
	if id == idAVX512 {
		if n8 := n &^ 7; n8 > 0 && sparseRows >= 8 {
			accum8Q8AVX512(w, stride, y, a, rows, n8, 0, cols)
			if n8 == n {
				return
			}
			a, rows, n = (*float32)(unsafe.Add(unsafe.Pointer(a), 4*n8)), (*int32)(unsafe.Add(unsafe.Pointer(rows), 4*n8)), n-n8
		}
		accumQ8AVX512(w, stride, y, a, rows, n, pfd, cols)
		return
	}
	accumQ8AVX2(w, stride, y, a, rows, n, pfd, cols)
}

//go:noescape
func dequantQ8AVX512(w *byte, dst *float32, blocks int)

//go:noescape
func dequantQ8AVX2(w *byte, dst *float32, blocks int)

// archDequantQ8 decodes blocks > 0 Q8_0 blocks at w into 32·blocks floats
// at dst with the kernels of set id (≠ 0).
func archDequantQ8(id int, w unsafe.Pointer, dst *float32, blocks int) {
	if id == idAVX512 {
		dequantQ8AVX512((*byte)(w), dst, blocks)
		return
	}
	dequantQ8AVX2((*byte)(w), dst, blocks)
}
