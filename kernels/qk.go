package kernels

// 5- and 6-bit k-quant weights in ggml's block layouts (ggml-common.h),
// read in place from a GGUF file like the Q4 types (q4.go), whose code
// paths they share (DType.isQ4 is true for them: GEMV, gather, accumulate,
// GEMM packing and the Q8_0 neuron-major copy of transposeQuant):
//
//   - Q5_K (block_q5_K, 176 bytes per 256 weights): f16 d, f16 dmin, 12
//     bytes of 6-bit sub-block scales and mins packed as in Q4_K
//     (q4KScaleMin), qh[32], qs[128]. As in Q4_K, qs holds four chunks of
//     32 bytes, chunk c giving the low four bits of sub-block 2c (low
//     nibbles) and 2c+1 (high nibbles); bit s of qh[l] is the fifth bit
//     of weight l of sub-block s. Weight l of sub-block s is
//     d·sc[s]·q - dmin·m[s], q in 0..31.
//   - Q6_K (block_q6_K, 210 bytes per 256 weights): ql[128], qh[64], 16
//     int8 scales of 16-weight sub-blocks, f16 d. Each half h (128
//     weights) uses ql[64h:], qh[32h:] and scales[8h:]; its weight 32g+l
//     (g < 4, l < 32) has the low four bits in ql[l + 32(g&1)] (low
//     nibble for g < 2, high for g ≥ 2) and the top two in bits 2g, 2g+1
//     of qh[l]; its value is d·scales[8h + (32g+l)/16]·(q - 32), q in
//     0..63.
//
// The products use x quantized per 32 values (q4X) as for Q4_K: Q5_K's
// 32-weight sub-blocks line up with x's blocks, so a sub-block is
// d·sc·dx·Σq·xq - dmin·m·sx with the exact sum sx of x; a Q6_K 32-block
// of x spans two 16-weight sub-blocks, each Σ(q-32)·xq in integers times
// its scale, times d·dx once per 32.

const (
	q5KBlockBytes = 2 + 2 + 12 + QKBlock/8 + QKBlock/2     // 176
	q6KBlockBytes = QKBlock/2 + QKBlock/4 + QKBlock/16 + 2 // 210
)

// decodeQ5K writes the 256 weights of the Q5_K block b to dst.
func decodeQ5K(b []byte, dst []float32) {
	d := f16Table[uint16(b[0])|uint16(b[1])<<8]
	dmin := f16Table[uint16(b[2])|uint16(b[3])<<8]
	sc := b[4:16]
	qh := b[16:48]
	qs := b[48:q5KBlockBytes]
	dst = dst[:QKBlock]
	for c := 0; c < 4; c++ {
		s0, m0 := q4KScaleMin(sc, 2*c)
		s1, m1 := q4KScaleMin(sc, 2*c+1)
		d0, dm0 := d*float32(s0), dmin*float32(m0)
		d1, dm1 := d*float32(s1), dmin*float32(m1)
		for l, q := range qs[32*c : 32*c+32] {
			h := qh[l] >> (2 * c)
			dst[64*c+l] = d0*float32(q&15|(h&1)<<4) - dm0
			dst[64*c+32+l] = d1*float32(q>>4|(h&2)<<3) - dm1
		}
	}
}

// q6KQuants sets q[32g+l] to the signed 6-bit value (q - 32) of weight
// 32g+l of half h of the Q6_K block b.
func q6KQuants(b []byte, h int, q *[128]int8) {
	ql := b[64*h : 64*h+64]
	qh := b[QKBlock/2+32*h : QKBlock/2+32*h+32]
	for l, hb := range qh {
		lo, hi := ql[l], ql[l+32]
		q[l] = int8(lo&15|(hb&3)<<4) - 32
		q[32+l] = int8(hi&15|(hb>>2&3)<<4) - 32
		q[64+l] = int8(lo>>4|(hb>>4&3)<<4) - 32
		q[96+l] = int8(hi>>4|(hb>>6)<<4) - 32
	}
}

// q6KScales is the 16 int8 scales of the Q6_K block b.
func q6KScales(b []byte) []byte { return b[QKBlock/2+QKBlock/4 : QKBlock/2+QKBlock/4+16] }

// q6KScale is the f16 super-block scale of the Q6_K block b.
func q6KScale(b []byte) float32 {
	return f16Table[uint16(b[q6KBlockBytes-2])|uint16(b[q6KBlockBytes-1])<<8]
}

// decodeQ6K writes the 256 weights of the Q6_K block b to dst.
func decodeQ6K(b []byte, dst []float32) {
	d := q6KScale(b)
	sc := q6KScales(b)
	dst = dst[:QKBlock]
	var q [128]int8
	for h := 0; h < 2; h++ {
		q6KQuants(b, h, &q)
		for t := 0; t < 8; t++ {
			ds := d * float32(int8(sc[8*h+t]))
			for j := 16 * t; j < 16*t+16; j++ {
				dst[128*h+j] = ds * float32(q[j])
			}
		}
	}
}

// dotRowQ5KX is dotRowQ4X for a Q5_K row (src its blocks).
func dotRowQ5KX(src []byte, x *q4X) float32 {
	var s, mins float32
	for b := 0; b < len(src)/q5KBlockBytes; b++ {
		blk := src[b*q5KBlockBytes : (b+1)*q5KBlockBytes]
		d, dmin := q8Scale(blk), q8Scale(blk[2:])
		sc, qh, qs := blk[4:16], blk[16:48], blk[48:q5KBlockBytes]
		for c := 0; c < 4; c++ {
			x0 := x.q[b*QKBlock+64*c : b*QKBlock+64*c+32]
			x1 := x.q[b*QKBlock+64*c+32 : b*QKBlock+64*c+64]
			var s0, s1 int32
			for l, q := range qs[32*c : 32*c+32] {
				h := qh[l] >> (2 * c)
				s0 += int32(q&15|(h&1)<<4) * int32(x0[l])
				s1 += int32(q>>4|(h&2)<<3) * int32(x1[l])
			}
			for k, si := range [2]int32{s0, s1} {
				sb := b*8 + 2*c + k
				sk, mn := q4KScaleMin(sc, 2*c+k)
				s += d * float32(sk) * x.d[sb] * float32(si)
				mins += dmin * float32(mn) * x.s[sb]
			}
		}
	}
	return s - mins
}

// dotRowQ6KX is dotRowQ4X for a Q6_K row (src its blocks).
func dotRowQ6KX(src []byte, x *q4X) float32 {
	var s float32
	var q [128]int8
	for b := 0; b < len(src)/q6KBlockBytes; b++ {
		blk := src[b*q6KBlockBytes : (b+1)*q6KBlockBytes]
		d, sc := q6KScale(blk), q6KScales(blk)
		for h := 0; h < 2; h++ {
			q6KQuants(blk, h, &q)
			for g := 0; g < 4; g++ {
				xb := b*8 + 4*h + g
				xq := x.q[32*xb : 32*xb+32]
				var s0, s1 int32
				for l := 0; l < 16; l++ {
					s0 += int32(q[32*g+l]) * int32(xq[l])
					s1 += int32(q[32*g+16+l]) * int32(xq[16+l])
				}
				si := int32(int8(sc[8*h+2*g]))*s0 + int32(int8(sc[8*h+2*g+1]))*s1
				s += d * x.d[xb] * float32(si)
			}
		}
	}
	return s
}
