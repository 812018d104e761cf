package jpegenc

import "math"

// sseConsts are the SSE kernel's constants, four lanes each: AAN's
// multipliers, then 16384.5 (float) and 16384 (int) for the rounding.
var sseConsts = func() (k [24]uint32) {
	for i, c := range []float32{c707, c382, c541, c1306, 16384.5} {
		for l := range 4 {
			k[4*i+l] = math.Float32bits(c)
		}
	}
	for l := range 4 {
		k[20+l] = 16384
	}
	return k
}()

//go:noescape
func fdctQuantSSE(blk *[64]int32, div *[64]float32, k *[24]uint32, out *[64]int32) uint64

func fdctQuant(blk *[64]int32, div *[64]float32, out *[64]int32) uint64 {
	return fdctQuantSSE(blk, div, &sseConsts, out)
}
