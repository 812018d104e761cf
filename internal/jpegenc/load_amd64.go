package jpegenc

//go:noescape
func loadMCUSSE(pix *byte, stride int, w *[28]int32, blk *[6][64]int32) uint8

// sseWeights returns the colour weights of loadMCUSSE for an encoder's
// pixels, and whether it can convert them: colours in the first three
// bytes with green in the middle, so green's weight is the even one.
func sseWeights(e *Encoder) (w [28]int32, ok bool) {
	if !e.fast || e.g != 1 || e.ky[1]%2 != 0 {
		return w, false
	}
	u16 := func(v int32) int32 { return v & 0xffff }
	for l := range 4 {
		w[l] = u16(e.ky[0]) | e.ky[1]/2<<16
		w[4+l] = u16(e.ky[2])
		w[16+l] = -yOffset
		w[20+l] = 0xff
		w[24+l] = 0x01fe0000
	}
	for l := 0; l < 4; l += 2 {
		w[8+l], w[8+l+1] = u16(-e.kcb[0])|-e.kcb[1]<<16, u16(-e.kcb[2])
		w[12+l], w[12+l+1] = u16(-e.kcr[0])|-e.kcr[1]<<16, u16(-e.kcr[2])
	}
	for _, v := range []int32{e.ky[0], e.ky[1] / 2, e.ky[2], -e.kcb[0], -e.kcb[1], -e.kcb[2], -e.kcr[0], -e.kcr[1], -e.kcr[2]} {
		if v < -32768 || v > 32767 {
			return w, false
		}
	}
	return w, true
}

// loadMCU converts the MCU at byte o of the strip, inside the picture,
// and notes its flat blocks.
func (s *Strip) loadMCU(mx, my int) {
	if !s.e.sse {
		s.loadInside(mx, my)
		return
	}
	f := s.f
	o := my*16*f.Stride + 64*mx
	_ = f.Pix[o+15*f.Stride+63] // the kernel reads 16 rows of 64 bytes
	flat := loadMCUSSE(&f.Pix[o], f.Stride, &s.e.sseW, &s.blk)
	for k := range 6 {
		s.flat[k] = flat>>k&1 == 1
	}
}
