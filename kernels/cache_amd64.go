package kernels

import "unsafe"

//go:noescape
func gemv2F16AVX512(w *uint16, x0, x1, y0, y1 *float32, rows, cols int)

//go:noescape
func gemv2F16AVX2(w *uint16, x0, x1, y0, y1 *float32, rows, cols int)

// archGemv2 computes rows [start, end) of m times x0 into y0 and times x1
// into y1 in one pass over the weights, and reports whether it could: f16
// weights, and whole passes of the kernel (AVX-512: eight rows, sixteen
// columns; AVX2: four rows, eight columns).
func (m Mat) archGemv2(y0, y1, x0, x1 []float32, start, end int) bool {
	c, n := m.Cols, end-start
	if m.DType != F16 || c == 0 || n <= 0 {
		return false
	}
	kern2 := gemv2F16AVX512
	switch {
	case kern.id == idAVX512 && c%16 == 0 && n%8 == 0:
	case (kern.id == idAVX512 || kern.id == idAVX2) && c%8 == 0 && n%4 == 0:
		kern2 = gemv2F16AVX2
	default:
		return false
	}
	w := (*uint16)(m.rowPtr(start, end))
	kern2(w, unsafe.SliceData(x0[:c]), unsafe.SliceData(x1[:c]),
		unsafe.SliceData(y0[start:end]), unsafe.SliceData(y1[start:end]), n, c)
	return true
}
