package jpegenc

import (
	"encoding/binary"
	"math/rand"
	"testing"
)

// blockOf makes a block of level-shifted samples as the colour conversion
// gives them (luma: up to ±2^23; chroma: up to ±2^25).
func blockOf(data []byte, scale int32) (b [64]int32) {
	for i := range b {
		v := int32(0)
		if len(data) > 0 {
			v = int32(int8(data[i%len(data)]))
		}
		b[i] = v * scale
	}
	return b
}

// The transform used on this machine (SSE on amd64) gives the bits of the
// Go transform, for any block and table.
func TestFDCTQuantIsTheGoTransform(t *testing.T) {
	r := rand.New(rand.NewSource(6))
	e, err := New(16, 16, 75, 0, 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	for k := range 20000 {
		data := make([]byte, 1+r.Intn(80))
		r.Read(data)
		scale := []int32{65536, 262144, 1, 255 * 65536}[k%4]
		blk := blockOf(data, scale)
		if k%7 == 0 { // flat, and extremes
			for i := range blk {
				blk[i] = (int32(data[0]) - 128) * 65536
			}
		}
		div := &e.div[k%2]
		a, b := blk, blk
		var oa, ob [64]int32
		ma, mb := fdctQuant(&a, div, &oa), fdctQuantGo(&b, div, &ob)
		if ma != mb || oa != ob {
			t.Fatalf("block %d: mask %x/%x\ncoefficients %v\n         and %v", k, ma, mb, oa, ob)
		}
	}
}

func FuzzFDCTQuant(f *testing.F) {
	f.Add([]byte{1, 2, 3, 250}, uint8(75), uint8(0))
	f.Add([]byte{128}, uint8(1), uint8(1))
	f.Fuzz(func(t *testing.T, data []byte, q, table uint8) {
		e, err := New(8, 8, int(q%100)+1, 0, 1, 2)
		if err != nil {
			t.Fatal(err)
		}
		var blk [64]int32
		for i := range blk {
			if 4*i+4 <= len(data) {
				blk[i] = int32(binary.LittleEndian.Uint32(data[4*i:])) >> 5 // within ±2^26, as chroma can be
			}
		}
		div := &e.div[table%2]
		a, b := blk, blk
		var oa, ob [64]int32
		ma, mb := fdctQuant(&a, div, &oa), fdctQuantGo(&b, div, &ob)
		if ma != mb || oa != ob {
			t.Fatalf("mask %x/%x\ncoefficients %v\n         and %v", ma, mb, oa, ob)
		}
		// The mask says which coefficients are not zero.
		for n, v := range ob {
			if (v != 0) != (mb>>n&1 == 1) {
				t.Fatalf("coefficient %d is %d, mask bit %d", n, v, mb>>n&1)
			}
		}
	})
}
