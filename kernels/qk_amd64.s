#include "textflag.h"
#include "kscales_amd64.h"

// Q6_K, Q5_K, Q5_0 and Q5_1 dot kernels and Q6_K / Q5_K block decoders
// for amd64 (see qk.go and q5.go for the block layouts, q4_amd64.s for the
// conventions they share with the Q4 kernels). The dot kernels set
// y[k] = row·x for k < n, the row at w + rows[k]·stride (gather) or
// w + k·stride (rows == nil: GEMV), x quantized per 32 values (xq, dx; sx
// for the Q5 offsets and mins). AVX2 only, one row per pass (Q6_K two);
// the integer sums are those of the Go references (dotRowQ6KX, dotRowQ5KX,
// dotRowQ5X), only the order of the f32 operations differs.
//
// Q6_K: per 32 weights (group g of half h), q = low nibble | two high bits
// (unsigned 0..63); VPMADDUBSW q·xq minus VPMADDUBSW 32·xq gives the int16
// pair sums of (q-32)·xq (|q-32| ≤ 32: no saturation), VPMADDWD with the
// two 16-weight sub-block scales (int16: lanes 0-7 the first, 8-15 the
// second) gives eight int32 lanes, converted and multiplied by d·dx.
//
// Registers: AX w, R9 stride, DI xq, BX y, R8 rows (or 0), R15 k (the
// pass); per row SI the current block (Q6_K: R10 that of the second row),
// R12 xq, R13 dx, R14 sx, DX blocks left. Q6_K: Y15 sixteen 0x0f bytes, Y14
// 0x30 bytes, Y13 32s.

// The Q6_K kernel takes two rows per pass: pass j (R15) computes the rows
// of indices j and j+q (q = ⌈n/2⌉, GEMV rows or positions in the gather
// list; the second clamped to n-1 as in the Q4_0 kernels) at SI and R10,
// one super-block of both per iteration, sharing per group of 32 the x
// load (Y8), the pair sums of 32·xq (Y9) and dx (Y10). Row a: d in Y11,
// scales at 0(SP), accumulators Y0 (even groups) and Y1 (odd); row b: Y12,
// 32(SP), Y2 and Y3. A row's sum does not depend on its place in the
// pass, so GEMV and gather agree exactly.

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

// Q6KX loads the shared operands of a group: x (Y8), the pair sums of
// 32·xq (Y9), dx (Y10).
#define Q6KX(xo, do) \
	VMOVDQU      xo(R12), Y8; \
	VPMADDUBSW   Y8, Y13, Y9; \
	VBROADCASTSS do(R13), Y10

// Q6KDOT adds the group in Y6 of one row into acc: Σ(q-32)·xq per pair
// (int16), times the sub-block scales at sa and sb (lanes 0-7, 8-15;
// VPMADDWD), converted, times d·dx (clobbers Y4..Y6).
#define Q6KDOT(sa, sb, dreg, acc) \
	VPMADDUBSW   Y8, Y6, Y6; \
	VPSUBW       Y9, Y6, Y6; \
	VPBROADCASTW sa(SP), X4; \
	VPBROADCASTW sb(SP), X5; \
	VINSERTI128  $1, X5, Y4, Y4; \
	VPMADDWD     Y4, Y6, Y6; \
	VCVTDQ2PS    Y6, Y6; \
	VMULPS       dreg, Y10, Y4; \
	VFMADD231PS  Y4, Y6, acc

// Q6KHALF adds half h of both rows' super-blocks (ql at qo, qh at ho;
// x groups from xo(R12), dx from do(R13), row a's scales from so(SP)).
#define Q6KHALF(qo, ho, xo, do, so) \
	Q6KX(xo, do); \
	Q6KQ0(SI, qo, ho); \
	Q6KDOT(so, so+2, Y11, Y0); \
	Q6KQ0(R10, qo, ho); \
	Q6KDOT(so+32, so+34, Y12, Y2); \
	Q6KX(xo+32, do+4); \
	Q6KQ1(SI, qo, ho); \
	Q6KDOT(so+4, so+6, Y11, Y1); \
	Q6KQ1(R10, qo, ho); \
	Q6KDOT(so+36, so+38, Y12, Y3); \
	Q6KX(xo+64, do+8); \
	Q6KQ2(SI, qo, ho); \
	Q6KDOT(so+8, so+10, Y11, Y0); \
	Q6KQ2(R10, qo, ho); \
	Q6KDOT(so+40, so+42, Y12, Y2); \
	Q6KX(xo+96, do+12); \
	Q6KQ3(SI, qo, ho); \
	Q6KDOT(so+12, so+14, Y11, Y1); \
	Q6KQ3(R10, qo, ho); \
	Q6KDOT(so+44, so+46, Y12, Y3)

// Q6KSUM sums the eight lanes of Y(a)+Y(b) into the low lane of X(a)
// (clobbers X(b)).
#define Q6KSUM(ya, yb, xa, xb) \
	VADDPS       yb, ya, ya; \
	VEXTRACTF128 $1, ya, xb; \
	VADDPS       xb, xa, xa; \
	VHADDPS      xa, xa, xa; \
	VHADDPS      xa, xa, xa

// Q5_K super-blocks lay out their scales and mins as Q4_K's: Q4KSCALES
// (kscales_amd64.h) decodes them.

// Q5KCHUNK adds one 64-weight chunk of a Q5_K super-block: its 32 bytes
// at qa (low nibbles: the sub-block with inputs xa and scale·dx at sa;
// high nibbles: xb, sb), the fifth bits in Y11 (low) and Y12 (high) as
// 0x10, into acca and accb (q ≤ 31: pair sums ≤ 2·31·127, no saturation;
// clobbers Y3..Y8).
#define Q5KCHUNK(qa, xa, xb, sa, sb, acca, accb) \
	VMOVDQU      qa, Y3; \
	VPSRLW       $4, Y3, Y4; \
	VPAND        Y15, Y3, Y3; \
	VPAND        Y15, Y4, Y4; \
	VPOR         Y11, Y3, Y3; \
	VPOR         Y12, Y4, Y4; \
	VPMADDUBSW   xa, Y3, Y5; \
	VPMADDWD     Y14, Y5, Y5; \
	VPMADDUBSW   xb, Y4, Y6; \
	VPMADDWD     Y14, Y6, Y6; \
	VCVTDQ2PS    Y5, Y5; \
	VCVTDQ2PS    Y6, Y6; \
	VBROADCASTSS sa, Y7; \
	VFMADD231PS  Y7, Y5, acca; \
	VBROADCASTSS sb, Y8; \
	VFMADD231PS  Y8, Y6, accb

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
TEXT ·dotQ6KAVX2(SB), NOSPLIT, $64-72
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
	LEAQ  1(R13), R12
	SHRQ  $1, R12           // q = ceil(n/2)
	CMPQ  R15, R12
	JGE   q6kdone
	DECQ  R13               // n-1
	MOVQ  R15, SI
	Q6KROWADDR(SI)
	LEAQ  (R15)(R12*1), R10
	Q6KROWADDR(R10)
	MOVQ  DI, R12
	MOVQ  dx+24(FP), R13
	MOVQ  cols+64(FP), DX
	SHRQ  $8, DX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3

q6kblk:
	VPBROADCASTW 208(SI), X11
	VCVTPH2PS    X11, Y11
	VPBROADCASTW 208(R10), X12
	VCVTPH2PS    X12, Y12
	VPMOVSXBW    192(SI), Y4
	VMOVDQU      Y4, 0(SP)
	VPMOVSXBW    192(R10), Y4
	VMOVDQU      Y4, 32(SP)
	Q6KHALF(0, 128, 0, 0, 0)
	Q6KHALF(64, 160, 128, 16, 16)
	ADDQ         $210, SI
	ADDQ         $210, R10
	ADDQ         $256, R12
	ADDQ         $32, R13
	DECQ         DX
	JNE          q6kblk

	Q6KSUM(Y0, Y1, X0, X1)
	Q6KSUM(Y2, Y3, X2, X3)
	VMOVSS  X0, (BX)(R15*4)
	MOVQ    n+56(FP), R13
	LEAQ    1(R13), R12
	SHRQ    $1, R12
	DECQ    R13
	LEAQ    (R15)(R12*1), DX
	CMPQ    DX, R13
	CMOVQGT R13, DX
	VMOVSS  X2, (BX)(DX*4)
	INCQ    R15
	JMP     q6kpass

q6kdone:
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

// func dotQ5KAVX2(w unsafe.Pointer, stride int, xq *int8, dx, sx, y *float32, rows *int32, n, cols int)
//
// Q5_K: as the Q4_K kernel, plus the fifth bits: qh (Y0, once per
// super-block) shifted so that bit 2c (2c+1) of each byte lands on bit 4
// and masked with Y13 (0x10 bytes) for chunk c. Y15 0x0f bytes, Y14 int16
// ones, Y10 the mins (subtracted at the end), Y1/Y2 accumulators,
// d·sc·dx of the eight sub-blocks at 0(SP).
TEXT ·dotQ5KAVX2(SB), NOSPLIT, $32-72
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
	MOVL         $0x10101010, R10
	VMOVD        R10, X13
	VPBROADCASTD X13, Y13

q5krow:
	CMPQ    R15, n+56(FP)
	JGE     q5kdone
	MOVQ    R15, SI
	TESTQ   R8, R8
	JEQ     q5kcontig
	MOVLQSX (R8)(R15*4), SI

q5kcontig:
	IMULQ  R9, SI
	ADDQ   AX, SI
	MOVQ   DI, R12
	MOVQ   dx+24(FP), R13
	MOVQ   sx+32(FP), R14
	MOVQ   cols+64(FP), DX
	SHRQ   $8, DX
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y10, Y10, Y10

q5kblk:
	Q4KSCALES
	VMULPS      (R13), Y6, Y6
	VMOVUPS     Y6, (SP)
	VFMADD231PS (R14), Y7, Y10
	VMOVDQU     16(SI), Y0
	VPSLLW      $4, Y0, Y11
	VPAND       Y13, Y11, Y11
	VPSLLW      $3, Y0, Y12
	VPAND       Y13, Y12, Y12
	Q5KCHUNK(48(SI), 0(R12), 32(R12), 0(SP), 4(SP), Y1, Y2)
	VPSLLW      $2, Y0, Y11
	VPAND       Y13, Y11, Y11
	VPSLLW      $1, Y0, Y12
	VPAND       Y13, Y12, Y12
	Q5KCHUNK(80(SI), 64(R12), 96(R12), 8(SP), 12(SP), Y1, Y2)
	VPAND       Y13, Y0, Y11
	VPSRLW      $1, Y0, Y12
	VPAND       Y13, Y12, Y12
	Q5KCHUNK(112(SI), 128(R12), 160(R12), 16(SP), 20(SP), Y1, Y2)
	VPSRLW      $2, Y0, Y11
	VPAND       Y13, Y11, Y11
	VPSRLW      $3, Y0, Y12
	VPAND       Y13, Y12, Y12
	Q5KCHUNK(144(SI), 192(R12), 224(R12), 24(SP), 28(SP), Y1, Y2)
	ADDQ        $176, SI
	ADDQ        $256, R12
	ADDQ        $32, R13
	ADDQ        $32, R14
	DECQ        DX
	JNE         q5kblk

	VADDPS       Y2, Y1, Y1
	VSUBPS       Y10, Y1, Y1
	VEXTRACTF128 $1, Y1, X2
	VADDPS       X2, X1, X1
	VHADDPS      X1, X1, X1
	VHADDPS      X1, X1, X1
	VMOVSS       X1, (BX)(R15*4)
	INCQ         R15
	JMP          q5krow

q5kdone:
	VZEROUPPER
	RET

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
