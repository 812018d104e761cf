package jpegenc

import (
	"encoding/binary"
	"math/rand"
	"runtime"
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

// The colour conversion used on this machine (SSE on amd64, where the
// layout allows) gives the Go conversion's samples, and notes exactly the
// blocks of one value.
func TestLoadMCUIsTheGoConversion(t *testing.T) {
	r := rand.New(rand.NewSource(7))
	for _, off := range [][3]int{{2, 1, 0}, {0, 1, 2}} {
		p := Pixels{Pix: make([]byte, 4*48*48), Stride: 4 * 48, Width: 48, Height: 48, R: off[0], G: off[1], B: off[2]}
		e, err := New(48, 48, 75, p.R, p.G, p.B)
		if err != nil {
			t.Fatal(err)
		}
		for k := range 3000 {
			switch k % 4 {
			case 0:
				r.Read(p.Pix)
			case 1: // flat
				c := r.Uint32()
				for i := 0; i < len(p.Pix); i += 4 {
					binary.LittleEndian.PutUint32(p.Pix[i:], c)
				}
			case 2: // a few pixels off a flat background
				for i := 0; i < 5; i++ {
					p.Pix[r.Intn(len(p.Pix))] = byte(r.Intn(256))
				}
			case 3: // extremes
				for i := range p.Pix {
					p.Pix[i] = []byte{0, 255}[r.Intn(2)]
				}
			}
			mx, my := r.Intn(3), r.Intn(3)
			var a, b Strip
			a.e, a.f, a.h = e, p, 48
			b.e, b.f, b.h = e, p, 48
			a.loadMCU(mx, my)
			b.loadInside(mx, my)
			if a.blk != b.blk {
				t.Fatalf("offsets %v, MCU %d,%d: the samples differ\n%v\n%v", off, mx, my, a.blk, b.blk)
			}
			for blk := range 6 {
				one := true
				for _, v := range a.blk[blk] {
					one = one && v == a.blk[blk][0]
				}
				if a.flat[blk] != one || (b.flat[blk] && !one) {
					t.Fatalf("offsets %v, block %d: flat %v (Go %v), one value %v", off, blk, a.flat[blk], b.flat[blk], one)
				}
			}
		}
		if !e.sse && runtime.GOARCH == "amd64" {
			t.Fatalf("offsets %v: no SSE conversion on amd64", off)
		}
	}
}
