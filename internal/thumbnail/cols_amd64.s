#include "textflag.h"

// func addBytesSSE(cols *uint16, row *byte, n int)
// cols[i] += row[i] for i < n, n a multiple of 16.
TEXT ·addBytesSSE(SB), NOSPLIT, $0-24
	MOVQ cols+0(FP), DI
	MOVQ row+8(FP), SI
	MOVQ n+16(FP), CX
	PXOR X4, X4
	SHRQ $4, CX
	JZ done

loop:
	MOVOU (SI), X0
	MOVO X0, X1
	PUNPCKLBW X4, X0
	PUNPCKHBW X4, X1
	MOVOU (DI), X2
	MOVOU 16(DI), X3
	PADDW X0, X2
	PADDW X1, X3
	MOVOU X2, (DI)
	MOVOU X3, 16(DI)
	ADDQ $16, SI
	ADDQ $32, DI
	DECQ CX
	JNZ loop

done:
	RET
