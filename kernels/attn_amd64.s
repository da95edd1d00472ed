#include "textflag.h"

// Attention kernels for amd64 (see attn_amd64.go for the Go signatures).
//
// attnScores*: four key rows per pass share each load of q; each row has
// its own accumulator, and the four are reduced together (two rounds of
// VHADDPS) into four scores stored at once; leftover rows go one at a time.
//   SI q; R9 q advancing along the row; DI row 0 of the pass; R13 its
//   column pointer; BX row stride in bytes, R12 3·stride; DX next score;
//   CX rows left; R8 cols; R10 cols rounded down to 16 (AVX-512); AX
//   columns left in the pass; K1 mask of the cols%16 tail columns; X15
//   scale; Z0..Z3 (Y0..Y3) accumulators.
//
// attnAccum*: the output is processed in column blocks held in registers
// (128, 64, then 16 floats for AVX-512; 64, 32, then 8 for AVX2) while
// every row adds its weighted block, so out is read and written once.
//   DI first column of the block in row 0; R13 the block in the current
//   row; BX row stride; SI w; R9 w advancing; DX out block; R11 rows;
//   CX rows left; R8 columns left; Z8 (Y8) the broadcast weight.

// func attnScoresAVX512(q, k *float32, stride int, s *float32, n, cols int, scale float32)
TEXT ·attnScoresAVX512(SB), NOSPLIT, $0-52
	MOVQ         q+0(FP), SI
	MOVQ         k+8(FP), DI
	MOVQ         stride+16(FP), BX
	MOVQ         s+24(FP), DX
	MOVQ         cols+40(FP), R8
	MOVQ         R8, CX
	ANDQ         $15, CX
	MOVL         $1, AX
	SHLL         CX, AX
	DECL         AX
	KMOVW        AX, K1
	MOVQ         R8, R10
	ANDQ         $-16, R10
	MOVQ         n+32(FP), CX
	VBROADCASTSS scale+48(FP), X15
	LEAQ         (BX)(BX*2), R12

s512rows4:
	CMPQ   CX, $4
	JLT    s512rows1
	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	VPXORD Z2, Z2, Z2
	VPXORD Z3, Z3, Z3
	MOVQ   DI, R13
	MOVQ   SI, R9
	MOVQ   R10, AX

s512cols4:
	TESTQ       AX, AX
	JZ          s512tail4
	VMOVUPS     (R9), Z4
	VFMADD231PS (R13), Z4, Z0
	VFMADD231PS (R13)(BX*1), Z4, Z1
	VFMADD231PS (R13)(BX*2), Z4, Z2
	VFMADD231PS (R13)(R12*1), Z4, Z3
	ADDQ        $64, R9
	ADDQ        $64, R13
	SUBQ        $16, AX
	JMP         s512cols4

s512tail4:
	CMPQ        R8, R10
	JEQ         s512red4
	VMOVUPS.Z   (R9), K1, Z4
	VMOVUPS.Z   (R13), K1, Z5
	VFMADD231PS Z5, Z4, Z0
	VMOVUPS.Z   (R13)(BX*1), K1, Z5
	VFMADD231PS Z5, Z4, Z1
	VMOVUPS.Z   (R13)(BX*2), K1, Z5
	VFMADD231PS Z5, Z4, Z2
	VMOVUPS.Z   (R13)(R12*1), K1, Z5
	VFMADD231PS Z5, Z4, Z3

s512red4:
	VEXTRACTF64X4 $1, Z0, Y4
	VEXTRACTF64X4 $1, Z1, Y5
	VEXTRACTF64X4 $1, Z2, Y6
	VEXTRACTF64X4 $1, Z3, Y7
	VADDPS        Y4, Y0, Y0
	VADDPS        Y5, Y1, Y1
	VADDPS        Y6, Y2, Y2
	VADDPS        Y7, Y3, Y3
	VHADDPS       Y1, Y0, Y0
	VHADDPS       Y3, Y2, Y2
	VHADDPS       Y2, Y0, Y0
	VEXTRACTF128  $1, Y0, X1
	VADDPS        X1, X0, X0
	VMULPS        X15, X0, X0
	VMOVUPS       X0, (DX)
	LEAQ          (DI)(BX*4), DI
	ADDQ          $16, DX
	SUBQ          $4, CX
	JMP           s512rows4

s512rows1:
	TESTQ  CX, CX
	JZ     s512done
	VPXORD Z0, Z0, Z0
	MOVQ   DI, R13
	MOVQ   SI, R9
	MOVQ   R10, AX

s512cols1:
	TESTQ       AX, AX
	JZ          s512tail1
	VMOVUPS     (R9), Z4
	VFMADD231PS (R13), Z4, Z0
	ADDQ        $64, R9
	ADDQ        $64, R13
	SUBQ        $16, AX
	JMP         s512cols1

s512tail1:
	CMPQ        R8, R10
	JEQ         s512red1
	VMOVUPS.Z   (R9), K1, Z4
	VMOVUPS.Z   (R13), K1, Z5
	VFMADD231PS Z5, Z4, Z0

s512red1:
	VEXTRACTF64X4 $1, Z0, Y4
	VADDPS        Y4, Y0, Y0
	VEXTRACTF128  $1, Y0, X4
	VADDPS        X4, X0, X0
	VHADDPS       X0, X0, X0
	VHADDPS       X0, X0, X0
	VMULSS        X15, X0, X0
	VMOVSS        X0, (DX)
	ADDQ          BX, DI
	ADDQ          $4, DX
	DECQ          CX
	JMP           s512rows1

s512done:
	VZEROUPPER
	RET

// func attnAccumAVX512(v *float32, stride int, w, out *float32, n, cols int)
TEXT ·attnAccumAVX512(SB), NOSPLIT, $0-48
	MOVQ v+0(FP), DI
	MOVQ stride+8(FP), BX
	MOVQ w+16(FP), SI
	MOVQ out+24(FP), DX
	MOVQ n+32(FP), R11
	MOVQ cols+40(FP), R8

a512b128:
	CMPQ R8, $128
	JLT  a512next128
	VMOVUPS 0(DX), Z0
	VMOVUPS 64(DX), Z1
	VMOVUPS 128(DX), Z2
	VMOVUPS 192(DX), Z3
	VMOVUPS 256(DX), Z4
	VMOVUPS 320(DX), Z5
	VMOVUPS 384(DX), Z6
	VMOVUPS 448(DX), Z7
	MOVQ DI, R13
	MOVQ SI, R9
	MOVQ R11, CX
a512b128rows:
	VBROADCASTSS (R9), Z8
	VFMADD231PS 0(R13), Z8, Z0
	VFMADD231PS 64(R13), Z8, Z1
	VFMADD231PS 128(R13), Z8, Z2
	VFMADD231PS 192(R13), Z8, Z3
	VFMADD231PS 256(R13), Z8, Z4
	VFMADD231PS 320(R13), Z8, Z5
	VFMADD231PS 384(R13), Z8, Z6
	VFMADD231PS 448(R13), Z8, Z7
	ADDQ $4, R9
	ADDQ BX, R13
	DECQ CX
	JNZ  a512b128rows
	VMOVUPS Z0, 0(DX)
	VMOVUPS Z1, 64(DX)
	VMOVUPS Z2, 128(DX)
	VMOVUPS Z3, 192(DX)
	VMOVUPS Z4, 256(DX)
	VMOVUPS Z5, 320(DX)
	VMOVUPS Z6, 384(DX)
	VMOVUPS Z7, 448(DX)
	ADDQ $512, DI
	ADDQ $512, DX
	SUBQ $128, R8
	JMP  a512b128

a512next128:
a512b64:
	CMPQ R8, $64
	JLT  a512next64
	VMOVUPS 0(DX), Z0
	VMOVUPS 64(DX), Z1
	VMOVUPS 128(DX), Z2
	VMOVUPS 192(DX), Z3
	MOVQ DI, R13
	MOVQ SI, R9
	MOVQ R11, CX
a512b64rows:
	VBROADCASTSS (R9), Z8
	VFMADD231PS 0(R13), Z8, Z0
	VFMADD231PS 64(R13), Z8, Z1
	VFMADD231PS 128(R13), Z8, Z2
	VFMADD231PS 192(R13), Z8, Z3
	ADDQ $4, R9
	ADDQ BX, R13
	DECQ CX
	JNZ  a512b64rows
	VMOVUPS Z0, 0(DX)
	VMOVUPS Z1, 64(DX)
	VMOVUPS Z2, 128(DX)
	VMOVUPS Z3, 192(DX)
	ADDQ $256, DI
	ADDQ $256, DX
	SUBQ $64, R8
	JMP  a512b64

a512next64:
	TESTQ R8, R8
	JLE   a512done
	MOVL  $0xffff, AX
	CMPQ  R8, $16
	JGE   a512mask
	MOVQ  R8, CX
	MOVL  $1, AX
	SHLL  CX, AX
	DECL  AX

a512mask:
	KMOVW     AX, K1
	VMOVUPS.Z (DX), K1, Z0
	MOVQ      DI, R13
	MOVQ      SI, R9
	MOVQ      R11, CX

a512tailrows:
	VBROADCASTSS (R9), Z8
	VMOVUPS.Z    (R13), K1, Z9
	VFMADD231PS  Z9, Z8, Z0
	ADDQ         $4, R9
	ADDQ         BX, R13
	DECQ         CX
	JNZ          a512tailrows
	VMOVUPS      Z0, K1, (DX)
	ADDQ         $64, DI
	ADDQ         $64, DX
	SUBQ         $16, R8
	JMP          a512next64

a512done:
	VZEROUPPER
	RET

// func attnScoresAVX2(q, k *float32, stride int, s *float32, n, cols int, scale float32)
TEXT ·attnScoresAVX2(SB), NOSPLIT, $0-52
	MOVQ         q+0(FP), SI
	MOVQ         k+8(FP), DI
	MOVQ         stride+16(FP), BX
	MOVQ         s+24(FP), DX
	MOVQ         n+32(FP), CX
	MOVQ         cols+40(FP), R8
	VBROADCASTSS scale+48(FP), X15
	LEAQ         (BX)(BX*2), R12

s256rows4:
	CMPQ   CX, $4
	JLT    s256rows1
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	MOVQ   DI, R13
	MOVQ   SI, R9
	MOVQ   R8, AX

s256cols4:
	VMOVUPS     (R9), Y4
	VFMADD231PS (R13), Y4, Y0
	VFMADD231PS (R13)(BX*1), Y4, Y1
	VFMADD231PS (R13)(BX*2), Y4, Y2
	VFMADD231PS (R13)(R12*1), Y4, Y3
	ADDQ        $32, R9
	ADDQ        $32, R13
	SUBQ        $8, AX
	JNZ         s256cols4
	VHADDPS      Y1, Y0, Y0
	VHADDPS      Y3, Y2, Y2
	VHADDPS      Y2, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPS       X1, X0, X0
	VMULPS       X15, X0, X0
	VMOVUPS      X0, (DX)
	LEAQ         (DI)(BX*4), DI
	ADDQ         $16, DX
	SUBQ         $4, CX
	JMP          s256rows4

s256rows1:
	TESTQ  CX, CX
	JZ     s256done
	VXORPS Y0, Y0, Y0
	MOVQ   DI, R13
	MOVQ   SI, R9
	MOVQ   R8, AX

s256cols1:
	VMOVUPS     (R9), Y4
	VFMADD231PS (R13), Y4, Y0
	ADDQ        $32, R9
	ADDQ        $32, R13
	SUBQ        $8, AX
	JNZ         s256cols1
	VEXTRACTF128 $1, Y0, X4
	VADDPS       X4, X0, X0
	VHADDPS      X0, X0, X0
	VHADDPS      X0, X0, X0
	VMULSS       X15, X0, X0
	VMOVSS       X0, (DX)
	ADDQ         BX, DI
	ADDQ         $4, DX
	DECQ         CX
	JMP          s256rows1

s256done:
	VZEROUPPER
	RET

// func attnAccumAVX2(v *float32, stride int, w, out *float32, n, cols int)
TEXT ·attnAccumAVX2(SB), NOSPLIT, $0-48
	MOVQ v+0(FP), DI
	MOVQ stride+8(FP), BX
	MOVQ w+16(FP), SI
	MOVQ out+24(FP), DX
	MOVQ n+32(FP), R11
	MOVQ cols+40(FP), R8

a256b64:
	CMPQ R8, $64
	JLT  a256next64
	VMOVUPS 0(DX), Y0
	VMOVUPS 32(DX), Y1
	VMOVUPS 64(DX), Y2
	VMOVUPS 96(DX), Y3
	VMOVUPS 128(DX), Y4
	VMOVUPS 160(DX), Y5
	VMOVUPS 192(DX), Y6
	VMOVUPS 224(DX), Y7
	MOVQ DI, R13
	MOVQ SI, R9
	MOVQ R11, CX
a256b64rows:
	VBROADCASTSS (R9), Y8
	VFMADD231PS 0(R13), Y8, Y0
	VFMADD231PS 32(R13), Y8, Y1
	VFMADD231PS 64(R13), Y8, Y2
	VFMADD231PS 96(R13), Y8, Y3
	VFMADD231PS 128(R13), Y8, Y4
	VFMADD231PS 160(R13), Y8, Y5
	VFMADD231PS 192(R13), Y8, Y6
	VFMADD231PS 224(R13), Y8, Y7
	ADDQ $4, R9
	ADDQ BX, R13
	DECQ CX
	JNZ  a256b64rows
	VMOVUPS Y0, 0(DX)
	VMOVUPS Y1, 32(DX)
	VMOVUPS Y2, 64(DX)
	VMOVUPS Y3, 96(DX)
	VMOVUPS Y4, 128(DX)
	VMOVUPS Y5, 160(DX)
	VMOVUPS Y6, 192(DX)
	VMOVUPS Y7, 224(DX)
	ADDQ $256, DI
	ADDQ $256, DX
	SUBQ $64, R8
	JMP  a256b64

a256next64:
a256b32:
	CMPQ R8, $32
	JLT  a256next32
	VMOVUPS 0(DX), Y0
	VMOVUPS 32(DX), Y1
	VMOVUPS 64(DX), Y2
	VMOVUPS 96(DX), Y3
	MOVQ DI, R13
	MOVQ SI, R9
	MOVQ R11, CX
a256b32rows:
	VBROADCASTSS (R9), Y8
	VFMADD231PS 0(R13), Y8, Y0
	VFMADD231PS 32(R13), Y8, Y1
	VFMADD231PS 64(R13), Y8, Y2
	VFMADD231PS 96(R13), Y8, Y3
	ADDQ $4, R9
	ADDQ BX, R13
	DECQ CX
	JNZ  a256b32rows
	VMOVUPS Y0, 0(DX)
	VMOVUPS Y1, 32(DX)
	VMOVUPS Y2, 64(DX)
	VMOVUPS Y3, 96(DX)
	ADDQ $128, DI
	ADDQ $128, DX
	SUBQ $32, R8
	JMP  a256b32

a256next32:
a256b8:
	CMPQ R8, $8
	JLT  a256next8
	VMOVUPS 0(DX), Y0
	MOVQ DI, R13
	MOVQ SI, R9
	MOVQ R11, CX
a256b8rows:
	VBROADCASTSS (R9), Y8
	VFMADD231PS 0(R13), Y8, Y0
	ADDQ $4, R9
	ADDQ BX, R13
	DECQ CX
	JNZ  a256b8rows
	VMOVUPS Y0, 0(DX)
	ADDQ $32, DI
	ADDQ $32, DX
	SUBQ $8, R8
	JMP  a256b8

a256next8:
a256done:
	VZEROUPPER
	RET

// func attnMaxAVX512(x *float32, n int) float32
TEXT ·attnMaxAVX512(SB), NOSPLIT, $0-20
	MOVQ         x+0(FP), SI
	MOVQ         n+8(FP), R8
	MOVQ         R8, CX
	ANDQ         $15, CX
	MOVL         $1, AX
	SHLL         CX, AX
	DECL         AX
	KMOVW        AX, K1
	MOVQ         R8, R10
	ANDQ         $-16, R10
	VBROADCASTSS (SI), Z0
	XORQ         DX, DX

max512loop:
	CMPQ   DX, R10
	JGE    max512tail
	VMAXPS (SI)(DX*4), Z0, Z0
	ADDQ   $16, DX
	JMP    max512loop

max512tail:
	CMPQ      DX, R8
	JGE       max512red
	VMOVUPS.Z (SI)(DX*4), K1, Z1
	VMAXPS    Z1, Z0, K1, Z0

max512red:
	VEXTRACTF64X4 $1, Z0, Y1
	VMAXPS        Y1, Y0, Y0
	VEXTRACTF128  $1, Y0, X1
	VMAXPS        X1, X0, X0
	VPERMILPS     $0x4e, X0, X1
	VMAXPS        X1, X0, X0
	VPERMILPS     $0xb1, X0, X1
	VMAXPS        X1, X0, X0
	VMOVSS        X0, ret+16(FP)
	VZEROUPPER
	RET

// EXP512 sets Z3 = exp(Z1) for Z1 ≤ 0 (clamped at -88: Cephes expf's
// range reduction by ln 2 and degree-5 polynomial, then VSCALEFPS);
// clobbers Z1, Z2, Z16.
#define EXP512 \
	VMAXPS      Z4, Z1, Z1; \
	VMULPS      Z14, Z1, Z2; \
	VRNDSCALEPS $0, Z2, Z2; \
	VFMADD231PS Z13, Z2, Z1; \
	VFMADD231PS Z12, Z2, Z1; \
	VMOVAPS     Z11, Z3; \
	VFMADD213PS Z10, Z1, Z3; \
	VFMADD213PS Z9, Z1, Z3; \
	VFMADD213PS Z8, Z1, Z3; \
	VFMADD213PS Z7, Z1, Z3; \
	VFMADD213PS Z6, Z1, Z3; \
	VMULPS      Z1, Z1, Z16; \
	VFMADD213PS Z1, Z16, Z3; \
	VADDPS      Z5, Z3, Z3; \
	VSCALEFPS   Z2, Z3, Z3

#define BCAST(c, z) \
	MOVL         c, AX; \
	VPBROADCASTD AX, z

// func attnExpAVX512(x *float32, n int, m float32) float32
TEXT ·attnExpAVX512(SB), NOSPLIT, $0-28
	MOVQ         x+0(FP), SI
	MOVQ         n+8(FP), R8
	MOVQ         R8, CX
	ANDQ         $15, CX
	MOVL         $1, AX
	SHLL         CX, AX
	DECL         AX
	KMOVW        AX, K1
	MOVQ         R8, R10
	ANDQ         $-16, R10
	VBROADCASTSS m+16(FP), Z15
	BCAST($0x3fb8aa3b, Z14) // log2(e)
	BCAST($0xbf318000, Z13) // -0.693359375 (ln 2, high part)
	BCAST($0x395e8083, Z12) // 2.12194440e-4 (ln 2, low part, negated)
	BCAST($0x39506967, Z11) // 1.9875691500e-4
	BCAST($0x3ab743ce, Z10) // 1.3981999507e-3
	BCAST($0x3c088908, Z9)  // 8.3334519073e-3
	BCAST($0x3d2aa9c1, Z8)  // 4.1665795894e-2
	BCAST($0x3e2aaaaa, Z7)  // 1.6666665459e-1
	BCAST($0x3f000000, Z6)  // 0.5
	BCAST($0x3f800000, Z5)  // 1
	BCAST($0xc2b00000, Z4)  // -88
	VPXORD       Z0, Z0, Z0
	XORQ         DX, DX

exp512loop:
	CMPQ    DX, R10
	JGE     exp512tail
	VMOVUPS (SI)(DX*4), Z1
	VSUBPS  Z15, Z1, Z1
	EXP512
	VMOVUPS Z3, (SI)(DX*4)
	VADDPS  Z3, Z0, Z0
	ADDQ    $16, DX
	JMP     exp512loop

exp512tail:
	CMPQ      DX, R8
	JGE       exp512red
	VMOVUPS.Z (SI)(DX*4), K1, Z1
	VSUBPS    Z15, Z1, Z1
	EXP512
	VMOVUPS   Z3, K1, (SI)(DX*4)
	VADDPS    Z3, Z0, K1, Z0

exp512red:
	VEXTRACTF64X4 $1, Z0, Y1
	VADDPS        Y1, Y0, Y0
	VEXTRACTF128  $1, Y0, X1
	VADDPS        X1, X0, X0
	VHADDPS       X0, X0, X0
	VHADDPS       X0, X0, X0
	VMOVSS        X0, ret+24(FP)
	VZEROUPPER
	RET
