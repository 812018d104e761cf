package jpegenc

// The forward DCT of Arai, Agui and Nakajima (as libjpeg's jfdctflt), in
// float32: first down each column, then along each row; coefficient k
// comes out scaled by 8·aanScale[k/8]·aanScale[k%8], which the quantiser's
// divisors (Encoder.div) take back out. On amd64 the same operations, in
// the same order, run four columns or rows at a time in SSE (fdct_amd64.s);
// a test holds the two to the same bits.

// AAN's multipliers, as the float32 the Go code below multiplies by.
const (
	c707  = 0.707106781
	c382  = 0.382683433
	c541  = 0.541196100
	c1306 = 1.306562965
)

// fdctQuantGo transforms the samples of blk (as float32; blk may be used
// as scratch), quantises them with div (natural order) into out (natural
// order), and returns which coefficients are not zero: bit k for
// coefficient k.
func fdctQuantGo(blk *[64]int32, div *[64]float32, out *[64]int32) uint64 {
	var d [64]float32
	for i, v := range blk {
		d[i] = float32(v)
	}
	for i := 0; i < 8; i++ { // columns
		d[i], d[8+i], d[16+i], d[24+i], d[32+i], d[40+i], d[48+i], d[56+i] =
			aan(d[i], d[8+i], d[16+i], d[24+i], d[32+i], d[40+i], d[48+i], d[56+i])
	}
	for i := 0; i < 64; i += 8 { // rows
		r := d[i : i+8 : i+8]
		r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7] = aan(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7])
	}
	var nz uint64
	for n := range 64 {
		v := int32(d[n]*div[n]+16384.5) - 16384
		out[n] = v
		nz |= uint64(uint32(v|-v)>>31) << n // no branch on the data
	}
	return nz
}

// aan is the 8-point transform: its outputs 0..7 in order.
func aan(d0, d1, d2, d3, d4, d5, d6, d7 float32) (o0, o1, o2, o3, o4, o5, o6, o7 float32) {
	t0, t7 := d0+d7, d0-d7
	t1, t6 := d1+d6, d1-d6
	t2, t5 := d2+d5, d2-d5
	t3, t4 := d3+d4, d3-d4
	t10, t13 := t0+t3, t0-t3
	t11, t12 := t1+t2, t1-t2
	o0, o4 = t10+t11, t10-t11
	z1 := (t12 + t13) * c707
	o2, o6 = t13+z1, t13-z1
	t10, t11, t12 = t4+t5, t5+t6, t6+t7
	z5 := (t10 - t12) * c382
	z2 := c541*t10 + z5
	z4 := c1306*t12 + z5
	z3 := t11 * c707
	z11, z13 := t7+z3, t7-z3
	o5, o3 = z13+z2, z13-z2
	o1, o7 = z11+z4, z11-z4
	return
}

// zigzagMask turns a mask of natural-order coefficients into one of
// zig-zag positions.
func zigzagMask(nat uint64) uint64 {
	var z uint64
	for b := range 8 {
		z |= zigzagBits[b][byte(nat>>(8*b))]
	}
	return z
}

// zigzagBits[b][v]: the zig-zag positions of the natural indices 8b..8b+7
// whose bits are set in v.
var zigzagBits = func() (t [8][256]uint64) {
	var pos [64]uint8
	for i, n := range zigzag {
		pos[n] = uint8(i)
	}
	for b := range 8 {
		for v := range 256 {
			for k := range 8 {
				if v&(1<<k) != 0 {
					t[b][v] |= 1 << pos[8*b+k]
				}
			}
		}
	}
	return t
}()
