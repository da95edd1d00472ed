#include "textflag.h"
#include "kernels_amd64.h"

// Integer Q8_0 dot kernels for amd64 (q8x.go describes the scheme,
// q8x_amd64.go the Go signatures). x arrives quantized: cols/32 blocks of
// 36 bytes, 32 int8 values and an f32 scale dx. Per block and row:
//   u = |q_w| (VPABSB), s = q_x with the sign of q_w (VPSIGNB: 0 where
//   q_w = 0), t = Σ over groups of four of u·s in int32 (VPDPBUSD; without
//   VNNI VPMADDUBSW then VPMADDWD by ones, which cannot saturate since
//   |q_x| ≤ 127 and |u| ≤ 128), then acc += f32(t)·(dw·dx).
// All of it in 256-bit registers (a block is 32 bytes): on AMD Zen 4 a
// 512-bit operation costs two 256-bit ones, so nothing is gained by zmm.
// VPSIGNB has only a VEX form: its operands stay in Y0..Y15.
//
// gemvQ8IAVX512 (VNNI) splits the rows into eight lanes of rows/8
// consecutive rows and takes the next row of every lane per pass (eight
// sequential streams, as gemvQ8AVX512), then the rows%8 leftover rows one
// at a time. Registers: AX current row of lane 0; SI, R10, R11 row
// pointers advancing along the pass; R9 lane stride (row stride in the
// one-row loop); R8 blocks per row; DX blocks left; DI x, R12 x advancing;
// BX y, R13 lane stride of y; CX passes or rows left. Y0 the block's q_x,
// Y17 its dx broadcast; Z1..Z8 (used as Y1..Y8) row accumulators.
//
// gemvQ8IAVX2 takes four adjacent rows per pass, then one at a time (as
// gemvQ8AVX2): SI, R10, R11, AX rows; R9 row stride; Y0 q_x, Y1 dx, Y2
// sixteen int16 ones; Y12..Y15 accumulators.
//
// The gather kernels take four listed rows per pass (sparse_amd64.s
// registers: R8 list, CX entry, SI, R9, R10, R11 rows, R12, R13, R14, AX
// rows prefetched, DX byte offset in the rows, DI x, R15 x advancing, BX y).

// QIDOT adds one block of one row: scale at d, 32 weights at q; s must be
// below Y16 (VPSIGNB); u, t, f (fx its X register) are scratch; x in
// Y0, dx in DXV.
#define QIDOT(d, q, s, u, t, fx, f, DXV, acc) \
	VPABSB       q, u; \
	VPSIGNB      q, Y0, s; \
	VPXORD       t, t, t; \
	VPDPBUSD     s, u, t; \
	VPBROADCASTW d, fx; \
	VCVTPH2PS    fx, f; \
	VCVTDQ2PS    t, t; \
	VMULPS       DXV, f, f; \
	VFMADD231PS  f, t, acc

// QIDOT2 is QIDOT without VNNI (AVX2 registers only); ONES holds sixteen
// int16 ones.
#define QIDOT2(d, q, s, u, fx, f, DXV, ONES, acc) \
	VPABSB       q, u; \
	VPSIGNB      q, Y0, s; \
	VPMADDUBSW   s, u, u; \
	VPMADDWD     ONES, u, u; \
	VPBROADCASTW d, fx; \
	VCVTPH2PS    fx, f; \
	VCVTDQ2PS    u, u; \
	VMULPS       DXV, f, f; \
	VFMADD231PS  f, u, acc

// QIDOTS adds one block of one row whose combined scale dw·dx is the f32
// at sc (broadcast from memory: the scales of a pass's rows are converted
// together, see SCALES8): q the 32 weights; u, s below Y16; t scratch.
#define QIDOTS(q, u, s, t, sc, acc) \
	VMOVDQU          q, u; \
	VPSIGNB          u, Y0, s; \
	VPABSB           u, u; \
	VPXORD           t, t, t; \
	VPDPBUSD         s, u, t; \
	VCVTDQ2PS        t, t; \
	VFMADD231PS.BCST sc, t, acc

// SCALEW copies the f16 scale at m to the stack word at off(SP) through R.
#define SCALEW(m, R, off) \
	MOVWLZX m, R; \
	MOVW    R, off(SP)

// HSUM4 sums each of a, b, c, e (Y registers below Y16) horizontally into
// the four floats of the X register of a (clobbers b, c).
#define HSUM4(a, b, c, e, xa, xb) \
	VHADDPS      b, a, a; \
	VHADDPS      e, c, c; \
	VHADDPS      c, a, a; \
	VEXTRACTF128 $1, a, xb; \
	VADDPS       xb, xa, xa

// func gemvQ8IAVX512(w *byte, x *byte, y *float32, rows, cols int)
TEXT ·gemvQ8IAVX512(SB), NOSPLIT, $64-40
	MOVQ   w+0(FP), AX
	MOVQ   x+8(FP), DI
	MOVQ   y+16(FP), BX
	MOVQ   cols+32(FP), R8
	SHRQ   $5, R8
	IMUL3Q $34, R8, R9
	MOVQ   rows+24(FP), CX
	SHRQ   $3, CX
	JEQ    one
	MOVQ   CX, R13
	IMULQ  R13, R9
	SHLQ   $2, R13

eight:
	MOVQ   AX, SI
	LEAQ   (AX)(R9*2), R11
	LEAQ   (R11)(R9*1), R10
	MOVQ   DI, R12
	MOVQ   R8, DX
	VPXORD Z1, Z1, Z1
	VPXORD Z2, Z2, Z2
	VPXORD Z3, Z3, Z3
	VPXORD Z4, Z4, Z4
	VPXORD Z5, Z5, Z5
	VPXORD Z6, Z6, Z6
	VPXORD Z7, Z7, Z7
	VPXORD Z8, Z8, Z8

eightloop:
	VMOVDQU      (R12), Y0
	VBROADCASTSS 32(R12), Y17
	VPBROADCASTW (SI), X16
	VPINSRW      $1, (SI)(R9*1), X16, X16
	VPINSRW      $2, (R11), X16, X16
	VPINSRW      $3, (R10), X16, X16
	VPINSRW      $4, (SI)(R9*4), X16, X16
	VPINSRW      $5, (R10)(R9*2), X16, X16
	VPINSRW      $6, (R11)(R9*4), X16, X16
	VPINSRW      $7, (R10)(R9*4), X16, X16
	VCVTPH2PS    X16, Y16
	VMULPS       Y17, Y16, Y16
	VMOVUPS      Y16, 32(SP)
	QIDOTS(2(SI), Y9, Y10, Y18, 32(SP), Y1)
	QIDOTS(2(SI)(R9*1), Y11, Y12, Y19, 36(SP), Y2)
	QIDOTS(2(R11), Y13, Y14, Y20, 40(SP), Y3)
	QIDOTS(2(R10), Y9, Y10, Y21, 44(SP), Y4)
	QIDOTS(2(SI)(R9*4), Y11, Y12, Y22, 48(SP), Y5)
	QIDOTS(2(R10)(R9*2), Y13, Y14, Y23, 52(SP), Y6)
	QIDOTS(2(R11)(R9*4), Y9, Y10, Y24, 56(SP), Y7)
	QIDOTS(2(R10)(R9*4), Y11, Y12, Y25, 60(SP), Y8)
	ADDQ         $36, R12
	ADDQ         $34, SI
	ADDQ         $34, R10
	ADDQ         $34, R11
	DECQ         DX
	JNE          eightloop

	REDUCE8_512
	ADDQ   $4, BX
	IMUL3Q $34, R8, DX
	ADDQ   DX, AX
	DECQ   CX
	JNE    eight
	LEAQ   (AX)(R9*8), AX
	SUBQ   R9, AX
	LEAQ   (BX)(R13*8), BX
	SUBQ   R13, BX

one:
	MOVQ rows+24(FP), CX
	ANDQ $7, CX
	JEQ  done
	MOVQ AX, SI

onerow:
	VPXORD Y1, Y1, Y1
	VPXORD Y2, Y2, Y2
	MOVQ   DI, R12
	MOVQ   R8, DX

oneloop:
	VMOVDQU      (R12), Y0
	VBROADCASTSS 32(R12), Y17
	QIDOT((SI), 2(SI), Y9, Y18, Y19, X20, Y20, Y17, Y1)
	ADDQ         $36, R12
	ADDQ         $34, SI
	DECQ         DX
	JNE          oneloop

	VEXTRACTF128 $1, Y1, X2
	VADDPS       X2, X1, X1
	VHADDPS      X1, X1, X1
	VHADDPS      X1, X1, X1
	VMOVSS       X1, (BX)
	ADDQ         $4, BX
	DECQ         CX
	JNE          onerow

done:
	VZEROUPPER
	RET

// func gemvQ8IAVX2(w *byte, x *byte, y *float32, rows, cols int)
TEXT ·gemvQ8IAVX2(SB), NOSPLIT, $0-40
	MOVQ   w+0(FP), SI
	MOVQ   x+8(FP), DI
	MOVQ   y+16(FP), BX
	MOVQ   cols+32(FP), R8
	SHRQ   $5, R8
	IMUL3Q $34, R8, R9
	MOVL   $0x00010001, DX
	MOVQ   DX, X2
	VPBROADCASTD X2, Y2
	MOVQ   rows+24(FP), CX
	CMPQ   CX, $4
	JLT    one

four:
	LEAQ   (SI)(R9*1), R10
	LEAQ   (SI)(R9*2), R11
	LEAQ   (R10)(R9*2), AX
	MOVQ   DI, R12
	MOVQ   R8, DX
	VXORPS Y12, Y12, Y12
	VXORPS Y13, Y13, Y13
	VXORPS Y14, Y14, Y14
	VXORPS Y15, Y15, Y15

fourloop:
	VMOVDQU      (R12), Y0
	VBROADCASTSS 32(R12), Y1
	QIDOT2((SI), 2(SI), Y3, Y4, X5, Y5, Y1, Y2, Y12)
	QIDOT2((R10), 2(R10), Y6, Y7, X8, Y8, Y1, Y2, Y13)
	QIDOT2((R11), 2(R11), Y9, Y10, X11, Y11, Y1, Y2, Y14)
	QIDOT2((AX), 2(AX), Y3, Y4, X5, Y5, Y1, Y2, Y15)
	ADDQ         $36, R12
	ADDQ         $34, SI
	ADDQ         $34, R10
	ADDQ         $34, R11
	ADDQ         $34, AX
	DECQ         DX
	JNE          fourloop

	HSUM4(Y12, Y13, Y14, Y15, X12, X13)
	VMOVUPS X12, (BX)
	ADDQ    $16, BX
	MOVQ    AX, SI
	SUBQ    $4, CX
	CMPQ    CX, $4
	JGE     four

one:
	TESTQ CX, CX
	JEQ   done

onerow:
	VXORPS Y12, Y12, Y12
	MOVQ   DI, R12
	MOVQ   R8, DX

oneloop:
	VMOVDQU      (R12), Y0
	VBROADCASTSS 32(R12), Y1
	QIDOT2((SI), 2(SI), Y3, Y4, X5, Y5, Y1, Y2, Y12)
	ADDQ         $36, R12
	ADDQ         $34, SI
	DECQ         DX
	JNE          oneloop

	VEXTRACTF128 $1, Y12, X13
	VADDPS       X13, X12, X12
	VHADDPS      X12, X12, X12
	VHADDPS      X12, X12, X12
	VMOVSS       X12, (BX)
	ADDQ         $4, BX
	DECQ         CX
	JNE          onerow

done:
	VZEROUPPER
	RET

// PF4I prefetches the current block of the four prefetch rows.
#define PF4I \
	PREFETCHT0 (R12)(DX*1); \
	PREFETCHT0 (R13)(DX*1); \
	PREFETCHT0 (R14)(DX*1); \
	PREFETCHT0 (AX)(DX*1)

// func gatherQ8IAVX512(w unsafe.Pointer, stride int, x *byte, y *float32, rows *int32, n, pfd, cols int)
TEXT ·gatherQ8IAVX512(SB), NOSPLIT, $32-64
	MOVQ rows+32(FP), R8
	MOVQ x+16(FP), DI
	XORQ CX, CX

pass:
	PASSPTRS
	MOVQ   DI, R15
	VPXORD Y1, Y1, Y1
	VPXORD Y2, Y2, Y2
	VPXORD Y3, Y3, Y3
	VPXORD Y4, Y4, Y4

loop:
	VMOVDQU      (R15), Y0
	VBROADCASTSS 32(R15), X17
	PF4I
	VPBROADCASTW (SI)(DX*1), X16
	VPINSRW      $1, (R9)(DX*1), X16, X16
	VPINSRW      $2, (R10)(DX*1), X16, X16
	VPINSRW      $3, (R11)(DX*1), X16, X16
	VCVTPH2PS    X16, X16
	VMULPS       X17, X16, X16
	VMOVUPS      X16, 16(SP)
	QIDOTS(2(SI)(DX*1), Y9, Y10, Y18, 16(SP), Y1)
	QIDOTS(2(R9)(DX*1), Y11, Y12, Y19, 20(SP), Y2)
	QIDOTS(2(R10)(DX*1), Y13, Y14, Y20, 24(SP), Y3)
	QIDOTS(2(R11)(DX*1), Y9, Y10, Y21, 28(SP), Y4)
	ADDQ         $36, R15
	ADDQ         $34, DX
	CMPQ         DX, stride+8(FP)
	JLT          loop

	HSUM4(Y1, Y2, Y3, Y4, X1, X2)
	MOVQ    y+24(FP), BX
	VMOVUPS X1, (BX)(CX*4)
	ADDQ    $4, CX
	CMPQ    CX, n+40(FP)
	JLT     pass
	VZEROUPPER
	RET

// func gatherQ8IAVX2(w unsafe.Pointer, stride int, x *byte, y *float32, rows *int32, n, pfd, cols int)
TEXT ·gatherQ8IAVX2(SB), NOSPLIT, $0-64
	MOVQ rows+32(FP), R8
	MOVQ x+16(FP), DI
	MOVQ y+24(FP), BX
	MOVL $0x00010001, CX
	MOVQ CX, X2
	VPBROADCASTD X2, Y2
	XORQ CX, CX

pass:
	PASSPTRS
	MOVQ   DI, R15
	VXORPS Y12, Y12, Y12
	VXORPS Y13, Y13, Y13
	VXORPS Y14, Y14, Y14
	VXORPS Y15, Y15, Y15

loop:
	VMOVDQU      (R15), Y0
	VBROADCASTSS 32(R15), Y1
	PF4I
	QIDOT2((SI)(DX*1), 2(SI)(DX*1), Y3, Y4, X5, Y5, Y1, Y2, Y12)
	QIDOT2((R9)(DX*1), 2(R9)(DX*1), Y6, Y7, X8, Y8, Y1, Y2, Y13)
	QIDOT2((R10)(DX*1), 2(R10)(DX*1), Y9, Y10, X11, Y11, Y1, Y2, Y14)
	QIDOT2((R11)(DX*1), 2(R11)(DX*1), Y3, Y4, X5, Y5, Y1, Y2, Y15)
	ADDQ         $36, R15
	ADDQ         $34, DX
	CMPQ         DX, stride+8(FP)
	JLT          loop

	HSUM4(Y12, Y13, Y14, Y15, X12, X13)
	VMOVUPS X12, (BX)
	ADDQ    $16, BX
	ADDQ    $4, CX
	CMPQ    CX, n+40(FP)
	JLT     pass
	VZEROUPPER
	RET

// ---------------------------------------------------------------- quantize x

// Both quantize blocks of 32 floats at x into 36-byte blocks at dst as
// quantizeX does: amax = max|x|, d = amax/127, id = 1/d (0 if d = 0),
// q = x·id rounded to nearest even (VCVTPS2DQ under the default MXCSR).

// func quantizeXAVX512(x *float32, dst *byte, blocks int)
TEXT ·quantizeXAVX512(SB), NOSPLIT, $0-24
	MOVQ         x+0(FP), SI
	MOVQ         dst+8(FP), DI
	MOVQ         blocks+16(FP), CX
	MOVL         $0x7fffffff, AX
	VPBROADCASTD AX, Z31
	MOVL         $0x42fe0000, AX // 127
	VMOVD        AX, X30
	MOVL         $0x3f800000, AX // 1
	VMOVD        AX, X29
	VXORPS       X28, X28, X28

qloop:
	VMOVUPS       (SI), Z0
	VMOVUPS       64(SI), Z1
	VANDPS        Z31, Z0, Z2
	VANDPS        Z31, Z1, Z3
	VMAXPS        Z3, Z2, Z2
	VEXTRACTF64X4 $1, Z2, Y3
	VMAXPS        Y3, Y2, Y2
	VEXTRACTF128  $1, Y2, X3
	VMAXPS        X3, X2, X2
	VPERMILPS     $0x4e, X2, X3
	VMAXPS        X3, X2, X2
	VPERMILPS     $0xb1, X2, X3
	VMAXPS        X3, X2, X2
	VDIVSS        X30, X2, X4
	VMOVSS        X4, 32(DI)
	VDIVSS        X4, X29, X5
	VCMPSS        $4, X28, X4, K2
	VMOVSS.Z      X5, X5, K2, X5
	VBROADCASTSS  X5, Z5
	VMULPS        Z5, Z0, Z0
	VMULPS        Z5, Z1, Z1
	VCVTPS2DQ     Z0, Z0
	VCVTPS2DQ     Z1, Z1
	VPMOVSDB      Z0, X0
	VPMOVSDB      Z1, X1
	VMOVDQU       X0, (DI)
	VMOVDQU       X1, 16(DI)
	ADDQ          $128, SI
	ADDQ          $36, DI
	DECQ          CX
	JNE           qloop
	VZEROUPPER
	RET

DATA q8xperm<>+0(SB)/4, $0
DATA q8xperm<>+4(SB)/4, $4
DATA q8xperm<>+8(SB)/4, $1
DATA q8xperm<>+12(SB)/4, $5
DATA q8xperm<>+16(SB)/4, $2
DATA q8xperm<>+20(SB)/4, $6
DATA q8xperm<>+24(SB)/4, $3
DATA q8xperm<>+28(SB)/4, $7
GLOBL q8xperm<>(SB), RODATA|NOPTR, $32

// func quantizeXAVX2(x *float32, dst *byte, blocks int)
TEXT ·quantizeXAVX2(SB), NOSPLIT, $0-24
	MOVQ         x+0(FP), SI
	MOVQ         dst+8(FP), DI
	MOVQ         blocks+16(FP), CX
	MOVL         $0x7fffffff, AX
	MOVQ         AX, X15
	VPBROADCASTD X15, Y15
	MOVL         $0x42fe0000, AX
	MOVQ         AX, X14
	MOVL         $0x3f800000, AX
	MOVQ         AX, X13
	VMOVDQU      q8xperm<>(SB), Y12
	VXORPS       X11, X11, X11

qloop:
	VMOVUPS      (SI), Y0
	VMOVUPS      32(SI), Y1
	VMOVUPS      64(SI), Y2
	VMOVUPS      96(SI), Y3
	VANDPS       Y15, Y0, Y4
	VANDPS       Y15, Y1, Y5
	VMAXPS       Y5, Y4, Y4
	VANDPS       Y15, Y2, Y5
	VMAXPS       Y5, Y4, Y4
	VANDPS       Y15, Y3, Y5
	VMAXPS       Y5, Y4, Y4
	VEXTRACTF128 $1, Y4, X5
	VMAXPS       X5, X4, X4
	VPERMILPS    $0x4e, X4, X5
	VMAXPS       X5, X4, X4
	VPERMILPS    $0xb1, X4, X5
	VMAXPS       X5, X4, X4
	VDIVSS       X14, X4, X6
	VMOVSS       X6, 32(DI)
	VDIVSS       X6, X13, X7
	VCMPSS       $4, X11, X6, X8
	VANDPS       X8, X7, X7
	VBROADCASTSS X7, Y7
	VMULPS       Y7, Y0, Y0
	VMULPS       Y7, Y1, Y1
	VMULPS       Y7, Y2, Y2
	VMULPS       Y7, Y3, Y3
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
	ADDQ         $36, DI
	DECQ         CX
	JNE          qloop
	VZEROUPPER
	RET

// func gather8Q8IAVX512(w unsafe.Pointer, stride int, x *byte, y *float32, rows *int32, n, pfd, cols int)
//
// gatherQ8IAVX512 over eight listed rows per pass (n a multiple of 8, no
// prefetch: for rows the hardware prefetchers follow), as the eight-row
// f16 kernels of sparse_amd64.s: rows SI, R9, R10, R11, R12, R13, R14, AX;
// the pass's eight combined scales at 0(SP).
TEXT ·gather8Q8IAVX512(SB), NOSPLIT, $32-64
	MOVQ rows+32(FP), R8
	MOVQ x+16(FP), DI
	XORQ CX, CX

pass:
	PASSPTRS8
	MOVQ   DI, R15
	VPXORD Z1, Z1, Z1
	VPXORD Z2, Z2, Z2
	VPXORD Z3, Z3, Z3
	VPXORD Z4, Z4, Z4
	VPXORD Z5, Z5, Z5
	VPXORD Z6, Z6, Z6
	VPXORD Z7, Z7, Z7
	VPXORD Z8, Z8, Z8

loop:
	VMOVDQU      (R15), Y0
	VBROADCASTSS 32(R15), Y17
	VPBROADCASTW (SI)(DX*1), X16
	VPINSRW      $1, (R9)(DX*1), X16, X16
	VPINSRW      $2, (R10)(DX*1), X16, X16
	VPINSRW      $3, (R11)(DX*1), X16, X16
	VPINSRW      $4, (R12)(DX*1), X16, X16
	VPINSRW      $5, (R13)(DX*1), X16, X16
	VPINSRW      $6, (R14)(DX*1), X16, X16
	VPINSRW      $7, (AX)(DX*1), X16, X16
	VCVTPH2PS    X16, Y16
	VMULPS       Y17, Y16, Y16
	VMOVUPS      Y16, (SP)
	QIDOTS(2(SI)(DX*1), Y9, Y10, Y18, 0(SP), Y1)
	QIDOTS(2(R9)(DX*1), Y11, Y12, Y19, 4(SP), Y2)
	QIDOTS(2(R10)(DX*1), Y13, Y14, Y20, 8(SP), Y3)
	QIDOTS(2(R11)(DX*1), Y9, Y10, Y21, 12(SP), Y4)
	QIDOTS(2(R12)(DX*1), Y11, Y12, Y22, 16(SP), Y5)
	QIDOTS(2(R13)(DX*1), Y13, Y14, Y23, 20(SP), Y6)
	QIDOTS(2(R14)(DX*1), Y9, Y10, Y24, 24(SP), Y7)
	QIDOTS(2(AX)(DX*1), Y11, Y12, Y25, 28(SP), Y8)
	ADDQ         $36, R15
	ADDQ         $34, DX
	CMPQ         DX, stride+8(FP)
	JLT          loop

	MOVQ y+24(FP), BX
	LEAQ (BX)(CX*4), BX
	MOVQ $4, R13
	REDUCE8_512
	ADDQ $8, CX
	CMPQ CX, n+40(FP)
	JLT  pass
	VZEROUPPER
	RET

// func accum8Q8AVX512(w unsafe.Pointer, stride int, y, a *float32, rows *int32, n, pfd, cols int)
//
// The Q8_0 accumulate over eight listed rows per pass (n a multiple of 8,
// no prefetch), in 256-bit registers: per 32 columns, y in Y0..Y3 takes
// rows 0-3 and Y4..Y7 (started by a multiply) rows 4-7, each row's 32
// int8 weights sign-extended (VPMOVSXBD) and converted to f32, times its
// coefficient a[k]·dw (the eight per pass converted and multiplied
// together, then broadcast from the stack). Rows SI, R9, R10, R11, R12,
// R13, R14, AX; DX byte offset in the rows; R15 y advancing; Y17 the
// pass's eight coefficients.
#define QAXPY8(r, sc, t0, t1, t2, t3, FMA, a0, a1, a2, a3) \
	VPMOVSXBD   2(r)(DX*1), t0; \
	VPMOVSXBD   10(r)(DX*1), t1; \
	VPMOVSXBD   18(r)(DX*1), t2; \
	VPMOVSXBD   26(r)(DX*1), t3; \
	VCVTDQ2PS   t0, t0; \
	VCVTDQ2PS   t1, t1; \
	VCVTDQ2PS   t2, t2; \
	VCVTDQ2PS   t3, t3; \
	FMA         sc, t0, a0; \
	FMA         sc, t1, a1; \
	FMA         sc, t2, a2; \
	FMA         sc, t3, a3

TEXT ·accum8Q8AVX512(SB), NOSPLIT, $32-64
	MOVQ rows+32(FP), R8
	XORQ CX, CX

pass:
	PASSPTRS8
	MOVQ    a+24(FP), BX
	VMOVUPS (BX)(CX*4), Y17
	MOVQ    y+16(FP), R15

loop:
	VPBROADCASTW (SI)(DX*1), X16
	VPINSRW      $1, (R9)(DX*1), X16, X16
	VPINSRW      $2, (R10)(DX*1), X16, X16
	VPINSRW      $3, (R11)(DX*1), X16, X16
	VPINSRW      $4, (R12)(DX*1), X16, X16
	VPINSRW      $5, (R13)(DX*1), X16, X16
	VPINSRW      $6, (R14)(DX*1), X16, X16
	VPINSRW      $7, (AX)(DX*1), X16, X16
	VCVTPH2PS    X16, Y16
	VMULPS       Y17, Y16, Y16
	VMOVUPS      Y16, (SP)
	VMOVUPS      (R15), Y0
	VMOVUPS      32(R15), Y1
	VMOVUPS      64(R15), Y2
	VMOVUPS      96(R15), Y3
	QAXPY8(SI, 0(SP), Y8, Y9, Y10, Y11, VFMADD231PS.BCST, Y0, Y1, Y2, Y3)
	QAXPY8(R12, 16(SP), Y18, Y19, Y20, Y21, VMULPS.BCST, Y4, Y5, Y6, Y7)
	QAXPY8(R9, 4(SP), Y8, Y9, Y10, Y11, VFMADD231PS.BCST, Y0, Y1, Y2, Y3)
	QAXPY8(R13, 20(SP), Y18, Y19, Y20, Y21, VFMADD231PS.BCST, Y4, Y5, Y6, Y7)
	QAXPY8(R10, 8(SP), Y8, Y9, Y10, Y11, VFMADD231PS.BCST, Y0, Y1, Y2, Y3)
	QAXPY8(R14, 24(SP), Y18, Y19, Y20, Y21, VFMADD231PS.BCST, Y4, Y5, Y6, Y7)
	QAXPY8(R11, 12(SP), Y8, Y9, Y10, Y11, VFMADD231PS.BCST, Y0, Y1, Y2, Y3)
	QAXPY8(AX, 28(SP), Y18, Y19, Y20, Y21, VFMADD231PS.BCST, Y4, Y5, Y6, Y7)
	VADDPS       Y4, Y0, Y0
	VADDPS       Y5, Y1, Y1
	VADDPS       Y6, Y2, Y2
	VADDPS       Y7, Y3, Y3
	VMOVUPS      Y0, (R15)
	VMOVUPS      Y1, 32(R15)
	VMOVUPS      Y2, 64(R15)
	VMOVUPS      Y3, 96(R15)
	ADDQ         $128, R15
	ADDQ         $34, DX
	CMPQ         DX, stride+8(FP)
	JLT          loop

	ADDQ $8, CX
	CMPQ CX, n+40(FP)
	JLT  pass
	VZEROUPPER
	RET
