#include "textflag.h"
#include "kernels_amd64.h"

// Q8_0 kernels for amd64 (see q8_amd64.go for the Go signatures). A row is
// cols/32 blocks of 34 bytes: an f16 scale d at offset 0, then 32 int8 q at
// offsets 2..33. Per block and row the kernels sign-extend the int8s to
// int32 (VPMOVSXBD), convert them to f32 (VCVTDQ2PS), and
//   - dot kernels (gemv, gather): form the 16 (8) lane partial products
//     q·x of the block, then add them times the broadcast scale into the
//     row's accumulator (one FMA by d per block);
//   - accumulate kernels: multiply the scale by the row's coefficient a[k]
//     and add q·(a[k]·d) into y.
//
// gemvQ8AVX512 splits the rows into eight lanes of rows/8 consecutive rows
// and takes the next row of every lane per pass (eight sequential streams,
// as gemv_amd64.s does), then the rows%8 leftover rows one at a time;
// gemvQ8AVX2 takes four adjacent rows per pass, then one at a time. The
// sparse kernels take four listed rows per pass, sharing every load of x
// (gather) or y (accumulate), and prefetch the rows pfd list entries ahead
// at the same offset; each listed row is read for stride bytes (whole rows:
// stride = cols/32·34).
//
// Registers of the AVX-512 gemv: AX current row of lane 0; SI, R10, R11
// row pointers advancing along the pass (lanes as in gemv_amd64.s); R9 lane
// stride (row stride in the one-row loop); R8 blocks per row; DX blocks
// left; DI x, R12 x advancing; BX y, R13 lane stride of y; CX passes or
// rows left. Z0, Z17 the 32 inputs of the block; Z1..Z8 accumulators.
//
// Sparse kernels (as sparse_amd64.s): R8 the row list, CX the pass's first
// entry, SI, R9, R10, R11 the pass's rows, R12, R13, R14, AX the rows
// prefetched, DX byte offset in the rows, DI x (gather) or y (accumulate),
// R15 x or y advancing, BX y (gather) or a (accumulate).

// Q8DOT512 adds d·Σ q·x of one block into acc, with the scale at dq, the
// two 16-byte halves of q at q0, q1 and x in Z0, Z17 (clobbers Z9..Z11).
#define Q8DOT512(dq, q0, q1, acc) \
	VPMOVSXBD    q0, Z9; \
	VPMOVSXBD    q1, Z10; \
	VPBROADCASTW dq, Y11; \
	VCVTDQ2PS    Z9, Z9; \
	VCVTDQ2PS    Z10, Z10; \
	VCVTPH2PS    Y11, Z11; \
	VMULPS       Z0, Z9, Z9; \
	VFMADD231PS  Z17, Z10, Z9; \
	VFMADD231PS  Z11, Z9, acc

// Q8AXPY512 adds a·d·q of one block into y in Z0, Z17, with the scale at
// dq, q at q0, q1 and a broadcast in register a (clobbers Z9..Z11).
#define Q8AXPY512(dq, q0, q1, a) \
	VPBROADCASTW dq, Y11; \
	VPMOVSXBD    q0, Z9; \
	VPMOVSXBD    q1, Z10; \
	VCVTPH2PS    Y11, Z11; \
	VCVTDQ2PS    Z9, Z9; \
	VCVTDQ2PS    Z10, Z10; \
	VMULPS       a, Z11, Z11; \
	VFMADD231PS  Z11, Z9, Z0; \
	VFMADD231PS  Z11, Z10, Z17

// Q8DOT256 adds d·Σ q·x of one block into acc, with the scale at dq, the
// four 8-byte quarters of q at q0..q3 and x in Y12..Y15 (clobbers Y8..Y11).
#define Q8DOT256(dq, q0, q1, q2, q3, acc) \
	VPMOVSXBD    q0, Y8; \
	VPMOVSXBD    q1, Y9; \
	VPMOVSXBD    q2, Y10; \
	VPMOVSXBD    q3, Y11; \
	VCVTDQ2PS    Y8, Y8; \
	VCVTDQ2PS    Y9, Y9; \
	VCVTDQ2PS    Y10, Y10; \
	VCVTDQ2PS    Y11, Y11; \
	VMULPS       Y12, Y8, Y8; \
	VFMADD231PS  Y13, Y9, Y8; \
	VFMADD231PS  Y14, Y10, Y8; \
	VFMADD231PS  Y15, Y11, Y8; \
	VPBROADCASTW dq, X9; \
	VCVTPH2PS    X9, Y9; \
	VFMADD231PS  Y9, Y8, acc

// Q8AXPY256 adds a·d·q of one block into y in Y12..Y15, with the scale at
// dq, q at q0..q3 and a broadcast in register a (clobbers Y8..Y11).
#define Q8AXPY256(dq, q0, q1, q2, q3, a) \
	VPBROADCASTW dq, X8; \
	VPMOVSXBD    q0, Y9; \
	VPMOVSXBD    q1, Y10; \
	VPMOVSXBD    q2, Y11; \
	VCVTPH2PS    X8, Y8; \
	VCVTDQ2PS    Y9, Y9; \
	VCVTDQ2PS    Y10, Y10; \
	VCVTDQ2PS    Y11, Y11; \
	VMULPS       a, Y8, Y8; \
	VFMADD231PS  Y8, Y9, Y12; \
	VFMADD231PS  Y8, Y10, Y13; \
	VFMADD231PS  Y8, Y11, Y14; \
	VPMOVSXBD    q3, Y9; \
	VCVTDQ2PS    Y9, Y9; \
	VFMADD231PS  Y8, Y9, Y15

// REDUCE4_512 sums each of Z1..Z4 horizontally into X1 = the four rows.
#define REDUCE4_512 \
	VEXTRACTF64X4 $1, Z1, Y5; \
	VEXTRACTF64X4 $1, Z2, Y6; \
	VEXTRACTF64X4 $1, Z3, Y7; \
	VEXTRACTF64X4 $1, Z4, Y8; \
	VADDPS        Y5, Y1, Y1; \
	VADDPS        Y6, Y2, Y2; \
	VADDPS        Y7, Y3, Y3; \
	VADDPS        Y8, Y4, Y4; \
	VHADDPS       Y2, Y1, Y1; \
	VHADDPS       Y4, Y3, Y3; \
	VHADDPS       Y3, Y1, Y1; \
	VEXTRACTF128  $1, Y1, X2; \
	VADDPS        X2, X1, X1

// REDUCE4_256 sums each of Y0..Y3 horizontally into X0 = the four rows.
#define REDUCE4_256 \
	VHADDPS      Y1, Y0, Y0; \
	VHADDPS      Y3, Y2, Y2; \
	VHADDPS      Y2, Y0, Y0; \
	VEXTRACTF128 $1, Y0, X1; \
	VADDPS       X1, X0, X0

// PF4 prefetches the current block of the four prefetch rows.
#define PF4 \
	PREFETCHT0 (R12)(DX*1); \
	PREFETCHT0 (R13)(DX*1); \
	PREFETCHT0 (R14)(DX*1); \
	PREFETCHT0 (AX)(DX*1)

// ---------------------------------------------------------------- AVX-512

// func gemvQ8AVX512(w *byte, x, y *float32, rows, cols int)
TEXT ·gemvQ8AVX512(SB), NOSPLIT, $0-40
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
	VMOVUPS (R12), Z0
	VMOVUPS 64(R12), Z17
	Q8DOT512((SI), 2(SI), 18(SI), Z1)
	Q8DOT512((SI)(R9*1), 2(SI)(R9*1), 18(SI)(R9*1), Z2)
	Q8DOT512((R11), 2(R11), 18(R11), Z3)
	Q8DOT512((R10), 2(R10), 18(R10), Z4)
	Q8DOT512((SI)(R9*4), 2(SI)(R9*4), 18(SI)(R9*4), Z5)
	Q8DOT512((R10)(R9*2), 2(R10)(R9*2), 18(R10)(R9*2), Z6)
	Q8DOT512((R11)(R9*4), 2(R11)(R9*4), 18(R11)(R9*4), Z7)
	Q8DOT512((R10)(R9*4), 2(R10)(R9*4), 18(R10)(R9*4), Z8)
	ADDQ    $128, R12
	ADDQ    $34, SI
	ADDQ    $34, R10
	ADDQ    $34, R11
	DECQ    DX
	JNE     eightloop

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
	VPXORD Z1, Z1, Z1
	MOVQ   DI, R12
	MOVQ   R8, DX

oneloop:
	VMOVUPS (R12), Z0
	VMOVUPS 64(R12), Z17
	Q8DOT512((SI), 2(SI), 18(SI), Z1)
	ADDQ    $128, R12
	ADDQ    $34, SI
	DECQ    DX
	JNE     oneloop

	VEXTRACTF64X4 $1, Z1, Y2
	VADDPS        Y2, Y1, Y1
	VEXTRACTF128  $1, Y1, X2
	VADDPS        X2, X1, X1
	VHADDPS       X1, X1, X1
	VHADDPS       X1, X1, X1
	VMOVSS        X1, (BX)
	ADDQ          $4, BX
	DECQ          CX
	JNE           onerow

done:
	VZEROUPPER
	RET

// func gatherQ8AVX512(w unsafe.Pointer, stride int, x, y *float32, rows *int32, n, pfd, cols int)
TEXT ·gatherQ8AVX512(SB), NOSPLIT, $0-64
	MOVQ rows+32(FP), R8
	MOVQ x+16(FP), DI
	MOVQ y+24(FP), BX
	XORQ CX, CX

pass:
	PASSPTRS
	MOVQ   DI, R15
	VPXORD Z1, Z1, Z1
	VPXORD Z2, Z2, Z2
	VPXORD Z3, Z3, Z3
	VPXORD Z4, Z4, Z4

loop:
	VMOVUPS (R15), Z0
	VMOVUPS 64(R15), Z17
	PF4
	Q8DOT512((SI)(DX*1), 2(SI)(DX*1), 18(SI)(DX*1), Z1)
	Q8DOT512((R9)(DX*1), 2(R9)(DX*1), 18(R9)(DX*1), Z2)
	Q8DOT512((R10)(DX*1), 2(R10)(DX*1), 18(R10)(DX*1), Z3)
	Q8DOT512((R11)(DX*1), 2(R11)(DX*1), 18(R11)(DX*1), Z4)
	ADDQ    $128, R15
	ADDQ    $34, DX
	CMPQ    DX, stride+8(FP)
	JLT     loop

	REDUCE4_512
	VMOVUPS X1, (BX)
	ADDQ    $16, BX
	ADDQ    $4, CX
	CMPQ    CX, n+40(FP)
	JLT     pass
	VZEROUPPER
	RET

// func accumQ8AVX512(w unsafe.Pointer, stride int, y, a *float32, rows *int32, n, pfd, cols int)
TEXT ·accumQ8AVX512(SB), NOSPLIT, $0-64
	MOVQ rows+32(FP), R8
	MOVQ y+16(FP), DI
	MOVQ a+24(FP), BX
	XORQ CX, CX

pass:
	PASSPTRS
	VBROADCASTSS 0(BX)(CX*4), Z20
	VBROADCASTSS 4(BX)(CX*4), Z21
	VBROADCASTSS 8(BX)(CX*4), Z22
	VBROADCASTSS 12(BX)(CX*4), Z23
	MOVQ         DI, R15

loop:
	VMOVUPS (R15), Z0
	VMOVUPS 64(R15), Z17
	PF4
	Q8AXPY512((SI)(DX*1), 2(SI)(DX*1), 18(SI)(DX*1), Z20)
	Q8AXPY512((R9)(DX*1), 2(R9)(DX*1), 18(R9)(DX*1), Z21)
	Q8AXPY512((R10)(DX*1), 2(R10)(DX*1), 18(R10)(DX*1), Z22)
	Q8AXPY512((R11)(DX*1), 2(R11)(DX*1), 18(R11)(DX*1), Z23)
	VMOVUPS Z0, (R15)
	VMOVUPS Z17, 64(R15)
	ADDQ    $128, R15
	ADDQ    $34, DX
	CMPQ    DX, stride+8(FP)
	JLT     loop

	ADDQ $4, CX
	CMPQ CX, n+40(FP)
	JLT  pass
	VZEROUPPER
	RET

// ---------------------------------------------------------------- AVX2

// func gemvQ8AVX2(w *byte, x, y *float32, rows, cols int)
TEXT ·gemvQ8AVX2(SB), NOSPLIT, $0-40
	MOVQ   w+0(FP), SI
	MOVQ   x+8(FP), DI
	MOVQ   y+16(FP), BX
	MOVQ   cols+32(FP), R8
	SHRQ   $5, R8
	IMUL3Q $34, R8, R9
	MOVQ   rows+24(FP), CX
	CMPQ   CX, $4
	JLT    one

four:
	LEAQ   (SI)(R9*1), R10
	LEAQ   (SI)(R9*2), R11
	LEAQ   (R10)(R9*2), AX
	MOVQ   DI, R12
	MOVQ   R8, DX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3

fourloop:
	VMOVUPS (R12), Y12
	VMOVUPS 32(R12), Y13
	VMOVUPS 64(R12), Y14
	VMOVUPS 96(R12), Y15
	Q8DOT256((SI), 2(SI), 10(SI), 18(SI), 26(SI), Y0)
	Q8DOT256((R10), 2(R10), 10(R10), 18(R10), 26(R10), Y1)
	Q8DOT256((R11), 2(R11), 10(R11), 18(R11), 26(R11), Y2)
	Q8DOT256((AX), 2(AX), 10(AX), 18(AX), 26(AX), Y3)
	ADDQ    $128, R12
	ADDQ    $34, SI
	ADDQ    $34, R10
	ADDQ    $34, R11
	ADDQ    $34, AX
	DECQ    DX
	JNE     fourloop

	REDUCE4_256
	VMOVUPS X0, (BX)
	ADDQ    $16, BX
	MOVQ    AX, SI
	SUBQ    $4, CX
	CMPQ    CX, $4
	JGE     four

one:
	TESTQ CX, CX
	JEQ   done

onerow:
	VXORPS Y0, Y0, Y0
	MOVQ   DI, R12
	MOVQ   R8, DX

oneloop:
	VMOVUPS (R12), Y12
	VMOVUPS 32(R12), Y13
	VMOVUPS 64(R12), Y14
	VMOVUPS 96(R12), Y15
	Q8DOT256((SI), 2(SI), 10(SI), 18(SI), 26(SI), Y0)
	ADDQ    $128, R12
	ADDQ    $34, SI
	DECQ    DX
	JNE     oneloop

	VEXTRACTF128 $1, Y0, X1
	VADDPS       X1, X0, X0
	VHADDPS      X0, X0, X0
	VHADDPS      X0, X0, X0
	VMOVSS       X0, (BX)
	ADDQ         $4, BX
	DECQ         CX
	JNE          onerow

done:
	VZEROUPPER
	RET

// func gatherQ8AVX2(w unsafe.Pointer, stride int, x, y *float32, rows *int32, n, pfd, cols int)
TEXT ·gatherQ8AVX2(SB), NOSPLIT, $0-64
	MOVQ rows+32(FP), R8
	MOVQ x+16(FP), DI
	MOVQ y+24(FP), BX
	XORQ CX, CX

pass:
	PASSPTRS
	MOVQ   DI, R15
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3

loop:
	VMOVUPS (R15), Y12
	VMOVUPS 32(R15), Y13
	VMOVUPS 64(R15), Y14
	VMOVUPS 96(R15), Y15
	PF4
	Q8DOT256((SI)(DX*1), 2(SI)(DX*1), 10(SI)(DX*1), 18(SI)(DX*1), 26(SI)(DX*1), Y0)
	Q8DOT256((R9)(DX*1), 2(R9)(DX*1), 10(R9)(DX*1), 18(R9)(DX*1), 26(R9)(DX*1), Y1)
	Q8DOT256((R10)(DX*1), 2(R10)(DX*1), 10(R10)(DX*1), 18(R10)(DX*1), 26(R10)(DX*1), Y2)
	Q8DOT256((R11)(DX*1), 2(R11)(DX*1), 10(R11)(DX*1), 18(R11)(DX*1), 26(R11)(DX*1), Y3)
	ADDQ    $128, R15
	ADDQ    $34, DX
	CMPQ    DX, stride+8(FP)
	JLT     loop

	REDUCE4_256
	VMOVUPS X0, (BX)
	ADDQ    $16, BX
	ADDQ    $4, CX
	CMPQ    CX, n+40(FP)
	JLT     pass
	VZEROUPPER
	RET

// func accumQ8AVX2(w unsafe.Pointer, stride int, y, a *float32, rows *int32, n, pfd, cols int)
TEXT ·accumQ8AVX2(SB), NOSPLIT, $0-64
	MOVQ rows+32(FP), R8
	MOVQ y+16(FP), DI
	MOVQ a+24(FP), BX
	XORQ CX, CX

pass:
	PASSPTRS
	VBROADCASTSS 0(BX)(CX*4), Y4
	VBROADCASTSS 4(BX)(CX*4), Y5
	VBROADCASTSS 8(BX)(CX*4), Y6
	VBROADCASTSS 12(BX)(CX*4), Y7
	MOVQ         DI, R15

loop:
	VMOVUPS (R15), Y12
	VMOVUPS 32(R15), Y13
	VMOVUPS 64(R15), Y14
	VMOVUPS 96(R15), Y15
	PF4
	Q8AXPY256((SI)(DX*1), 2(SI)(DX*1), 10(SI)(DX*1), 18(SI)(DX*1), 26(SI)(DX*1), Y4)
	Q8AXPY256((R9)(DX*1), 2(R9)(DX*1), 10(R9)(DX*1), 18(R9)(DX*1), 26(R9)(DX*1), Y5)
	Q8AXPY256((R10)(DX*1), 2(R10)(DX*1), 10(R10)(DX*1), 18(R10)(DX*1), 26(R10)(DX*1), Y6)
	Q8AXPY256((R11)(DX*1), 2(R11)(DX*1), 10(R11)(DX*1), 18(R11)(DX*1), 26(R11)(DX*1), Y7)
	VMOVUPS Y12, (R15)
	VMOVUPS Y13, 32(R15)
	VMOVUPS Y14, 64(R15)
	VMOVUPS Y15, 96(R15)
	ADDQ    $128, R15
	ADDQ    $34, DX
	CMPQ    DX, stride+8(FP)
	JLT     loop

	ADDQ $4, CX
	CMPQ CX, n+40(FP)
	JLT  pass
	VZEROUPPER
	RET

// ---------------------------------------------------------------- dequantize

// func dequantQ8AVX512(w *byte, dst *float32, blocks int)
TEXT ·dequantQ8AVX512(SB), NOSPLIT, $0-24
	MOVQ w+0(FP), SI
	MOVQ dst+8(FP), DI
	MOVQ blocks+16(FP), CX

dqloop:
	VPBROADCASTW (SI), Y11
	VPMOVSXBD    2(SI), Z9
	VPMOVSXBD    18(SI), Z10
	VCVTPH2PS    Y11, Z11
	VCVTDQ2PS    Z9, Z9
	VCVTDQ2PS    Z10, Z10
	VMULPS       Z11, Z9, Z9
	VMULPS       Z11, Z10, Z10
	VMOVUPS      Z9, (DI)
	VMOVUPS      Z10, 64(DI)
	ADDQ         $34, SI
	ADDQ         $128, DI
	DECQ         CX
	JNE          dqloop
	VZEROUPPER
	RET

// func dequantQ8AVX2(w *byte, dst *float32, blocks int)
TEXT ·dequantQ8AVX2(SB), NOSPLIT, $0-24
	MOVQ w+0(FP), SI
	MOVQ dst+8(FP), DI
	MOVQ blocks+16(FP), CX

dqloop:
	VPBROADCASTW (SI), X8
	VCVTPH2PS    X8, Y8
	VPMOVSXBD    2(SI), Y9
	VPMOVSXBD    10(SI), Y10
	VPMOVSXBD    18(SI), Y11
	VPMOVSXBD    26(SI), Y12
	VCVTDQ2PS    Y9, Y9
	VCVTDQ2PS    Y10, Y10
	VCVTDQ2PS    Y11, Y11
	VCVTDQ2PS    Y12, Y12
	VMULPS       Y8, Y9, Y9
	VMULPS       Y8, Y10, Y10
	VMULPS       Y8, Y11, Y11
	VMULPS       Y8, Y12, Y12
	VMOVUPS      Y9, (DI)
	VMOVUPS      Y10, 32(DI)
	VMOVUPS      Y11, 64(DI)
	VMOVUPS      Y12, 96(DI)
	ADDQ         $34, SI
	ADDQ         $128, DI
	DECQ         CX
	JNE          dqloop
	VZEROUPPER
	RET
