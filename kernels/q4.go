package kernels

import (
	"fmt"
	"math"
	"sync"
	"unsafe"

	"dejavu/internal/half"
)

// 4-bit weights in ggml's block layouts (ggml-common.h), read in place from
// a GGUF file:
//
//   - Q4_0 (block_q4_0, 18 bytes per 32 weights): a little-endian f16
//     scale d, then 16 bytes qs; weight j < 16 is d·((qs[j] & 15) - 8) and
//     weight j+16 is d·((qs[j] >> 4) - 8).
//   - Q4_K (block_q4_K, 144 bytes per 256 weights): f16 d, f16 dmin, 12
//     bytes of packed 6-bit scales and mins of the eight 32-weight
//     sub-blocks (q4KScaleMin), then 128 bytes qs in four chunks of 32:
//     chunk c holds sub-block 2c in its low nibbles and 2c+1 in its high
//     nibbles; weight l of sub-block s is d·sc[s]·q - dmin·m[s].
//
// The products never expand a row: as in llama.cpp, x is quantized to 8
// bits per 32 values (q4X) and the assembly kernels (q4_amd64.s) multiply
// the nibbles with it in integers, applying the block's (sub-block's)
// scale once per block; the Q4_0 offset of 8 and the Q4_K mins use the
// exact sums of x. Rows are read whole, so a Q4 matrix's columns are a
// multiple of the block (32 or 256).
//
// Neuron-major copies (Transpose, for the sparse accumulate of the second
// MLP matrix and the attention output) are made in Q8_0: the 4-bit values
// are decoded to f32, transposed and quantized to Q8_0 (see transposeQuant).

// Q4Block is the number of weights in a Q4_0 block; QKBlock in a Q4_K
// super-block.
const (
	Q4Block = 32
	QKBlock = 256
)

const (
	q40BlockBytes = 2 + Q4Block/2          // 18
	q4KBlockBytes = 2 + 2 + 12 + QKBlock/2 // 144
)

// isQ4 reports whether d is one of the block types read through this
// file: the 4-bit ones, the 5-bit ones (q5.go) and the 5- and 6-bit
// k-quants (qk.go).
func (d DType) isQ4() bool {
	switch d {
	case Q4_0, Q4_K, Q5_0, Q5_1, Q5_K, Q6_K:
		return true
	}
	return false
}

// q4Block is the number of weights of one block of d (a Q4 type).
func (d DType) q4Block() int {
	switch d {
	case Q4_0, Q5_0, Q5_1:
		return Q4Block
	}
	return QKBlock
}

// q4BlockBytes is the size of one block of d (a Q4 type).
func (d DType) q4BlockBytes() int {
	switch d {
	case Q4_K:
		return q4KBlockBytes
	case Q5_K:
		return q5KBlockBytes
	case Q6_K:
		return q6KBlockBytes
	case Q5_0:
		return q50BlockBytes
	case Q5_1:
		return q51BlockBytes
	}
	return q40BlockBytes
}

// q4RowBytes is the storage size of a row of cols weights of d.
func (d DType) q4RowBytes(cols int) int { return cols / d.q4Block() * d.q4BlockBytes() }

// q4KScaleMin decodes the 6-bit scale and min of sub-block j (0..7) from
// the 12 packed bytes s of a Q4_K block: for j < 4 the low six bits of
// s[j] and s[j+4]; for j ≥ 4 the nibbles of s[j+4] (scale low, min high)
// with the top two bits of s[j-4] (scale) and s[j] (min) above them.
func q4KScaleMin(s []byte, j int) (sc, m uint8) {
	if j < 4 {
		return s[j] & 63, s[j+4] & 63
	}
	return s[j+4]&15 | (s[j-4]>>6)<<4, s[j+4]>>4 | (s[j]>>6)<<4
}

// decodeQ4_0 writes the 32 weights of the Q4_0 block b to dst.
func decodeQ4_0(b []byte, dst []float32) {
	d := f16Table[uint16(b[0])|uint16(b[1])<<8]
	dst = dst[:Q4Block]
	for j, q := range b[2:q40BlockBytes] {
		dst[j] = d * float32(int(q&15)-8)
		dst[j+16] = d * float32(int(q>>4)-8)
	}
}

// decodeQ4K writes the 256 weights of the Q4_K block b to dst.
func decodeQ4K(b []byte, dst []float32) {
	d := f16Table[uint16(b[0])|uint16(b[1])<<8]
	dmin := f16Table[uint16(b[2])|uint16(b[3])<<8]
	sc := b[4:16]
	qs := b[16:q4KBlockBytes]
	dst = dst[:QKBlock]
	for c := 0; c < 4; c++ {
		s0, m0 := q4KScaleMin(sc, 2*c)
		s1, m1 := q4KScaleMin(sc, 2*c+1)
		d0, dm0 := d*float32(s0), dmin*float32(m0)
		d1, dm1 := d*float32(s1), dmin*float32(m1)
		for l, q := range qs[32*c : 32*c+32] {
			dst[64*c+l] = d0*float32(q&15) - dm0
			dst[64*c+32+l] = d1*float32(q>>4) - dm1
		}
	}
}

// decodeQ4Block writes the weights of block b of dtype d to dst.
func (d DType) decodeQ4Block(b []byte, dst []float32) {
	switch d {
	case Q4_K:
		decodeQ4K(b, dst)
	case Q5_K:
		decodeQ5K(b, dst)
	case Q6_K:
		decodeQ6K(b, dst)
	case Q5_0:
		decodeQ5_0(b, dst)
	case Q5_1:
		decodeQ5_1(b, dst)
	default:
		decodeQ4_0(b, dst)
	}
}

// q4RowData is the bytes of row i.
func (m Mat) q4RowData(i int) []byte {
	rb := m.DType.q4RowBytes(m.Cols)
	return m.q4[i*rb : (i+1)*rb]
}

// rowQ4 decodes row i of a Q4 matrix into dst.
func (m Mat) rowQ4(i int, dst []float32) {
	src := m.q4RowData(i)
	bs, bb := m.DType.q4Block(), m.DType.q4BlockBytes()
	for b := 0; b < m.Cols/bs; b++ {
		m.DType.decodeQ4Block(src[b*bb:(b+1)*bb], dst[b*bs:(b+1)*bs])
	}
}

// q4X is an input vector quantized for the Q4 products, as llama.cpp
// quantizes activations to Q8_0 for its Q4 dot products: per 32 values
// (block b) an f32 scale d[b] = max|x|/127, int8 q = x/d rounded to
// nearest (ties to even, as llama.cpp's AVX quantize_row_q8_0 and
// q8x.go), and the exact f32 sum s[b] of the 32 values (for the Q4_0
// offset and the Q4_K mins, which thereby see x exactly). Only the
// products of the nibbles with x use the 8-bit x: against exact x a
// product is off by at most Σ_j |scale·q_j|·d[b]/2 (q the unsigned
// nibble; see checkDotQ4 in q4_test.go).
type q4X struct {
	q    []int8
	d, s []float32
}

var q4XPool = sync.Pool{New: func() any { return new(q4X) }}

// quantizeQ4X quantizes x (len a multiple of 32) into a pooled q4X; put it
// back with q4XPool.Put when done.
func quantizeQ4X(x []float32) *q4X {
	qx := q4XPool.Get().(*q4X)
	n := len(x)
	if cap(qx.q) < n {
		qx.q = make([]int8, n)
		qx.d = make([]float32, n/Q4Block)
		qx.s = make([]float32, n/Q4Block)
	}
	qx.q, qx.d, qx.s = qx.q[:n], qx.d[:n/Q4Block], qx.s[:n/Q4Block]
	if kern.id != 0 {
		archQuantQ4X(x, qx)
		return qx
	}
	quantizeQ4XGo(x, qx)
	return qx
}

// quantizeQ4XGo is the pure-Go quantizeQ4X (the assembly one sums the 32
// values in another order; q and d are the same).
func quantizeQ4XGo(x []float32, qx *q4X) {
	for b := range qx.d {
		xb := x[b*Q4Block : (b+1)*Q4Block]
		var amax, sum float32
		for _, v := range xb {
			amax = max(amax, float32(math.Abs(float64(v))))
			sum += v
		}
		d := amax / 127
		var id float32
		if d != 0 {
			id = 1 / d
		}
		qb := qx.q[b*Q4Block : (b+1)*Q4Block]
		for j, v := range xb {
			qb[j] = int8(math.RoundToEven(float64(v * id)))
		}
		qx.d[b], qx.s[b] = d, sum
	}
}

// dotRowQ4X is the pure-Go reference of the Q4 kernels: row i times the
// quantized x. Q4_0: per block d·(dx·Σq·xq - 8·sx). Q4_K: per sub-block
// d·sc·dx·Σq·xq - dmin·m·sx. The integer sums are exact, so the kernels
// differ from it only in the order of the f32 operations.
func (m Mat) dotRowQ4X(i int, x *q4X) float32 {
	src := m.q4RowData(i)
	switch m.DType {
	case Q5_K:
		return dotRowQ5KX(src, x)
	case Q6_K:
		return dotRowQ6KX(src, x)
	case Q5_0, Q5_1:
		return dotRowQ5X(m.DType, src, x)
	}
	var s float32
	if m.DType == Q4_0 {
		for b := 0; b < len(src)/q40BlockBytes; b++ {
			blk := src[b*q40BlockBytes : (b+1)*q40BlockBytes]
			xq := x.q[b*Q4Block : (b+1)*Q4Block]
			var si int32
			for j, q := range blk[2:] {
				si += int32(q&15)*int32(xq[j]) + int32(q>>4)*int32(xq[j+16])
			}
			s += q8Scale(blk) * (x.d[b]*float32(si) - 8*x.s[b])
		}
		return s
	}
	var mins float32
	for b := 0; b < len(src)/q4KBlockBytes; b++ {
		blk := src[b*q4KBlockBytes : (b+1)*q4KBlockBytes]
		d, dmin := q8Scale(blk), q8Scale(blk[2:])
		sc, qs := blk[4:16], blk[16:]
		for c := 0; c < 4; c++ {
			x0 := x.q[b*QKBlock+64*c : b*QKBlock+64*c+32]
			x1 := x.q[b*QKBlock+64*c+32 : b*QKBlock+64*c+64]
			var s0, s1 int32
			for l, q := range qs[32*c : 32*c+32] {
				s0 += int32(q&15) * int32(x0[l])
				s1 += int32(q>>4) * int32(x1[l])
			}
			for h, si := range [2]int32{s0, s1} {
				sb := b*8 + 2*c + h
				k, mn := q4KScaleMin(sc, 2*c+h)
				s += d * float32(k) * x.d[sb] * float32(si)
				mins += dmin * float32(mn) * x.s[sb]
			}
		}
	}
	return s - mins
}

// dotRowQ4Go is dotRowQ4X with x quantized on the spot (dotRowGo).
func (m Mat) dotRowQ4Go(i int, x []float32) float32 {
	qx := quantizeQ4X(x[:m.Cols])
	defer q4XPool.Put(qx)
	return m.dotRowQ4X(i, qx)
}

// gemvRowsQ4 sets y[k] = row start+k · x for k < len(y) (Q4 types, Cols >
// 0): x is quantized once, then the rows go through the kernel.
func (m Mat) gemvRowsQ4(y, x []float32, start int) {
	qx := quantizeQ4X(x[:m.Cols])
	if kern.id == 0 || !q4HasAsm(m.DType) {
		for k := range y {
			y[k] = m.dotRowQ4X(start+k, qx)
		}
	} else {
		archDotRowsQ4(kern.id, m.DType, m.q4Ptr(start, start+len(y)), m.DType.RowBytes(m.Cols),
			qx, unsafe.SliceData(y), nil, len(y), m.Cols)
	}
	q4XPool.Put(qx)
}

// atQ4 returns element off (row-major) of a Q4 matrix.
func (m Mat) atQ4(off int) float32 {
	var buf [QKBlock]float32
	i, j := off/m.Cols, off%m.Cols
	bs, bb := m.DType.q4Block(), m.DType.q4BlockBytes()
	src := m.q4RowData(i)
	m.DType.decodeQ4Block(src[j/bs*bb:(j/bs+1)*bb], buf[:bs])
	return buf[j%bs]
}

// axpyRowQ4 adds a·W[i, start:end] to y[start:end] for a Q4 matrix.
func (m Mat) axpyRowQ4(i int, a float32, y []float32, start, end int) {
	var buf [QKBlock]float32
	bs, bb := m.DType.q4Block(), m.DType.q4BlockBytes()
	src := m.q4RowData(i)
	for j := start; j < end; {
		b := j / bs
		m.DType.decodeQ4Block(src[b*bb:(b+1)*bb], buf[:bs])
		e := min(end, (b+1)*bs)
		for ; j < e; j++ {
			y[j] += a * buf[j-b*bs]
		}
	}
}

// packRowQ4 sets dst[k*mr + r] = m[i][kb+k] for k0 ≤ k < kc (Q4 types).
func (m Mat) packRowQ4(dst []float32, i, kb, k0, kc, r, mr int) {
	var buf [QKBlock]float32
	bs, bb := m.DType.q4Block(), m.DType.q4BlockBytes()
	src := m.q4RowData(i)
	for k := k0; k < kc; {
		j := kb + k
		b := j / bs
		m.DType.decodeQ4Block(src[b*bb:(b+1)*bb], buf[:bs])
		e := min(kc, k+bs-j%bs)
		for ; k < e; k++ {
			dst[k*mr+r] = buf[(kb+k)%bs]
		}
	}
}

// q4Ptr returns the address of row start of a Q4 matrix after checking
// that rows [start, end) exist.
func (m Mat) q4Ptr(start, end int) unsafe.Pointer {
	rb := m.DType.q4RowBytes(m.Cols)
	return unsafe.Pointer(unsafe.SliceData(m.q4[start*rb : end*rb]))
}

// gatherRowsQ4 sets y[k] = W[rows[k]]·x (rows already checked) for a Q4
// matrix: x is quantized once and the kernel takes the listed rows one by
// one.
func (m Mat) gatherRowsQ4(y, x []float32, rows []int32) {
	if m.Cols == 0 {
		clear(y)
		return
	}
	qx := quantizeQ4X(x[:m.Cols])
	if kern.id == 0 || !q4HasAsm(m.DType) {
		for k, i := range rows {
			y[k] = m.dotRowQ4X(int(i), qx)
		}
	} else {
		archDotRowsQ4(kern.id, m.DType, m.q4Ptr(0, m.Rows), m.DType.RowBytes(m.Cols),
			qx, unsafe.SliceData(y), unsafe.SliceData(rows), len(rows), m.Cols)
	}
	q4XPool.Put(qx)
}

// QuantizeQ4_0 quantizes the rows×cols values of src (row-major, cols a
// multiple of 32) to a new Q4_0 matrix as ggml's quantize_row_q4_0_ref
// does: per block, the value v of largest magnitude gives d = v/-8, q =
// min(15, int(x/d + 8.5)), and d is stored as f16.
func QuantizeQ4_0(rows, cols int, src []float32) (Mat, error) {
	if cols%Q4Block != 0 || len(src) != rows*cols {
		return Mat{}, fmt.Errorf("kernels: QuantizeQ4_0 %d×%d given %d values (columns must be a multiple of %d)", rows, cols, len(src), Q4Block)
	}
	m := Mat{Rows: rows, Cols: cols, DType: Q4_0, q4: make([]byte, rows*Q4_0.RowBytes(cols))}
	for b := 0; b < rows*cols/Q4Block; b++ {
		quantizeBlockQ4_0(m.q4[b*q40BlockBytes:(b+1)*q40BlockBytes], src[b*Q4Block:(b+1)*Q4Block])
	}
	return m, nil
}

func quantizeBlockQ4_0(dst []byte, x []float32) {
	var amax, vmax float32
	for _, v := range x[:Q4Block] {
		if a := float32(math.Abs(float64(v))); a > amax {
			amax, vmax = a, v
		}
	}
	d := vmax / -8
	var id float32
	if d != 0 {
		id = 1 / d
	}
	h := half.F32ToF16(d)
	dst[0], dst[1] = byte(h), byte(h>>8)
	q := func(v float32) byte {
		t := v*id + 8.5
		if !(t > 0) { // negative or NaN: int8 truncation toward 0 gives 0
			return 0
		}
		return byte(min(15, int(t)))
	}
	for j := 0; j < Q4Block/2; j++ {
		dst[2+j] = q(x[j]) | q(x[j+16])<<4
	}
}

// QuantizeRow returns the blocks of one row of values quantized to dtype
// (Q8_0 or Q4_0, as QuantizeQ8_0 and QuantizeQ4_0 do); len(row) must be a
// multiple of 32.
func QuantizeRow(dtype DType, row []float32) ([]byte, error) {
	if len(row)%32 != 0 {
		return nil, fmt.Errorf("kernels: %v needs rows of a multiple of 32 values, have %d", dtype, len(row))
	}
	out := make([]byte, dtype.RowBytes(len(row)))
	switch dtype {
	case Q8_0:
		for b := 0; b < len(row)/Q8Block; b++ {
			quantizeBlockQ8(out[b*q8BlockBytes:], row[b*Q8Block:])
		}
	case Q4_0:
		for b := 0; b < len(row)/Q4Block; b++ {
			quantizeBlockQ4_0(out[b*q40BlockBytes:], row[b*Q4Block:])
		}
	default:
		return nil, fmt.Errorf("kernels: cannot quantize to %v", dtype)
	}
	return out, nil
}

// quantizeQ4_0 returns m (any dtype, Cols a multiple of 32) quantized to
// Q4_0 row by row (Mat.Quantize).
func (m Mat) quantizeQ4_0() (Mat, error) {
	if m.Cols%Q4Block != 0 {
		return Mat{}, fmt.Errorf("kernels: Q4_0 needs columns in multiples of %d, %d×%d has %d", Q4Block, m.Rows, m.Cols, m.Cols)
	}
	rb := Q4_0.RowBytes(m.Cols)
	out := Mat{Rows: m.Rows, Cols: m.Cols, DType: Q4_0, q4: make([]byte, m.Rows*rb)}
	row := make([]float32, m.Cols)
	for i := 0; i < m.Rows; i++ {
		m.Row(i, row)
		for b := 0; b < m.Cols/Q4Block; b++ {
			quantizeBlockQ4_0(out.q4[i*rb+b*q40BlockBytes:], row[b*Q4Block:])
		}
	}
	return out, nil
}
