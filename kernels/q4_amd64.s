#include "textflag.h"
#include "kscales_amd64.h"

// Q4_0 and Q4_K dot kernels for amd64 (see q4.go for the block layouts and
// q4_amd64.go for the Go signatures), on integer dot products as llama.cpp
// does: the input x is quantized per 32 values (quantizeQ4X: int8 xq, f32
// scale dx, and the exact f32 sum sx of the 32 inputs), and a block's 32
// nibbles (unsigned 0..15) are multiplied with its 32 xq in int32 lanes by
// VPDPBUSD (AVX512-VNNI, on ymm) or VPMADDUBSW + VPMADDWD (AVX2; the pair
// sums stay below 2·15·127, far from int16 saturation). Every kernel sets
// y[k] = row·x for k < n, where the row is w + rows[k]·stride (rows != nil:
// gather) or w + k·stride (rows == nil: GEMV); n > 0, cols a positive
// multiple of the block (32 or 256).
//
// Q4_0: weight (q-8)·d, so a block adds d·(dx·Σq·xq - 8·sx). The kernels
// keep eight int32 lanes of Σq·xq, convert them, and add d·(dx·lane - sx)
// per lane: summed over the lanes that is the block's term.
// Q4_K: the eight sub-block scales d·sc are decoded per super-block
// (Q4KSCALES, as q4KScaleMin) and multiplied with the sub-blocks' dx into
// 0(SP); the min term dmin·m·sx of all eight sub-blocks is one vector FMA
// per super-block into Y10, subtracted at the end of the row.
//
// Registers: AX w, R9 stride, DI xq, BX y, R8 rows (or 0), R15 k; per row
// SI the current block, R12 xq, R13 dx, R14 sx at that block, DX blocks
// left; Y15 sixteen 0x0f bytes; AVX2: Y14 sixteen int16 ones. The Q4_0
// kernels take four rows per pass (Q40ROWADDR below); the Q4_K kernels,
// four rows per pass too, are dotQ4KR4VNNI / dotQ4KR4AVX2 in qk_amd64.s.

// Q4KSCALES: kscales_amd64.h.

// Q40PAIRVNNI adds the Q4_0 blocks of two rows, scales at da and db and
// nibbles at qa and qb, into acc: row a in lanes 0-3, row b in lanes 4-7.
// The rows' 16 bytes share one ymm (a low, b high), so one shift and two
// ANDs split both, and two VPDPBUSD against Y10 (x[0:16] in both halves)
// and Y11 (x[16:32]) give each row's four lane sums; Y12 holds dx and Y13
// 2·sx (four lanes per row: Σ over them of dx·lane - 2·sx is the block's
// dx·Σq·xq - 8·sx). Clobbers Y3..Y7.
#define Q40PAIRVNNI(da, qa, db, qb, acc) \
	VMOVDQU qa, X3; \
	VINSERTI128 $1, qb, Y3, Y3; \
	VPSRLW $4, Y3, Y4; \
	VPAND Y15, Y3, Y3; \
	VPAND Y15, Y4, Y4; \
	VPXOR Y5, Y5, Y5; \
	VPDPBUSD Y10, Y3, Y5; \
	VPDPBUSD Y11, Y4, Y5; \
	VCVTDQ2PS Y5, Y5; \
	VFMSUB213PS Y13, Y12, Y5; \
	VPBROADCASTW da, X6; \
	VPBROADCASTW db, X7; \
	VPUNPCKLQDQ X7, X6, X6; \
	VCVTPH2PS X6, Y6; \
	VFMADD231PS Y6, Y5, acc

// Q40PAIRAVX2 is Q40PAIRVNNI with VPMADDUBSW: the low- and high-nibble
// pair sums (each ≤ 2·15·127) are added in int16 before one VPMADDWD with
// Y14 (int16 ones). Clobbers Y3..Y7.
#define Q40PAIRAVX2(da, qa, db, qb, acc) \
	VMOVDQU qa, X3; \
	VINSERTI128 $1, qb, Y3, Y3; \
	VPSRLW $4, Y3, Y4; \
	VPAND Y15, Y3, Y3; \
	VPAND Y15, Y4, Y4; \
	VPMADDUBSW Y10, Y3, Y5; \
	VPMADDUBSW Y11, Y4, Y4; \
	VPADDW Y4, Y5, Y5; \
	VPMADDWD Y14, Y5, Y5; \
	VCVTDQ2PS Y5, Y5; \
	VFMSUB213PS Y13, Y12, Y5; \
	VPBROADCASTW da, X6; \
	VPBROADCASTW db, X7; \
	VPUNPCKLQDQ X7, X6, X6; \
	VCVTPH2PS X6, Y6; \
	VFMADD231PS Y6, Y5, acc

// The Q4_0 kernels take four rows per pass: pass j (R15) computes the
// rows of indices j, j+q, j+2q, j+3q (q = ⌈n/4⌉, odd from 32 on:
// QKQUARTER; GEMV rows or positions in the gather list) at SI, R10, R11,
// CX, one block of all four per
// iteration: x (Y10, Y11), dx (Y12) and 2·sx (Y13) loaded once for the
// four, accumulators Y1 (rows 0, 1) and Y2 (rows 2, 3). Striding by q
// makes four sequential streams through the quarters of the matrix, which
// the hardware prefetcher follows; rows k..k+3 walked in lockstep (four
// streams one row apart) were 1.7× slower from memory. Indices past n-1
// are clamped to it: the pass computes row n-1 again and stores the same
// value at y[n-1]. A row's sum does not depend on its position in the
// pass, so GEMV and gather give the same value for the same row.
//
// Q40ROWADDR turns the row index in reg (a GEMV row or an index into the
// gather list) into the row's address, the index clamped to R13 = n-1.
#define Q40ROWADDR(reg) \
	CMPQ  reg, R13; \
	CMOVQGT R13, reg; \
	TESTQ R8, R8; \
	JEQ   2(PC); \
	MOVLQSX (R8)(reg*4), reg; \
	IMULQ R9, reg; \
	ADDQ  AX, reg

// func dotQ40VNNI(w unsafe.Pointer, stride int, xq *int8, dx, sx, y *float32, rows *int32, n, cols int)
TEXT ·dotQ40VNNI(SB), NOSPLIT, $0-72
	MOVQ w+0(FP), AX
	MOVQ stride+8(FP), R9
	MOVQ xq+16(FP), DI
	MOVQ y+40(FP), BX
	MOVQ rows+48(FP), R8
	XORQ R15, R15
	MOVL         $0x0f0f0f0f, R10
	VMOVD        R10, X15
	VPBROADCASTD X15, Y15

q40vnnipass:
	MOVQ  n+56(FP), R13
	QKQUARTER
	CMPQ  R15, R12
	JGE   q40vnnidone
	DECQ  R13             // n-1
	MOVQ  R15, SI
	Q40ROWADDR(SI)
	LEAQ  (R15)(R12*1), R10
	Q40ROWADDR(R10)
	LEAQ  (R15)(R12*2), R11
	Q40ROWADDR(R11)
	LEAQ  (R12)(R12*2), CX
	ADDQ  R15, CX
	Q40ROWADDR(CX)
	MOVQ  DI, R12
	MOVQ  dx+24(FP), R13
	MOVQ  sx+32(FP), R14
	MOVQ  cols+64(FP), DX
	SHRQ  $5, DX
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2

q40vnniblk:
	VBROADCASTI128 (R12), Y10
	VBROADCASTI128 16(R12), Y11
	VBROADCASTSS   (R13), Y12
	VBROADCASTSS   (R14), Y13
	VADDPS         Y13, Y13, Y13
	Q40PAIRVNNI((SI), 2(SI), (R10), 2(R10), Y1)
	Q40PAIRVNNI((R11), 2(R11), (CX), 2(CX), Y2)
	ADDQ $18, SI
	ADDQ $18, R10
	ADDQ $18, R11
	ADDQ $18, CX
	ADDQ $32, R12
	ADDQ $4, R13
	ADDQ $4, R14
	DECQ DX
	JNE  q40vnniblk

	VEXTRACTF128 $1, Y1, X3
	VEXTRACTF128 $1, Y2, X4
	VHADDPS      X3, X1, X1
	VHADDPS      X4, X2, X2
	VHADDPS      X2, X1, X1
	R4STORE(X1)
	INCQ         R15
	JMP          q40vnnipass

q40vnnidone:
	VZEROUPPER
	RET

// func dotQ40AVX2(w unsafe.Pointer, stride int, xq *int8, dx, sx, y *float32, rows *int32, n, cols int)
TEXT ·dotQ40AVX2(SB), NOSPLIT, $0-72
	MOVQ w+0(FP), AX
	MOVQ stride+8(FP), R9
	MOVQ xq+16(FP), DI
	MOVQ y+40(FP), BX
	MOVQ rows+48(FP), R8
	XORQ R15, R15
	MOVL         $0x0f0f0f0f, R10
	VMOVD        R10, X15
	VPBROADCASTD X15, Y15
	MOVL         $0x00010001, R10
	VMOVD        R10, X14
	VPBROADCASTD X14, Y14

q40avx2pass:
	MOVQ  n+56(FP), R13
	QKQUARTER
	CMPQ  R15, R12
	JGE   q40avx2done
	DECQ  R13             // n-1
	MOVQ  R15, SI
	Q40ROWADDR(SI)
	LEAQ  (R15)(R12*1), R10
	Q40ROWADDR(R10)
	LEAQ  (R15)(R12*2), R11
	Q40ROWADDR(R11)
	LEAQ  (R12)(R12*2), CX
	ADDQ  R15, CX
	Q40ROWADDR(CX)
	MOVQ  DI, R12
	MOVQ  dx+24(FP), R13
	MOVQ  sx+32(FP), R14
	MOVQ  cols+64(FP), DX
	SHRQ  $5, DX
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2

q40avx2blk:
	VBROADCASTI128 (R12), Y10
	VBROADCASTI128 16(R12), Y11
	VBROADCASTSS   (R13), Y12
	VBROADCASTSS   (R14), Y13
	VADDPS         Y13, Y13, Y13
	Q40PAIRAVX2((SI), 2(SI), (R10), 2(R10), Y1)
	Q40PAIRAVX2((R11), 2(R11), (CX), 2(CX), Y2)
	ADDQ $18, SI
	ADDQ $18, R10
	ADDQ $18, R11
	ADDQ $18, CX
	ADDQ $32, R12
	ADDQ $4, R13
	ADDQ $4, R14
	DECQ DX
	JNE  q40avx2blk

	VEXTRACTF128 $1, Y1, X3
	VEXTRACTF128 $1, Y2, X4
	VHADDPS      X3, X1, X1
	VHADDPS      X4, X2, X2
	VHADDPS      X2, X1, X1
	R4STORE(X1)
	INCQ         R15
	JMP          q40avx2pass

q40avx2done:
	VZEROUPPER
	RET

// func quantQ4XAVX2(x *float32, q *int8, d, s *float32, blocks int)
// quantizes blocks·32 floats as quantizeQ4X does: per 32, d = max|x|/127,
// q = x·(1/d) rounded to nearest even (VCVTPS2DQ under the default MXCSR;
// 0 when d is 0), s = their sum (in a different order than Go's).
TEXT ·quantQ4XAVX2(SB), NOSPLIT, $0-40
	MOVQ         x+0(FP), SI
	MOVQ         q+8(FP), DI
	MOVQ         d+16(FP), R8
	MOVQ         s+24(FP), R9
	MOVQ         blocks+32(FP), CX
	MOVL         $0x7fffffff, AX
	VMOVD        AX, X15
	VPBROADCASTD X15, Y15
	MOVL         $0x42fe0000, AX          // 127.0
	VMOVD        AX, X14
	MOVL         $0x3f800000, AX          // 1.0
	VMOVD        AX, X13
	VMOVDQU      q4xperm<>(SB), Y12
	VXORPS       X11, X11, X11

qxloop:
	VMOVUPS      (SI), Y0
	VMOVUPS      32(SI), Y1
	VMOVUPS      64(SI), Y2
	VMOVUPS      96(SI), Y3
	VADDPS       Y1, Y0, Y4
	VADDPS       Y3, Y2, Y5
	VADDPS       Y5, Y4, Y4
	VEXTRACTF128 $1, Y4, X5
	VADDPS       X5, X4, X4
	VHADDPS      X4, X4, X4
	VHADDPS      X4, X4, X4
	VMOVSS       X4, (R9)
	VANDPS       Y15, Y0, Y5
	VANDPS       Y15, Y1, Y6
	VANDPS       Y15, Y2, Y7
	VANDPS       Y15, Y3, Y8
	VMAXPS       Y6, Y5, Y5
	VMAXPS       Y8, Y7, Y7
	VMAXPS       Y7, Y5, Y5
	VEXTRACTF128 $1, Y5, X6
	VMAXPS       X6, X5, X5
	VPERMILPS    $0x4e, X5, X6
	VMAXPS       X6, X5, X5
	VPERMILPS    $0xb1, X5, X6
	VMAXPS       X6, X5, X5
	VDIVSS       X14, X5, X5              // d = amax/127
	VMOVSS       X5, (R8)
	VDIVSS       X5, X13, X6              // 1/d
	VCMPSS       $4, X11, X5, X7          // d != 0
	VANDPS       X7, X6, X6
	VBROADCASTSS X6, Y6
	VMULPS       Y6, Y0, Y0
	VMULPS       Y6, Y1, Y1
	VMULPS       Y6, Y2, Y2
	VMULPS       Y6, Y3, Y3
	VCVTPS2DQ    Y0, Y0
	VCVTPS2DQ    Y1, Y1
	VCVTPS2DQ    Y2, Y2
	VCVTPS2DQ    Y3, Y3
	VPACKSSDW    Y1, Y0, Y0
	VPACKSSDW    Y3, Y2, Y2
	VPACKSSWB    Y2, Y0, Y0
	VPERMD       Y0, Y12, Y0
	VMOVDQU      Y0, (DI)
	ADDQ         $128, SI
	ADDQ         $32, DI
	ADDQ         $4, R8
	ADDQ         $4, R9
	DECQ         CX
	JNE          qxloop
	VZEROUPPER
	RET

DATA q4xperm<>+0(SB)/4, $0
DATA q4xperm<>+4(SB)/4, $4
DATA q4xperm<>+8(SB)/4, $1
DATA q4xperm<>+12(SB)/4, $5
DATA q4xperm<>+16(SB)/4, $2
DATA q4xperm<>+20(SB)/4, $6
DATA q4xperm<>+24(SB)/4, $3
DATA q4xperm<>+28(SB)/4, $7
GLOBL q4xperm<>(SB), RODATA|NOPTR, $32

// func dequantQ40AVX2(w *byte, dst *float32, blocks int) decodes Q4_0
// blocks as decodeQ4_0 does (d·(q-8), one rounding).
TEXT ·dequantQ40AVX2(SB), NOSPLIT, $0-24
	MOVQ         w+0(FP), SI
	MOVQ         dst+8(FP), DI
	MOVQ         blocks+16(FP), CX
	MOVL         $15, AX
	VMOVD        AX, X15
	VPBROADCASTD X15, Y15
	MOVL         $8, AX
	VMOVD        AX, X14
	VPBROADCASTD X14, Y14

dq40loop:
	VPBROADCASTW (SI), X8
	VCVTPH2PS    X8, Y8
	VPMOVZXBD    2(SI), Y0
	VPMOVZXBD    10(SI), Y1
	VPSRLD       $4, Y0, Y2
	VPSRLD       $4, Y1, Y3
	VPAND        Y15, Y0, Y0
	VPAND        Y15, Y1, Y1
	VPSUBD       Y14, Y0, Y0
	VPSUBD       Y14, Y1, Y1
	VPSUBD       Y14, Y2, Y2
	VPSUBD       Y14, Y3, Y3
	VCVTDQ2PS    Y0, Y0
	VCVTDQ2PS    Y1, Y1
	VCVTDQ2PS    Y2, Y2
	VCVTDQ2PS    Y3, Y3
	VMULPS       Y8, Y0, Y0
	VMULPS       Y8, Y1, Y1
	VMULPS       Y8, Y2, Y2
	VMULPS       Y8, Y3, Y3
	VMOVUPS      Y0, (DI)
	VMOVUPS      Y1, 32(DI)
	VMOVUPS      Y2, 64(DI)
	VMOVUPS      Y3, 96(DI)
	ADDQ         $18, SI
	ADDQ         $128, DI
	DECQ         CX
	JNE          dq40loop
	VZEROUPPER
	RET

// func dequantQ4KAVX2(w *byte, dst *float32, blocks int) decodes Q4_K
// super-blocks as decodeQ4K does: (d·sc)·q - dmin·m, a rounded product and
// a rounded difference (no FMA), scales from Q4KSCALES kept at 0(SP) and
// 32(SP).
TEXT ·dequantQ4KAVX2(SB), NOSPLIT, $64-24
	MOVQ         w+0(FP), SI
	MOVQ         dst+8(FP), DI
	MOVQ         blocks+16(FP), DX
	MOVL         $15, AX
	VMOVD        AX, X15
	VPBROADCASTD X15, Y15

dq4kloop:
	Q4KSCALES
	VMOVUPS      Y6, (SP)
	VMOVUPS      Y7, 32(SP)
	VBROADCASTSS 0(SP), Y8
	VBROADCASTSS 32(SP), Y9
	VPMOVZXBD    16(SI), Y0
	VPAND        Y15, Y0, Y0
	VCVTDQ2PS    Y0, Y0
	VMULPS       Y8, Y0, Y0
	VSUBPS       Y9, Y0, Y0
	VMOVUPS      Y0, 0(DI)
	VPMOVZXBD    24(SI), Y0
	VPAND        Y15, Y0, Y0
	VCVTDQ2PS    Y0, Y0
	VMULPS       Y8, Y0, Y0
	VSUBPS       Y9, Y0, Y0
	VMOVUPS      Y0, 32(DI)
	VPMOVZXBD    32(SI), Y0
	VPAND        Y15, Y0, Y0
	VCVTDQ2PS    Y0, Y0
	VMULPS       Y8, Y0, Y0
	VSUBPS       Y9, Y0, Y0
	VMOVUPS      Y0, 64(DI)
	VPMOVZXBD    40(SI), Y0
	VPAND        Y15, Y0, Y0
	VCVTDQ2PS    Y0, Y0
	VMULPS       Y8, Y0, Y0
	VSUBPS       Y9, Y0, Y0
	VMOVUPS      Y0, 96(DI)
	VBROADCASTSS 4(SP), Y8
	VBROADCASTSS 36(SP), Y9
	VPMOVZXBD    16(SI), Y0
	VPSRLD       $4, Y0, Y0
	VCVTDQ2PS    Y0, Y0
	VMULPS       Y8, Y0, Y0
	VSUBPS       Y9, Y0, Y0
	VMOVUPS      Y0, 128(DI)
	VPMOVZXBD    24(SI), Y0
	VPSRLD       $4, Y0, Y0
	VCVTDQ2PS    Y0, Y0
	VMULPS       Y8, Y0, Y0
	VSUBPS       Y9, Y0, Y0
	VMOVUPS      Y0, 160(DI)
	VPMOVZXBD    32(SI), Y0
	VPSRLD       $4, Y0, Y0
	VCVTDQ2PS    Y0, Y0
	VMULPS       Y8, Y0, Y0
	VSUBPS       Y9, Y0, Y0
	VMOVUPS      Y0, 192(DI)
	VPMOVZXBD    40(SI), Y0
	VPSRLD       $4, Y0, Y0
	VCVTDQ2PS    Y0, Y0
	VMULPS       Y8, Y0, Y0
	VSUBPS       Y9, Y0, Y0
	VMOVUPS      Y0, 224(DI)
	VBROADCASTSS 8(SP), Y8
	VBROADCASTSS 40(SP), Y9
	VPMOVZXBD    48(SI), Y0
	VPAND        Y15, Y0, Y0
	VCVTDQ2PS    Y0, Y0
	VMULPS       Y8, Y0, Y0
	VSUBPS       Y9, Y0, Y0
	VMOVUPS      Y0, 256(DI)
	VPMOVZXBD    56(SI), Y0
	VPAND        Y15, Y0, Y0
	VCVTDQ2PS    Y0, Y0
	VMULPS       Y8, Y0, Y0
	VSUBPS       Y9, Y0, Y0
	VMOVUPS      Y0, 288(DI)
	VPMOVZXBD    64(SI), Y0
	VPAND        Y15, Y0, Y0
	VCVTDQ2PS    Y0, Y0
	VMULPS       Y8, Y0, Y0
	VSUBPS       Y9, Y0, Y0
	VMOVUPS      Y0, 320(DI)
	VPMOVZXBD    72(SI), Y0
	VPAND        Y15, Y0, Y0
	VCVTDQ2PS    Y0, Y0
	VMULPS       Y8, Y0, Y0
	VSUBPS       Y9, Y0, Y0
	VMOVUPS      Y0, 352(DI)
	VBROADCASTSS 12(SP), Y8
	VBROADCASTSS 44(SP), Y9
	VPMOVZXBD    48(SI), Y0
	VPSRLD       $4, Y0, Y0
	VCVTDQ2PS    Y0, Y0
	VMULPS       Y8, Y0, Y0
	VSUBPS       Y9, Y0, Y0
	VMOVUPS      Y0, 384(DI)
	VPMOVZXBD    56(SI), Y0
	VPSRLD       $4, Y0, Y0
	VCVTDQ2PS    Y0, Y0
	VMULPS       Y8, Y0, Y0
	VSUBPS       Y9, Y0, Y0
	VMOVUPS      Y0, 416(DI)
	VPMOVZXBD    64(SI), Y0
	VPSRLD       $4, Y0, Y0
	VCVTDQ2PS    Y0, Y0
	VMULPS       Y8, Y0, Y0
	VSUBPS       Y9, Y0, Y0
	VMOVUPS      Y0, 448(DI)
	VPMOVZXBD    72(SI), Y0
	VPSRLD       $4, Y0, Y0
	VCVTDQ2PS    Y0, Y0
	VMULPS       Y8, Y0, Y0
	VSUBPS       Y9, Y0, Y0
	VMOVUPS      Y0, 480(DI)
	VBROADCASTSS 16(SP), Y8
	VBROADCASTSS 48(SP), Y9
	VPMOVZXBD    80(SI), Y0
	VPAND        Y15, Y0, Y0
	VCVTDQ2PS    Y0, Y0
	VMULPS       Y8, Y0, Y0
	VSUBPS       Y9, Y0, Y0
	VMOVUPS      Y0, 512(DI)
	VPMOVZXBD    88(SI), Y0
	VPAND        Y15, Y0, Y0
	VCVTDQ2PS    Y0, Y0
	VMULPS       Y8, Y0, Y0
	VSUBPS       Y9, Y0, Y0
	VMOVUPS      Y0, 544(DI)
	VPMOVZXBD    96(SI), Y0
	VPAND        Y15, Y0, Y0
	VCVTDQ2PS    Y0, Y0
	VMULPS       Y8, Y0, Y0
	VSUBPS       Y9, Y0, Y0
	VMOVUPS      Y0, 576(DI)
	VPMOVZXBD    104(SI), Y0
	VPAND        Y15, Y0, Y0
	VCVTDQ2PS    Y0, Y0
	VMULPS       Y8, Y0, Y0
	VSUBPS       Y9, Y0, Y0
	VMOVUPS      Y0, 608(DI)
	VBROADCASTSS 20(SP), Y8
	VBROADCASTSS 52(SP), Y9
	VPMOVZXBD    80(SI), Y0
	VPSRLD       $4, Y0, Y0
	VCVTDQ2PS    Y0, Y0
	VMULPS       Y8, Y0, Y0
	VSUBPS       Y9, Y0, Y0
	VMOVUPS      Y0, 640(DI)
	VPMOVZXBD    88(SI), Y0
	VPSRLD       $4, Y0, Y0
	VCVTDQ2PS    Y0, Y0
	VMULPS       Y8, Y0, Y0
	VSUBPS       Y9, Y0, Y0
	VMOVUPS      Y0, 672(DI)
	VPMOVZXBD    96(SI), Y0
	VPSRLD       $4, Y0, Y0
	VCVTDQ2PS    Y0, Y0
	VMULPS       Y8, Y0, Y0
	VSUBPS       Y9, Y0, Y0
	VMOVUPS      Y0, 704(DI)
	VPMOVZXBD    104(SI), Y0
	VPSRLD       $4, Y0, Y0
	VCVTDQ2PS    Y0, Y0
	VMULPS       Y8, Y0, Y0
	VSUBPS       Y9, Y0, Y0
	VMOVUPS      Y0, 736(DI)
	VBROADCASTSS 24(SP), Y8
	VBROADCASTSS 56(SP), Y9
	VPMOVZXBD    112(SI), Y0
	VPAND        Y15, Y0, Y0
	VCVTDQ2PS    Y0, Y0
	VMULPS       Y8, Y0, Y0
	VSUBPS       Y9, Y0, Y0
	VMOVUPS      Y0, 768(DI)
	VPMOVZXBD    120(SI), Y0
	VPAND        Y15, Y0, Y0
	VCVTDQ2PS    Y0, Y0
	VMULPS       Y8, Y0, Y0
	VSUBPS       Y9, Y0, Y0
	VMOVUPS      Y0, 800(DI)
	VPMOVZXBD    128(SI), Y0
	VPAND        Y15, Y0, Y0
	VCVTDQ2PS    Y0, Y0
	VMULPS       Y8, Y0, Y0
	VSUBPS       Y9, Y0, Y0
	VMOVUPS      Y0, 832(DI)
	VPMOVZXBD    136(SI), Y0
	VPAND        Y15, Y0, Y0
	VCVTDQ2PS    Y0, Y0
	VMULPS       Y8, Y0, Y0
	VSUBPS       Y9, Y0, Y0
	VMOVUPS      Y0, 864(DI)
	VBROADCASTSS 28(SP), Y8
	VBROADCASTSS 60(SP), Y9
	VPMOVZXBD    112(SI), Y0
	VPSRLD       $4, Y0, Y0
	VCVTDQ2PS    Y0, Y0
	VMULPS       Y8, Y0, Y0
	VSUBPS       Y9, Y0, Y0
	VMOVUPS      Y0, 896(DI)
	VPMOVZXBD    120(SI), Y0
	VPSRLD       $4, Y0, Y0
	VCVTDQ2PS    Y0, Y0
	VMULPS       Y8, Y0, Y0
	VSUBPS       Y9, Y0, Y0
	VMOVUPS      Y0, 928(DI)
	VPMOVZXBD    128(SI), Y0
	VPSRLD       $4, Y0, Y0
	VCVTDQ2PS    Y0, Y0
	VMULPS       Y8, Y0, Y0
	VSUBPS       Y9, Y0, Y0
	VMOVUPS      Y0, 960(DI)
	VPMOVZXBD    136(SI), Y0
	VPSRLD       $4, Y0, Y0
	VCVTDQ2PS    Y0, Y0
	VMULPS       Y8, Y0, Y0
	VSUBPS       Y9, Y0, Y0
	VMOVUPS      Y0, 992(DI)
	ADDQ         $144, SI
	ADDQ         $1024, DI
	DECQ         DX
	JNE          dq4kloop
	VZEROUPPER
	RET
