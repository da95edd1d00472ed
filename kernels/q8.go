package kernels

import (
	"fmt"
	"math"
	"unsafe"

	"dejavu/internal/half"
)

// Q8_0 weights: llama.cpp's block_q8_0 layout. Each row of Cols elements
// (Cols a multiple of 32) is Cols/32 blocks of 34 bytes: a little-endian
// IEEE half-precision scale d, then 32 signed bytes q; element j of the
// block is d·q[j]. Rows follow each other without padding, so a Q8_0 row
// is 1.0625 bytes per weight against 2 for f16 and bf16.
//
// The products never dequantize a whole row. The dot products (GEMV,
// gather) quantize x to int8 blocks too and sum q_w·q_x in integers
// (q8x.go); the accumulate kernels convert 32 int8 values to f32 and fold
// the block's scale into the coefficient of the row.

// Q8Block is the number of weights in one Q8_0 block.
const Q8Block = 32

// q8BlockBytes is the size of one Q8_0 block: an f16 scale and 32 int8s.
const q8BlockBytes = 2 + Q8Block

// RowBytes is the storage size of one row of cols elements of d (cols must
// be a multiple of 32 for Q8_0).
func (d DType) RowBytes(cols int) int {
	if d == Q8_0 {
		return cols / Q8Block * q8BlockBytes
	}
	if d.isQ4() {
		return d.q4RowBytes(cols)
	}
	return cols * d.Size()
}

// QuantizeQ8_0 quantizes the rows×cols values of src (row-major, cols a
// multiple of 32) to a new Q8_0 matrix exactly as llama.cpp's
// quantize_row_q8_0_ref does: per block, d = max|x|/127, q = round(x/d)
// (halves away from zero; computed as x·(1/d) in f32), and d stored as
// f16. The element decoded back is f16(d)·q, so the error per weight is
// at most about d/2 plus the f16 rounding of d (2⁻¹¹ relative).
func QuantizeQ8_0(rows, cols int, src []float32) Mat {
	if cols%Q8Block != 0 {
		panic(fmt.Sprintf("kernels: Q8_0 needs columns in multiples of %d, have %d", Q8Block, cols))
	}
	if len(src) != rows*cols {
		panic(fmt.Sprintf("kernels: QuantizeQ8_0 %d×%d given %d values", rows, cols, len(src)))
	}
	m := Mat{Rows: rows, Cols: cols, DType: Q8_0, q8: make([]byte, rows*Q8_0.RowBytes(cols))}
	for b := 0; b < rows*cols/Q8Block; b++ {
		quantizeBlockQ8(m.q8[b*q8BlockBytes:(b+1)*q8BlockBytes], src[b*Q8Block:(b+1)*Q8Block])
	}
	return m
}

// quantizeBlockQ8 writes the 34-byte block of the 32 values of x to dst.
func quantizeBlockQ8(dst []byte, x []float32) {
	var amax float32
	for _, v := range x[:Q8Block] {
		amax = max(amax, float32(math.Abs(float64(v))))
	}
	d := amax / 127
	var id float32
	if d != 0 {
		id = 1 / d
	}
	h := half.F32ToF16(d)
	dst[0], dst[1] = byte(h), byte(h>>8)
	for j, v := range x[:Q8Block] {
		dst[2+j] = byte(int8(math.Round(float64(v * id))))
	}
}

// Quantize returns m converted to Q8_0 (the only target so far): every row
// is decoded to f32 and quantized with QuantizeQ8_0. A Q8_0 matrix is
// returned as it is; dtype F32, F16 or BF16 decodes it (exactly for F32).
func (m Mat) Quantize(dtype DType) (Mat, error) {
	if m.DType == dtype {
		return m, nil
	}
	switch {
	case dtype == Q4_0:
		return m.quantizeQ4_0()
	case dtype == Q8_0 && m.Cols%Q8Block != 0:
		return Mat{}, fmt.Errorf("kernels: Q8_0 needs columns in multiples of %d, %d×%d has %d", Q8Block, m.Rows, m.Cols, m.Cols)
	case dtype == Q8_0:
		out := Mat{Rows: m.Rows, Cols: m.Cols, DType: Q8_0, q8: make([]byte, m.Rows*Q8_0.RowBytes(m.Cols))}
		rb := Q8_0.RowBytes(m.Cols)
		row := make([]float32, m.Cols)
		for i := 0; i < m.Rows; i++ {
			m.Row(i, row)
			dst := out.q8[i*rb : (i+1)*rb]
			for b := 0; b < m.Cols/Q8Block; b++ {
				quantizeBlockQ8(dst[b*q8BlockBytes:], row[b*Q8Block:])
			}
		}
		return out, nil
	case dtype == F32:
		v := make([]float32, m.Rows*m.Cols)
		for i := 0; i < m.Rows; i++ {
			m.Row(i, v[i*m.Cols:(i+1)*m.Cols])
		}
		return MatF32(m.Rows, m.Cols, v), nil
	case dtype == F16 || dtype == BF16:
		u := make([]uint16, m.Rows*m.Cols)
		row := make([]float32, m.Cols)
		for i := 0; i < m.Rows; i++ {
			m.Row(i, row)
			for j, v := range row {
				if dtype == F16 {
					u[i*m.Cols+j] = half.F32ToF16(v)
				} else {
					u[i*m.Cols+j] = half.F32ToBF16(v)
				}
			}
		}
		return Mat{Rows: m.Rows, Cols: m.Cols, DType: dtype, u16: u}, nil
	}
	return Mat{}, fmt.Errorf("kernels: cannot convert %v to %v", m.DType, dtype)
}

// q8Scale is the f32 value of the scale of the block at b[0:2].
func q8Scale(b []byte) float32 { return f16Table[uint16(b[0])|uint16(b[1])<<8] }

// rowQ8 decodes row i of a Q8_0 matrix into dst.
func (m Mat) rowQ8(i int, dst []float32) {
	rb := Q8_0.RowBytes(m.Cols)
	src := m.q8[i*rb : (i+1)*rb]
	dst = dst[:m.Cols]
	for b := 0; b < len(src)/q8BlockBytes; b++ {
		blk := src[b*q8BlockBytes : (b+1)*q8BlockBytes]
		d := q8Scale(blk)
		out := dst[b*Q8Block : (b+1)*Q8Block]
		for j, q := range blk[2:] {
			out[j] = d * float32(int8(q))
		}
	}
}

// atQ8 returns element off (row-major) of a Q8_0 matrix.
func (m Mat) atQ8(off int) float32 {
	i, j := off/m.Cols, off%m.Cols
	p := i*Q8_0.RowBytes(m.Cols) + j/Q8Block*q8BlockBytes
	return q8Scale(m.q8[p:]) * float32(int8(m.q8[p+2+j%Q8Block]))
}

// axpyRowQ8 adds a·W[i, start:end] to y[start:end] for a Q8_0 matrix.
func (m Mat) axpyRowQ8(i int, a float32, y []float32, start, end int) {
	rb := Q8_0.RowBytes(m.Cols)
	src := m.q8[i*rb : (i+1)*rb]
	for j := start; j < end; {
		blk := src[j/Q8Block*q8BlockBytes:]
		c := a * q8Scale(blk)
		e := min(end, (j/Q8Block+1)*Q8Block)
		for ; j < e; j++ {
			y[j] += c * float32(int8(blk[2+j%Q8Block]))
		}
	}
}

// packRowQ8 sets dst[k*mr + r] = m[i][kb+k] for k0 ≤ k < kc (Q8_0).
func (m Mat) packRowQ8(dst []float32, i, kb, k0, kc, r, mr int) {
	rb := Q8_0.RowBytes(m.Cols)
	src := m.q8[i*rb : (i+1)*rb]
	for k := k0; k < kc; {
		j := kb + k
		blk := src[j/Q8Block*q8BlockBytes:]
		d := q8Scale(blk)
		e := min(kc, k+Q8Block-j%Q8Block)
		for ; k < e; k++ {
			dst[k*mr+r] = d * float32(int8(blk[2+(kb+k)%Q8Block]))
		}
	}
}

// q8Ptr returns the address of row start of a Q8_0 matrix after checking
// that rows [start, end) exist.
func (m Mat) q8Ptr(start, end int) unsafe.Pointer {
	rb := Q8_0.RowBytes(m.Cols)
	return unsafe.Pointer(unsafe.SliceData(m.q8[start*rb : end*rb]))
}
