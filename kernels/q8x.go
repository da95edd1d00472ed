package kernels

import (
	"encoding/binary"
	"math"
)

// Integer Q8_0 products (llama.cpp's scheme for Q8_0 weights): the input
// vector x is quantized once per product to int8 blocks of 32 with an f32
// scale of their own (dx = max|x|/127, q = x/dx rounded to nearest, ties
// to even, as llama.cpp's AVX quantize_row_q8_0), and every block of a row
// contributes dw·dx·Σ q_w·q_x, the sum taken exactly in int32 (VPDPBUSD,
// or VPMADDUBSW + VPMADDWD without AVX512-VNNI). Against the f32 products
// this adds the rounding of x (at most dx/2 per element, relative 1/254 of
// the block's largest |x|) and removes the int8 → f32 conversion of every
// weight, which bounded the f32 kernels (q8.go) at ~10 GB/s.
//
// The quantized x is a list of 36-byte blocks: 32 int8 values, then the
// block's scale as a little-endian f32.

// q8xBlockBytes is the size of one quantized block of x.
const q8xBlockBytes = Q8Block + 4

// q8xMaxCols is the widest x the assembly products quantize (on the
// stack); wider products use the f32 kernels.
const q8xMaxCols = 16384

// q8Integer selects the integer products (false: the f32 ones, for
// benchmarks and tests). Inputs wider than q8xMaxCols always take the f32
// products, in Go as in assembly.
var q8Integer = true

// quantizeXBlock quantizes the 32 values of x into q and returns their scale.
func quantizeXBlock(q *[Q8Block]int8, x []float32) float32 {
	x = x[:Q8Block]
	var amax float32
	for _, v := range x {
		amax = max(amax, float32(math.Abs(float64(v))))
	}
	d := amax / 127
	var id float32
	if d != 0 {
		id = 1 / d
	}
	for j, v := range x {
		q[j] = int8(math.RoundToEven(float64(v * id)))
	}
	return d
}

// quantizeX writes the quantized blocks of x (len a multiple of 32) to dst
// (len(x)/32·36 bytes).
func quantizeX(dst []byte, x []float32) {
	var q [Q8Block]int8
	for b := 0; b < len(x)/Q8Block; b++ {
		d := quantizeXBlock(&q, x[b*Q8Block:])
		blk := dst[b*q8xBlockBytes : (b+1)*q8xBlockBytes]
		for j, v := range q {
			blk[j] = byte(v)
		}
		binary.LittleEndian.PutUint32(blk[Q8Block:], math.Float32bits(d))
	}
}

// dotRowQ8Go is the pure-Go reference of the Q8_0 dot products (GEMV,
// gather): row i against x quantized block by block as above, each block's
// integer sum times dw·dx, summed over the blocks in f32.
func (m Mat) dotRowQ8Go(i int, x []float32) float32 {
	if !q8Integer || m.Cols > q8xMaxCols {
		return m.dotRowQ8F32Go(i, x)
	}
	rb := Q8_0.RowBytes(m.Cols)
	src := m.q8[i*rb : (i+1)*rb]
	x = x[:m.Cols]
	var q [Q8Block]int8
	var s float32
	for b := 0; b < len(src)/q8BlockBytes; b++ {
		blk := src[b*q8BlockBytes : (b+1)*q8BlockBytes]
		dx := quantizeXBlock(&q, x[b*Q8Block:])
		var si int32
		for j, w := range blk[2 : 2+Q8Block] {
			si += int32(int8(w)) * int32(q[j])
		}
		s += float32(si) * (q8Scale(blk) * dx)
	}
	return s
}

// dotRowQ8F32Go is the pure-Go reference of the f32 Q8_0 dot products: per
// block, the sum of q·x in f32, times the block's scale, summed over the
// blocks.
func (m Mat) dotRowQ8F32Go(i int, x []float32) float32 {
	rb := Q8_0.RowBytes(m.Cols)
	src := m.q8[i*rb : (i+1)*rb]
	x = x[:m.Cols]
	var s float32
	for b := 0; b < len(src)/q8BlockBytes; b++ {
		blk := src[b*q8BlockBytes : (b+1)*q8BlockBytes]
		q := blk[2 : 2+Q8Block]
		xb := x[b*Q8Block : (b+1)*Q8Block]
		var s0, s1, s2, s3 float32
		for j := 0; j < Q8Block; j += 4 {
			s0 += float32(int8(q[j])) * xb[j]
			s1 += float32(int8(q[j+1])) * xb[j+1]
			s2 += float32(int8(q[j+2])) * xb[j+2]
			s3 += float32(int8(q[j+3])) * xb[j+3]
		}
		s += q8Scale(blk) * ((s0 + s1) + (s2 + s3))
	}
	return s
}
