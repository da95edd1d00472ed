package kernels

import "unsafe"

// Q4 assembly kernels in q4_amd64.s: each sets y[k] = dot(row, x) for
// k < n, where the row is w + rows[k]·stride, or w + k·stride when rows is
// nil (GEMV), and x is given quantized (q4X: xq, dx, sx); n > 0 and cols a
// positive multiple of the block (32 for Q4_0, 256 for Q4_K). The VNNI
// kernels need AVX512-VNNI with AVX512VL, the others AVX2.

//go:noescape
func dotQ40VNNI(w unsafe.Pointer, stride int, xq *int8, dx, sx, y *float32, rows *int32, n, cols int)

//go:noescape
func dotQ40AVX2(w unsafe.Pointer, stride int, xq *int8, dx, sx, y *float32, rows *int32, n, cols int)

//go:noescape
func quantQ4XAVX2(x *float32, q *int8, d, s *float32, blocks int)

// archQuantQ4X quantizes x into qx with the assembly quantizer (any
// kernel set: it needs AVX2 only).
func archQuantQ4X(x []float32, qx *q4X) {
	if len(qx.d) > 0 {
		quantQ4XAVX2(unsafe.SliceData(x), unsafe.SliceData(qx.q), unsafe.SliceData(qx.d), unsafe.SliceData(qx.s), len(qx.d))
	}
}

//go:noescape
func dequantQ40AVX2(w *byte, dst *float32, blocks int)

//go:noescape
func dequantQ4KAVX2(w *byte, dst *float32, blocks int)

// archDequantQ4 decodes blocks > 0 blocks of dt at w into dst, exactly as
// dt.decodeQ4Block does (Q5_0 and Q5_1 with it).
func archDequantQ4(dt DType, w *byte, dst *float32, blocks int) {
	switch dt {
	case Q6_K:
		dequantQ6KAVX2(w, dst, blocks)
		return
	case Q5_K:
		dequantQ5KAVX2(w, dst, blocks)
		return
	case Q5_0, Q5_1: // decoded in Go
		bs, bb := dt.q4Block(), dt.q4BlockBytes()
		src := unsafe.Slice(w, blocks*bb)
		out := unsafe.Slice(dst, blocks*bs)
		for b := range blocks {
			dt.decodeQ4Block(src[b*bb:(b+1)*bb], out[b*bs:(b+1)*bs])
		}
		return
	}
	if dt == Q4_K {
		dequantQ4KAVX2(w, dst, blocks)
		return
	}
	dequantQ40AVX2(w, dst, blocks)
}

// q4VNNI reports AVX512-VNNI (CPUID.7.0:ECX bit 11); the AVX-512 kernel
// set uses the VNNI kernels when it is there and the AVX2 ones otherwise.
var q4VNNI = func() bool {
	_, _, ecx, _ := cpuid(7, 0)
	return ecx&(1<<11) != 0
}()

// archDotRowsQ4 runs the Q4 dot kernel of set id (≠ 0) for dtype dt.
func archDotRowsQ4(id int, dt DType, w unsafe.Pointer, stride int, x *q4X, y *float32, rows *int32, n, cols int) {
	if n <= 0 || cols <= 0 {
		return
	}
	xq, dx, sx := unsafe.SliceData(x.q), unsafe.SliceData(x.d), unsafe.SliceData(x.s)
	vnni := id == idAVX512 && q4VNNI
	switch {
	case dt == Q6_K:
		dotQ6KAVX2(w, stride, xq, dx, sx, y, rows, n, cols)
	case dt == Q5_K:
		dotQ5KAVX2(w, stride, xq, dx, sx, y, rows, n, cols)
	case dt == Q5_0:
		dotQ50AVX2(w, stride, xq, dx, sx, y, rows, n, cols)
	case dt == Q5_1:
		dotQ51AVX2(w, stride, xq, dx, sx, y, rows, n, cols)
	case dt == Q4_K && vnni:
		dotQ4KR4VNNI(w, stride, xq, dx, sx, y, rows, n, cols)
	case dt == Q4_K:
		dotQ4KR4AVX2(w, stride, xq, dx, sx, y, rows, n, cols)
	case vnni:
		dotQ40VNNI(w, stride, xq, dx, sx, y, rows, n, cols)
	default:
		dotQ40AVX2(w, stride, xq, dx, sx, y, rows, n, cols)
	}
}
