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
