#include "textflag.h"
#include "kernels_amd64.h"

// Sparse kernels for amd64 (see sparse_amd64.go for the Go signatures).
//
// gather*: y[k] = dot(W[rows[k]], x) for k < n.
// accum*:  y[j] += Σ_k a[k]·W[rows[k]][j] for j < cols.
//
// Both take the selected rows four per pass: one load of x (gather) or of
// y (accum) feeds all four, and each pass prefetches (PREFETCHT0) the rows
// pfd entries further down the list at the same columns, because the
// hardware prefetchers cannot guess where the next selected row starts. n is
// a positive multiple of four; row k lives at w + rows[k]·stride bytes.
//
// Registers shared by every kernel:
//   R8        rows (int32 list); CX index k of the pass's first row
//   SI, R9, R10, R11   the pass's four rows
//   R12, R13, R14, AX  the four rows prefetched (pass k+pfd, clamped to n-4)
//   DX        column index; R15 cols rounded down to 32
//   DI        x (gather) or y (accum); BX y (gather) or a (accum)
// The AVX-512 kernels handle every column (K1 masks the cols%16 tail); the
// AVX2 kernels need cols to be a multiple of 8 (Go does the rest).

// MASK16 sets K1 to the mask of the cols%16 tail columns and R15 to cols
// rounded down to 32.
#define MASK16 \
	MOVQ  cols+56(FP), R15; \
	MOVQ  R15, CX; \
	ANDQ  $15, CX; \
	MOVL  $1, AX; \
	SHLL  CX, AX; \
	DECL  AX; \
	KMOVW AX, K1; \
	ANDQ  $-32, R15

// ---------------------------------------------------------------- loads

// L16_*(m, z) converts 16 weights at m to floats in z; T16_*(m, y, z) does
// it for the K1-masked tail (zeroing the rest), through y = the low half
// of z. PF_*(r) prefetches the weights of 32 columns from column DX of the
// row at r.
#define L16_F32(m, z) VMOVUPS m, z
#define L16_F16(m, z) VCVTPH2PS m, z
#define L16_BF16(m, z) \
	VPMOVZXWD m, z; \
	VPSLLD    $16, z, z
#define T16_F32(m, y, z) VMOVUPS.Z m, K1, z
#define T16_F16(m, y, z) \
	VMOVDQU16.Z m, K1, y; \
	VCVTPH2PS   y, z
#define T16_BF16(m, y, z) \
	VMOVDQU16.Z m, K1, y; \
	VPMOVZXWD   y, z; \
	VPSLLD      $16, z, z
#define PF_F32(r) \
	PREFETCHT0 (r)(DX*4); \
	PREFETCHT0 64(r)(DX*4)
#define PF_16(r) PREFETCHT0 (r)(DX*2)

// L8_*(m, y) converts 8 weights at m to floats in the Y register y.
#define L8_F32(m, y) VMOVUPS m, y
#define L8_F16(m, y) VCVTPH2PS m, y
#define L8_BF16(m, y) \
	VPMOVZXWD m, y; \
	VPSLLD    $16, y, y

// ---------------------------------------------------------------- AVX-512

// GATHER512 is the body of gather*AVX512 for weights loaded by L and T,
// prefetched by PF, sc bytes per weight, h = 16·sc.
//   Z0, Z9 x; Z1..Z8 accumulators (two per row); Z10..Z17 weights.
#define GATHER512(L, T, PF, sc, h) \
	MOVQ x+16(FP), DI; \
	MOVQ y+24(FP), BX; \
	MOVQ rows+32(FP), R8; \
	MASK16; \
	XORQ CX, CX; \
pass: \
	PASSPTRS; \
	VPXORD Z1, Z1, Z1; \
	VPXORD Z2, Z2, Z2; \
	VPXORD Z3, Z3, Z3; \
	VPXORD Z4, Z4, Z4; \
	VPXORD Z5, Z5, Z5; \
	VPXORD Z6, Z6, Z6; \
	VPXORD Z7, Z7, Z7; \
	VPXORD Z8, Z8, Z8; \
	CMPQ   DX, R15; \
	JGE    half; \
loop: \
	VMOVUPS (DI)(DX*4), Z0; \
	VMOVUPS 64(DI)(DX*4), Z9; \
	L((SI)(DX*sc), Z10); \
	L(h(SI)(DX*sc), Z11); \
	L((R9)(DX*sc), Z12); \
	L(h(R9)(DX*sc), Z13); \
	L((R10)(DX*sc), Z14); \
	L(h(R10)(DX*sc), Z15); \
	L((R11)(DX*sc), Z16); \
	L(h(R11)(DX*sc), Z17); \
	VFMADD231PS Z10, Z0, Z1; \
	VFMADD231PS Z11, Z9, Z2; \
	VFMADD231PS Z12, Z0, Z3; \
	VFMADD231PS Z13, Z9, Z4; \
	VFMADD231PS Z14, Z0, Z5; \
	VFMADD231PS Z15, Z9, Z6; \
	VFMADD231PS Z16, Z0, Z7; \
	VFMADD231PS Z17, Z9, Z8; \
	PF(R12); \
	PF(R13); \
	PF(R14); \
	PF(AX); \
	ADDQ $32, DX; \
	CMPQ DX, R15; \
	JLT  loop; \
half: \
	MOVQ cols+56(FP), R12; \
	SUBQ DX, R12; \
	CMPQ R12, $16; \
	JLT  tail; \
	VMOVUPS (DI)(DX*4), Z0; \
	L((SI)(DX*sc), Z10); \
	L((R9)(DX*sc), Z12); \
	L((R10)(DX*sc), Z14); \
	L((R11)(DX*sc), Z16); \
	VFMADD231PS Z10, Z0, Z1; \
	VFMADD231PS Z12, Z0, Z3; \
	VFMADD231PS Z14, Z0, Z5; \
	VFMADD231PS Z16, Z0, Z7; \
	ADDQ $16, DX; \
	SUBQ $16, R12; \
tail: \
	TESTQ R12, R12; \
	JEQ   reduce; \
	VMOVUPS.Z (DI)(DX*4), K1, Z0; \
	T((SI)(DX*sc), Y10, Z10); \
	T((R9)(DX*sc), Y12, Z12); \
	T((R10)(DX*sc), Y14, Z14); \
	T((R11)(DX*sc), Y16, Z16); \
	VFMADD231PS Z10, Z0, Z2; \
	VFMADD231PS Z12, Z0, Z4; \
	VFMADD231PS Z14, Z0, Z6; \
	VFMADD231PS Z16, Z0, Z8; \
reduce: \
	VADDPS        Z2, Z1, Z1; \
	VADDPS        Z4, Z3, Z3; \
	VADDPS        Z6, Z5, Z5; \
	VADDPS        Z8, Z7, Z7; \
	VEXTRACTF64X4 $1, Z1, Y2; \
	VEXTRACTF64X4 $1, Z3, Y4; \
	VEXTRACTF64X4 $1, Z5, Y6; \
	VEXTRACTF64X4 $1, Z7, Y8; \
	VADDPS        Y2, Y1, Y1; \
	VADDPS        Y4, Y3, Y3; \
	VADDPS        Y6, Y5, Y5; \
	VADDPS        Y8, Y7, Y7; \
	VHADDPS       Y3, Y1, Y1; \
	VHADDPS       Y7, Y5, Y5; \
	VHADDPS       Y5, Y1, Y1; \
	VEXTRACTF128  $1, Y1, X2; \
	VADDPS        X2, X1, X1; \
	VMOVUPS       X1, (BX)(CX*4); \
	ADDQ          $4, CX; \
	CMPQ          CX, n+40(FP); \
	JLT           pass; \
	VZEROUPPER

// ACCUM512 is the body of accum*AVX512 (arguments as for GATHER512).
//   Z0, Z1 y; Z2..Z9 weights; Z12..Z15 the four coefficients.
#define ACCUM512(L, T, PF, sc, h) \
	MOVQ y+16(FP), DI; \
	MOVQ a+24(FP), BX; \
	MOVQ rows+32(FP), R8; \
	MASK16; \
	XORQ CX, CX; \
pass: \
	PASSPTRS; \
	VBROADCASTSS (BX)(CX*4), Z12; \
	VBROADCASTSS 4(BX)(CX*4), Z13; \
	VBROADCASTSS 8(BX)(CX*4), Z14; \
	VBROADCASTSS 12(BX)(CX*4), Z15; \
	CMPQ DX, R15; \
	JGE  half; \
loop: \
	VMOVUPS (DI)(DX*4), Z0; \
	VMOVUPS 64(DI)(DX*4), Z1; \
	L((SI)(DX*sc), Z2); \
	L(h(SI)(DX*sc), Z3); \
	L((R9)(DX*sc), Z4); \
	L(h(R9)(DX*sc), Z5); \
	L((R10)(DX*sc), Z6); \
	L(h(R10)(DX*sc), Z7); \
	L((R11)(DX*sc), Z8); \
	L(h(R11)(DX*sc), Z9); \
	VFMADD231PS Z2, Z12, Z0; \
	VFMADD231PS Z3, Z12, Z1; \
	VFMADD231PS Z4, Z13, Z0; \
	VFMADD231PS Z5, Z13, Z1; \
	VFMADD231PS Z6, Z14, Z0; \
	VFMADD231PS Z7, Z14, Z1; \
	VFMADD231PS Z8, Z15, Z0; \
	VFMADD231PS Z9, Z15, Z1; \
	VMOVUPS Z0, (DI)(DX*4); \
	VMOVUPS Z1, 64(DI)(DX*4); \
	PF(R12); \
	PF(R13); \
	PF(R14); \
	PF(AX); \
	ADDQ $32, DX; \
	CMPQ DX, R15; \
	JLT  loop; \
half: \
	MOVQ cols+56(FP), R12; \
	SUBQ DX, R12; \
	CMPQ R12, $16; \
	JLT  tail; \
	VMOVUPS (DI)(DX*4), Z0; \
	L((SI)(DX*sc), Z2); \
	L((R9)(DX*sc), Z4); \
	L((R10)(DX*sc), Z6); \
	L((R11)(DX*sc), Z8); \
	VFMADD231PS Z2, Z12, Z0; \
	VFMADD231PS Z4, Z13, Z0; \
	VFMADD231PS Z6, Z14, Z0; \
	VFMADD231PS Z8, Z15, Z0; \
	VMOVUPS Z0, (DI)(DX*4); \
	ADDQ $16, DX; \
	SUBQ $16, R12; \
tail: \
	TESTQ R12, R12; \
	JEQ   next; \
	VMOVUPS.Z (DI)(DX*4), K1, Z0; \
	T((SI)(DX*sc), Y2, Z2); \
	T((R9)(DX*sc), Y4, Z4); \
	T((R10)(DX*sc), Y6, Z6); \
	T((R11)(DX*sc), Y8, Z8); \
	VFMADD231PS Z2, Z12, Z0; \
	VFMADD231PS Z4, Z13, Z0; \
	VFMADD231PS Z6, Z14, Z0; \
	VFMADD231PS Z8, Z15, Z0; \
	VMOVUPS Z0, K1, (DI)(DX*4); \
next: \
	ADDQ $4, CX; \
	CMPQ CX, n+40(FP); \
	JLT  pass; \
	VZEROUPPER

// ---------------------------------------------------------------- AVX2

// GATHER256 is the body of gather*AVX2 for weights loaded by L, prefetched
// by PF, sc bytes per weight, q1..q3 = 8, 16, 24 times sc.
//   Y8, Y13 x; Y0..Y7 accumulators (two per row); Y9..Y12 weights.
#define GATHER256(L, PF, sc, q1, q2, q3) \
	MOVQ x+16(FP), DI; \
	MOVQ y+24(FP), BX; \
	MOVQ rows+32(FP), R8; \
	MOVQ cols+56(FP), R15; \
	ANDQ $-32, R15; \
	XORQ CX, CX; \
pass: \
	PASSPTRS; \
	VXORPS Y0, Y0, Y0; \
	VXORPS Y1, Y1, Y1; \
	VXORPS Y2, Y2, Y2; \
	VXORPS Y3, Y3, Y3; \
	VXORPS Y4, Y4, Y4; \
	VXORPS Y5, Y5, Y5; \
	VXORPS Y6, Y6, Y6; \
	VXORPS Y7, Y7, Y7; \
	CMPQ   DX, R15; \
	JGE    eight; \
loop: \
	VMOVUPS (DI)(DX*4), Y8; \
	L((SI)(DX*sc), Y9); \
	L((R9)(DX*sc), Y10); \
	L((R10)(DX*sc), Y11); \
	L((R11)(DX*sc), Y12); \
	VFMADD231PS Y9, Y8, Y0; \
	VFMADD231PS Y10, Y8, Y1; \
	VFMADD231PS Y11, Y8, Y2; \
	VFMADD231PS Y12, Y8, Y3; \
	VMOVUPS 32(DI)(DX*4), Y13; \
	L(q1(SI)(DX*sc), Y9); \
	L(q1(R9)(DX*sc), Y10); \
	L(q1(R10)(DX*sc), Y11); \
	L(q1(R11)(DX*sc), Y12); \
	VFMADD231PS Y9, Y13, Y4; \
	VFMADD231PS Y10, Y13, Y5; \
	VFMADD231PS Y11, Y13, Y6; \
	VFMADD231PS Y12, Y13, Y7; \
	VMOVUPS 64(DI)(DX*4), Y8; \
	L(q2(SI)(DX*sc), Y9); \
	L(q2(R9)(DX*sc), Y10); \
	L(q2(R10)(DX*sc), Y11); \
	L(q2(R11)(DX*sc), Y12); \
	VFMADD231PS Y9, Y8, Y0; \
	VFMADD231PS Y10, Y8, Y1; \
	VFMADD231PS Y11, Y8, Y2; \
	VFMADD231PS Y12, Y8, Y3; \
	VMOVUPS 96(DI)(DX*4), Y13; \
	L(q3(SI)(DX*sc), Y9); \
	L(q3(R9)(DX*sc), Y10); \
	L(q3(R10)(DX*sc), Y11); \
	L(q3(R11)(DX*sc), Y12); \
	VFMADD231PS Y9, Y13, Y4; \
	VFMADD231PS Y10, Y13, Y5; \
	VFMADD231PS Y11, Y13, Y6; \
	VFMADD231PS Y12, Y13, Y7; \
	PF(R12); \
	PF(R13); \
	PF(R14); \
	PF(AX); \
	ADDQ $32, DX; \
	CMPQ DX, R15; \
	JLT  loop; \
eight: \
	CMPQ DX, cols+56(FP); \
	JGE  reduce; \
	VMOVUPS (DI)(DX*4), Y8; \
	L((SI)(DX*sc), Y9); \
	L((R9)(DX*sc), Y10); \
	L((R10)(DX*sc), Y11); \
	L((R11)(DX*sc), Y12); \
	VFMADD231PS Y9, Y8, Y0; \
	VFMADD231PS Y10, Y8, Y1; \
	VFMADD231PS Y11, Y8, Y2; \
	VFMADD231PS Y12, Y8, Y3; \
	ADDQ $8, DX; \
	JMP  eight; \
reduce: \
	VADDPS       Y4, Y0, Y0; \
	VADDPS       Y5, Y1, Y1; \
	VADDPS       Y6, Y2, Y2; \
	VADDPS       Y7, Y3, Y3; \
	VHADDPS      Y1, Y0, Y0; \
	VHADDPS      Y3, Y2, Y2; \
	VHADDPS      Y2, Y0, Y0; \
	VEXTRACTF128 $1, Y0, X1; \
	VADDPS       X1, X0, X0; \
	VMOVUPS      X0, (BX)(CX*4); \
	ADDQ         $4, CX; \
	CMPQ         CX, n+40(FP); \
	JLT          pass; \
	VZEROUPPER

// ACCUM256 is the body of accum*AVX2 (arguments as for GATHER256).
//   Y0..Y3 y; Y4..Y11 weights; Y12..Y15 the four coefficients.
#define ACCUM256(L, PF, sc, q1, q2, q3) \
	MOVQ y+16(FP), DI; \
	MOVQ a+24(FP), BX; \
	MOVQ rows+32(FP), R8; \
	MOVQ cols+56(FP), R15; \
	ANDQ $-32, R15; \
	XORQ CX, CX; \
pass: \
	PASSPTRS; \
	VBROADCASTSS (BX)(CX*4), Y12; \
	VBROADCASTSS 4(BX)(CX*4), Y13; \
	VBROADCASTSS 8(BX)(CX*4), Y14; \
	VBROADCASTSS 12(BX)(CX*4), Y15; \
	CMPQ DX, R15; \
	JGE  eight; \
loop: \
	VMOVUPS (DI)(DX*4), Y0; \
	VMOVUPS 32(DI)(DX*4), Y1; \
	VMOVUPS 64(DI)(DX*4), Y2; \
	VMOVUPS 96(DI)(DX*4), Y3; \
	L((SI)(DX*sc), Y4); \
	L(q1(SI)(DX*sc), Y5); \
	L(q2(SI)(DX*sc), Y6); \
	L(q3(SI)(DX*sc), Y7); \
	VFMADD231PS Y4, Y12, Y0; \
	VFMADD231PS Y5, Y12, Y1; \
	VFMADD231PS Y6, Y12, Y2; \
	VFMADD231PS Y7, Y12, Y3; \
	L((R9)(DX*sc), Y8); \
	L(q1(R9)(DX*sc), Y9); \
	L(q2(R9)(DX*sc), Y10); \
	L(q3(R9)(DX*sc), Y11); \
	VFMADD231PS Y8, Y13, Y0; \
	VFMADD231PS Y9, Y13, Y1; \
	VFMADD231PS Y10, Y13, Y2; \
	VFMADD231PS Y11, Y13, Y3; \
	L((R10)(DX*sc), Y4); \
	L(q1(R10)(DX*sc), Y5); \
	L(q2(R10)(DX*sc), Y6); \
	L(q3(R10)(DX*sc), Y7); \
	VFMADD231PS Y4, Y14, Y0; \
	VFMADD231PS Y5, Y14, Y1; \
	VFMADD231PS Y6, Y14, Y2; \
	VFMADD231PS Y7, Y14, Y3; \
	L((R11)(DX*sc), Y8); \
	L(q1(R11)(DX*sc), Y9); \
	L(q2(R11)(DX*sc), Y10); \
	L(q3(R11)(DX*sc), Y11); \
	VFMADD231PS Y8, Y15, Y0; \
	VFMADD231PS Y9, Y15, Y1; \
	VFMADD231PS Y10, Y15, Y2; \
	VFMADD231PS Y11, Y15, Y3; \
	VMOVUPS Y0, (DI)(DX*4); \
	VMOVUPS Y1, 32(DI)(DX*4); \
	VMOVUPS Y2, 64(DI)(DX*4); \
	VMOVUPS Y3, 96(DI)(DX*4); \
	PF(R12); \
	PF(R13); \
	PF(R14); \
	PF(AX); \
	ADDQ $32, DX; \
	CMPQ DX, R15; \
	JLT  loop; \
eight: \
	CMPQ DX, cols+56(FP); \
	JGE  next; \
	VMOVUPS (DI)(DX*4), Y0; \
	L((SI)(DX*sc), Y4); \
	L((R9)(DX*sc), Y5); \
	L((R10)(DX*sc), Y6); \
	L((R11)(DX*sc), Y7); \
	VFMADD231PS Y4, Y12, Y0; \
	VFMADD231PS Y5, Y13, Y0; \
	VFMADD231PS Y6, Y14, Y0; \
	VFMADD231PS Y7, Y15, Y0; \
	VMOVUPS Y0, (DI)(DX*4); \
	ADDQ $8, DX; \
	JMP  eight; \
next: \
	ADDQ $4, CX; \
	CMPQ CX, n+40(FP); \
	JLT  pass; \
	VZEROUPPER

// ---------------------------------------------------------------- functions

// func gatherF32AVX512(w unsafe.Pointer, stride int, x, y *float32, rows *int32, n, pfd, cols int)
TEXT ·gatherF32AVX512(SB), NOSPLIT, $0-64
	GATHER512(L16_F32, T16_F32, PF_F32, 4, 64)
	RET

// func gatherF16AVX512(w unsafe.Pointer, stride int, x, y *float32, rows *int32, n, pfd, cols int)
TEXT ·gatherF16AVX512(SB), NOSPLIT, $0-64
	GATHER512(L16_F16, T16_F16, PF_16, 2, 32)
	RET

// func gatherBF16AVX512(w unsafe.Pointer, stride int, x, y *float32, rows *int32, n, pfd, cols int)
TEXT ·gatherBF16AVX512(SB), NOSPLIT, $0-64
	GATHER512(L16_BF16, T16_BF16, PF_16, 2, 32)
	RET

// func accumF32AVX512(w unsafe.Pointer, stride int, y, a *float32, rows *int32, n, pfd, cols int)
TEXT ·accumF32AVX512(SB), NOSPLIT, $0-64
	ACCUM512(L16_F32, T16_F32, PF_F32, 4, 64)
	RET

// func accumF16AVX512(w unsafe.Pointer, stride int, y, a *float32, rows *int32, n, pfd, cols int)
TEXT ·accumF16AVX512(SB), NOSPLIT, $0-64
	ACCUM512(L16_F16, T16_F16, PF_16, 2, 32)
	RET

// func accumBF16AVX512(w unsafe.Pointer, stride int, y, a *float32, rows *int32, n, pfd, cols int)
TEXT ·accumBF16AVX512(SB), NOSPLIT, $0-64
	ACCUM512(L16_BF16, T16_BF16, PF_16, 2, 32)
	RET

// func gatherF32AVX2(w unsafe.Pointer, stride int, x, y *float32, rows *int32, n, pfd, cols int)
TEXT ·gatherF32AVX2(SB), NOSPLIT, $0-64
	GATHER256(L8_F32, PF_F32, 4, 32, 64, 96)
	RET

// func gatherF16AVX2(w unsafe.Pointer, stride int, x, y *float32, rows *int32, n, pfd, cols int)
TEXT ·gatherF16AVX2(SB), NOSPLIT, $0-64
	GATHER256(L8_F16, PF_16, 2, 16, 32, 48)
	RET

// func gatherBF16AVX2(w unsafe.Pointer, stride int, x, y *float32, rows *int32, n, pfd, cols int)
TEXT ·gatherBF16AVX2(SB), NOSPLIT, $0-64
	GATHER256(L8_BF16, PF_16, 2, 16, 32, 48)
	RET

// func accumF32AVX2(w unsafe.Pointer, stride int, y, a *float32, rows *int32, n, pfd, cols int)
TEXT ·accumF32AVX2(SB), NOSPLIT, $0-64
	ACCUM256(L8_F32, PF_F32, 4, 32, 64, 96)
	RET

// func accumF16AVX2(w unsafe.Pointer, stride int, y, a *float32, rows *int32, n, pfd, cols int)
TEXT ·accumF16AVX2(SB), NOSPLIT, $0-64
	ACCUM256(L8_F16, PF_16, 2, 16, 32, 48)
	RET

// func accumBF16AVX2(w unsafe.Pointer, stride int, y, a *float32, rows *int32, n, pfd, cols int)
TEXT ·accumBF16AVX2(SB), NOSPLIT, $0-64
	ACCUM256(L8_BF16, PF_16, 2, 16, 32, 48)
	RET
