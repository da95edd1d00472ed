package kernels

import "unsafe"

//go:noescape
func gemv2F16AVX512(w *uint16, x0, x1, y0, y1 *float32, rows, cols int)

// archGemv2 computes rows [start, end) of m times x0 into y0 and times x1
// into y1 in one pass over the weights, and reports whether it could (f16
// weights, AVX-512, whole passes of eight rows and sixteen columns).
func (m Mat) archGemv2(y0, y1, x0, x1 []float32, start, end int) bool {
	c := m.Cols
	if kern.id != idAVX512 || m.DType != F16 || c == 0 || c%16 != 0 || (end-start)%8 != 0 || end <= start {
		return false
	}
	w := (*uint16)(m.rowPtr(start, end))
	gemv2F16AVX512(w, unsafe.SliceData(x0[:c]), unsafe.SliceData(x1[:c]),
		unsafe.SliceData(y0[start:end]), unsafe.SliceData(y1[start:end]), end-start, c)
	return true
}
