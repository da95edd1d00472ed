#include "textflag.h"
#include "kernels_amd64.h"

// GEMV and dot kernels for amd64 (see gemv_amd64.go for the Go signatures).
// Each gemv* computes y[i] = dot(row i, x) for i < rows; rows that share a
// pass share every load of x, and each row has its own f32 accumulators,
// summed horizontally at the end of the row.
//
// AVX-512 gemv*: the rows are split into eight lanes of rows/8 consecutive
// rows, and each pass takes the next row of every lane, so the weights are
// read as eight long sequential streams (a block of eight adjacent rows
// would be eight short streams when rows are narrow, which the hardware
// prefetchers don't follow); the rows%8 leftover rows go one at a time.
//   AX        current row of lane 0
//   SI, R10, R11  row pointers advancing along the pass (see ROWS8)
//   R9        lane stride in bytes (row stride in the one-row loop)
//   DI        x; R12 x advancing along the pass
//   BX        output of lane 0; R13 lane stride of y in bytes
//   CX        passes left, then leftover rows left
//   DX        16-column steps left (pass), column index (one-row loop)
//   R8        cols; R12, R13 cols rounded down to 16 and 32 (one-row loop)
//   K1        mask of the cols%16 tail columns (masked loads zero the rest)
//   Z0 x; Z1..Z8 accumulators; Z9..Z16 converted weights
//
// AVX2 gemv* (4 rows per pass, then one row at a time):
//   SI        row 0 of the current 4-row block; R10, R11, AX rows 1, 2, 3
//   DI        x; BX next output element of y
//   CX        rows left (minus 4 in the 4-row loop)
//   DX        column index, in elements
//   R8        cols; R9 row stride in bytes
//   R12, R13  cols rounded down to 8 and 16
//   Y0, Y9 x; Y1..Y8 accumulators (two per row); Y10..Y13 converted weights
//   The cols%8 tail is done a column at a time after the reduction.

// ---------------------------------------------------------------- macros

// SETUP512 loads the arguments and the cols%16 tail mask; AX = SI = row 0.
#define SETUP512(shift) \
	MOVQ  w+0(FP), SI; \
	MOVQ  x+8(FP), DI; \
	MOVQ  y+16(FP), BX; \
	MOVQ  cols+32(FP), R8; \
	MOVQ  R8, CX; \
	ANDQ  $15, CX; \
	MOVL  $1, AX; \
	SHLL  CX, AX; \
	DECL  AX; \
	KMOVW AX, K1; \
	MOVQ  R8, R9; \
	SHLQ  $shift, R9; \
	MOVQ  rows+24(FP), CX; \
	MOVQ  SI, AX

// ROWS8 points SI, R10, R11 at the current row of lane 0 (AX) and R12 at
// x; with the lane stride R9 the current rows of the eight lanes are then
// (SI), (SI)(R9*1), (R11), (R10), (SI)(R9*4), (R10)(R9*2), (R11)(R9*4),
// (R10)(R9*4). DX counts the full 16-column steps.
#define ROWS8 \
	MOVQ AX, SI; \
	LEAQ (AX)(R9*2), R11; \
	LEAQ (R11)(R9*1), R10; \
	MOVQ DI, R12; \
	MOVQ R8, DX; \
	SHRQ $4, DX

// NEXT8 advances the row pointers by wstep bytes and x by 16 floats.
#define NEXT8(wstep) \
	ADDQ $64, R12; \
	ADDQ $wstep, SI; \
	ADDQ $wstep, R10; \
	ADDQ $wstep, R11

// FMA8 adds the eight row vectors in Z9..Z16 times Z0 into Z1..Z8.
#define FMA8 \
	VFMADD231PS Z9, Z0, Z1; \
	VFMADD231PS Z10, Z0, Z2; \
	VFMADD231PS Z11, Z0, Z3; \
	VFMADD231PS Z12, Z0, Z4; \
	VFMADD231PS Z13, Z0, Z5; \
	VFMADD231PS Z14, Z0, Z6; \
	VFMADD231PS Z15, Z0, Z7; \
	VFMADD231PS Z16, Z0, Z8

// LOADH8 masked-loads (zeroing) the cols%16 tail halves of the eight rows
// into Y9..Y16.
#define LOADH8 \
	VMOVDQU16.Z (SI), K1, Y9; \
	VMOVDQU16.Z (SI)(R9*1), K1, Y10; \
	VMOVDQU16.Z (R11), K1, Y11; \
	VMOVDQU16.Z (R10), K1, Y12; \
	VMOVDQU16.Z (SI)(R9*4), K1, Y13; \
	VMOVDQU16.Z (R10)(R9*2), K1, Y14; \
	VMOVDQU16.Z (R11)(R9*4), K1, Y15; \
	VMOVDQU16.Z (R10)(R9*4), K1, Y16

// LANES8 splits the rows into eight lanes of CX = rows/8 consecutive rows
// (jumping to one if there are fewer than eight rows): R9 becomes the lane
// stride in bytes of weights, R13 the lane stride in bytes of y.
#define LANES8 \
	SHRQ  $3, CX; \
	JEQ   one; \
	MOVQ  CX, R13; \
	IMULQ R13, R9; \
	SHLQ  $2, R13

// NEXTPASS moves AX and BX to the next row of every lane and loops to eight
// while passes are left; then it moves AX and BX past the last lane, to the
// rows%8 leftover rows.
#define NEXTPASS(shift) \
	ADDQ $4, BX; \
	MOVQ R8, DX; \
	SHLQ $shift, DX; \
	ADDQ DX, AX; \
	DECQ CX; \
	JNE  eight; \
	LEAQ (AX)(R9*8), AX; \
	SUBQ R9, AX; \
	LEAQ (BX)(R13*8), BX; \
	SUBQ R13, BX

// ONEBOUNDS512 sets CX to the leftover rows (jumping to done if none), SI
// to the first of them, R9 to the row stride, and R12, R13 to cols rounded
// down to 16 and 32 for the one-row loop.
#define ONEBOUNDS512(shift) \
	MOVQ rows+24(FP), CX; \
	ANDQ $7, CX; \
	JEQ  done; \
	MOVQ R8, R9; \
	SHLQ $shift, R9; \
	MOVQ AX, SI; \
	MOVQ R8, R12; \
	ANDQ $-16, R12; \
	MOVQ R8, R13; \
	ANDQ $-32, R13

// BF16 widens 16 bf16 values (memory or Y register src) to floats in Z
// register zd: zero-extend each to 32 bits, then shift it into the top half.
#define BF16(src, zd) \
	VPMOVZXWD src, zd; \
	VPSLLD    $16, zd, zd

// ROWPTRS sets R10, R11, AX to rows 1..3 of the block at SI.
#define ROWPTRS \
	LEAQ (SI)(R9*1), R10; \
	LEAQ (SI)(R9*2), R11; \
	LEAQ (R10)(R9*2), AX

// ZERO8_512 clears the accumulators Z1..Z8.
#define ZERO8_512 \
	VPXORD Z1, Z1, Z1; \
	VPXORD Z2, Z2, Z2; \
	VPXORD Z3, Z3, Z3; \
	VPXORD Z4, Z4, Z4; \
	VPXORD Z5, Z5, Z5; \
	VPXORD Z6, Z6, Z6; \
	VPXORD Z7, Z7, Z7; \
	VPXORD Z8, Z8, Z8

// FMA4 adds rows w0..w3 times xr into accumulators a0..a3.
#define FMA4(xr, w0, w1, w2, w3, a0, a1, a2, a3) \
	VFMADD231PS w0, xr, a0; \
	VFMADD231PS w1, xr, a1; \
	VFMADD231PS w2, xr, a2; \
	VFMADD231PS w3, xr, a3

// REDUCE1_512 sums Z1+Z2 horizontally into X1 lane 0.
#define REDUCE1_512 \
	VADDPS Z2, Z1, Z1; \
	VEXTRACTF64X4 $1, Z1, Y2; \
	VADDPS Y2, Y1, Y1; \
	VEXTRACTF128 $1, Y1, X2; \
	VADDPS X2, X1, X1; \
	VHADDPS X1, X1, X1; \
	VHADDPS X1, X1, X1

// SETUP256 loads the arguments and the column bounds.
#define SETUP256(shift) \
	MOVQ w+0(FP), SI; \
	MOVQ x+8(FP), DI; \
	MOVQ y+16(FP), BX; \
	MOVQ cols+32(FP), R8; \
	MOVQ R8, R12; \
	ANDQ $-8, R12; \
	MOVQ R8, R13; \
	ANDQ $-16, R13; \
	MOVQ R8, R9; \
	SHLQ $shift, R9; \
	MOVQ rows+24(FP), CX

// ZERO8_256 clears the accumulators Y1..Y8.
#define ZERO8_256 \
	VXORPS Y1, Y1, Y1; \
	VXORPS Y2, Y2, Y2; \
	VXORPS Y3, Y3, Y3; \
	VXORPS Y4, Y4, Y4; \
	VXORPS Y5, Y5, Y5; \
	VXORPS Y6, Y6, Y6; \
	VXORPS Y7, Y7, Y7; \
	VXORPS Y8, Y8, Y8

// REDUCE4_256 sums Y1+Y5 .. Y4+Y8 horizontally into X1 = the four rows.
#define REDUCE4_256 \
	VADDPS       Y5, Y1, Y1; \
	VADDPS       Y6, Y2, Y2; \
	VADDPS       Y7, Y3, Y3; \
	VADDPS       Y8, Y4, Y4; \
	VHADDPS      Y2, Y1, Y1; \
	VHADDPS      Y4, Y3, Y3; \
	VHADDPS      Y3, Y1, Y1; \
	VEXTRACTF128 $1, Y1, X2; \
	VADDPS       X2, X1, X1

// REDUCE1_256 sums Y1+Y2 horizontally into X1 lane 0.
#define REDUCE1_256 \
	VADDPS       Y2, Y1, Y1; \
	VEXTRACTF128 $1, Y1, X2; \
	VADDPS       X2, X1, X1; \
	VHADDPS      X1, X1, X1; \
	VHADDPS      X1, X1, X1

// CVT4H8 converts 8 halves at byte offset off from column DX of rows SI,
// R10, R11, AX to floats in d0..d3.
#define CVT4H8(off, d0, d1, d2, d3) \
	VCVTPH2PS off(SI)(DX*2), d0; \
	VCVTPH2PS off(R10)(DX*2), d1; \
	VCVTPH2PS off(R11)(DX*2), d2; \
	VCVTPH2PS off(AX)(DX*2), d3

// BF16Y widens 8 bf16 values (memory or X register src) to floats in Y
// register yd.
#define BF16Y(src, yd) \
	VPMOVZXWD src, yd; \
	VPSLLD    $16, yd, yd

// ---------------------------------------------------------------- AVX-512

// func gemvF32AVX512(w, x, y *float32, rows, cols int)
TEXT ·gemvF32AVX512(SB), NOSPLIT, $0-40
	SETUP512(2)
	LANES8

eight:
	ROWS8
	ZERO8_512
	TESTQ DX, DX
	JEQ   eighttail

eightloop:
	VMOVUPS (R12), Z0
	VFMADD231PS (SI), Z0, Z1
	VFMADD231PS (SI)(R9*1), Z0, Z2
	VFMADD231PS (R11), Z0, Z3
	VFMADD231PS (R10), Z0, Z4
	VFMADD231PS (SI)(R9*4), Z0, Z5
	VFMADD231PS (R10)(R9*2), Z0, Z6
	VFMADD231PS (R11)(R9*4), Z0, Z7
	VFMADD231PS (R10)(R9*4), Z0, Z8
	NEXT8(64)
	DECQ DX
	JNE  eightloop

eighttail:
	TESTQ $15, R8
	JEQ   eightdone
	VMOVUPS.Z (R12), K1, Z0
	VMOVUPS.Z (SI), K1, Z9
	VMOVUPS.Z (SI)(R9*1), K1, Z10
	VMOVUPS.Z (R11), K1, Z11
	VMOVUPS.Z (R10), K1, Z12
	VMOVUPS.Z (SI)(R9*4), K1, Z13
	VMOVUPS.Z (R10)(R9*2), K1, Z14
	VMOVUPS.Z (R11)(R9*4), K1, Z15
	VMOVUPS.Z (R10)(R9*4), K1, Z16
	FMA8

eightdone:
	REDUCE8_512
	NEXTPASS(2)

one:
	ONEBOUNDS512(2)

onerow:
	VPXORD Z1, Z1, Z1
	VPXORD Z2, Z2, Z2
	XORQ   DX, DX
	CMPQ   DX, R13
	JGE    one16

one32:
	VMOVUPS     (DI)(DX*4), Z0
	VMOVUPS     64(DI)(DX*4), Z9
	VFMADD231PS (SI)(DX*4), Z0, Z1
	VFMADD231PS 64(SI)(DX*4), Z9, Z2
	ADDQ        $32, DX
	CMPQ        DX, R13
	JLT         one32

one16:
	CMPQ        DX, R12
	JGE         onetail
	VMOVUPS     (DI)(DX*4), Z0
	VFMADD231PS (SI)(DX*4), Z0, Z1
	ADDQ        $16, DX

onetail:
	CMPQ        DX, R8
	JGE         onedone
	VMOVUPS.Z   (DI)(DX*4), K1, Z0
	VMOVUPS.Z   (SI)(DX*4), K1, Z10
	VFMADD231PS Z10, Z0, Z2

onedone:
	REDUCE1_512
	VMOVSS X1, (BX)
	ADDQ   $4, BX
	ADDQ   R9, SI
	DECQ   CX
	JNE    onerow

done:
	VZEROUPPER
	RET

// func gemvF16AVX512(w *uint16, x, y *float32, rows, cols int)
TEXT ·gemvF16AVX512(SB), NOSPLIT, $0-40
	SETUP512(1)
	LANES8

eight:
	ROWS8
	ZERO8_512
	TESTQ DX, DX
	JEQ   eighttail

eightloop:
	VMOVUPS (R12), Z0
	VCVTPH2PS (SI), Z9
	VCVTPH2PS (SI)(R9*1), Z10
	VCVTPH2PS (R11), Z11
	VCVTPH2PS (R10), Z12
	VCVTPH2PS (SI)(R9*4), Z13
	VCVTPH2PS (R10)(R9*2), Z14
	VCVTPH2PS (R11)(R9*4), Z15
	VCVTPH2PS (R10)(R9*4), Z16
	FMA8
	NEXT8(32)
	DECQ DX
	JNE  eightloop

eighttail:
	TESTQ $15, R8
	JEQ   eightdone
	VMOVUPS.Z (R12), K1, Z0
	LOADH8
	VCVTPH2PS Y9, Z9
	VCVTPH2PS Y10, Z10
	VCVTPH2PS Y11, Z11
	VCVTPH2PS Y12, Z12
	VCVTPH2PS Y13, Z13
	VCVTPH2PS Y14, Z14
	VCVTPH2PS Y15, Z15
	VCVTPH2PS Y16, Z16
	FMA8

eightdone:
	REDUCE8_512
	NEXTPASS(1)

one:
	ONEBOUNDS512(1)

onerow:
	VPXORD Z1, Z1, Z1
	VPXORD Z2, Z2, Z2
	XORQ   DX, DX
	CMPQ   DX, R13
	JGE    one16

one32:
	VCVTPH2PS   (SI)(DX*2), Z10
	VCVTPH2PS   32(SI)(DX*2), Z11
	VFMADD231PS (DI)(DX*4), Z10, Z1
	VFMADD231PS 64(DI)(DX*4), Z11, Z2
	ADDQ        $32, DX
	CMPQ        DX, R13
	JLT         one32

one16:
	CMPQ        DX, R12
	JGE         onetail
	VCVTPH2PS   (SI)(DX*2), Z10
	VFMADD231PS (DI)(DX*4), Z10, Z1
	ADDQ        $16, DX

onetail:
	CMPQ        DX, R8
	JGE         onedone
	VMOVUPS.Z   (DI)(DX*4), K1, Z0
	VMOVDQU16.Z (SI)(DX*2), K1, Y10
	VCVTPH2PS   Y10, Z10
	VFMADD231PS Z10, Z0, Z2

onedone:
	REDUCE1_512
	VMOVSS X1, (BX)
	ADDQ   $4, BX
	ADDQ   R9, SI
	DECQ   CX
	JNE    onerow

done:
	VZEROUPPER
	RET

// func gemvBF16AVX512(w *uint16, x, y *float32, rows, cols int)
TEXT ·gemvBF16AVX512(SB), NOSPLIT, $0-40
	SETUP512(1)
	LANES8

eight:
	ROWS8
	ZERO8_512
	TESTQ DX, DX
	JEQ   eighttail

eightloop:
	VMOVUPS (R12), Z0
	BF16((SI), Z9)
	BF16((SI)(R9*1), Z10)
	BF16((R11), Z11)
	BF16((R10), Z12)
	BF16((SI)(R9*4), Z13)
	BF16((R10)(R9*2), Z14)
	BF16((R11)(R9*4), Z15)
	BF16((R10)(R9*4), Z16)
	FMA8
	NEXT8(32)
	DECQ DX
	JNE  eightloop

eighttail:
	TESTQ $15, R8
	JEQ   eightdone
	VMOVUPS.Z (R12), K1, Z0
	LOADH8
	BF16(Y9, Z9)
	BF16(Y10, Z10)
	BF16(Y11, Z11)
	BF16(Y12, Z12)
	BF16(Y13, Z13)
	BF16(Y14, Z14)
	BF16(Y15, Z15)
	BF16(Y16, Z16)
	FMA8

eightdone:
	REDUCE8_512
	NEXTPASS(1)

one:
	ONEBOUNDS512(1)

onerow:
	VPXORD Z1, Z1, Z1
	VPXORD Z2, Z2, Z2
	XORQ   DX, DX
	CMPQ   DX, R13
	JGE    one16

one32:
	BF16((SI)(DX*2), Z10)
	BF16(32(SI)(DX*2), Z11)
	VFMADD231PS (DI)(DX*4), Z10, Z1
	VFMADD231PS 64(DI)(DX*4), Z11, Z2
	ADDQ        $32, DX
	CMPQ        DX, R13
	JLT         one32

one16:
	CMPQ DX, R12
	JGE  onetail
	BF16((SI)(DX*2), Z10)
	VFMADD231PS (DI)(DX*4), Z10, Z1
	ADDQ        $16, DX

onetail:
	CMPQ        DX, R8
	JGE         onedone
	VMOVUPS.Z   (DI)(DX*4), K1, Z0
	VMOVDQU16.Z (SI)(DX*2), K1, Y10
	BF16(Y10, Z10)
	VFMADD231PS Z10, Z0, Z2

onedone:
	REDUCE1_512
	VMOVSS X1, (BX)
	ADDQ   $4, BX
	ADDQ   R9, SI
	DECQ   CX
	JNE    onerow

done:
	VZEROUPPER
	RET

// func dotAVX512(a, b *float32, n int) float32
// SI a, DI b, CX n, DX index; Z1..Z4 accumulators; K1 tail mask.
TEXT ·dotAVX512(SB), NOSPLIT, $0-28
	MOVQ   a+0(FP), SI
	MOVQ   b+8(FP), DI
	MOVQ   n+16(FP), R8
	MOVQ   R8, CX
	ANDQ   $15, CX
	MOVL   $1, AX
	SHLL   CX, AX
	DECL   AX
	KMOVW  AX, K1
	MOVQ   R8, R12
	ANDQ   $-16, R12
	MOVQ   R8, R13
	ANDQ   $-64, R13
	VPXORD Z1, Z1, Z1
	VPXORD Z2, Z2, Z2
	VPXORD Z3, Z3, Z3
	VPXORD Z4, Z4, Z4
	XORQ   DX, DX
	CMPQ   DX, R13
	JGE    loop16

loop64:
	VMOVUPS     (SI)(DX*4), Z5
	VMOVUPS     64(SI)(DX*4), Z6
	VMOVUPS     128(SI)(DX*4), Z7
	VMOVUPS     192(SI)(DX*4), Z8
	VFMADD231PS (DI)(DX*4), Z5, Z1
	VFMADD231PS 64(DI)(DX*4), Z6, Z2
	VFMADD231PS 128(DI)(DX*4), Z7, Z3
	VFMADD231PS 192(DI)(DX*4), Z8, Z4
	ADDQ        $64, DX
	CMPQ        DX, R13
	JLT         loop64

loop16:
	CMPQ        DX, R12
	JGE         tail
	VMOVUPS     (SI)(DX*4), Z5
	VFMADD231PS (DI)(DX*4), Z5, Z1
	ADDQ        $16, DX
	JMP         loop16

tail:
	CMPQ        DX, R8
	JGE         reduce
	VMOVUPS.Z   (SI)(DX*4), K1, Z5
	VMOVUPS.Z   (DI)(DX*4), K1, Z6
	VFMADD231PS Z6, Z5, Z2

reduce:
	VADDPS Z3, Z1, Z1
	VADDPS Z4, Z2, Z2
	REDUCE1_512
	VMOVSS X1, ret+24(FP)
	VZEROUPPER
	RET

// ---------------------------------------------------------------- AVX2

// The scalar tails (cols%8 columns) run after the reduction: the 4-row tail
// gathers column DX of the four rows into X10 and adds X10*x[DX] to X1.

// func gemvF32AVX2(w, x, y *float32, rows, cols int)
TEXT ·gemvF32AVX2(SB), NOSPLIT, $0-40
	SETUP256(2)
	SUBQ $4, CX
	JLT  one

four:
	ROWPTRS
	ZERO8_256
	XORQ DX, DX
	CMPQ DX, R13
	JGE  four8

four16:
	VMOVUPS (DI)(DX*4), Y0
	VMOVUPS 32(DI)(DX*4), Y9
	FMA4(Y0, (SI)(DX*4), (R10)(DX*4), (R11)(DX*4), (AX)(DX*4), Y1, Y2, Y3, Y4)
	FMA4(Y9, 32(SI)(DX*4), 32(R10)(DX*4), 32(R11)(DX*4), 32(AX)(DX*4), Y5, Y6, Y7, Y8)
	ADDQ $16, DX
	CMPQ DX, R13
	JLT  four16

four8:
	CMPQ DX, R12
	JGE  fourred
	VMOVUPS (DI)(DX*4), Y0
	FMA4(Y0, (SI)(DX*4), (R10)(DX*4), (R11)(DX*4), (AX)(DX*4), Y1, Y2, Y3, Y4)
	ADDQ $8, DX

fourred:
	REDUCE4_256

fourtail:
	CMPQ         DX, R8
	JGE          fourdone
	VMOVSS       (SI)(DX*4), X10
	VINSERTPS    $0x10, (R10)(DX*4), X10, X10
	VINSERTPS    $0x20, (R11)(DX*4), X10, X10
	VINSERTPS    $0x30, (AX)(DX*4), X10, X10
	VBROADCASTSS (DI)(DX*4), X0
	VFMADD231PS  X10, X0, X1
	INCQ         DX
	JMP          fourtail

fourdone:
	VMOVUPS X1, (BX)
	ADDQ    $16, BX
	LEAQ    (SI)(R9*4), SI
	SUBQ    $4, CX
	JGE     four

one:
	ADDQ $4, CX
	JEQ  done

onerow:
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	XORQ   DX, DX
	CMPQ   DX, R13
	JGE    one8

one16:
	VMOVUPS     (DI)(DX*4), Y0
	VMOVUPS     32(DI)(DX*4), Y9
	VFMADD231PS (SI)(DX*4), Y0, Y1
	VFMADD231PS 32(SI)(DX*4), Y9, Y2
	ADDQ        $16, DX
	CMPQ        DX, R13
	JLT         one16

one8:
	CMPQ        DX, R12
	JGE         onered
	VMOVUPS     (DI)(DX*4), Y0
	VFMADD231PS (SI)(DX*4), Y0, Y1
	ADDQ        $8, DX

onered:
	REDUCE1_256

onetail:
	CMPQ        DX, R8
	JGE         onedone
	VMOVSS      (SI)(DX*4), X10
	VFMADD231SS (DI)(DX*4), X10, X1
	INCQ        DX
	JMP         onetail

onedone:
	VMOVSS X1, (BX)
	ADDQ   $4, BX
	ADDQ   R9, SI
	DECQ   CX
	JNE    onerow

done:
	VZEROUPPER
	RET

// func gemvF16AVX2(w *uint16, x, y *float32, rows, cols int)
TEXT ·gemvF16AVX2(SB), NOSPLIT, $0-40
	SETUP256(1)
	SUBQ $4, CX
	JLT  one

four:
	ROWPTRS
	ZERO8_256
	XORQ DX, DX
	CMPQ DX, R13
	JGE  four8

four16:
	VMOVUPS (DI)(DX*4), Y0
	VMOVUPS 32(DI)(DX*4), Y9
	CVT4H8(0, Y10, Y11, Y12, Y13)
	FMA4(Y0, Y10, Y11, Y12, Y13, Y1, Y2, Y3, Y4)
	CVT4H8(16, Y10, Y11, Y12, Y13)
	FMA4(Y9, Y10, Y11, Y12, Y13, Y5, Y6, Y7, Y8)
	ADDQ $16, DX
	CMPQ DX, R13
	JLT  four16

four8:
	CMPQ DX, R12
	JGE  fourred
	VMOVUPS (DI)(DX*4), Y0
	CVT4H8(0, Y10, Y11, Y12, Y13)
	FMA4(Y0, Y10, Y11, Y12, Y13, Y1, Y2, Y3, Y4)
	ADDQ $8, DX

fourred:
	REDUCE4_256

fourtail:
	CMPQ         DX, R8
	JGE          fourdone
	VPXOR        X10, X10, X10
	VPINSRW      $0, (SI)(DX*2), X10, X10
	VPINSRW      $1, (R10)(DX*2), X10, X10
	VPINSRW      $2, (R11)(DX*2), X10, X10
	VPINSRW      $3, (AX)(DX*2), X10, X10
	VCVTPH2PS    X10, X10
	VBROADCASTSS (DI)(DX*4), X0
	VFMADD231PS  X10, X0, X1
	INCQ         DX
	JMP          fourtail

fourdone:
	VMOVUPS X1, (BX)
	ADDQ    $16, BX
	LEAQ    (SI)(R9*4), SI
	SUBQ    $4, CX
	JGE     four

one:
	ADDQ $4, CX
	JEQ  done

onerow:
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	XORQ   DX, DX
	CMPQ   DX, R13
	JGE    one8

one16:
	VCVTPH2PS   (SI)(DX*2), Y10
	VCVTPH2PS   16(SI)(DX*2), Y11
	VFMADD231PS (DI)(DX*4), Y10, Y1
	VFMADD231PS 32(DI)(DX*4), Y11, Y2
	ADDQ        $16, DX
	CMPQ        DX, R13
	JLT         one16

one8:
	CMPQ        DX, R12
	JGE         onered
	VCVTPH2PS   (SI)(DX*2), Y10
	VFMADD231PS (DI)(DX*4), Y10, Y1
	ADDQ        $8, DX

onered:
	REDUCE1_256

onetail:
	CMPQ        DX, R8
	JGE         onedone
	VPXOR       X10, X10, X10
	VPINSRW     $0, (SI)(DX*2), X10, X10
	VCVTPH2PS   X10, X10
	VFMADD231SS (DI)(DX*4), X10, X1
	INCQ        DX
	JMP         onetail

onedone:
	VMOVSS X1, (BX)
	ADDQ   $4, BX
	ADDQ   R9, SI
	DECQ   CX
	JNE    onerow

done:
	VZEROUPPER
	RET

// func gemvBF16AVX2(w *uint16, x, y *float32, rows, cols int)
TEXT ·gemvBF16AVX2(SB), NOSPLIT, $0-40
	SETUP256(1)
	SUBQ $4, CX
	JLT  one

four:
	ROWPTRS
	ZERO8_256
	XORQ DX, DX
	CMPQ DX, R13
	JGE  four8

four16:
	VMOVUPS (DI)(DX*4), Y0
	VMOVUPS 32(DI)(DX*4), Y9
	BF16Y((SI)(DX*2), Y10)
	BF16Y((R10)(DX*2), Y11)
	BF16Y((R11)(DX*2), Y12)
	BF16Y((AX)(DX*2), Y13)
	FMA4(Y0, Y10, Y11, Y12, Y13, Y1, Y2, Y3, Y4)
	BF16Y(16(SI)(DX*2), Y10)
	BF16Y(16(R10)(DX*2), Y11)
	BF16Y(16(R11)(DX*2), Y12)
	BF16Y(16(AX)(DX*2), Y13)
	FMA4(Y9, Y10, Y11, Y12, Y13, Y5, Y6, Y7, Y8)
	ADDQ $16, DX
	CMPQ DX, R13
	JLT  four16

four8:
	CMPQ DX, R12
	JGE  fourred
	VMOVUPS (DI)(DX*4), Y0
	BF16Y((SI)(DX*2), Y10)
	BF16Y((R10)(DX*2), Y11)
	BF16Y((R11)(DX*2), Y12)
	BF16Y((AX)(DX*2), Y13)
	FMA4(Y0, Y10, Y11, Y12, Y13, Y1, Y2, Y3, Y4)
	ADDQ $8, DX

fourred:
	REDUCE4_256

fourtail:
	CMPQ         DX, R8
	JGE          fourdone
	VPXOR        X10, X10, X10
	VPINSRW      $1, (SI)(DX*2), X10, X10
	VPINSRW      $3, (R10)(DX*2), X10, X10
	VPINSRW      $5, (R11)(DX*2), X10, X10
	VPINSRW      $7, (AX)(DX*2), X10, X10
	VBROADCASTSS (DI)(DX*4), X0
	VFMADD231PS  X10, X0, X1
	INCQ         DX
	JMP          fourtail

fourdone:
	VMOVUPS X1, (BX)
	ADDQ    $16, BX
	LEAQ    (SI)(R9*4), SI
	SUBQ    $4, CX
	JGE     four

one:
	ADDQ $4, CX
	JEQ  done

onerow:
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	XORQ   DX, DX
	CMPQ   DX, R13
	JGE    one8

one16:
	BF16Y((SI)(DX*2), Y10)
	BF16Y(16(SI)(DX*2), Y11)
	VFMADD231PS (DI)(DX*4), Y10, Y1
	VFMADD231PS 32(DI)(DX*4), Y11, Y2
	ADDQ        $16, DX
	CMPQ        DX, R13
	JLT         one16

one8:
	CMPQ DX, R12
	JGE  onered
	BF16Y((SI)(DX*2), Y10)
	VFMADD231PS (DI)(DX*4), Y10, Y1
	ADDQ        $8, DX

onered:
	REDUCE1_256

onetail:
	CMPQ        DX, R8
	JGE         onedone
	VPXOR       X10, X10, X10
	VPINSRW     $1, (SI)(DX*2), X10, X10
	VFMADD231SS (DI)(DX*4), X10, X1
	INCQ        DX
	JMP         onetail

onedone:
	VMOVSS X1, (BX)
	ADDQ   $4, BX
	ADDQ   R9, SI
	DECQ   CX
	JNE    onerow

done:
	VZEROUPPER
	RET

// func dotAVX2(a, b *float32, n int) float32
// SI a, DI b, R8 n, DX index; Y1..Y4 accumulators.
TEXT ·dotAVX2(SB), NOSPLIT, $0-28
	MOVQ   a+0(FP), SI
	MOVQ   b+8(FP), DI
	MOVQ   n+16(FP), R8
	MOVQ   R8, R12
	ANDQ   $-8, R12
	MOVQ   R8, R13
	ANDQ   $-32, R13
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	XORQ   DX, DX
	CMPQ   DX, R13
	JGE    loop8

loop32:
	VMOVUPS     (SI)(DX*4), Y5
	VMOVUPS     32(SI)(DX*4), Y6
	VMOVUPS     64(SI)(DX*4), Y7
	VMOVUPS     96(SI)(DX*4), Y8
	VFMADD231PS (DI)(DX*4), Y5, Y1
	VFMADD231PS 32(DI)(DX*4), Y6, Y2
	VFMADD231PS 64(DI)(DX*4), Y7, Y3
	VFMADD231PS 96(DI)(DX*4), Y8, Y4
	ADDQ        $32, DX
	CMPQ        DX, R13
	JLT         loop32

loop8:
	CMPQ        DX, R12
	JGE         reduce
	VMOVUPS     (SI)(DX*4), Y5
	VFMADD231PS (DI)(DX*4), Y5, Y1
	ADDQ        $8, DX
	JMP         loop8

reduce:
	VADDPS Y3, Y1, Y1
	VADDPS Y4, Y2, Y2
	REDUCE1_256

tail:
	CMPQ        DX, R8
	JGE         done
	VMOVSS      (SI)(DX*4), X5
	VFMADD231SS (DI)(DX*4), X5, X1
	INCQ        DX
	JMP         tail

done:
	VMOVSS X1, ret+24(FP)
	VZEROUPPER
	RET

// func cpuid(eaxArg, ecxArg uint32) (eax, ebx, ecx, edx uint32)
TEXT ·cpuid(SB), NOSPLIT, $0-24
	MOVL eaxArg+0(FP), AX
	MOVL ecxArg+4(FP), CX
	CPUID
	MOVL AX, eax+8(FP)
	MOVL BX, ebx+12(FP)
	MOVL CX, ecx+16(FP)
	MOVL DX, edx+20(FP)
	RET

// func xgetbv() (eax, edx uint32)
TEXT ·xgetbv(SB), NOSPLIT, $0-8
	MOVL   $0, CX
	XGETBV
	MOVL   AX, eax+0(FP)
	MOVL   DX, edx+4(FP)
	RET
