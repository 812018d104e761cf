#include "textflag.h"

// loadMCUSSE is Strip.loadInside (jpegenc.go) for pixels whose colours
// are their first three bytes with green in the middle (BGRX, RGBA), four
// pixels at a time in SSE2: the same integers. Luma is
// k0*b0 + k1*b1 + k2*b2 - 2^23 with PMADDWD (green's weight, 38470, does
// not fit 16 bits: green goes in doubled against half the weight); chroma
// is the weighted sum of the bytes' 2×2 sums, negated weights (they fit
// 16 bits) and the result negated back. It returns which blocks have one
// value throughout (bit k for block k).
//
// Registers: SI pixels (row 2cy), R11 stride, CX weights, DI blocks, R10
// the luma rows of this row pair, R12 and R13 the chroma rows, R8 cy.
// X6 zero, X8 cr weights, X10 cb weights, X11 -2^23, X12 weight of
// byte 2, X13 weights of bytes 0 and 1, X14 0x01fe0000, X15 0xff.

// LUMA converts four pixels at src into four luma samples at dst.
#define LUMA(src, dst) \
	MOVOU src, X0; \
	MOVO X0, X1; \
	MOVO X0, X2; \
	PAND X15, X0; \
	PSLLL $9, X1; \
	PAND X14, X1; \
	POR X1, X0; \
	PMADDWL X13, X0; \
	PSRLL $16, X2; \
	PAND X15, X2; \
	PMADDWL X12, X2; \
	PADDL X2, X0; \
	PADDL X11, X0; \
	MOVOU X0, dst

// CHROMA sums 2×2 blocks of the four pixels at byte off of the row pair
// and writes their two cb and two cr samples at byte off/2.
#define CHROMA(off) \
	MOVOU off(SI), X0; \
	MOVOU off(SI)(R11*1), X1; \
	MOVO X0, X2; \
	PUNPCKLBW X6, X2; \
	MOVO X1, X3; \
	PUNPCKLBW X6, X3; \
	PADDW X3, X2; \
	PSHUFD $0x4E, X2, X3; \
	PADDW X3, X2; \
	PUNPCKHBW X6, X0; \
	PUNPCKHBW X6, X1; \
	PADDW X1, X0; \
	PSHUFD $0x4E, X0, X1; \
	PADDW X1, X0; \
	PUNPCKLQDQ X0, X2; \
	MOVO X2, X0; \
	PMADDWL X10, X0; \
	PSHUFD $0xB1, X0, X1; \
	PADDL X1, X0; \
	PXOR X1, X1; \
	PSUBL X0, X1; \
	PSHUFD $0x08, X1, X1; \
	MOVQ X1, (off/2)(R12); \
	MOVO X2, X0; \
	PMADDWL X8, X0; \
	PSHUFD $0xB1, X0, X1; \
	PADDL X1, X0; \
	PXOR X1, X1; \
	PSUBL X0, X1; \
	PSHUFD $0x08, X1, X1; \
	MOVQ X1, (off/2)(R13)

// FLAT sets bit b of AX when block b holds one value throughout.
#define FLAT(b) \
	MOVOU (b*256)(DI), X0; \
	PSHUFD $0, X0, X0; \
	PXOR X1, X1; \
	MOVOU (b*256+0)(DI), X2; PXOR X0, X2; POR X2, X1; \
	MOVOU (b*256+16)(DI), X2; PXOR X0, X2; POR X2, X1; \
	MOVOU (b*256+32)(DI), X2; PXOR X0, X2; POR X2, X1; \
	MOVOU (b*256+48)(DI), X2; PXOR X0, X2; POR X2, X1; \
	MOVOU (b*256+64)(DI), X2; PXOR X0, X2; POR X2, X1; \
	MOVOU (b*256+80)(DI), X2; PXOR X0, X2; POR X2, X1; \
	MOVOU (b*256+96)(DI), X2; PXOR X0, X2; POR X2, X1; \
	MOVOU (b*256+112)(DI), X2; PXOR X0, X2; POR X2, X1; \
	MOVOU (b*256+128)(DI), X2; PXOR X0, X2; POR X2, X1; \
	MOVOU (b*256+144)(DI), X2; PXOR X0, X2; POR X2, X1; \
	MOVOU (b*256+160)(DI), X2; PXOR X0, X2; POR X2, X1; \
	MOVOU (b*256+176)(DI), X2; PXOR X0, X2; POR X2, X1; \
	MOVOU (b*256+192)(DI), X2; PXOR X0, X2; POR X2, X1; \
	MOVOU (b*256+208)(DI), X2; PXOR X0, X2; POR X2, X1; \
	MOVOU (b*256+224)(DI), X2; PXOR X0, X2; POR X2, X1; \
	MOVOU (b*256+240)(DI), X2; PXOR X0, X2; POR X2, X1; \
	PCMPEQL X6, X1; \
	MOVMSKPS X1, R9; \
	XORQ R15, R15; \
	CMPQ R9, $15; \
	SETEQ R15; \
	SHLQ $b, R15; \
	ORQ R15, AX

// func loadMCUSSE(pix *byte, stride int, w *[28]int32, blk *[6][64]int32) uint8
TEXT ·loadMCUSSE(SB), NOSPLIT, $0-33
	MOVQ pix+0(FP), SI
	MOVQ stride+8(FP), R11
	MOVQ w+16(FP), CX
	MOVQ blk+24(FP), DI
	MOVOU 0(CX), X13
	MOVOU 16(CX), X12
	MOVOU 32(CX), X10
	MOVOU 48(CX), X8
	MOVOU 64(CX), X11
	MOVOU 80(CX), X15
	MOVOU 96(CX), X14
	PXOR X6, X6
	LEAQ 1024(DI), R12
	LEAQ 1280(DI), R13
	MOVQ DI, R10
	XORQ R8, R8

rows:
	LUMA(0(SI), 0(R10))
	LUMA(16(SI), 16(R10))
	LUMA(32(SI), 256(R10))
	LUMA(48(SI), 272(R10))
	LUMA(0(SI)(R11*1), 32(R10))
	LUMA(16(SI)(R11*1), 48(R10))
	LUMA(32(SI)(R11*1), 288(R10))
	LUMA(48(SI)(R11*1), 304(R10))
	CHROMA(0)
	CHROMA(16)
	CHROMA(32)
	CHROMA(48)
	LEAQ (SI)(R11*2), SI
	ADDQ $64, R10
	ADDQ $32, R12
	ADDQ $32, R13
	INCQ R8
	CMPQ R8, $4
	JNE next
	ADDQ $256, R10 // the lower two luma blocks

next:
	CMPQ R8, $8
	JLT rows

	XORQ AX, AX
	FLAT(0)
	FLAT(1)
	FLAT(2)
	FLAT(3)
	FLAT(4)
	FLAT(5)
	MOVB AX, ret+32(FP)
	RET
