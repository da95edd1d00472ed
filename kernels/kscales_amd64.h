// Macros shared by the four-row and k-quant kernels (q4_amd64.s, qk_amd64.s).

// QKQUARTER sets R12 to the pass count q of the four-row kernels from R13
// = n: ⌈n/4⌉, made odd when it is 32 or more. The four streams of a pass
// are q·stride bytes apart; for an even q that is often a multiple of a
// large power of two (2048×8192 Q6_K: q = 512, 3.3 MiB = 105·32 KiB),
// and such streams, read in lockstep, ran at 15-17 GB/s instead of 20
// (DRAM bank or cache set conflicts, measured, not analysed further).
// The extra pass costs at most four rows (clamped to n-1).
#define QKQUARTER \
	LEAQ 3(R13), R12; \
	SHRQ $2, R12; \
	CMPQ R12, $32; \
	JLT  2(PC); \
	ORQ  $1, R12

// R4STORE stores the sums of a four-row pass, the lanes of xs: lane t at
// y[R15 + t·q] (q from QKQUARTER), the index clamped to n-1 (y at BX;
// clobbers R12, R13, DX). R4LANE stores one lane, its offset t·q in DX.
#define R4LANE(lane, xs) \
	ADDQ       R15, DX; \
	CMPQ       DX, R13; \
	CMOVQGT    R13, DX; \
	VEXTRACTPS $lane, xs, (BX)(DX*4)

#define R4STORE(xs) \
	MOVQ   n+56(FP), R13; \
	QKQUARTER; \
	DECQ   R13; \
	VMOVSS xs, (BX)(R15*4); \
	MOVQ   R12, DX; \
	R4LANE(1, xs); \
	LEAQ   (R12)(R12*1), DX; \
	R4LANE(2, xs); \
	LEAQ   (R12)(R12*2), DX; \
	R4LANE(3, xs)

// Q4_K and Q5_K super-blocks share the scale layout (q4KScaleMin).
// Q4KSCALES decodes the Q4_K super-block at SI: Y6 = d·sc[0..7], Y7 =
// dmin·m[0..7] (clobbers R10, R11, CX, Y9).
#define Q4KSCALES Q4KSCALESR(SI, R10, R11, CX)

// Q4KSCALESR is Q4KSCALES for the super-block at row, with the scratch
// registers ra, rb, rc instead of R10, R11, CX: Y6 = d·sc[0..7], Y7 =
// dmin·m[0..7] (clobbers ra, rb, rc, Y9).
#define Q4KSCALESR(row, ra, rb, rc) \
	MOVL         4(row), ra; \
	MOVL         12(row), rc; \
	ANDL         $0x0f0f0f0f, rc; \
	MOVL         ra, rb; \
	SHRL         $2, rb; \
	ANDL         $0x30303030, rb; \
	ORL          rb, rc; \
	ANDL         $0x3f3f3f3f, ra; \
	SHLQ         $32, rc; \
	ORQ          rc, ra; \
	MOVL         8(row), rb; \
	SHRL         $2, rb; \
	ANDL         $0x30303030, rb; \
	MOVL         12(row), rc; \
	SHRL         $4, rc; \
	ANDL         $0x0f0f0f0f, rc; \
	ORL          rb, rc; \
	MOVL         8(row), rb; \
	ANDL         $0x3f3f3f3f, rb; \
	SHLQ         $32, rc; \
	ORQ          rc, rb; \
	VMOVQ        ra, X6; \
	VPMOVZXBD    X6, Y6; \
	VCVTDQ2PS    Y6, Y6; \
	VPBROADCASTW (row), X9; \
	VCVTPH2PS    X9, Y9; \
	VMULPS       Y9, Y6, Y6; \
	VMOVQ        rb, X7; \
	VPMOVZXBD    X7, Y7; \
	VCVTDQ2PS    Y7, Y7; \
	VPBROADCASTW 2(row), X9; \
	VCVTPH2PS    X9, Y9; \
	VMULPS       Y9, Y7, Y7
