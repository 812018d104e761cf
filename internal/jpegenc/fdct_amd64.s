#include "textflag.h"

// fdctQuantSSE is fdctQuantGo (fdct.go) four lanes at a time: the same
// float32 operations in the same order, so the same bits. SSE2 only, the
// amd64 baseline. Memory operands are all loaded with unaligned moves.
//
// Registers: AX blk, DX div, CX constants (AAN's four multipliers, then
// 16384.5 and int 16384, four lanes each), BX out, R9 the zero mask.

// AAN transforms X0..X7 (inputs 0..7) in place. Outputs 0..7 end in
// X2 X1 X3 X8 X4 X5 X0 X7. Uses X6, X8..X12.
#define AAN \
	MOVAPS X0, X8; ADDPS X7, X0; SUBPS X7, X8; \
	MOVAPS X1, X9; ADDPS X6, X1; SUBPS X6, X9; \
	MOVAPS X2, X10; ADDPS X5, X2; SUBPS X5, X10; \
	MOVAPS X3, X11; ADDPS X4, X3; SUBPS X4, X11; \
	MOVAPS X0, X4; ADDPS X3, X4; \
	SUBPS X3, X0; \
	MOVAPS X1, X5; ADDPS X2, X5; \
	SUBPS X2, X1; \
	MOVAPS X4, X2; ADDPS X5, X2; \
	SUBPS X5, X4; \
	ADDPS X0, X1; \
	MOVUPS 0(CX), X12; MULPS X12, X1; \
	MOVAPS X0, X3; ADDPS X1, X3; \
	SUBPS X1, X0; \
	MOVAPS X11, X1; ADDPS X10, X1; \
	MOVAPS X10, X5; ADDPS X9, X5; \
	MOVAPS X9, X6; ADDPS X8, X6; \
	MOVAPS X1, X7; SUBPS X6, X7; \
	MOVUPS 16(CX), X12; MULPS X12, X7; \
	MOVUPS 32(CX), X12; MULPS X12, X1; ADDPS X7, X1; \
	MOVUPS 48(CX), X12; MULPS X12, X6; ADDPS X7, X6; \
	MOVUPS 0(CX), X12; MULPS X12, X5; \
	MOVAPS X8, X7; ADDPS X5, X7; \
	SUBPS X5, X8; \
	MOVAPS X8, X5; ADDPS X1, X5; \
	SUBPS X1, X8; \
	MOVAPS X7, X1; ADDPS X6, X1; \
	SUBPS X6, X7

// TRANS4 transposes rows a b c d into o0..o3 (a and b are clobbered).
#define TRANS4(a, b, c, d, o0, o1, o2, o3) \
	MOVAPS a, o0; UNPCKLPS b, o0; \
	MOVAPS a, o2; UNPCKHPS b, o2; \
	MOVAPS c, o1; UNPCKLPS d, o1; \
	MOVAPS c, o3; UNPCKHPS d, o3; \
	MOVAPS o0, a; MOVLHPS o1, a; \
	MOVHLPS o0, o1; \
	MOVAPS o2, b; MOVLHPS o3, b; \
	MOVHLPS o2, o3; \
	MOVAPS a, o0; MOVAPS b, o2

// COLS transforms four columns (byte offset off in each row) of int32
// samples, converted to float32, and leaves the floats in their place.
#define COLS(off) \
	MOVOU (0*32+off)(AX), X0; CVTPL2PS X0, X0; MOVOU (1*32+off)(AX), X1; CVTPL2PS X1, X1; \
	MOVOU (2*32+off)(AX), X2; CVTPL2PS X2, X2; MOVOU (3*32+off)(AX), X3; CVTPL2PS X3, X3; \
	MOVOU (4*32+off)(AX), X4; CVTPL2PS X4, X4; MOVOU (5*32+off)(AX), X5; CVTPL2PS X5, X5; \
	MOVOU (6*32+off)(AX), X6; CVTPL2PS X6, X6; MOVOU (7*32+off)(AX), X7; CVTPL2PS X7, X7; \
	AAN; \
	MOVUPS X2, (0*32+off)(AX); MOVUPS X1, (1*32+off)(AX); \
	MOVUPS X3, (2*32+off)(AX); MOVUPS X8, (3*32+off)(AX); \
	MOVUPS X4, (4*32+off)(AX); MOVUPS X5, (5*32+off)(AX); \
	MOVUPS X0, (6*32+off)(AX); MOVUPS X7, (7*32+off)(AX)

// QUANT quantises r, the four coefficients at byte offset off, stores
// them and adds their zero lanes to the mask (4 bits at bit off/4).
// Uses X6; X13 is zero, X14 int 16384, X15 16384.5.
#define QUANT(r, off) \
	MOVUPS (off)(DX), X6; MULPS X6, r; \
	ADDPS X15, r; \
	CVTTPS2PL r, r; \
	PSUBL X14, r; \
	MOVOU r, (off)(BX); \
	PCMPEQL X13, r; \
	MOVMSKPS r, R8; \
	SHLQ $((off)/4), R8; \
	ORQ R8, R9

// ROWS transforms four rows (from byte offset base) and quantises them.
#define ROWS(base) \
	MOVUPS (base+0)(AX), X8; MOVUPS (base+32)(AX), X9; \
	MOVUPS (base+64)(AX), X10; MOVUPS (base+96)(AX), X11; \
	TRANS4(X8, X9, X10, X11, X0, X1, X2, X3); \
	MOVUPS (base+16)(AX), X8; MOVUPS (base+48)(AX), X9; \
	MOVUPS (base+80)(AX), X10; MOVUPS (base+112)(AX), X11; \
	TRANS4(X8, X9, X10, X11, X4, X5, X6, X7); \
	AAN; \
	TRANS4(X2, X1, X3, X8, X9, X10, X11, X12); \
	QUANT(X9, base+0); QUANT(X10, base+32); QUANT(X11, base+64); QUANT(X12, base+96); \
	TRANS4(X4, X5, X0, X7, X9, X10, X11, X12); \
	QUANT(X9, base+16); QUANT(X10, base+48); QUANT(X11, base+80); QUANT(X12, base+112)

// func fdctQuantSSE(blk *[64]int32, div *[64]float32, k *[24]uint32, out *[64]int32) uint64
TEXT ·fdctQuantSSE(SB), NOSPLIT, $0-40
	MOVQ blk+0(FP), AX
	MOVQ div+8(FP), DX
	MOVQ k+16(FP), CX
	MOVQ out+24(FP), BX
	XORQ R9, R9
	PXOR X13, X13
	MOVOU 80(CX), X14
	MOVUPS 64(CX), X15
	COLS(0)
	COLS(16)
	ROWS(0)
	ROWS(128)
	NOTQ R9
	MOVQ R9, ret+32(FP)
	RET
