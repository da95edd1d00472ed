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

// ---------------------------------------------------------------- eight rows

// GATHER512_8 is GATHER512 over eight rows per pass (n a multiple of 8):
// more independent row streams in flight hide more of each row's start-up
// (page walk, prefetcher training). Z0, Z9 x; Z1..Z8 and Z16..Z23
// accumulators (two per row); Z10..Z15, Z24..Z31 weights; BX the tail
// count, then y.
#define GATHER512_8(L, T, sc, h) \
	MOVQ x+16(FP), DI; \
	MOVQ rows+32(FP), R8; \
	MASK16; \
	XORQ CX, CX; \
pass: \
	PASSPTRS8; \
	VPXORD Z1, Z1, Z1; \
	VPXORD Z2, Z2, Z2; \
	VPXORD Z3, Z3, Z3; \
	VPXORD Z4, Z4, Z4; \
	VPXORD Z5, Z5, Z5; \
	VPXORD Z6, Z6, Z6; \
	VPXORD Z7, Z7, Z7; \
	VPXORD Z8, Z8, Z8; \
	VPXORD Z16, Z16, Z16; \
	VPXORD Z17, Z17, Z17; \
	VPXORD Z18, Z18, Z18; \
	VPXORD Z19, Z19, Z19; \
	VPXORD Z20, Z20, Z20; \
	VPXORD Z21, Z21, Z21; \
	VPXORD Z22, Z22, Z22; \
	VPXORD Z23, Z23, Z23; \
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
	L((R11)(DX*sc), Z24); \
	L(h(R11)(DX*sc), Z25); \
	VFMADD231PS Z10, Z0, Z1; \
	VFMADD231PS Z11, Z9, Z16; \
	VFMADD231PS Z12, Z0, Z2; \
	VFMADD231PS Z13, Z9, Z17; \
	VFMADD231PS Z14, Z0, Z3; \
	VFMADD231PS Z15, Z9, Z18; \
	VFMADD231PS Z24, Z0, Z4; \
	VFMADD231PS Z25, Z9, Z19; \
	L((R12)(DX*sc), Z26); \
	L(h(R12)(DX*sc), Z27); \
	L((R13)(DX*sc), Z28); \
	L(h(R13)(DX*sc), Z29); \
	L((R14)(DX*sc), Z30); \
	L(h(R14)(DX*sc), Z31); \
	L((AX)(DX*sc), Z10); \
	L(h(AX)(DX*sc), Z11); \
	VFMADD231PS Z26, Z0, Z5; \
	VFMADD231PS Z27, Z9, Z20; \
	VFMADD231PS Z28, Z0, Z6; \
	VFMADD231PS Z29, Z9, Z21; \
	VFMADD231PS Z30, Z0, Z7; \
	VFMADD231PS Z31, Z9, Z22; \
	VFMADD231PS Z10, Z0, Z8; \
	VFMADD231PS Z11, Z9, Z23; \
	ADDQ $32, DX; \
	CMPQ DX, R15; \
	JLT  loop; \
half: \
	MOVQ cols+56(FP), BX; \
	SUBQ DX, BX; \
	CMPQ BX, $16; \
	JLT  tail; \
	VMOVUPS (DI)(DX*4), Z0; \
	L((SI)(DX*sc), Z10); \
	L((R9)(DX*sc), Z12); \
	L((R10)(DX*sc), Z14); \
	L((R11)(DX*sc), Z24); \
	L((R12)(DX*sc), Z26); \
	L((R13)(DX*sc), Z28); \
	L((R14)(DX*sc), Z30); \
	L((AX)(DX*sc), Z11); \
	VFMADD231PS Z10, Z0, Z1; \
	VFMADD231PS Z12, Z0, Z2; \
	VFMADD231PS Z14, Z0, Z3; \
	VFMADD231PS Z24, Z0, Z4; \
	VFMADD231PS Z26, Z0, Z5; \
	VFMADD231PS Z28, Z0, Z6; \
	VFMADD231PS Z30, Z0, Z7; \
	VFMADD231PS Z11, Z0, Z8; \
	ADDQ $16, DX; \
	SUBQ $16, BX; \
tail: \
	TESTQ BX, BX; \
	JEQ   reduce; \
	VMOVUPS.Z (DI)(DX*4), K1, Z0; \
	T((SI)(DX*sc), Y10, Z10); \
	T((R9)(DX*sc), Y12, Z12); \
	T((R10)(DX*sc), Y14, Z14); \
	T((R11)(DX*sc), Y24, Z24); \
	T((R12)(DX*sc), Y26, Z26); \
	T((R13)(DX*sc), Y28, Z28); \
	T((R14)(DX*sc), Y30, Z30); \
	T((AX)(DX*sc), Y11, Z11); \
	VFMADD231PS Z10, Z0, Z16; \
	VFMADD231PS Z12, Z0, Z17; \
	VFMADD231PS Z14, Z0, Z18; \
	VFMADD231PS Z24, Z0, Z19; \
	VFMADD231PS Z26, Z0, Z20; \
	VFMADD231PS Z28, Z0, Z21; \
	VFMADD231PS Z30, Z0, Z22; \
	VFMADD231PS Z11, Z0, Z23; \
reduce: \
	VADDPS Z16, Z1, Z1; \
	VADDPS Z17, Z2, Z2; \
	VADDPS Z18, Z3, Z3; \
	VADDPS Z19, Z4, Z4; \
	VADDPS Z20, Z5, Z5; \
	VADDPS Z21, Z6, Z6; \
	VADDPS Z22, Z7, Z7; \
	VADDPS Z23, Z8, Z8; \
	MOVQ   y+24(FP), BX; \
	LEAQ   (BX)(CX*4), BX; \
	MOVQ   $4, R13; \
	REDUCE8_512; \
	ADDQ   $8, CX; \
	CMPQ   CX, n+40(FP); \
	JLT    pass; \
	VZEROUPPER

// ACCUM512_8 is ACCUM512 over eight rows per pass (n a multiple of 8).
// Z0, Z1 y (rows 0-3 added in), Z28, Z29 rows 4-7; Z12..Z19 the
// coefficients; Z2..Z9, Z20..Z27 weights; BX a, then the tail count.
#define ACCUM512_8(L, T, sc, h) \
	MOVQ y+16(FP), DI; \
	MOVQ rows+32(FP), R8; \
	MASK16; \
	XORQ CX, CX; \
pass: \
	PASSPTRS8; \
	MOVQ a+24(FP), BX; \
	VBROADCASTSS (BX)(CX*4), Z12; \
	VBROADCASTSS 4(BX)(CX*4), Z13; \
	VBROADCASTSS 8(BX)(CX*4), Z14; \
	VBROADCASTSS 12(BX)(CX*4), Z15; \
	VBROADCASTSS 16(BX)(CX*4), Z16; \
	VBROADCASTSS 20(BX)(CX*4), Z17; \
	VBROADCASTSS 24(BX)(CX*4), Z18; \
	VBROADCASTSS 28(BX)(CX*4), Z19; \
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
	L((R12)(DX*sc), Z20); \
	L(h(R12)(DX*sc), Z21); \
	L((R13)(DX*sc), Z22); \
	L(h(R13)(DX*sc), Z23); \
	L((R14)(DX*sc), Z24); \
	L(h(R14)(DX*sc), Z25); \
	L((AX)(DX*sc), Z26); \
	L(h(AX)(DX*sc), Z27); \
	VFMADD231PS Z2, Z12, Z0; \
	VFMADD231PS Z3, Z12, Z1; \
	VMULPS      Z20, Z16, Z28; \
	VMULPS      Z21, Z16, Z29; \
	VFMADD231PS Z4, Z13, Z0; \
	VFMADD231PS Z5, Z13, Z1; \
	VFMADD231PS Z22, Z17, Z28; \
	VFMADD231PS Z23, Z17, Z29; \
	VFMADD231PS Z6, Z14, Z0; \
	VFMADD231PS Z7, Z14, Z1; \
	VFMADD231PS Z24, Z18, Z28; \
	VFMADD231PS Z25, Z18, Z29; \
	VFMADD231PS Z8, Z15, Z0; \
	VFMADD231PS Z9, Z15, Z1; \
	VFMADD231PS Z26, Z19, Z28; \
	VFMADD231PS Z27, Z19, Z29; \
	VADDPS  Z28, Z0, Z0; \
	VADDPS  Z29, Z1, Z1; \
	VMOVUPS Z0, (DI)(DX*4); \
	VMOVUPS Z1, 64(DI)(DX*4); \
	ADDQ $32, DX; \
	CMPQ DX, R15; \
	JLT  loop; \
half: \
	MOVQ cols+56(FP), BX; \
	SUBQ DX, BX; \
	CMPQ BX, $16; \
	JLT  tail; \
	VMOVUPS (DI)(DX*4), Z0; \
	L((SI)(DX*sc), Z2); \
	L((R9)(DX*sc), Z4); \
	L((R10)(DX*sc), Z6); \
	L((R11)(DX*sc), Z8); \
	L((R12)(DX*sc), Z20); \
	L((R13)(DX*sc), Z22); \
	L((R14)(DX*sc), Z24); \
	L((AX)(DX*sc), Z26); \
	VFMADD231PS Z2, Z12, Z0; \
	VFMADD231PS Z4, Z13, Z0; \
	VFMADD231PS Z6, Z14, Z0; \
	VFMADD231PS Z8, Z15, Z0; \
	VFMADD231PS Z20, Z16, Z0; \
	VFMADD231PS Z22, Z17, Z0; \
	VFMADD231PS Z24, Z18, Z0; \
	VFMADD231PS Z26, Z19, Z0; \
	VMOVUPS Z0, (DI)(DX*4); \
	ADDQ $16, DX; \
	SUBQ $16, BX; \
tail: \
	TESTQ BX, BX; \
	JEQ   next; \
	VMOVUPS.Z (DI)(DX*4), K1, Z0; \
	T((SI)(DX*sc), Y2, Z2); \
	T((R9)(DX*sc), Y4, Z4); \
	T((R10)(DX*sc), Y6, Z6); \
	T((R11)(DX*sc), Y8, Z8); \
	T((R12)(DX*sc), Y20, Z20); \
	T((R13)(DX*sc), Y22, Z22); \
	T((R14)(DX*sc), Y24, Z24); \
	T((AX)(DX*sc), Y26, Z26); \
	VFMADD231PS Z2, Z12, Z0; \
	VFMADD231PS Z4, Z13, Z0; \
	VFMADD231PS Z6, Z14, Z0; \
	VFMADD231PS Z8, Z15, Z0; \
	VFMADD231PS Z20, Z16, Z0; \
	VFMADD231PS Z22, Z17, Z0; \
	VFMADD231PS Z24, Z18, Z0; \
	VFMADD231PS Z26, Z19, Z0; \
	VMOVUPS Z0, K1, (DI)(DX*4); \
next: \
	ADDQ $8, CX; \
	CMPQ CX, n+40(FP); \
	JLT  pass; \
	VZEROUPPER

// ---------------------------------------------------------------- sixteen rows

// PASSPTRS16 stores the sixteen row pointers of the pass at CX at 0(SP),
// 8(SP), ..., 120(SP) (through AX) and clears DX.
#define PASSPTRS16 \
	ROWPTR(0(R8)(CX*4), AX); \
	MOVQ AX, 0(SP); \
	ROWPTR(4(R8)(CX*4), AX); \
	MOVQ AX, 8(SP); \
	ROWPTR(8(R8)(CX*4), AX); \
	MOVQ AX, 16(SP); \
	ROWPTR(12(R8)(CX*4), AX); \
	MOVQ AX, 24(SP); \
	ROWPTR(16(R8)(CX*4), AX); \
	MOVQ AX, 32(SP); \
	ROWPTR(20(R8)(CX*4), AX); \
	MOVQ AX, 40(SP); \
	ROWPTR(24(R8)(CX*4), AX); \
	MOVQ AX, 48(SP); \
	ROWPTR(28(R8)(CX*4), AX); \
	MOVQ AX, 56(SP); \
	ROWPTR(32(R8)(CX*4), AX); \
	MOVQ AX, 64(SP); \
	ROWPTR(36(R8)(CX*4), AX); \
	MOVQ AX, 72(SP); \
	ROWPTR(40(R8)(CX*4), AX); \
	MOVQ AX, 80(SP); \
	ROWPTR(44(R8)(CX*4), AX); \
	MOVQ AX, 88(SP); \
	ROWPTR(48(R8)(CX*4), AX); \
	MOVQ AX, 96(SP); \
	ROWPTR(52(R8)(CX*4), AX); \
	MOVQ AX, 104(SP); \
	ROWPTR(56(R8)(CX*4), AX); \
	MOVQ AX, 112(SP); \
	ROWPTR(60(R8)(CX*4), AX); \
	MOVQ AX, 120(SP); \
	XORQ DX, DX

// GATHER512_16 is GATHER512 over sixteen rows per pass (n a multiple of
// 16, cols a multiple of 32, no prefetch), each row's pointer reloaded
// from the stack (there are not sixteen spare registers). Z0, Z25 x;
// Z1..Z8 and Z17..Z24 one accumulator per row; Z9..Z16, Z26..Z31 weights.
#define GATHER512_16(L, sc, h) \
	MOVQ x+16(FP), DI; \
	MOVQ rows+32(FP), R8; \
	MOVQ cols+56(FP), R15; \
	XORQ CX, CX; \
pass: \
	PASSPTRS16; \
	VPXORD Z1, Z1, Z1; \
	VPXORD Z2, Z2, Z2; \
	VPXORD Z3, Z3, Z3; \
	VPXORD Z4, Z4, Z4; \
	VPXORD Z5, Z5, Z5; \
	VPXORD Z6, Z6, Z6; \
	VPXORD Z7, Z7, Z7; \
	VPXORD Z8, Z8, Z8; \
	VPXORD Z17, Z17, Z17; \
	VPXORD Z18, Z18, Z18; \
	VPXORD Z19, Z19, Z19; \
	VPXORD Z20, Z20, Z20; \
	VPXORD Z21, Z21, Z21; \
	VPXORD Z22, Z22, Z22; \
	VPXORD Z23, Z23, Z23; \
	VPXORD Z24, Z24, Z24; \
loop: \
	VMOVUPS (DI)(DX*4), Z0; \
	VMOVUPS 64(DI)(DX*4), Z25; \
	MOVQ 0(SP), SI; \
	L((SI)(DX*sc), Z9); \
	L(h(SI)(DX*sc), Z10); \
	VFMADD231PS Z9, Z0, Z1; \
	VFMADD231PS Z10, Z25, Z1; \
	MOVQ 8(SP), R9; \
	L((R9)(DX*sc), Z11); \
	L(h(R9)(DX*sc), Z12); \
	VFMADD231PS Z11, Z0, Z2; \
	VFMADD231PS Z12, Z25, Z2; \
	MOVQ 16(SP), R10; \
	L((R10)(DX*sc), Z13); \
	L(h(R10)(DX*sc), Z14); \
	VFMADD231PS Z13, Z0, Z3; \
	VFMADD231PS Z14, Z25, Z3; \
	MOVQ 24(SP), R11; \
	L((R11)(DX*sc), Z15); \
	L(h(R11)(DX*sc), Z16); \
	VFMADD231PS Z15, Z0, Z4; \
	VFMADD231PS Z16, Z25, Z4; \
	MOVQ 32(SP), R12; \
	L((R12)(DX*sc), Z26); \
	L(h(R12)(DX*sc), Z27); \
	VFMADD231PS Z26, Z0, Z5; \
	VFMADD231PS Z27, Z25, Z5; \
	MOVQ 40(SP), R13; \
	L((R13)(DX*sc), Z28); \
	L(h(R13)(DX*sc), Z29); \
	VFMADD231PS Z28, Z0, Z6; \
	VFMADD231PS Z29, Z25, Z6; \
	MOVQ 48(SP), R14; \
	L((R14)(DX*sc), Z30); \
	L(h(R14)(DX*sc), Z31); \
	VFMADD231PS Z30, Z0, Z7; \
	VFMADD231PS Z31, Z25, Z7; \
	MOVQ 56(SP), AX; \
	L((AX)(DX*sc), Z9); \
	L(h(AX)(DX*sc), Z10); \
	VFMADD231PS Z9, Z0, Z8; \
	VFMADD231PS Z10, Z25, Z8; \
	MOVQ 64(SP), SI; \
	L((SI)(DX*sc), Z11); \
	L(h(SI)(DX*sc), Z12); \
	VFMADD231PS Z11, Z0, Z17; \
	VFMADD231PS Z12, Z25, Z17; \
	MOVQ 72(SP), R9; \
	L((R9)(DX*sc), Z13); \
	L(h(R9)(DX*sc), Z14); \
	VFMADD231PS Z13, Z0, Z18; \
	VFMADD231PS Z14, Z25, Z18; \
	MOVQ 80(SP), R10; \
	L((R10)(DX*sc), Z15); \
	L(h(R10)(DX*sc), Z16); \
	VFMADD231PS Z15, Z0, Z19; \
	VFMADD231PS Z16, Z25, Z19; \
	MOVQ 88(SP), R11; \
	L((R11)(DX*sc), Z26); \
	L(h(R11)(DX*sc), Z27); \
	VFMADD231PS Z26, Z0, Z20; \
	VFMADD231PS Z27, Z25, Z20; \
	MOVQ 96(SP), R12; \
	L((R12)(DX*sc), Z28); \
	L(h(R12)(DX*sc), Z29); \
	VFMADD231PS Z28, Z0, Z21; \
	VFMADD231PS Z29, Z25, Z21; \
	MOVQ 104(SP), R13; \
	L((R13)(DX*sc), Z30); \
	L(h(R13)(DX*sc), Z31); \
	VFMADD231PS Z30, Z0, Z22; \
	VFMADD231PS Z31, Z25, Z22; \
	MOVQ 112(SP), R14; \
	L((R14)(DX*sc), Z9); \
	L(h(R14)(DX*sc), Z10); \
	VFMADD231PS Z9, Z0, Z23; \
	VFMADD231PS Z10, Z25, Z23; \
	MOVQ 120(SP), AX; \
	L((AX)(DX*sc), Z11); \
	L(h(AX)(DX*sc), Z12); \
	VFMADD231PS Z11, Z0, Z24; \
	VFMADD231PS Z12, Z25, Z24; \
	ADDQ $32, DX; \
	CMPQ DX, R15; \
	JLT  loop; \
	MOVQ y+24(FP), BX; \
	LEAQ (BX)(CX*4), BX; \
	MOVQ $4, R13; \
	REDUCE8_512; \
	VMOVAPS Z17, Z1; \
	VMOVAPS Z18, Z2; \
	VMOVAPS Z19, Z3; \
	VMOVAPS Z20, Z4; \
	VMOVAPS Z21, Z5; \
	VMOVAPS Z22, Z6; \
	VMOVAPS Z23, Z7; \
	VMOVAPS Z24, Z8; \
	MOVQ y+24(FP), BX; \
	LEAQ 32(BX)(CX*4), BX; \
	REDUCE8_512; \
	ADDQ $16, CX; \
	CMPQ CX, n+40(FP); \
	JLT  pass; \
	VZEROUPPER

// ACCUM512_16 is ACCUM512 over sixteen rows per pass (as GATHER512_16).
// Z0, Z1 y with rows 0-3 added; Z2, Z3 rows 4-7; Z28, Z29 rows 8-11;
// Z30, Z31 rows 12-15; Z12..Z27 the coefficients; Z4..Z11 weights.
#define ACCUM512_16(L, sc, h) \
	MOVQ y+16(FP), DI; \
	MOVQ rows+32(FP), R8; \
	MOVQ cols+56(FP), R15; \
	XORQ CX, CX; \
pass: \
	PASSPTRS16; \
	MOVQ a+24(FP), BX; \
	VBROADCASTSS 0(BX)(CX*4), Z12; \
	VBROADCASTSS 4(BX)(CX*4), Z13; \
	VBROADCASTSS 8(BX)(CX*4), Z14; \
	VBROADCASTSS 12(BX)(CX*4), Z15; \
	VBROADCASTSS 16(BX)(CX*4), Z16; \
	VBROADCASTSS 20(BX)(CX*4), Z17; \
	VBROADCASTSS 24(BX)(CX*4), Z18; \
	VBROADCASTSS 28(BX)(CX*4), Z19; \
	VBROADCASTSS 32(BX)(CX*4), Z20; \
	VBROADCASTSS 36(BX)(CX*4), Z21; \
	VBROADCASTSS 40(BX)(CX*4), Z22; \
	VBROADCASTSS 44(BX)(CX*4), Z23; \
	VBROADCASTSS 48(BX)(CX*4), Z24; \
	VBROADCASTSS 52(BX)(CX*4), Z25; \
	VBROADCASTSS 56(BX)(CX*4), Z26; \
	VBROADCASTSS 60(BX)(CX*4), Z27; \
loop: \
	VMOVUPS (DI)(DX*4), Z0; \
	VMOVUPS 64(DI)(DX*4), Z1; \
	MOVQ 0(SP), SI; \
	L((SI)(DX*sc), Z4); \
	L(h(SI)(DX*sc), Z5); \
	VFMADD231PS Z4, Z12, Z0; \
	VFMADD231PS Z5, Z12, Z1; \
	MOVQ 8(SP), R9; \
	L((R9)(DX*sc), Z6); \
	L(h(R9)(DX*sc), Z7); \
	VFMADD231PS Z6, Z13, Z0; \
	VFMADD231PS Z7, Z13, Z1; \
	MOVQ 16(SP), R10; \
	L((R10)(DX*sc), Z8); \
	L(h(R10)(DX*sc), Z9); \
	VFMADD231PS Z8, Z14, Z0; \
	VFMADD231PS Z9, Z14, Z1; \
	MOVQ 24(SP), R11; \
	L((R11)(DX*sc), Z10); \
	L(h(R11)(DX*sc), Z11); \
	VFMADD231PS Z10, Z15, Z0; \
	VFMADD231PS Z11, Z15, Z1; \
	MOVQ 32(SP), R12; \
	L((R12)(DX*sc), Z4); \
	L(h(R12)(DX*sc), Z5); \
	VMULPS Z4, Z16, Z2; \
	VMULPS Z5, Z16, Z3; \
	MOVQ 40(SP), R13; \
	L((R13)(DX*sc), Z6); \
	L(h(R13)(DX*sc), Z7); \
	VFMADD231PS Z6, Z17, Z2; \
	VFMADD231PS Z7, Z17, Z3; \
	MOVQ 48(SP), R14; \
	L((R14)(DX*sc), Z8); \
	L(h(R14)(DX*sc), Z9); \
	VFMADD231PS Z8, Z18, Z2; \
	VFMADD231PS Z9, Z18, Z3; \
	MOVQ 56(SP), AX; \
	L((AX)(DX*sc), Z10); \
	L(h(AX)(DX*sc), Z11); \
	VFMADD231PS Z10, Z19, Z2; \
	VFMADD231PS Z11, Z19, Z3; \
	MOVQ 64(SP), SI; \
	L((SI)(DX*sc), Z4); \
	L(h(SI)(DX*sc), Z5); \
	VMULPS Z4, Z20, Z28; \
	VMULPS Z5, Z20, Z29; \
	MOVQ 72(SP), R9; \
	L((R9)(DX*sc), Z6); \
	L(h(R9)(DX*sc), Z7); \
	VFMADD231PS Z6, Z21, Z28; \
	VFMADD231PS Z7, Z21, Z29; \
	MOVQ 80(SP), R10; \
	L((R10)(DX*sc), Z8); \
	L(h(R10)(DX*sc), Z9); \
	VFMADD231PS Z8, Z22, Z28; \
	VFMADD231PS Z9, Z22, Z29; \
	MOVQ 88(SP), R11; \
	L((R11)(DX*sc), Z10); \
	L(h(R11)(DX*sc), Z11); \
	VFMADD231PS Z10, Z23, Z28; \
	VFMADD231PS Z11, Z23, Z29; \
	MOVQ 96(SP), R12; \
	L((R12)(DX*sc), Z4); \
	L(h(R12)(DX*sc), Z5); \
	VMULPS Z4, Z24, Z30; \
	VMULPS Z5, Z24, Z31; \
	MOVQ 104(SP), R13; \
	L((R13)(DX*sc), Z6); \
	L(h(R13)(DX*sc), Z7); \
	VFMADD231PS Z6, Z25, Z30; \
	VFMADD231PS Z7, Z25, Z31; \
	MOVQ 112(SP), R14; \
	L((R14)(DX*sc), Z8); \
	L(h(R14)(DX*sc), Z9); \
	VFMADD231PS Z8, Z26, Z30; \
	VFMADD231PS Z9, Z26, Z31; \
	MOVQ 120(SP), AX; \
	L((AX)(DX*sc), Z10); \
	L(h(AX)(DX*sc), Z11); \
	VFMADD231PS Z10, Z27, Z30; \
	VFMADD231PS Z11, Z27, Z31; \
	VADDPS Z2, Z0, Z0; \
	VADDPS Z3, Z1, Z1; \
	VADDPS Z30, Z28, Z28; \
	VADDPS Z31, Z29, Z29; \
	VADDPS Z28, Z0, Z0; \
	VADDPS Z29, Z1, Z1; \
	VMOVUPS Z0, (DI)(DX*4); \
	VMOVUPS Z1, 64(DI)(DX*4); \
	ADDQ $32, DX; \
	CMPQ DX, R15; \
	JLT  loop; \
	ADDQ $16, CX; \
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

// func gather8F32AVX512(w unsafe.Pointer, stride int, x, y *float32, rows *int32, n, pfd, cols int)
TEXT ·gather8F32AVX512(SB), NOSPLIT, $0-64
	GATHER512_8(L16_F32, T16_F32, 4, 64)
	RET

// func gather8F16AVX512(w unsafe.Pointer, stride int, x, y *float32, rows *int32, n, pfd, cols int)
TEXT ·gather8F16AVX512(SB), NOSPLIT, $0-64
	GATHER512_8(L16_F16, T16_F16, 2, 32)
	RET

// func gather8BF16AVX512(w unsafe.Pointer, stride int, x, y *float32, rows *int32, n, pfd, cols int)
TEXT ·gather8BF16AVX512(SB), NOSPLIT, $0-64
	GATHER512_8(L16_BF16, T16_BF16, 2, 32)
	RET

// func accum8F32AVX512(w unsafe.Pointer, stride int, y, a *float32, rows *int32, n, pfd, cols int)
TEXT ·accum8F32AVX512(SB), NOSPLIT, $0-64
	ACCUM512_8(L16_F32, T16_F32, 4, 64)
	RET

// func accum8F16AVX512(w unsafe.Pointer, stride int, y, a *float32, rows *int32, n, pfd, cols int)
TEXT ·accum8F16AVX512(SB), NOSPLIT, $0-64
	ACCUM512_8(L16_F16, T16_F16, 2, 32)
	RET

// func accum8BF16AVX512(w unsafe.Pointer, stride int, y, a *float32, rows *int32, n, pfd, cols int)
TEXT ·accum8BF16AVX512(SB), NOSPLIT, $0-64
	ACCUM512_8(L16_BF16, T16_BF16, 2, 32)
	RET

// func gather16F32AVX512(w unsafe.Pointer, stride int, x, y *float32, rows *int32, n, pfd, cols int)
TEXT ·gather16F32AVX512(SB), NOSPLIT, $128-64
	GATHER512_16(L16_F32, 4, 64)
	RET

// func gather16F16AVX512(w unsafe.Pointer, stride int, x, y *float32, rows *int32, n, pfd, cols int)
TEXT ·gather16F16AVX512(SB), NOSPLIT, $128-64
	GATHER512_16(L16_F16, 2, 32)
	RET

// func gather16BF16AVX512(w unsafe.Pointer, stride int, x, y *float32, rows *int32, n, pfd, cols int)
TEXT ·gather16BF16AVX512(SB), NOSPLIT, $128-64
	GATHER512_16(L16_BF16, 2, 32)
	RET

// func accum16F32AVX512(w unsafe.Pointer, stride int, y, a *float32, rows *int32, n, pfd, cols int)
TEXT ·accum16F32AVX512(SB), NOSPLIT, $128-64
	ACCUM512_16(L16_F32, 4, 64)
	RET

// func accum16F16AVX512(w unsafe.Pointer, stride int, y, a *float32, rows *int32, n, pfd, cols int)
TEXT ·accum16F16AVX512(SB), NOSPLIT, $128-64
	ACCUM512_16(L16_F16, 2, 32)
	RET

// func accum16BF16AVX512(w unsafe.Pointer, stride int, y, a *float32, rows *int32, n, pfd, cols int)
TEXT ·accum16BF16AVX512(SB), NOSPLIT, $128-64
	ACCUM512_16(L16_BF16, 2, 32)
	RET
