package kernels

// 5-bit weights in ggml's 32-weight block layouts (ggml-common.h), the
// types llama-quantize falls back to in Q4_K_M and Q5_K_M files for
// matrices whose rows are not a multiple of 256 (Q4_K → Q5_0, Q5_K →
// Q5_1). They share the Q4 code paths (q4.go) like the k-quants (qk.go):
//
//   - Q5_0 (block_q5_0, 22 bytes per 32 weights): f16 d, qh (a
//     little-endian uint32), qs[16]; weight j < 16 has the low four bits
//     in the low nibble of qs[j], weight j+16 in its high nibble, and bit j
//     of qh is the fifth bit of weight j; the value is d·(q - 16).
//   - Q5_1 (block_q5_1, 24 bytes per 32 weights): f16 d, f16 m, then qh
//     and qs as in Q5_0; the value is d·q + m.
//
// Products: per block of 32 (one block of the quantized x, q4X),
// d·(dx·Σq·xq - 16·sx) for Q5_0 and d·dx·Σq·xq + m·sx for Q5_1, the
// offsets seeing the exact sum sx of x as for Q4_0.

const (
	q50BlockBytes = 2 + 4 + Q4Block/2     // 22
	q51BlockBytes = 2 + 2 + 4 + Q4Block/2 // 24
)

// q5Quants sets q[j] to the unsigned 5-bit value of weight j of a Q5_0 or
// Q5_1 block whose qh and qs start at b.
func q5Quants(b []byte, q *[Q4Block]uint8) {
	qh := uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
	for j, v := range b[4 : 4+Q4Block/2] {
		q[j] = v&15 | uint8(qh>>j&1)<<4
		q[j+16] = v>>4 | uint8(qh>>(j+16)&1)<<4
	}
}

// decodeQ5_0 writes the 32 weights of the Q5_0 block b to dst.
func decodeQ5_0(b []byte, dst []float32) {
	d := q8Scale(b)
	var q [Q4Block]uint8
	q5Quants(b[2:q50BlockBytes], &q)
	dst = dst[:Q4Block]
	for j, v := range q {
		dst[j] = d * float32(int(v)-16)
	}
}

// decodeQ5_1 writes the 32 weights of the Q5_1 block b to dst.
func decodeQ5_1(b []byte, dst []float32) {
	d, m := q8Scale(b), q8Scale(b[2:])
	var q [Q4Block]uint8
	q5Quants(b[4:q51BlockBytes], &q)
	dst = dst[:Q4Block]
	for j, v := range q {
		dst[j] = d*float32(v) + m
	}
}

// dotRowQ5X is dotRowQ4X for a Q5_0 or Q5_1 row (src its blocks).
func dotRowQ5X(dt DType, src []byte, x *q4X) float32 {
	bb := dt.q4BlockBytes()
	var s float32
	var q [Q4Block]uint8
	for b := 0; b < len(src)/bb; b++ {
		blk := src[b*bb : (b+1)*bb]
		xq := x.q[b*Q4Block : (b+1)*Q4Block]
		if dt == Q5_0 {
			q5Quants(blk[2:], &q)
		} else {
			q5Quants(blk[4:], &q)
		}
		var si int32
		for j, v := range q {
			si += int32(v) * int32(xq[j])
		}
		if dt == Q5_0 {
			s += q8Scale(blk) * (x.d[b]*float32(si) - 16*x.s[b])
		} else {
			s += q8Scale(blk)*x.d[b]*float32(si) + q8Scale(blk[2:])*x.s[b]
		}
	}
	return s
}
