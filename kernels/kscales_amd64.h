// Macros shared by the k-quant kernels (q4_amd64.s, qk_amd64.s).

// Q4_K and Q5_K super-blocks share the scale layout (q4KScaleMin).
// Q4KSCALES decodes the Q4_K super-block at SI: Y6 = d·sc[0..7], Y7 =
// dmin·m[0..7] (clobbers R10, R11, CX, Y9).
#define Q4KSCALES \
	MOVL         4(SI), R10; \
	MOVL         12(SI), CX; \
	ANDL         $0x0f0f0f0f, CX; \
	MOVL         R10, R11; \
	SHRL         $2, R11; \
	ANDL         $0x30303030, R11; \
	ORL          R11, CX; \
	ANDL         $0x3f3f3f3f, R10; \
	SHLQ         $32, CX; \
	ORQ          CX, R10; \
	MOVL         8(SI), R11; \
	SHRL         $2, R11; \
	ANDL         $0x30303030, R11; \
	MOVL         12(SI), CX; \
	SHRL         $4, CX; \
	ANDL         $0x0f0f0f0f, CX; \
	ORL          R11, CX; \
	MOVL         8(SI), R11; \
	ANDL         $0x3f3f3f3f, R11; \
	SHLQ         $32, CX; \
	ORQ          CX, R11; \
	VMOVQ        R10, X6; \
	VPMOVZXBD    X6, Y6; \
	VCVTDQ2PS    Y6, Y6; \
	VPBROADCASTW (SI), X9; \
	VCVTPH2PS    X9, Y9; \
	VMULPS       Y9, Y6, Y6; \
	VMOVQ        R11, X7; \
	VPMOVZXBD    X7, Y7; \
	VCVTDQ2PS    Y7, Y7; \
	VPBROADCASTW 2(SI), X9; \
	VCVTPH2PS    X9, Y9; \
	VMULPS       Y9, Y7, Y7
