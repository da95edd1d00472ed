// Package kernels holds the numeric kernels of the engine: matrix-vector and
// matrix-matrix products over weights stored as f32, f16, bf16 or Q8_0
// (8-bit blocks, q8.go), the small
// per-token operations (norms, softmax, activations, rotary embeddings) and
// the worker pool that splits rows across cores.
//
// Every kernel has a plain Go reference; faster versions must match it.
package kernels

import (
	"fmt"
	"math"
	"unsafe"

	"dejavu/internal/half"
)

// DType is the element type of a weight matrix.
type DType uint8

// Weight element types.
const (
	F32 DType = iota
	F16
	BF16
	// Q8_0 is llama.cpp's 8-bit block format: per 32 weights, an f16
	// scale and 32 int8 values (34 bytes; see q8.go).
	Q8_0
	// Q4_0 is ggml's block_q4_0: per 32 weights an f16 scale and 16 bytes
	// of 4-bit values (18 bytes; see q4.go).
	Q4_0
	// Q4_K is ggml's block_q4_K: per 256 weights an f16 scale and min,
	// 12 bytes of 6-bit sub-block scales and mins, 128 bytes of 4-bit
	// values (144 bytes; see q4.go).
	Q4_K
	// Q5_K is ggml's block_q5_K and Q6_K its block_q6_K: 5- and 6-bit
	// k-quants of 256 weights in 176 and 210 bytes (see qk.go).
	Q5_K
	Q6_K
	// Q5_0 and Q5_1 are ggml's block_q5_0 and block_q5_1: 5-bit weights
	// per 32 with an f16 scale (and an f16 min for Q5_1) in 22 and 24
	// bytes (see q5.go); llama-quantize writes them in K_M files where a
	// row is not a multiple of 256.
	Q5_0
	Q5_1
)

func (d DType) String() string {
	switch d {
	case F32:
		return "f32"
	case F16:
		return "f16"
	case BF16:
		return "bf16"
	case Q8_0:
		return "q8_0"
	case Q4_0:
		return "q4_0"
	case Q4_K:
		return "q4_k"
	case Q5_K:
		return "q5_k"
	case Q6_K:
		return "q6_k"
	case Q5_0:
		return "q5_0"
	case Q5_1:
		return "q5_1"
	}
	return fmt.Sprintf("DType(%d)", uint8(d))
}

// Size is the number of bytes of one element; for Q8_0, whose elements
// share a scale per block of 32, it is the 1 byte of the element alone (use
// RowBytes for the size of a row).
func (d DType) Size() int {
	switch d {
	case F32:
		return 4
	case Q8_0, Q4_0, Q4_K, Q5_K, Q6_K, Q5_0, Q5_1:
		return 1
	}
	return 2
}

// Mat is a row-major weight matrix of Rows×Cols elements. Its storage may
// alias a memory-mapped checkpoint and must be treated as read-only.
type Mat struct {
	Rows, Cols int
	DType      DType
	f32        []float32
	u16        []uint16
	q8         []byte // Q8_0 blocks
	q4         []byte // Q4_0, Q4_K, Q5_0, Q5_1, Q5_K or Q6_K blocks
}

// NewMat makes a matrix over little-endian bytes without copying them. For
// Q8_0 the bytes are llama.cpp's blocks (see q8.go) and cols must be a
// multiple of 32.
func NewMat(dtype DType, rows, cols int, data []byte) (Mat, error) {
	if rows < 0 || cols < 0 {
		return Mat{}, fmt.Errorf("kernels: negative matrix shape %d×%d", rows, cols)
	}
	if dtype == Q8_0 && cols%Q8Block != 0 {
		return Mat{}, fmt.Errorf("kernels: q8_0 matrix %d×%d: columns must be a multiple of %d", rows, cols, Q8Block)
	}
	if dtype.isQ4() && cols%dtype.q4Block() != 0 {
		return Mat{}, fmt.Errorf("kernels: %v matrix %d×%d: columns must be a multiple of %d", dtype, rows, cols, dtype.q4Block())
	}
	if want := rows * dtype.RowBytes(cols); len(data) != want {
		return Mat{}, fmt.Errorf("kernels: %v matrix %d×%d needs %d bytes, got %d", dtype, rows, cols, want, len(data))
	}
	m := Mat{Rows: rows, Cols: cols, DType: dtype}
	if len(data) == 0 {
		return m, nil
	}
	p := unsafe.Pointer(unsafe.SliceData(data))
	switch dtype {
	case F32:
		if uintptr(p)%4 != 0 {
			cp := make([]float32, rows*cols)
			copy(unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(cp))), len(data)), data)
			m.f32 = cp
		} else {
			m.f32 = unsafe.Slice((*float32)(p), rows*cols)
		}
	case F16, BF16:
		if uintptr(p)%2 != 0 {
			cp := make([]uint16, rows*cols)
			copy(unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(cp))), len(data)), data)
			m.u16 = cp
		} else {
			m.u16 = unsafe.Slice((*uint16)(p), rows*cols)
		}
	case Q8_0:
		m.q8 = data
	case Q4_0, Q4_K, Q5_K, Q6_K, Q5_0, Q5_1:
		m.q4 = data
	default:
		return Mat{}, fmt.Errorf("kernels: unsupported dtype %v", dtype)
	}
	return m, nil
}

// MatF32 wraps a float32 slice of rows*cols elements as a matrix.
func MatF32(rows, cols int, data []float32) Mat {
	if len(data) != rows*cols {
		panic(fmt.Sprintf("kernels: MatF32 %d×%d given %d elements", rows, cols, len(data)))
	}
	return Mat{Rows: rows, Cols: cols, DType: F32, f32: data}
}

// Bytes is the storage size of the matrix.
func (m Mat) Bytes() int64 { return int64(m.Rows) * int64(m.DType.RowBytes(m.Cols)) }

// Row decodes row i into dst (len Cols).
func (m Mat) Row(i int, dst []float32) {
	c := m.Cols
	switch m.DType {
	case F32:
		copy(dst[:c], m.f32[i*c:(i+1)*c])
	case F16:
		src := m.u16[i*c : (i+1)*c]
		for j, h := range src {
			dst[j] = f16Table[h]
		}
	case BF16:
		src := m.u16[i*c : (i+1)*c]
		for j, h := range src {
			dst[j] = math.Float32frombits(uint32(h) << 16)
		}
	case Q8_0:
		m.rowQ8(i, dst)
	case Q4_0, Q4_K, Q5_K, Q6_K, Q5_0, Q5_1:
		m.rowQ4(i, dst)
	}
}

// dotRowGo returns row i of m dotted with x in pure Go: the reference for
// dotRow and gemvRows.
func (m Mat) dotRowGo(i int, x []float32) float32 {
	c := m.Cols
	switch m.DType {
	case F32:
		return dotGo(m.f32[i*c:(i+1)*c], x)
	case Q8_0:
		return m.dotRowQ8Go(i, x)
	case Q4_0, Q4_K, Q5_K, Q6_K, Q5_0, Q5_1:
		return m.dotRowQ4Go(i, x)
	case F16:
		src := m.u16[i*c : (i+1)*c]
		x = x[:len(src)]
		var s0, s1, s2, s3 float32
		j := 0
		for ; j+4 <= len(src); j += 4 {
			s0 += f16Table[src[j]] * x[j]
			s1 += f16Table[src[j+1]] * x[j+1]
			s2 += f16Table[src[j+2]] * x[j+2]
			s3 += f16Table[src[j+3]] * x[j+3]
		}
		for ; j < len(src); j++ {
			s0 += f16Table[src[j]] * x[j]
		}
		return (s0 + s1) + (s2 + s3)
	default:
		src := m.u16[i*c : (i+1)*c]
		x = x[:len(src)]
		var s0, s1, s2, s3 float32
		j := 0
		for ; j+4 <= len(src); j += 4 {
			s0 += math.Float32frombits(uint32(src[j])<<16) * x[j]
			s1 += math.Float32frombits(uint32(src[j+1])<<16) * x[j+1]
			s2 += math.Float32frombits(uint32(src[j+2])<<16) * x[j+2]
			s3 += math.Float32frombits(uint32(src[j+3])<<16) * x[j+3]
		}
		for ; j < len(src); j++ {
			s0 += math.Float32frombits(uint32(src[j])<<16) * x[j]
		}
		return (s0 + s1) + (s2 + s3)
	}
}

// dotGo is the pure-Go Dot (the reference for the fast kernels in gemv*.go).
func dotGo(a, b []float32) float32 {
	b = b[:len(a)]
	var s0, s1, s2, s3 float32
	j := 0
	for ; j+4 <= len(a); j += 4 {
		s0 += a[j] * b[j]
		s1 += a[j+1] * b[j+1]
		s2 += a[j+2] * b[j+2]
		s3 += a[j+3] * b[j+3]
	}
	for ; j < len(a); j++ {
		s0 += a[j] * b[j]
	}
	return (s0 + s1) + (s2 + s3)
}

// f16Table maps every IEEE half-precision bit pattern to its float32 value.
var f16Table = func() *[65536]float32 {
	var t [65536]float32
	for i := range t {
		t[i] = half.F16ToF32(uint16(i))
	}
	return &t
}()

// HalfToFloat converts an IEEE 754 half-precision value to float32.
func HalfToFloat(h uint16) float32 { return f16Table[h] }
