#include "textflag.h"
#include "kscales_amd64.h"

// Q6_K, Q5_K, Q5_0 and Q5_1 dot kernels and Q6_K / Q5_K block decoders
// for amd64 (see qk.go and q5.go for the block layouts, q4_amd64.s for the
// conventions they share with the Q4 kernels). The dot kernels set
// y[k] = row·x for k < n, the row at w + rows[k]·stride (gather) or
// w + k·stride (rows == nil: GEMV), x quantized per 32 values (xq, dx; sx
// for the Q5 offsets and mins). AVX2 (the four-row Q4_K kernels below
// also with AVX512-VNNI); Q6_K, Q5_K and those Q4_K kernels take four rows
// per pass, Q5_0 and Q5_1 one; the integer sums are those of the Go references (dotRowQ6KX, dotRowQ5KX,
// dotRowQ5X), only the order of the f32 operations differs.
//
// Q6_K: per 32 weights (group g of half h), q = low nibble | two high bits
// (unsigned 0..63); VPMADDUBSW q·xq minus VPMADDUBSW 32·xq gives the int16
// pair sums of (q-32)·xq (|q-32| ≤ 32: no saturation), VPMADDWD with the
// two 16-weight sub-block scales (int16: lanes 0-7 the first, 8-15 the
// second) gives eight int32 lanes, converted and multiplied by d·dx.
//
// Registers: AX w, R9 stride, DI xq, BX y, R8 rows (or 0), R15 k (the
// pass); per row SI the current block (Q6_K: R10, R11, CX those of the
// second to fourth rows), R12 xq, R13 dx, R14 sx, DX blocks left. Q6_K:
// Y15 sixteen 0x0f bytes, Y14 0x30 bytes, Y13 32s.

// The Q6_K kernel takes four rows per pass: pass j (R15) computes the rows
// of indices j, j+q, j+2q and j+3q (q = ⌈n/4⌉, odd from 32 on: QKQUARTER;
// GEMV rows or positions in the gather list; indices past n-1 clamped to
// it, as in the Q4_0 kernels) at SI, R10, R11 and CX, one super-block of
// all four per iteration: four sequential streams through the quarters of the matrix,
// which the hardware prefetcher follows, sharing per group of 32 the x
// load (Y8) and the pair sums of 32·xq (Y9). Per super-block each row
// stores on the stack (64 bytes at 64t(SP) for row t) its 16 sub-block
// scales as int16 (bytes 0-31, half h at 16h) and d·dx of the eight
// groups (bytes 32-63); a group's scale vector (int16 lanes 0-7 the first
// sub-block's scale, 8-15 the second's) is one VPSHUFB of the half's
// scales broadcast to both lanes (q6kscshuf), its d·dx one broadcast load.
// Accumulators Y0..Y3 (rows 0..3). A row's sum does not depend on its
// place in the pass, so GEMV and gather agree exactly.

// Q6KROWADDR turns the row index in reg into the row's address, the index
// clamped to R13 = n-1.
#define Q6KROWADDR(reg) \
	CMPQ    reg, R13; \
	CMOVQGT R13, reg; \
	TESTQ   R8, R8; \
	JEQ     2(PC); \
	MOVLQSX (R8)(reg*4), reg; \
	IMULQ   R9, reg; \
	ADDQ    AX, reg

// Q6KSETUP stores the scales of the super-block at row and d·dx of its
// eight groups (dx at R13) at off(SP) (clobbers Y4).
#define Q6KSETUP(row, off) \
	VPMOVSXBW    192(row), Y4; \
	VMOVDQU      Y4, off(SP); \
	VPBROADCASTW 208(row), X4; \
	VCVTPH2PS    X4, Y4; \
	VMULPS       (R13), Y4, Y4; \
	VMOVUPS      Y4, off+32(SP)

// Q6KQ0..Q6KQ3 set Y6 to the 32 unsigned 6-bit values of group g of the
// half whose ql and qh are at qo(b) and ho(b) (clobber Y7).
#define Q6KQ0(b, qo, ho) \
	VPAND   qo(b), Y15, Y6; \
	VMOVDQU ho(b), Y7; \
	VPSLLW  $4, Y7, Y7; \
	VPAND   Y14, Y7, Y7; \
	VPOR    Y7, Y6, Y6

#define Q6KQ1(b, qo, ho) \
	VPAND   qo+32(b), Y15, Y6; \
	VMOVDQU ho(b), Y7; \
	VPSLLW  $2, Y7, Y7; \
	VPAND   Y14, Y7, Y7; \
	VPOR    Y7, Y6, Y6

#define Q6KQ2(b, qo, ho) \
	VMOVDQU qo(b), Y6; \
	VPSRLW  $4, Y6, Y6; \
	VPAND   Y15, Y6, Y6; \
	VPAND   ho(b), Y14, Y7; \
	VPOR    Y7, Y6, Y6

#define Q6KQ3(b, qo, ho) \
	VMOVDQU qo+32(b), Y6; \
	VPSRLW  $4, Y6, Y6; \
	VPAND   Y15, Y6, Y6; \
	VMOVDQU ho(b), Y7; \
	VPSRLW  $2, Y7, Y7; \
	VPAND   Y14, Y7, Y7; \
	VPOR    Y7, Y6, Y6

// Q6KX loads the shared operands of a group: x (Y8) and the pair sums of
// 32·xq (Y9).
#define Q6KX(xo) \
	VMOVDQU    xo(R12), Y8; \
	VPMADDUBSW Y8, Y13, Y9

// Q6KACC adds the group in Y6 of one row into acc: Σ(q-32)·xq per pair
// (int16), times the sub-block scales (the half's int16 scales at so(SP),
// shuffled by q6kscshuf+shuf; VPMADDWD), converted, times d·dx at dd(SP)
// (clobbers Y4..Y6).
#define Q6KACC(shuf, so, dd, acc) \
	VPMADDUBSW     Y8, Y6, Y6; \
	VPSUBW         Y9, Y6, Y6; \
	VBROADCASTI128 so(SP), Y5; \
	VPSHUFB        q6kscshuf<>+shuf(SB), Y5, Y5; \
	VPMADDWD       Y5, Y6, Y6; \
	VCVTDQ2PS      Y6, Y6; \
	VBROADCASTSS   dd(SP), Y4; \
	VFMADD231PS    Y4, Y6, acc

// Q6KHALF adds half h of the four rows' super-blocks (ql at qo, qh at ho,
// x from xo(R12), the half's scales at so(SP), d·dx of its first group at
// dd(SP)).
#define Q6KHALF(qo, ho, xo, so, dd) \
	Q6KX(xo); \
	Q6KQ0(SI, qo, ho); \
	Q6KACC(0, so, dd, Y0); \
	Q6KQ0(R10, qo, ho); \
	Q6KACC(0, so+64, dd+64, Y1); \
	Q6KQ0(R11, qo, ho); \
	Q6KACC(0, so+128, dd+128, Y2); \
	Q6KQ0(CX, qo, ho); \
	Q6KACC(0, so+192, dd+192, Y3); \
	Q6KX(xo+32); \
	Q6KQ1(SI, qo, ho); \
	Q6KACC(32, so, dd+4, Y0); \
	Q6KQ1(R10, qo, ho); \
	Q6KACC(32, so+64, dd+68, Y1); \
	Q6KQ1(R11, qo, ho); \
	Q6KACC(32, so+128, dd+132, Y2); \
	Q6KQ1(CX, qo, ho); \
	Q6KACC(32, so+192, dd+196, Y3); \
	Q6KX(xo+64); \
	Q6KQ2(SI, qo, ho); \
	Q6KACC(64, so, dd+8, Y0); \
	Q6KQ2(R10, qo, ho); \
	Q6KACC(64, so+64, dd+72, Y1); \
	Q6KQ2(R11, qo, ho); \
	Q6KACC(64, so+128, dd+136, Y2); \
	Q6KQ2(CX, qo, ho); \
	Q6KACC(64, so+192, dd+200, Y3); \
	Q6KX(xo+96); \
	Q6KQ3(SI, qo, ho); \
	Q6KACC(96, so, dd+12, Y0); \
	Q6KQ3(R10, qo, ho); \
	Q6KACC(96, so+64, dd+76, Y1); \
	Q6KQ3(R11, qo, ho); \
	Q6KACC(96, so+128, dd+140, Y2); \
	Q6KQ3(CX, qo, ho); \
	Q6KACC(96, so+192, dd+204, Y3)

// q6kscshuf: for group g of a half (32 bytes at 32g), the VPSHUFB that
// turns the half's eight int16 scales (in both lanes) into scale 2g in
// int16 lanes 0-7 and scale 2g+1 in lanes 8-15.
DATA q6kscshuf<>+0(SB)/8, $0x0100010001000100
DATA q6kscshuf<>+8(SB)/8, $0x0100010001000100
DATA q6kscshuf<>+16(SB)/8, $0x0302030203020302
DATA q6kscshuf<>+24(SB)/8, $0x0302030203020302
DATA q6kscshuf<>+32(SB)/8, $0x0504050405040504
DATA q6kscshuf<>+40(SB)/8, $0x0504050405040504
DATA q6kscshuf<>+48(SB)/8, $0x0706070607060706
DATA q6kscshuf<>+56(SB)/8, $0x0706070607060706
DATA q6kscshuf<>+64(SB)/8, $0x0908090809080908
DATA q6kscshuf<>+72(SB)/8, $0x0908090809080908
DATA q6kscshuf<>+80(SB)/8, $0x0b0a0b0a0b0a0b0a
DATA q6kscshuf<>+88(SB)/8, $0x0b0a0b0a0b0a0b0a
DATA q6kscshuf<>+96(SB)/8, $0x0d0c0d0c0d0c0d0c
DATA q6kscshuf<>+104(SB)/8, $0x0d0c0d0c0d0c0d0c
DATA q6kscshuf<>+112(SB)/8, $0x0f0e0f0e0f0e0f0e
DATA q6kscshuf<>+120(SB)/8, $0x0f0e0f0e0f0e0f0e
GLOBL q6kscshuf<>(SB), RODATA|NOPTR, $128

// Q5_K super-blocks lay out their scales and mins as Q4_K's: Q4KSCALES
// and Q4KSCALESR (kscales_amd64.h) decode them.

// Q6KDQGROUP stores one group of 32 weights of a Q6_K half decoded as
// decodeQ6K does, (d·sc)·(q-32), to dofs(DI): Y6 holds q (unsigned
// bytes), sa and sb the stack offsets of the two sub-blocks' d·sc
// (clobbers Y6..Y8, 64(SP)..95(SP)).
#define Q6KDQGROUP(dofs, sa, sb) \
	VPSUBB       Y13, Y6, Y6; \
	VMOVDQU      Y6, 64(SP); \
	VBROADCASTSS sa(SP), Y8; \
	VPMOVSXBD    64(SP), Y7; \
	VCVTDQ2PS    Y7, Y7; \
	VMULPS       Y8, Y7, Y7; \
	VMOVUPS      Y7, dofs(DI); \
	VPMOVSXBD    72(SP), Y7; \
	VCVTDQ2PS    Y7, Y7; \
	VMULPS       Y8, Y7, Y7; \
	VMOVUPS      Y7, dofs+32(DI); \
	VBROADCASTSS sb(SP), Y8; \
	VPMOVSXBD    80(SP), Y7; \
	VCVTDQ2PS    Y7, Y7; \
	VMULPS       Y8, Y7, Y7; \
	VMOVUPS      Y7, dofs+64(DI); \
	VPMOVSXBD    88(SP), Y7; \
	VCVTDQ2PS    Y7, Y7; \
	VMULPS       Y8, Y7, Y7; \
	VMOVUPS      Y7, dofs+96(DI)

// Q6KDQHALF decodes half h of the Q6_K block at SI (ql at qo, qh at ho)
// to dofs(DI), its sub-block scales d·sc from so(SP).
#define Q6KDQHALF(qo, ho, dofs, so) \
	VMOVDQU     qo(SI), Y3; \
	VMOVDQU     qo+32(SI), Y4; \
	VMOVDQU     ho(SI), Y5; \
	VPAND       Y15, Y3, Y6; \
	VPSLLW      $4, Y5, Y7; \
	VPAND       Y14, Y7, Y7; \
	VPOR        Y7, Y6, Y6; \
	Q6KDQGROUP(dofs, so, so+4); \
	VPAND       Y15, Y4, Y6; \
	VPSLLW      $2, Y5, Y7; \
	VPAND       Y14, Y7, Y7; \
	VPOR        Y7, Y6, Y6; \
	Q6KDQGROUP(dofs+128, so+8, so+12); \
	VPSRLW      $4, Y3, Y6; \
	VPAND       Y15, Y6, Y6; \
	VPAND       Y14, Y5, Y7; \
	VPOR        Y7, Y6, Y6; \
	Q6KDQGROUP(dofs+256, so+16, so+20); \
	VPSRLW      $4, Y4, Y6; \
	VPAND       Y15, Y6, Y6; \
	VPSRLW      $2, Y5, Y7; \
	VPAND       Y14, Y7, Y7; \
	VPOR        Y7, Y6, Y6; \
	Q6KDQGROUP(dofs+384, so+24, so+28)

// Q5KDQSUB stores the 32 weights of one Q5_K sub-block decoded as
// decodeQ5K does, (d·sc)·q - dmin·m: Y6 holds q (unsigned bytes), sa the
// stack offset of d·sc (dmin·m 32 bytes above it).
#define Q5KDQSUB(dofs, sa) \
	VMOVDQU      Y6, 64(SP); \
	VBROADCASTSS sa(SP), Y8; \
	VBROADCASTSS sa+32(SP), Y9; \
	VPMOVZXBD    64(SP), Y7; \
	VCVTDQ2PS    Y7, Y7; \
	VMULPS       Y8, Y7, Y7; \
	VSUBPS       Y9, Y7, Y7; \
	VMOVUPS      Y7, dofs(DI); \
	VPMOVZXBD    72(SP), Y7; \
	VCVTDQ2PS    Y7, Y7; \
	VMULPS       Y8, Y7, Y7; \
	VSUBPS       Y9, Y7, Y7; \
	VMOVUPS      Y7, dofs+32(DI); \
	VPMOVZXBD    80(SP), Y7; \
	VCVTDQ2PS    Y7, Y7; \
	VMULPS       Y8, Y7, Y7; \
	VSUBPS       Y9, Y7, Y7; \
	VMOVUPS      Y7, dofs+64(DI); \
	VPMOVZXBD    88(SP), Y7; \
	VCVTDQ2PS    Y7, Y7; \
	VMULPS       Y8, Y7, Y7; \
	VSUBPS       Y9, Y7, Y7; \
	VMOVUPS      Y7, dofs+96(DI)

// Q5KDQCHUNK decodes chunk c of the Q5_K block at SI (qs bytes at qo),
// with the fifth bits of its two sub-blocks in Y11 and Y12 (0x10).
#define Q5KDQCHUNK(qo, dofs, sa) \
	VMOVDQU qo(SI), Y3; \
	VPAND   Y15, Y3, Y6; \
	VPOR    Y11, Y6, Y6; \
	Q5KDQSUB(dofs, sa); \
	VPSRLW  $4, Y3, Y6; \
	VPAND   Y15, Y6, Y6; \
	VPOR    Y12, Y6, Y6; \
	Q5KDQSUB(dofs+128, sa+4)

// func dotQ6KAVX2(w unsafe.Pointer, stride int, xq *int8, dx, sx, y *float32, rows *int32, n, cols int)
TEXT ·dotQ6KAVX2(SB), NOSPLIT, $256-72
	MOVQ         w+0(FP), AX
	MOVQ         stride+8(FP), R9
	MOVQ         xq+16(FP), DI
	MOVQ         y+40(FP), BX
	MOVQ         rows+48(FP), R8
	XORQ         R15, R15
	MOVL         $0x0f0f0f0f, R10
	VMOVD        R10, X15
	VPBROADCASTD X15, Y15
	MOVL         $0x30303030, R10
	VMOVD        R10, X14
	VPBROADCASTD X14, Y14
	MOVL         $0x20202020, R10
	VMOVD        R10, X13
	VPBROADCASTD X13, Y13

q6kpass:
	MOVQ  n+56(FP), R13
	QKQUARTER               // q
	CMPQ  R15, R12
	JGE   q6kdone
	DECQ  R13               // n-1
	MOVQ  R15, SI
	Q6KROWADDR(SI)
	LEAQ  (R15)(R12*1), R10
	Q6KROWADDR(R10)
	LEAQ  (R15)(R12*2), R11
	Q6KROWADDR(R11)
	LEAQ  (R12)(R12*2), CX
	ADDQ  R15, CX
	Q6KROWADDR(CX)
	MOVQ  DI, R12
	MOVQ  dx+24(FP), R13
	MOVQ  cols+64(FP), DX
	SHRQ  $8, DX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3

q6kblk:
	Q6KSETUP(SI, 0)
	Q6KSETUP(R10, 64)
	Q6KSETUP(R11, 128)
	Q6KSETUP(CX, 192)
	Q6KHALF(0, 128, 0, 0, 32)
	Q6KHALF(64, 160, 128, 16, 48)
	ADDQ         $210, SI
	ADDQ         $210, R10
	ADDQ         $210, R11
	ADDQ         $210, CX
	ADDQ         $256, R12
	ADDQ         $32, R13
	DECQ         DX
	JNE          q6kblk

	VEXTRACTF128 $1, Y0, X4
	VADDPS       X4, X0, X0
	VEXTRACTF128 $1, Y1, X4
	VADDPS       X4, X1, X1
	VEXTRACTF128 $1, Y2, X4
	VADDPS       X4, X2, X2
	VEXTRACTF128 $1, Y3, X4
	VADDPS       X4, X3, X3
	VHADDPS      X1, X0, X0
	VHADDPS      X3, X2, X2
	VHADDPS      X2, X0, X0
	R4STORE(X0)
	INCQ         R15
	JMP          q6kpass

q6kdone:
	VZEROUPPER
	RET

// Q4_K, four rows per pass (dotQ4KR4VNNI, dotQ4KR4AVX2; they replaced
// one-row kernels): pass j (R15)
// computes the rows of indices j, j+q, j+2q and j+3q (q from QKQUARTER,
// clamped to n-1) at SI, R10, R11 and CX as the Q6_K kernel does, one
// super-block of all four per iteration. Per super-block and row t,
// Q4KSCALESR decodes the scales (scratch AX, R8, R9: w, rows and stride
// are reloaded each pass), d·sc·dx of the eight sub-blocks goes to
// 32t(SP), and the mins dmin·m·sx are subtracted from the row's second
// accumulator at once. Row t accumulates in Y(t) (low nibbles) and
// Y(10+t) (high nibbles); R12 xq, R13 dx, R14 sx, DX super-blocks left.
// The mins are subtracted per super-block, so a row's f32 operations are
// in a different order from the Go reference's.

// Q4K4ROW decodes the scales of row's super-block into off(SP) and
// subtracts its mins from acc (clobbers AX, R8, R9, Y6, Y7, Y9).
#define Q4K4ROW(row, off, acc) \
	Q4KSCALESR(row, AX, R8, R9); \
	VMULPS       (R13), Y6, Y6; \
	VMOVUPS      Y6, off(SP); \
	VFNMADD231PS (R14), Y7, acc

// Q4K4CHUNKVNNI and Q4K4CHUNKAVX2 add one 64-weight chunk of row's
// super-block (32 bytes at qo(row); low nibbles: x at xo(R12), scale at
// so(SP), into acca; high nibbles: xo+32, so+4, accb) (clobber Y4..Y9).
#define Q4K4CHUNKVNNI(row, qo, xo, so, acca, accb) \
	VMOVDQU      qo(row), Y4; \
	VPSRLW       $4, Y4, Y5; \
	VPAND        Y15, Y4, Y4; \
	VPAND        Y15, Y5, Y5; \
	VPXOR        Y6, Y6, Y6; \
	VPDPBUSD     xo(R12), Y4, Y6; \
	VPXOR        Y7, Y7, Y7; \
	VPDPBUSD     xo+32(R12), Y5, Y7; \
	VCVTDQ2PS    Y6, Y6; \
	VCVTDQ2PS    Y7, Y7; \
	VBROADCASTSS so(SP), Y8; \
	VFMADD231PS  Y8, Y6, acca; \
	VBROADCASTSS so+4(SP), Y9; \
	VFMADD231PS  Y9, Y7, accb

#define Q4K4CHUNKAVX2(row, qo, xo, so, acca, accb) \
	VMOVDQU      qo(row), Y4; \
	VPSRLW       $4, Y4, Y5; \
	VPAND        Y15, Y4, Y4; \
	VPAND        Y15, Y5, Y5; \
	VPMADDUBSW   xo(R12), Y4, Y6; \
	VPMADDWD     Y14, Y6, Y6; \
	VPMADDUBSW   xo+32(R12), Y5, Y7; \
	VPMADDWD     Y14, Y7, Y7; \
	VCVTDQ2PS    Y6, Y6; \
	VCVTDQ2PS    Y7, Y7; \
	VBROADCASTSS so(SP), Y8; \
	VFMADD231PS  Y8, Y6, acca; \
	VBROADCASTSS so+4(SP), Y9; \
	VFMADD231PS  Y9, Y7, accb

// Q4K4CHUNKSVNNI and Q4K4CHUNKSAVX2 add the chunk at qo (x at xo, scales
// at so+32t(SP)) of the four rows.
#define Q4K4CHUNKSVNNI(qo, xo, so) \
	Q4K4CHUNKVNNI(SI, qo, xo, so, Y0, Y10); \
	Q4K4CHUNKVNNI(R10, qo, xo, so+32, Y1, Y11); \
	Q4K4CHUNKVNNI(R11, qo, xo, so+64, Y2, Y12); \
	Q4K4CHUNKVNNI(CX, qo, xo, so+96, Y3, Y13)

#define Q4K4CHUNKSAVX2(qo, xo, so) \
	Q4K4CHUNKAVX2(SI, qo, xo, so, Y0, Y10); \
	Q4K4CHUNKAVX2(R10, qo, xo, so+32, Y1, Y11); \
	Q4K4CHUNKAVX2(R11, qo, xo, so+64, Y2, Y12); \
	Q4K4CHUNKAVX2(CX, qo, xo, so+96, Y3, Y13)

// Q4K4PASS starts pass R15 (jumps to done when none is left): the four
// row addresses, the x pointers and the zeroed accumulators.
#define Q4K4PASS(done) \
	MOVQ   w+0(FP), AX; \
	MOVQ   stride+8(FP), R9; \
	MOVQ   rows+48(FP), R8; \
	MOVQ   n+56(FP), R13; \
	QKQUARTER; \
	CMPQ   R15, R12; \
	JGE    done; \
	DECQ   R13; \
	MOVQ   R15, SI; \
	Q6KROWADDR(SI); \
	LEAQ   (R15)(R12*1), R10; \
	Q6KROWADDR(R10); \
	LEAQ   (R15)(R12*2), R11; \
	Q6KROWADDR(R11); \
	LEAQ   (R12)(R12*2), CX; \
	ADDQ   R15, CX; \
	Q6KROWADDR(CX); \
	MOVQ   xq+16(FP), R12; \
	MOVQ   dx+24(FP), R13; \
	MOVQ   sx+32(FP), R14; \
	MOVQ   cols+64(FP), DX; \
	SHRQ   $8, DX; \
	VXORPS Y0, Y0, Y0; \
	VXORPS Y1, Y1, Y1; \
	VXORPS Y2, Y2, Y2; \
	VXORPS Y3, Y3, Y3; \
	VXORPS Y10, Y10, Y10; \
	VXORPS Y11, Y11, Y11; \
	VXORPS Y12, Y12, Y12; \
	VXORPS Y13, Y13, Y13

// Q4K4SCALES decodes the four rows' scales and mins of the current
// super-blocks.
#define Q4K4SCALES \
	Q4K4ROW(SI, 0, Y10); \
	Q4K4ROW(R10, 32, Y11); \
	Q4K4ROW(R11, 64, Y12); \
	Q4K4ROW(CX, 96, Y13)

// Q4K4NEXT moves to the next super-block.
#define Q4K4NEXT \
	ADDQ $144, SI; \
	ADDQ $144, R10; \
	ADDQ $144, R11; \
	ADDQ $144, CX; \
	ADDQ $256, R12; \
	ADDQ $32, R13; \
	ADDQ $32, R14; \
	DECQ DX

// Q4K4END sums each row's accumulators and stores the four values
// (R4STORE: clamped indices), then moves to the next pass.
#define Q4K4END \
	VADDPS       Y10, Y0, Y0; \
	VADDPS       Y11, Y1, Y1; \
	VADDPS       Y12, Y2, Y2; \
	VADDPS       Y13, Y3, Y3; \
	VEXTRACTF128 $1, Y0, X4; \
	VADDPS       X4, X0, X0; \
	VEXTRACTF128 $1, Y1, X4; \
	VADDPS       X4, X1, X1; \
	VEXTRACTF128 $1, Y2, X4; \
	VADDPS       X4, X2, X2; \
	VEXTRACTF128 $1, Y3, X4; \
	VADDPS       X4, X3, X3; \
	VHADDPS      X1, X0, X0; \
	VHADDPS      X3, X2, X2; \
	VHADDPS      X2, X0, X0; \
	MOVQ         y+40(FP), BX; \
	R4STORE(X0); \
	INCQ         R15

// func dotQ4KR4VNNI(w unsafe.Pointer, stride int, xq *int8, dx, sx, y *float32, rows *int32, n, cols int)
TEXT ·dotQ4KR4VNNI(SB), NOSPLIT, $128-72
	XORQ         R15, R15
	MOVL         $0x0f0f0f0f, R10
	VMOVD        R10, X15
	VPBROADCASTD X15, Y15

q4kr4vnnipass:
	Q4K4PASS(q4kr4vnnidone)

q4kr4vnniblk:
	Q4K4SCALES
	Q4K4CHUNKSVNNI(16, 0, 0)
	Q4K4CHUNKSVNNI(48, 64, 8)
	Q4K4CHUNKSVNNI(80, 128, 16)
	Q4K4CHUNKSVNNI(112, 192, 24)
	Q4K4NEXT
	JNE          q4kr4vnniblk
	Q4K4END
	JMP          q4kr4vnnipass

q4kr4vnnidone:
	VZEROUPPER
	RET

// func dotQ4KR4AVX2(w unsafe.Pointer, stride int, xq *int8, dx, sx, y *float32, rows *int32, n, cols int)
TEXT ·dotQ4KR4AVX2(SB), NOSPLIT, $128-72
	XORQ         R15, R15
	MOVL         $0x0f0f0f0f, R10
	VMOVD        R10, X15
	VPBROADCASTD X15, Y15
	MOVL         $0x00010001, R10
	VMOVD        R10, X14
	VPBROADCASTD X14, Y14

q4kr4avx2pass:
	Q4K4PASS(q4kr4avx2done)

q4kr4avx2blk:
	Q4K4SCALES
	Q4K4CHUNKSAVX2(16, 0, 0)
	Q4K4CHUNKSAVX2(48, 64, 8)
	Q4K4CHUNKSAVX2(80, 128, 16)
	Q4K4CHUNKSAVX2(112, 192, 24)
	Q4K4NEXT
	JNE          q4kr4avx2blk
	Q4K4END
	JMP          q4kr4avx2pass

q4kr4avx2done:
	VZEROUPPER
	RET

// The Q5_K kernel takes four rows per pass as the Q6_K kernel does (rows j,
// j+q, j+2q, j+3q at SI, R10, R11, CX; q from QKQUARTER; scratch AX, R8,
// R9 for the scales, so w, rows and stride are reloaded each pass). Per
// super-block and row t, Q4K4ROW puts d·sc·dx of the eight sub-blocks at
// 32t(SP) and subtracts the mins dmin·m·sx from the row's accumulator
// Y(t); each chunk of each row then loads the row's qh (Y10) and spreads
// the chunk's two fifth bits to 0x10 (Y11 low nibbles, Y12 high) before
// Q5K4CHUNK. Y13 0x10 bytes, Y14 int16 ones, Y15 0x0f bytes.

// Q5KBITS0..Q5KBITS3 set Y11 and Y12 to the fifth bits (0x10) of chunk c
// of row's super-block: bits 2c and 2c+1 of qh (clobber Y10).
#define Q5KBITS0(row) \
	VMOVDQU 16(row), Y10; \
	VPSLLW  $4, Y10, Y11; \
	VPAND   Y13, Y11, Y11; \
	VPSLLW  $3, Y10, Y12; \
	VPAND   Y13, Y12, Y12

#define Q5KBITS1(row) \
	VMOVDQU 16(row), Y10; \
	VPSLLW  $2, Y10, Y11; \
	VPAND   Y13, Y11, Y11; \
	VPSLLW  $1, Y10, Y12; \
	VPAND   Y13, Y12, Y12

#define Q5KBITS2(row) \
	VMOVDQU 16(row), Y10; \
	VPAND   Y13, Y10, Y11; \
	VPSRLW  $1, Y10, Y12; \
	VPAND   Y13, Y12, Y12

#define Q5KBITS3(row) \
	VMOVDQU 16(row), Y10; \
	VPSRLW  $2, Y10, Y11; \
	VPAND   Y13, Y11, Y11; \
	VPSRLW  $3, Y10, Y12; \
	VPAND   Y13, Y12, Y12

// Q5K4CHUNK adds one 64-weight chunk of row's super-block (32 bytes at
// qo(row); low nibbles | Y11: x at xo(R12), scale at so(SP); high nibbles
// | Y12: xo+32, so+4) into acc (q ≤ 31: pair sums ≤ 2·31·127, no
// saturation; clobbers Y4..Y9).
#define Q5K4CHUNK(row, qo, xo, so, acc) \
	VMOVDQU      qo(row), Y4; \
	VPSRLW       $4, Y4, Y5; \
	VPAND        Y15, Y4, Y4; \
	VPAND        Y15, Y5, Y5; \
	VPOR         Y11, Y4, Y4; \
	VPOR         Y12, Y5, Y5; \
	VPMADDUBSW   xo(R12), Y4, Y6; \
	VPMADDWD     Y14, Y6, Y6; \
	VPMADDUBSW   xo+32(R12), Y5, Y7; \
	VPMADDWD     Y14, Y7, Y7; \
	VCVTDQ2PS    Y6, Y6; \
	VCVTDQ2PS    Y7, Y7; \
	VBROADCASTSS so(SP), Y8; \
	VFMADD231PS  Y8, Y6, acc; \
	VBROADCASTSS so+4(SP), Y9; \
	VFMADD231PS  Y9, Y7, acc

// Q5K4CHUNKS adds chunk c (qs at qo, x at xo, scales at so+32t(SP)) of
// the four rows, bits the chunk's Q5KBITS macro.
#define Q5K4CHUNKS(bits, qo, xo, so) \
	bits(SI); \
	Q5K4CHUNK(SI, qo, xo, so, Y0); \
	bits(R10); \
	Q5K4CHUNK(R10, qo, xo, so+32, Y1); \
	bits(R11); \
	Q5K4CHUNK(R11, qo, xo, so+64, Y2); \
	bits(CX); \
	Q5K4CHUNK(CX, qo, xo, so+96, Y3)

// func dotQ5KAVX2(w unsafe.Pointer, stride int, xq *int8, dx, sx, y *float32, rows *int32, n, cols int)
TEXT ·dotQ5KAVX2(SB), NOSPLIT, $128-72
	XORQ         R15, R15
	MOVL         $0x0f0f0f0f, R10
	VMOVD        R10, X15
	VPBROADCASTD X15, Y15
	MOVL         $0x00010001, R10
	VMOVD        R10, X14
	VPBROADCASTD X14, Y14
	MOVL         $0x10101010, R10
	VMOVD        R10, X13
	VPBROADCASTD X13, Y13

q5kpass:
	MOVQ   w+0(FP), AX
	MOVQ   stride+8(FP), R9
	MOVQ   rows+48(FP), R8
	MOVQ   n+56(FP), R13
	QKQUARTER
	CMPQ   R15, R12
	JGE    q5kdone
	DECQ   R13
	MOVQ   R15, SI
	Q6KROWADDR(SI)
	LEAQ   (R15)(R12*1), R10
	Q6KROWADDR(R10)
	LEAQ   (R15)(R12*2), R11
	Q6KROWADDR(R11)
	LEAQ   (R12)(R12*2), CX
	ADDQ   R15, CX
	Q6KROWADDR(CX)
	MOVQ   xq+16(FP), R12
	MOVQ   dx+24(FP), R13
	MOVQ   sx+32(FP), R14
	MOVQ   cols+64(FP), DX
	SHRQ   $8, DX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3

q5kblk:
	Q4K4ROW(SI, 0, Y0)
	Q4K4ROW(R10, 32, Y1)
	Q4K4ROW(R11, 64, Y2)
	Q4K4ROW(CX, 96, Y3)
	Q5K4CHUNKS(Q5KBITS0, 48, 0, 0)
	Q5K4CHUNKS(Q5KBITS1, 80, 64, 8)
	Q5K4CHUNKS(Q5KBITS2, 112, 128, 16)
	Q5K4CHUNKS(Q5KBITS3, 144, 192, 24)
	ADDQ         $176, SI
	ADDQ         $176, R10
	ADDQ         $176, R11
	ADDQ         $176, CX
	ADDQ         $256, R12
	ADDQ         $32, R13
	ADDQ         $32, R14
	DECQ         DX
	JNE          q5kblk

	VEXTRACTF128 $1, Y0, X4
	VADDPS       X4, X0, X0
	VEXTRACTF128 $1, Y1, X4
	VADDPS       X4, X1, X1
	VEXTRACTF128 $1, Y2, X4
	VADDPS       X4, X2, X2
	VEXTRACTF128 $1, Y3, X4
	VADDPS       X4, X3, X3
	VHADDPS      X1, X0, X0
	VHADDPS      X3, X2, X2
	VHADDPS      X2, X0, X0
	MOVQ         y+40(FP), BX
	R4STORE(X0)
	INCQ         R15
	JMP          q5kpass

q5kdone:
	VZEROUPPER
	RET

// Q5_0 and Q5_1: per block of 32, the fifth bits (qh, a little-endian
// uint32) are spread to bytes as in ggml's bytes_from_bits_32 (each byte
// of qh broadcast to eight lanes by VPSHUFB, tested against its bit by
// VPAND + VPCMPEQB), giving 0x10 where set; q = nibble | that, and a Q5_0
// block adds d·dx·Σq·xq (Y1) and d·sx (Y2, lane 0), the result Σ Y1 -
// 16·Y2. Y15 sixteen 0x0f bytes, Y14 int16 ones, Y13 the byte shuffle,
// Y12 the bit masks, Y11 0x10 bytes.

// func dotQ50AVX2(w unsafe.Pointer, stride int, xq *int8, dx, sx, y *float32, rows *int32, n, cols int)
TEXT ·dotQ50AVX2(SB), NOSPLIT, $0-72
	MOVQ         w+0(FP), AX
	MOVQ         stride+8(FP), R9
	MOVQ         xq+16(FP), DI
	MOVQ         y+40(FP), BX
	MOVQ         rows+48(FP), R8
	XORQ         R15, R15
	MOVL         $0x0f0f0f0f, R10
	VMOVD        R10, X15
	VPBROADCASTD X15, Y15
	MOVL         $0x00010001, R10
	VMOVD        R10, X14
	VPBROADCASTD X14, Y14
	VMOVDQU      q5shuf<>(SB), Y13
	MOVQ         $0x8040201008040201, R10
	VMOVQ        R10, X12
	VPBROADCASTQ X12, Y12
	MOVL         $0x10101010, R10
	VMOVD        R10, X11
	VPBROADCASTD X11, Y11

q50row:
	CMPQ    R15, n+56(FP)
	JGE     q50done
	MOVQ    R15, SI
	TESTQ   R8, R8
	JEQ     q50contig
	MOVLQSX (R8)(R15*4), SI

q50contig:
	IMULQ  R9, SI
	ADDQ   AX, SI
	MOVQ   DI, R12
	MOVQ   dx+24(FP), R13
	MOVQ   sx+32(FP), R14
	MOVQ   cols+64(FP), DX
	SHRQ   $5, DX
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2

q50blk:
	VPBROADCASTD 2(SI), Y3
	VPSHUFB      Y13, Y3, Y3
	VPAND        Y12, Y3, Y3
	VPCMPEQB     Y12, Y3, Y3
	VPAND        Y11, Y3, Y3
	VMOVDQU      6(SI), X4
	VPSRLW       $4, X4, X5
	VINSERTI128  $1, X5, Y4, Y4
	VPAND        Y15, Y4, Y4
	VPOR         Y3, Y4, Y4
	VPMADDUBSW   (R12), Y4, Y4
	VPMADDWD     Y14, Y4, Y4
	VCVTDQ2PS    Y4, Y4
	VPBROADCASTW (SI), X5
	VCVTPH2PS    X5, Y5
	VFMADD231SS  (R14), X5, X2
	VBROADCASTSS (R13), Y6
	VMULPS       Y6, Y5, Y5
	VFMADD231PS  Y5, Y4, Y1
	ADDQ         $22, SI
	ADDQ         $32, R12
	ADDQ         $4, R13
	ADDQ         $4, R14
	DECQ         DX
	JNE          q50blk

	VEXTRACTF128 $1, Y1, X3
	VADDPS       X3, X1, X1
	VHADDPS      X1, X1, X1
	VHADDPS      X1, X1, X1
	MOVL         $0x41800000, R10 // 16.0
	VMOVD        R10, X3
	VFNMADD231SS X3, X2, X1
	VMOVSS       X1, (BX)(R15*4)
	INCQ         R15
	JMP          q50row

q50done:
	VZEROUPPER
	RET

// q5shuf broadcasts byte i/8 of each 128-bit lane's low dword to byte i
// (bytes 0-15 take qh bytes 0-1, bytes 16-31 bytes 2-3).
DATA q5shuf<>+0(SB)/8, $0x0000000000000000
DATA q5shuf<>+8(SB)/8, $0x0101010101010101
DATA q5shuf<>+16(SB)/8, $0x0202020202020202
DATA q5shuf<>+24(SB)/8, $0x0303030303030303
GLOBL q5shuf<>(SB), RODATA|NOPTR, $32


// func dotQ51AVX2(w unsafe.Pointer, stride int, xq *int8, dx, sx, y *float32, rows *int32, n, cols int)
//
// Q5_1: the Q5_0 kernel with qh at 4 and qs at 8 in 24-byte blocks, and
// the offset m·sx added (X2 lane 0) instead of -16·d·sx.
TEXT ·dotQ51AVX2(SB), NOSPLIT, $0-72
	MOVQ         w+0(FP), AX
	MOVQ         stride+8(FP), R9
	MOVQ         xq+16(FP), DI
	MOVQ         y+40(FP), BX
	MOVQ         rows+48(FP), R8
	XORQ         R15, R15
	MOVL         $0x0f0f0f0f, R10
	VMOVD        R10, X15
	VPBROADCASTD X15, Y15
	MOVL         $0x00010001, R10
	VMOVD        R10, X14
	VPBROADCASTD X14, Y14
	VMOVDQU      q5shuf<>(SB), Y13
	MOVQ         $0x8040201008040201, R10
	VMOVQ        R10, X12
	VPBROADCASTQ X12, Y12
	MOVL         $0x10101010, R10
	VMOVD        R10, X11
	VPBROADCASTD X11, Y11

q51row:
	CMPQ    R15, n+56(FP)
	JGE     q51done
	MOVQ    R15, SI
	TESTQ   R8, R8
	JEQ     q51contig
	MOVLQSX (R8)(R15*4), SI

q51contig:
	IMULQ  R9, SI
	ADDQ   AX, SI
	MOVQ   DI, R12
	MOVQ   dx+24(FP), R13
	MOVQ   sx+32(FP), R14
	MOVQ   cols+64(FP), DX
	SHRQ   $5, DX
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2

q51blk:
	VPBROADCASTD 4(SI), Y3
	VPSHUFB      Y13, Y3, Y3
	VPAND        Y12, Y3, Y3
	VPCMPEQB     Y12, Y3, Y3
	VPAND        Y11, Y3, Y3
	VMOVDQU      8(SI), X4
	VPSRLW       $4, X4, X5
	VINSERTI128  $1, X5, Y4, Y4
	VPAND        Y15, Y4, Y4
	VPOR         Y3, Y4, Y4
	VPMADDUBSW   (R12), Y4, Y4
	VPMADDWD     Y14, Y4, Y4
	VCVTDQ2PS    Y4, Y4
	VPBROADCASTW 2(SI), X6
	VCVTPH2PS    X6, X6
	VFMADD231SS  (R14), X6, X2
	VPBROADCASTW (SI), X5
	VCVTPH2PS    X5, Y5
	VBROADCASTSS (R13), Y6
	VMULPS       Y6, Y5, Y5
	VFMADD231PS  Y5, Y4, Y1
	ADDQ         $24, SI
	ADDQ         $32, R12
	ADDQ         $4, R13
	ADDQ         $4, R14
	DECQ         DX
	JNE          q51blk

	VEXTRACTF128 $1, Y1, X3
	VADDPS       X3, X1, X1
	VHADDPS      X1, X1, X1
	VHADDPS      X1, X1, X1
	VADDSS       X2, X1, X1
	VMOVSS       X1, (BX)(R15*4)
	INCQ         R15
	JMP          q51row

q51done:
	VZEROUPPER
	RET

// func dequantQ6KAVX2(w *byte, dst *float32, blocks int) decodes Q6_K
// super-blocks as decodeQ6K does: d·sc rounded to f32 (0(SP), 16
// floats), then times q-32 (a rounded product, no FMA).
TEXT ·dequantQ6KAVX2(SB), NOSPLIT, $96-24
	MOVQ         w+0(FP), SI
	MOVQ         dst+8(FP), DI
	MOVQ         blocks+16(FP), DX
	MOVL         $0x0f0f0f0f, R10
	VMOVD        R10, X15
	VPBROADCASTD X15, Y15
	MOVL         $0x30303030, R10
	VMOVD        R10, X14
	VPBROADCASTD X14, Y14
	MOVL         $0x20202020, R10
	VMOVD        R10, X13
	VPBROADCASTD X13, Y13

dq6kloop:
	VPBROADCASTW 208(SI), X12
	VCVTPH2PS    X12, Y12
	VPMOVSXBD    192(SI), Y0
	VCVTDQ2PS    Y0, Y0
	VMULPS       Y12, Y0, Y0
	VMOVUPS      Y0, 0(SP)
	VPMOVSXBD    200(SI), Y0
	VCVTDQ2PS    Y0, Y0
	VMULPS       Y12, Y0, Y0
	VMOVUPS      Y0, 32(SP)
	Q6KDQHALF(0, 128, 0, 0)
	Q6KDQHALF(64, 160, 512, 32)
	ADDQ         $210, SI
	ADDQ         $1024, DI
	DECQ         DX
	JNE          dq6kloop
	VZEROUPPER
	RET

// func dequantQ5KAVX2(w *byte, dst *float32, blocks int) decodes Q5_K
// super-blocks as decodeQ5K does (d·sc at 0(SP), dmin·m at 32(SP)).
TEXT ·dequantQ5KAVX2(SB), NOSPLIT, $96-24
	MOVQ         w+0(FP), SI
	MOVQ         dst+8(FP), DI
	MOVQ         blocks+16(FP), DX
	MOVL         $0x0f0f0f0f, R10
	VMOVD        R10, X15
	VPBROADCASTD X15, Y15
	MOVL         $0x10101010, R10
	VMOVD        R10, X13
	VPBROADCASTD X13, Y13

dq5kloop:
	Q4KSCALES
	VMOVUPS     Y6, (SP)
	VMOVUPS     Y7, 32(SP)
	VMOVDQU     16(SI), Y0
	VPSLLW      $4, Y0, Y11
	VPAND       Y13, Y11, Y11
	VPSLLW      $3, Y0, Y12
	VPAND       Y13, Y12, Y12
	Q5KDQCHUNK(48, 0, 0)
	VPSLLW      $2, Y0, Y11
	VPAND       Y13, Y11, Y11
	VPSLLW      $1, Y0, Y12
	VPAND       Y13, Y12, Y12
	Q5KDQCHUNK(80, 256, 8)
	VPAND       Y13, Y0, Y11
	VPSRLW      $1, Y0, Y12
	VPAND       Y13, Y12, Y12
	Q5KDQCHUNK(112, 512, 16)
	VPSRLW      $2, Y0, Y11
	VPAND       Y13, Y11, Y11
	VPSRLW      $3, Y0, Y12
	VPAND       Y13, Y12, Y12
	Q5KDQCHUNK(144, 768, 24)
	ADDQ        $176, SI
	ADDQ        $1024, DI
	DECQ        DX
	JNE         dq5kloop
	VZEROUPPER
	RET
