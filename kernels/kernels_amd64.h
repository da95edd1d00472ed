// Assembly macros shared by the amd64 kernels (gemv, sparse, q8).

// REDUCE8_512 sums each of Z1..Z8 horizontally and stores the eight lane
// results at BX, BX+R13, ..., BX+7*R13 (clobbers DX, R12).
#define REDUCE8_512 \
	VEXTRACTF64X4 $1, Z1, Y9; \
	VEXTRACTF64X4 $1, Z2, Y10; \
	VEXTRACTF64X4 $1, Z3, Y11; \
	VEXTRACTF64X4 $1, Z4, Y12; \
	VEXTRACTF64X4 $1, Z5, Y13; \
	VEXTRACTF64X4 $1, Z6, Y14; \
	VEXTRACTF64X4 $1, Z7, Y15; \
	VEXTRACTF64X4 $1, Z8, Y16; \
	VADDPS        Y9, Y1, Y1; \
	VADDPS        Y10, Y2, Y2; \
	VADDPS        Y11, Y3, Y3; \
	VADDPS        Y12, Y4, Y4; \
	VADDPS        Y13, Y5, Y5; \
	VADDPS        Y14, Y6, Y6; \
	VADDPS        Y15, Y7, Y7; \
	VADDPS        Y16, Y8, Y8; \
	VHADDPS       Y2, Y1, Y1; \
	VHADDPS       Y4, Y3, Y3; \
	VHADDPS       Y6, Y5, Y5; \
	VHADDPS       Y8, Y7, Y7; \
	VHADDPS       Y3, Y1, Y1; \
	VHADDPS       Y7, Y5, Y5; \
	VPERM2F128    $0x20, Y5, Y1, Y2; \
	VPERM2F128    $0x31, Y5, Y1, Y3; \
	VADDPS        Y3, Y2, Y2; \
	VEXTRACTF128  $1, Y2, X3; \
	LEAQ          (BX)(R13*2), DX; \
	LEAQ          (DX)(R13*1), R12; \
	VMOVSS        X2, (BX); \
	VEXTRACTPS    $1, X2, (BX)(R13*1); \
	VEXTRACTPS    $2, X2, (DX); \
	VEXTRACTPS    $3, X2, (R12); \
	VMOVSS        X3, (BX)(R13*4); \
	VEXTRACTPS    $1, X3, (R12)(R13*2); \
	VEXTRACTPS    $2, X3, (DX)(R13*4); \
	VEXTRACTPS    $3, X3, (R12)(R13*4)

// ROWPTR sets dst to the address of the row whose int32 index is at m.
#define ROWPTR(m, dst) \
	MOVLQSX m, dst; \
	IMULQ   stride+8(FP), dst; \
	ADDQ    w+0(FP), dst

// PASSPTRS sets the four row pointers of the pass at CX and the four
// prefetch pointers, and clears DX.
#define PASSPTRS \
	ROWPTR(0(R8)(CX*4), SI); \
	ROWPTR(4(R8)(CX*4), R9); \
	ROWPTR(8(R8)(CX*4), R10); \
	ROWPTR(12(R8)(CX*4), R11); \
	MOVQ    CX, AX; \
	ADDQ    pfd+48(FP), AX; \
	MOVQ    n+40(FP), DX; \
	SUBQ    $4, DX; \
	CMPQ    AX, DX; \
	CMOVQGT DX, AX; \
	ROWPTR(0(R8)(AX*4), R12); \
	ROWPTR(4(R8)(AX*4), R13); \
	ROWPTR(8(R8)(AX*4), R14); \
	ROWPTR(12(R8)(AX*4), AX); \
	XORQ    DX, DX

// PASSPTRS8 sets the eight row pointers of the pass at CX (SI, R9, R10,
// R11, R12, R13, R14, AX) and clears DX. The eight-row kernels prefetch
// nothing: they serve rows long enough for the hardware prefetchers.
#define PASSPTRS8 \
	ROWPTR(0(R8)(CX*4), SI); \
	ROWPTR(4(R8)(CX*4), R9); \
	ROWPTR(8(R8)(CX*4), R10); \
	ROWPTR(12(R8)(CX*4), R11); \
	ROWPTR(16(R8)(CX*4), R12); \
	ROWPTR(20(R8)(CX*4), R13); \
	ROWPTR(24(R8)(CX*4), R14); \
	ROWPTR(28(R8)(CX*4), AX); \
	XORQ DX, DX
