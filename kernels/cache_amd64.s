#include "textflag.h"

// HSUM4 sums each of the four ymm registers ya..yd horizontally and
// stores the four sums at dst (xa, xb: the X halves of ya and yb; clobbers
// ya..yd).
#define HSUM4(ya, yb, yc, yd, xa, xb, dst) \
	VHADDPS      yb, ya, ya; \
	VHADDPS      yd, yc, yc; \
	VHADDPS      yc, ya, ya; \
	VEXTRACTF128 $1, ya, xb; \
	VADDPS       xb, xa, xa; \
	VMOVUPS      xa, dst

// REDUCE4 is HSUM4 of four zmm accumulators za..zd (whose Y halves are
// ya..yd) after folding their upper halves in (clobbers Y9-Y12).
#define REDUCE4(za, zb, zc, zd, ya, yb, yc, yd, xa, xb, dst) \
	VEXTRACTF64X4 $1, za, Y9; \
	VEXTRACTF64X4 $1, zb, Y10; \
	VEXTRACTF64X4 $1, zc, Y11; \
	VEXTRACTF64X4 $1, zd, Y12; \
	VADDPS        Y9, ya, ya; \
	VADDPS        Y10, yb, yb; \
	VADDPS        Y11, yc, yc; \
	VADDPS        Y12, yd, yd; \
	HSUM4(ya, yb, yc, yd, xa, xb, dst)

// func gemv2F16AVX512(w *uint16, x0, x1, y0, y1 *float32, rows, cols int)
//
// y0[i] = row i · x0 and y1[i] = row i · x1 for i < rows over rows×cols f16
// weights at w: eight rows per pass (eight memory streams, as the one-input
// kernels), each weight converted once and multiplied with both inputs.
// rows is a multiple of 8, cols of 16 (> 0).
//
// Rows of a pass: 0 (SI), 1 (SI)(R9*1), 2 (SI)(R9*2), 3 (R10), 4
// (SI)(R9*4), 5 (R10)(R9*2), 6 (R11), 7 (R11)(R9*1), with R9 the row bytes,
// R10 = SI+3·R9 and R11 = SI+6·R9, all three advancing along the columns.
TEXT ·gemv2F16AVX512(SB), NOSPLIT, $0-56
	MOVQ w+0(FP), SI
	MOVQ y0+24(FP), BX
	MOVQ y1+32(FP), R12
	MOVQ rows+40(FP), CX
	MOVQ cols+48(FP), R13
	SHRQ $3, CX
	LEAQ (R13)(R13*1), R9 // row bytes
	SHRQ $4, R13          // column blocks of 16

pass:
	LEAQ   (SI)(R9*2), R10
	ADDQ   R9, R10
	LEAQ   (R10)(R9*2), R11
	ADDQ   R9, R11
	MOVQ   x0+8(FP), DI
	MOVQ   x1+16(FP), R8
	MOVQ   SI, R14
	MOVQ   R13, DX
	VPXORD Z1, Z1, Z1
	VPXORD Z2, Z2, Z2
	VPXORD Z3, Z3, Z3
	VPXORD Z4, Z4, Z4
	VPXORD Z5, Z5, Z5
	VPXORD Z6, Z6, Z6
	VPXORD Z7, Z7, Z7
	VPXORD Z8, Z8, Z8
	VPXORD Z17, Z17, Z17
	VPXORD Z18, Z18, Z18
	VPXORD Z19, Z19, Z19
	VPXORD Z20, Z20, Z20
	VPXORD Z21, Z21, Z21
	VPXORD Z22, Z22, Z22
	VPXORD Z23, Z23, Z23
	VPXORD Z24, Z24, Z24

col:
	VMOVUPS     (DI), Z0
	VMOVUPS     (R8), Z16
	VCVTPH2PS   (SI), Z9
	VCVTPH2PS   (SI)(R9*1), Z10
	VCVTPH2PS   (SI)(R9*2), Z11
	VCVTPH2PS   (R10), Z12
	VFMADD231PS Z9, Z0, Z1
	VFMADD231PS Z10, Z0, Z2
	VFMADD231PS Z11, Z0, Z3
	VFMADD231PS Z12, Z0, Z4
	VFMADD231PS Z9, Z16, Z17
	VFMADD231PS Z10, Z16, Z18
	VFMADD231PS Z11, Z16, Z19
	VFMADD231PS Z12, Z16, Z20
	VCVTPH2PS   (SI)(R9*4), Z9
	VCVTPH2PS   (R10)(R9*2), Z10
	VCVTPH2PS   (R11), Z11
	VCVTPH2PS   (R11)(R9*1), Z12
	VFMADD231PS Z9, Z0, Z5
	VFMADD231PS Z10, Z0, Z6
	VFMADD231PS Z11, Z0, Z7
	VFMADD231PS Z12, Z0, Z8
	VFMADD231PS Z9, Z16, Z21
	VFMADD231PS Z10, Z16, Z22
	VFMADD231PS Z11, Z16, Z23
	VFMADD231PS Z12, Z16, Z24
	ADDQ        $64, DI
	ADDQ        $64, R8
	ADDQ        $32, SI
	ADDQ        $32, R10
	ADDQ        $32, R11
	DECQ        DX
	JNE         col

	// Horizontal sums: rows 0-3 from Z1-Z4 (x0) and Z17-Z20 (x1), rows 4-7
	// from Z5-Z8 and Z21-Z24.
	REDUCE4(Z1, Z2, Z3, Z4, Y1, Y2, Y3, Y4, X1, X2, 0(BX))
	REDUCE4(Z5, Z6, Z7, Z8, Y5, Y6, Y7, Y8, X5, X6, 16(BX))
	VMOVAPS Z17, Z1 // VHADDPS reaches registers 0-15 only
	VMOVAPS Z18, Z2
	VMOVAPS Z19, Z3
	VMOVAPS Z20, Z4
	VMOVAPS Z21, Z5
	VMOVAPS Z22, Z6
	VMOVAPS Z23, Z7
	VMOVAPS Z24, Z8
	REDUCE4(Z1, Z2, Z3, Z4, Y1, Y2, Y3, Y4, X1, X2, 0(R12))
	REDUCE4(Z5, Z6, Z7, Z8, Y5, Y6, Y7, Y8, X5, X6, 16(R12))

	ADDQ $32, BX
	ADDQ $32, R12
	LEAQ (R14)(R9*8), SI
	DECQ CX
	JNE  pass
	VZEROUPPER
	RET

// func gemv2F16AVX2(w *uint16, x0, x1, y0, y1 *float32, rows, cols int)
//
// As gemv2F16AVX512 with 256-bit registers: four rows per pass (0 (SI), 1
// (SI)(R9*1), 2 (SI)(R9*2), 3 (R10) with R10 = SI+3·R9), eight columns per
// step. rows is a multiple of 4, cols of 8 (> 0).
TEXT ·gemv2F16AVX2(SB), NOSPLIT, $0-56
	MOVQ w+0(FP), SI
	MOVQ y0+24(FP), BX
	MOVQ y1+32(FP), R12
	MOVQ rows+40(FP), CX
	MOVQ cols+48(FP), R13
	SHRQ $2, CX
	LEAQ (R13)(R13*1), R9 // row bytes
	SHRQ $3, R13          // column blocks of 8

pass2:
	LEAQ   (SI)(R9*2), R10
	ADDQ   R9, R10
	MOVQ   x0+8(FP), DI
	MOVQ   x1+16(FP), R8
	MOVQ   SI, R14
	MOVQ   R13, DX
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	VXORPS Y8, Y8, Y8

col2:
	VMOVUPS     (DI), Y0
	VMOVUPS     (R8), Y13
	VCVTPH2PS   (SI), Y9
	VCVTPH2PS   (SI)(R9*1), Y10
	VCVTPH2PS   (SI)(R9*2), Y11
	VCVTPH2PS   (R10), Y12
	VFMADD231PS Y9, Y0, Y1
	VFMADD231PS Y10, Y0, Y2
	VFMADD231PS Y11, Y0, Y3
	VFMADD231PS Y12, Y0, Y4
	VFMADD231PS Y9, Y13, Y5
	VFMADD231PS Y10, Y13, Y6
	VFMADD231PS Y11, Y13, Y7
	VFMADD231PS Y12, Y13, Y8
	ADDQ        $32, DI
	ADDQ        $32, R8
	ADDQ        $16, SI
	ADDQ        $16, R10
	DECQ        DX
	JNE         col2

	HSUM4(Y1, Y2, Y3, Y4, X1, X2, (BX))
	HSUM4(Y5, Y6, Y7, Y8, X5, X6, (R12))

	ADDQ $16, BX
	ADDQ $16, R12
	LEAQ (R14)(R9*4), SI
	DECQ CX
	JNE  pass2
	VZEROUPPER
	RET
