//go:build !amd64

package jpegenc

func fdctQuant(blk *[64]int32, div *[64]float32, out *[64]int32) uint64 {
	return fdctQuantGo(blk, div, out)
}
