package kernels

import "unsafe"

// Integer Q8_0 dot kernels in q8x_amd64.s (q8x.go has the scheme). x is
// the quantized input (cols/32 blocks of 36 bytes); otherwise the
// arguments are those of the f32 kernels in q8_amd64.go.

//go:noescape
func gemvQ8IAVX512(w *byte, x *byte, y *float32, rows, cols int)

//go:noescape
func gemvQ8IAVX2(w *byte, x *byte, y *float32, rows, cols int)

//go:noescape
func gatherQ8IAVX512(w unsafe.Pointer, stride int, x *byte, y *float32, rows *int32, n, pfd, cols int)

//go:noescape
func gather8Q8IAVX512(w unsafe.Pointer, stride int, x *byte, y *float32, rows *int32, n, pfd, cols int)

//go:noescape
func gatherQ8IAVX2(w unsafe.Pointer, stride int, x *byte, y *float32, rows *int32, n, pfd, cols int)

//go:noescape
func quantizeXAVX512(x *float32, dst *byte, blocks int)

//go:noescape
func quantizeXAVX2(x *float32, dst *byte, blocks int)

// archQuantizeX is quantizeX (cols a positive multiple of 32) with the
// kernels of set id.
func archQuantizeX(id int, dst *byte, x *float32, cols int) {
	if id == idAVX512 {
		quantizeXAVX512(x, dst, cols/Q8Block)
		return
	}
	quantizeXAVX2(x, dst, cols/Q8Block)
}

// hasVNNI reports AVX512-VNNI (VPDPBUSD on 256-bit registers needs VL too,
// which the AVX-512 kernel set requires).
var hasVNNI = func() bool {
	_, _, ecx7, _ := cpuid(7, 0)
	return ecx7&(1<<11) != 0
}()

// q8xBuf is the quantized x of one product, on the caller's stack.
type q8xBuf [q8xMaxCols / Q8Block * q8xBlockBytes]byte

// archGemvQ8 runs the Q8_0 GEMV of kernel set id: x is quantized once and
// the integer kernel runs (VNNI with AVX-512, else the AVX2 one), unless x
// is wider than q8xMaxCols.
func archGemvQ8(id int, w unsafe.Pointer, x, y *float32, rows, cols int) {
	if !q8Integer || cols > q8xMaxCols {
		archGemvQ8F32(id, w, x, y, rows, cols)
		return
	}
	var xq q8xBuf
	archQuantizeX(id, &xq[0], x, cols)
	if id == idAVX512 && hasVNNI {
		gemvQ8IAVX512((*byte)(w), &xq[0], y, rows, cols)
		return
	}
	gemvQ8IAVX2((*byte)(w), &xq[0], y, rows, cols)
}

// archGatherQ8 runs the Q8_0 gather kernel of set id (integer as above).
func archGatherQ8(id int, w unsafe.Pointer, stride int, x, y *float32, rows *int32, n, pfd, cols int) {
	if !q8Integer || cols > q8xMaxCols {
		archGatherQ8F32(id, w, stride, x, y, rows, n, pfd, cols)
		return
	}
	var xq q8xBuf
	archQuantizeX(id, &xq[0], x, cols)
	if id == idAVX512 && hasVNNI {
		if n8 := n &^ 7; n8 > 0 && sparseRows >= 8 { // as archGather
			gather8Q8IAVX512(w, stride, &xq[0], y, rows, n8, 0, cols)
			if n8 == n {
				return
			}
			y, rows, n = (*float32)(unsafe.Add(unsafe.Pointer(y), 4*n8)), (*int32)(unsafe.Add(unsafe.Pointer(rows), 4*n8)), n-n8
		}
		gatherQ8IAVX512(w, stride, &xq[0], y, rows, n, pfd, cols)
		return
	}
	gatherQ8IAVX2(w, stride, &xq[0], y, rows, n, pfd, cols)
}
