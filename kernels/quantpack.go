package kernels

import "unsafe"

// gemmPackQuant is gemmPack for the block-quantized types (Q8_0, Q4_0,
// Q4_K; kb a multiple of the block size): each group of g rows is decoded,
// whole blocks at a time, by the type's assembly decoder into an f32
// scratch on the stack, which the f32 packing kernel transposes into dst;
// the last kc%g columns and rows%g rows go through packRowGo.
func (m Mat) gemmPackQuant(id int, dst []float32, i0, rows, kb, kc, mr, g int) {
	var tmp [16 * gemmKC]float32
	bs, bb := Q8Block, q8BlockBytes
	if m.DType.isQ4() {
		bs, bb = m.DType.q4Block(), m.DType.q4BlockBytes()
	}
	kf, rf := kc/g*g, rows/g*g
	nb := (kc + bs - 1) / bs // blocks covering [kb, kb+kc)
	if kf > 0 && kb%bs == 0 && kb+nb*bs <= m.Cols && g*nb*bs <= len(tmp) {
		ld := nb * bs
		_ = dst[(kf-1)*mr+rf-1]
		for rg := 0; rg < rf; rg += g {
			for r := 0; r < g; r++ {
				src := m.quantRowData(i0 + rg + r)[kb/bs*bb:]
				_ = src[nb*bb-1]
				if m.DType == Q8_0 {
					archDequantQ8(id, unsafe.Pointer(unsafe.SliceData(src)), &tmp[r*ld], nb)
				} else {
					archDequantQ4(m.DType, &src[0], &tmp[r*ld], nb)
				}
			}
			archGemmPack(id, F32, unsafe.Pointer(&tmp[0]), ld*4, &dst[rg], mr*4, kf/g)
		}
	} else {
		kf, rf = 0, 0
	}
	for r := 0; r < rows; r++ {
		k0 := kf
		if r >= rf {
			k0 = 0
		}
		m.packRowGo(dst, i0+r, kb, k0, kc, r, mr)
	}
	if rows < mr {
		for k := 0; k < kc; k++ {
			clear(dst[k*mr+rows : (k+1)*mr])
		}
	}
}

// quantRowData is the storage of row i of a block-quantized matrix.
func (m Mat) quantRowData(i int) []byte {
	if m.DType == Q8_0 {
		rb := Q8_0.RowBytes(m.Cols)
		return m.q8[i*rb : (i+1)*rb]
	}
	return m.q4RowData(i)
}
