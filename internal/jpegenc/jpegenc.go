// Package jpegenc is the project's JPEG encoder, written for screenshots:
// baseline, YCbCr with 4:2:0 chroma, the standard (ITU T.81 annex K)
// Huffman tables and the IJG quantisation tables scaled by the quality
// setting as libjpeg does, so a file is what `cjpeg -quality Q` (or
// `scrot -q Q`) makes of the same pixels, to a rounding, and decodes
// with any decoder.
//
// A picture is cut into strips of StripRows rows (four rows of 16×16
// blocks) with a restart marker between strips; every strip starts its
// DC prediction afresh, so strips are colour-converted, transformed and
// entropy-coded on all cores at once and simply joined. The strip height
// does not depend on the number of cores: the bytes are the same on every
// machine. Blocks of one colour (a screen's backgrounds) skip the
// transform. Pixels are read as they are captured (BGRX from an X server,
// RGBA), never converted first. It imports only the standard library.
package jpegenc

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"image"
	"image/draw"
	"math"
	"math/bits"
	"runtime"
	"sync"
	"sync/atomic"
)

const (
	stripMCURows = 4 // 64 pixel rows per restart interval
	// MaxSide is the largest width or height a JPEG can have.
	MaxSide = 65535
)

// Pixels is a picture of 4-byte pixels: R, G and B are the byte offsets
// of the colours in a pixel, the fourth byte is ignored.
type Pixels struct {
	Pix           []byte
	Stride        int
	Width, Height int
	R, G, B       int
}

// Check refuses pixels whose buffer cannot hold the picture or whose
// offsets are not three distinct bytes of a pixel.
func (p Pixels) Check() error {
	w, h := p.Width, p.Height
	if w <= 0 || h <= 0 {
		return fmt.Errorf("an empty %dx%d picture", w, h)
	}
	if p.Stride < 4*w || len(p.Pix) < p.Stride*(h-1)+4*w {
		return fmt.Errorf("a %dx%d picture in %d bytes at a stride of %d: too few", w, h, len(p.Pix), p.Stride)
	}
	if p.R < 0 || p.G < 0 || p.B < 0 || p.R > 3 || p.G > 3 || p.B > 3 || p.R == p.G || p.G == p.B || p.R == p.B {
		return fmt.Errorf("colour offsets %d,%d,%d: not three bytes of a pixel", p.R, p.G, p.B)
	}
	return nil
}

// Rows returns rows y0 up to y1 as pixels of their own, sharing the buffer.
func (p Pixels) Rows(y0, y1 int) Pixels {
	q := p
	q.Pix, q.Height = p.Pix[y0*p.Stride:], y1-y0
	return q
}

// FromImage returns img's pixels: an RGBA picture's own, without a copy,
// or a converted copy of anything else.
func FromImage(img image.Image) Pixels {
	m, ok := img.(*image.RGBA)
	if !ok {
		r := img.Bounds()
		m = image.NewRGBA(image.Rect(0, 0, r.Dx(), r.Dy()))
		draw.Draw(m, m.Rect, img, r.Min, draw.Src)
	}
	r := m.Rect
	if r.Empty() {
		return Pixels{R: 0, G: 1, B: 2}
	}
	return Pixels{Pix: m.Pix[m.PixOffset(r.Min.X, r.Min.Y):], Stride: m.Stride, Width: r.Dx(), Height: r.Dy(), R: 0, G: 1, B: 2}
}

// zigzag[i] is the natural (row-major) index of the i-th coefficient in
// zig-zag order.
var zigzag = [64]uint8{
	0, 1, 8, 16, 9, 2, 3, 10,
	17, 24, 32, 25, 18, 11, 4, 5,
	12, 19, 26, 33, 40, 48, 41, 34,
	27, 20, 13, 6, 7, 14, 21, 28,
	35, 42, 49, 56, 57, 50, 43, 36,
	29, 22, 15, 23, 30, 37, 44, 51,
	58, 59, 52, 45, 38, 31, 39, 46,
	53, 60, 61, 54, 47, 55, 62, 63,
}

// The IJG base quantisation tables (T.81 K.1 and K.2), natural order.
var baseQuant = [2][64]uint16{{
	16, 11, 10, 16, 24, 40, 51, 61,
	12, 12, 14, 19, 26, 58, 60, 55,
	14, 13, 16, 24, 40, 57, 69, 56,
	14, 17, 22, 29, 51, 87, 80, 62,
	18, 22, 37, 56, 68, 109, 103, 77,
	24, 35, 55, 64, 81, 104, 113, 92,
	49, 64, 78, 87, 103, 121, 120, 101,
	72, 92, 95, 98, 112, 100, 103, 99,
}, {
	17, 18, 24, 47, 99, 99, 99, 99,
	18, 21, 26, 66, 99, 99, 99, 99,
	24, 26, 56, 99, 99, 99, 99, 99,
	47, 66, 99, 99, 99, 99, 99, 99,
	99, 99, 99, 99, 99, 99, 99, 99,
	99, 99, 99, 99, 99, 99, 99, 99,
	99, 99, 99, 99, 99, 99, 99, 99,
	99, 99, 99, 99, 99, 99, 99, 99,
}}

// huffSpec is a Huffman table as a JPEG file states it: how many codes of
// each length 1..16, then the symbols in code order.
type huffSpec struct {
	counts [16]uint8
	values []uint8
}

// The standard tables of T.81 K.3: luminance DC, AC, chrominance DC, AC.
var stdHuff = [4]huffSpec{{
	[16]uint8{0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0},
	[]uint8{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11},
}, {
	[16]uint8{0, 2, 1, 3, 3, 2, 4, 3, 5, 5, 4, 4, 0, 0, 1, 125},
	[]uint8{
		0x01, 0x02, 0x03, 0x00, 0x04, 0x11, 0x05, 0x12, 0x21, 0x31, 0x41, 0x06, 0x13, 0x51, 0x61, 0x07,
		0x22, 0x71, 0x14, 0x32, 0x81, 0x91, 0xa1, 0x08, 0x23, 0x42, 0xb1, 0xc1, 0x15, 0x52, 0xd1, 0xf0,
		0x24, 0x33, 0x62, 0x72, 0x82, 0x09, 0x0a, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x25, 0x26, 0x27, 0x28,
		0x29, 0x2a, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49,
		0x4a, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5a, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69,
		0x6a, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7a, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89,
		0x8a, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9a, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7,
		0xa8, 0xa9, 0xaa, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7, 0xb8, 0xb9, 0xba, 0xc2, 0xc3, 0xc4, 0xc5,
		0xc6, 0xc7, 0xc8, 0xc9, 0xca, 0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xd9, 0xda, 0xe1, 0xe2,
		0xe3, 0xe4, 0xe5, 0xe6, 0xe7, 0xe8, 0xe9, 0xea, 0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8,
		0xf9, 0xfa,
	},
}, {
	[16]uint8{0, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0},
	[]uint8{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11},
}, {
	[16]uint8{0, 2, 1, 2, 4, 4, 3, 4, 7, 5, 4, 4, 0, 1, 2, 119},
	[]uint8{
		0x00, 0x01, 0x02, 0x03, 0x11, 0x04, 0x05, 0x21, 0x31, 0x06, 0x12, 0x41, 0x51, 0x07, 0x61, 0x71,
		0x13, 0x22, 0x32, 0x81, 0x08, 0x14, 0x42, 0x91, 0xa1, 0xb1, 0xc1, 0x09, 0x23, 0x33, 0x52, 0xf0,
		0x15, 0x62, 0x72, 0xd1, 0x0a, 0x16, 0x24, 0x34, 0xe1, 0x25, 0xf1, 0x17, 0x18, 0x19, 0x1a, 0x26,
		0x27, 0x28, 0x29, 0x2a, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48,
		0x49, 0x4a, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5a, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68,
		0x69, 0x6a, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7a, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87,
		0x88, 0x89, 0x8a, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9a, 0xa2, 0xa3, 0xa4, 0xa5,
		0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7, 0xb8, 0xb9, 0xba, 0xc2, 0xc3,
		0xc4, 0xc5, 0xc6, 0xc7, 0xc8, 0xc9, 0xca, 0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xd9, 0xda,
		0xe2, 0xe3, 0xe4, 0xe5, 0xe6, 0xe7, 0xe8, 0xe9, 0xea, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8,
		0xf9, 0xfa,
	},
}}

// huffCode is a table's code for each symbol: the code in the low bits,
// its length above them (code | len<<24); 0 for symbols without a code.
type huffCode [256]uint32

var stdCodes = func() (c [4]huffCode) {
	for t, s := range stdHuff {
		code, k := uint32(0), 0
		for l := 1; l <= 16; l++ {
			for range s.counts[l-1] {
				c[t][s.values[k]] = code | uint32(l)<<24
				code++
				k++
			}
			code <<= 1
		}
	}
	return c
}()

// aanScale[k] is the scale of the AAN transform's k-th output.
var aanScale = func() (s [8]float64) {
	s[0] = 1
	for k := 1; k < 8; k++ {
		s[k] = math.Cos(float64(k)*math.Pi/16) * math.Sqrt2
	}
	return s
}()

// quantTables returns the two quantisation tables (natural order) for a
// quality of 1..100, as libjpeg's jpeg_set_quality with baseline limits.
func quantTables(quality int) (q [2][64]uint8) {
	quality = min(100, max(1, quality))
	scale := 200 - 2*quality
	if quality < 50 {
		scale = 5000 / quality
	}
	for t := range q {
		for i, b := range baseQuant[t] {
			q[t][i] = uint8(min(255, max(1, (int(b)*scale+50)/100)))
		}
	}
	return q
}

// Encoder holds what every strip of one picture shares.
type Encoder struct {
	w, h     int
	mcuCols  int
	stripMCU int // MCU rows per strip
	q        [2][64]uint8
	r, g, b  int // colour offsets of the pixels
	// div[t][i]: the factor that turns the AAN transform's i-th output
	// (natural order) of samples scaled by the colour conversion into a
	// quantised coefficient of table t.
	div [2][64]float32
	// The colour weights by byte of a pixel, when the colours are its
	// first three bytes (BGRX, RGBA): the fast path.
	fast         bool
	ky, kcb, kcr [3]int32
	// The weights of the SSE conversion, when it can convert the pixels.
	sse  bool
	sseW [28]int32
}

// Colour conversion in 16-bit fixed point (JFIF): Y = .299 R + .587 G +
// .114 B; chroma from the sums of 2×2 pixels (4:2:0), so its fixed-point
// unit is 4× smaller.
const (
	yR, yG, yB    = 19595, 38470, 7471
	cbR, cbG, cbB = -11059, -21709, 32768
	crR, crG, crB = 32768, -27439, -5329
	yOffset       = 128 << 16
)

// EncodeImage encodes img at quality 1..100, its strips on all cores.
func EncodeImage(img image.Image, quality int) ([]byte, error) {
	return Encode(FromImage(img), quality)
}

// Encode encodes p at quality 1..100, its strips on all cores.
func Encode(p Pixels, quality int) ([]byte, error) {
	if err := p.Check(); err != nil {
		return nil, fmt.Errorf("encode JPEG: %w", err)
	}
	e, err := New(p.Width, p.Height, quality, p.R, p.G, p.B)
	if err != nil {
		return nil, err
	}
	rows := e.StripRows()
	strips := make([][]byte, (p.Height+rows-1)/rows)
	var next atomic.Int32
	work := func() {
		var s Strip
		for {
			i := int(next.Add(1)) - 1
			if i >= len(strips) {
				return
			}
			strips[i] = e.EncodeStrip(&s, p.Rows(i*rows, min((i+1)*rows, p.Height)))
		}
	}
	var wg sync.WaitGroup
	for range min(len(strips), runtime.GOMAXPROCS(0)) - 1 {
		wg.Go(work)
	}
	work()
	wg.Wait()
	return e.Assemble(strips), nil
}

// New prepares the tables for a w×h picture at quality 1..100 whose
// pixels have red, green and blue at byte offsets r, g and b.
func New(w, h, quality int, r, g, b int) (*Encoder, error) {
	if w <= 0 || h <= 0 || w > MaxSide || h > MaxSide {
		return nil, fmt.Errorf("encode JPEG: a picture of %dx%d cannot be a JPEG (1 to %d pixels a side)", w, h, MaxSide)
	}
	if quality < 1 || quality > 100 {
		return nil, fmt.Errorf("encode JPEG: quality %d is not between 1 and 100", quality)
	}
	if r < 0 || g < 0 || b < 0 || r > 3 || g > 3 || b > 3 || r == g || g == b || r == b {
		return nil, fmt.Errorf("encode JPEG: colour offsets %d,%d,%d: not three bytes of a pixel", r, g, b)
	}
	e := &Encoder{w: w, h: h, mcuCols: (w + 15) / 16, r: r, g: g, b: b}
	if e.fast = r+g+b == 3; e.fast {
		for _, c := range []struct {
			off       int
			y, cb, cr int32
		}{{r, yR, cbR, crR}, {g, yG, cbG, crG}, {b, yB, cbB, crB}} {
			e.ky[c.off], e.kcb[c.off], e.kcr[c.off] = c.y, c.cb, c.cr
		}
	}
	e.sseW, e.sse = sseWeights(e)
	e.stripMCU = StripRows(w) / 16
	e.q = quantTables(quality)
	for t := range 2 {
		// The colour conversion leaves luma 2^16 and chroma 2^18 too large.
		unit := 1.0 / 65536
		if t == 1 {
			unit = 1.0 / 262144
		}
		for i := range 64 {
			e.div[t][i] = float32(unit / (float64(e.q[t][i]) * aanScale[i/8] * aanScale[i%8] * 8))
		}
	}
	return e, nil
}

// StripRows is the strip height (a restart interval) of a picture w
// wide: four rows of 16×16 blocks, fewer when a restart interval (counted
// in 16 bits) would not hold them.
func StripRows(w int) int {
	return 16 * max(1, min(stripMCURows, 65535/((w+15)/16)))
}

// StripRows is the height of the encoder's strips.
func (e *Encoder) StripRows() int { return 16 * e.stripMCU }

// EncodeStrip entropy-codes one strip: band holds exactly its rows (all
// StripRows of them but in the last strip) at the picture's width, with
// the encoder's colour offsets. s is scratch space, one per goroutine.
func (e *Encoder) EncodeStrip(s *Strip, band Pixels) []byte {
	s.e, s.f, s.h = e, band, band.Height
	// About what a screen of text takes at quality 75, so the buffer
	// seldom grows.
	s.bw = bitWriter{buf: make([]byte, 0, max(4<<10, e.w*band.Height/3))}
	s.encode()
	return s.bw.buf
}

// Assemble joins the strips, restart markers between them, into a file.
func (e *Encoder) Assemble(strips [][]byte) []byte {
	size := 1024
	for _, b := range strips {
		size += len(b) + 2
	}
	b := make([]byte, 0, size)
	b = e.header(b, e.q, len(strips) > 1)
	for i, s := range strips {
		b = append(b, s...)
		if i < len(strips)-1 {
			b = append(b, 0xff, 0xd0+byte(i%8))
		}
	}
	return append(b, 0xff, 0xd9)
}

// header writes SOI, JFIF APP0, DQT, SOF0, DHT, DRI and SOS.
func (e *Encoder) header(b []byte, q [2][64]uint8, restart bool) []byte {
	b = append(b, 0xff, 0xd8)
	b = append(b, 0xff, 0xe0, 0, 16, 'J', 'F', 'I', 'F', 0, 1, 1, 0, 0, 1, 0, 1, 0, 0)
	b = append(b, 0xff, 0xdb, 0, 2+2*65)
	for t := range 2 {
		b = append(b, byte(t))
		for _, n := range zigzag {
			b = append(b, q[t][n])
		}
	}
	b = append(b, 0xff, 0xc0, 0, 17, 8, byte(e.h>>8), byte(e.h), byte(e.w>>8), byte(e.w), 3,
		1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1)
	n := 2
	for _, s := range stdHuff {
		n += 17 + len(s.values)
	}
	b = append(b, 0xff, 0xc4, byte(n>>8), byte(n))
	for i, s := range stdHuff {
		b = append(b, byte(i%2<<4|i/2)) // class (0 DC, 1 AC) and id
		b = append(b, s.counts[:]...)
		b = append(b, s.values...)
	}
	if restart {
		ri := e.stripMCU * e.mcuCols
		b = append(b, 0xff, 0xdd, 0, 4, byte(ri>>8), byte(ri))
	}
	return append(b, 0xff, 0xda, 0, 12, 3, 1, 0x00, 2, 0x11, 3, 0x11, 0, 63, 0)
}

// Strip is the scratch space of one goroutine's strips.
type Strip struct {
	e  *Encoder
	f  Pixels // the strip's rows
	h  int    // how many
	bw bitWriter
	dc [3]int32
	// The MCU's blocks: four luma, then Cb and Cr; flat[k] when all of
	// block k's samples are equal.
	blk  [6][64]int32
	flat [6]bool
	coef [64]int32 // the block's quantised coefficients, natural order
}

// encode entropy-codes the strip.
func (s *Strip) encode() {
	e := s.e
	s.dc = [3]int32{}
	for my := 0; my < (s.h+15)/16; my++ {
		for mx := 0; mx < e.mcuCols; mx++ {
			if e.fast && mx*16+16 <= e.w && my*16+16 <= s.h {
				if px, ok := s.flatMCU(mx, my); ok {
					s.codeFlatMCU(px)
					continue
				}
				s.loadMCU(mx, my)
			} else {
				s.loadEdge(mx, my)
			}
			for k := range 6 {
				t, c := 0, 0
				if k >= 4 {
					t, c = 1, k-3
				}
				if s.flat[k] {
					s.flatBlock(quantDC(float32(s.blk[k][0])*64*s.e.div[t][0]), t, c)
					continue
				}
				s.block(&s.blk[k], t, c)
			}
		}
	}
	s.bw.pad()
}

// colourMask keeps the three colour bytes of a little-endian pixel word.
func (p Pixels) colourMask() uint32 {
	return ^(uint32(0xff) << (8 * (6 - p.R - p.G - p.B)))
}

// flatMCU reports whether the 16×16 pixels of an MCU inside the picture
// all have one colour (screens are mostly backgrounds), and which.
func (s *Strip) flatMCU(mx, my int) (uint32, bool) {
	f := s.f
	mask := f.colourMask()
	o := my*16*f.Stride + 64*mx
	first := binary.LittleEndian.Uint32(f.Pix[o:]) & mask
	for y := 0; y < 16; y++ {
		row := f.Pix[o+y*f.Stride : o+y*f.Stride+64 : o+y*f.Stride+64]
		var d uint32
		for x := 0; x < 64; x += 4 {
			d |= binary.LittleEndian.Uint32(row[x:]) ^ first
		}
		if d&mask != 0 {
			return 0, false
		}
	}
	return first, true
}

// codeFlatMCU codes an MCU of one colour: each block's DC and an end of block.
func (s *Strip) codeFlatMCU(px uint32) {
	f, e := s.f, s.e
	r := int32(px >> (8 * f.R) & 0xff)
	g := int32(px >> (8 * f.G) & 0xff)
	b := int32(px >> (8 * f.B) & 0xff)
	// The transform's DC of a flat block is 64× the sample.
	yv := float32(yR*r+yG*g+yB*b-yOffset) * 64
	cbv := float32((cbR*r+cbG*g+cbB*b)*4) * 64
	crv := float32((crR*r+crG*g+crB*b)*4) * 64
	dy := quantDC(yv * e.div[0][0])
	for range 4 {
		s.flatBlock(dy, 0, 0)
	}
	s.flatBlock(quantDC(cbv*e.div[1][0]), 1, 1)
	s.flatBlock(quantDC(crv*e.div[1][0]), 1, 2)
}

func quantDC(v float32) int32 {
	return min(1023, max(-1024, int32(v+16384.5)-16384))
}

func (s *Strip) flatBlock(dc int32, t, c int) {
	s.emitDC(dc, t, c)
	eob := stdCodes[2*t+1][0x00]
	s.bw.put(eob&0xffffff, eob>>24)
}

func (s *Strip) emitDC(dc int32, t, c int) {
	d := dc - s.dc[c]
	s.dc[c] = dc
	n, v := sizeBits(d)
	code := stdCodes[2*t][n]
	s.bw.put(code&0xffffff<<n|v, code>>24+n)
}

// smallAC bounds the AC values of acSmall: most of a screen's.
const smallAC = 64

// acSmall[t][run][v+smallAC] is the whole code of AC value v after run
// zeros with table set t: its length (at most 26) above bit 27, the
// Huffman code followed by the value's bits below.
var acSmall = func() (c [2][16][2 * smallAC]uint32) {
	for t := range 2 {
		for run := range 16 {
			for v := int32(-smallAC); v < smallAC; v++ {
				if v == 0 {
					continue
				}
				size, vb := sizeBits(v)
				code := stdCodes[2*t+1][uint32(run)<<4|size]
				c[t][run][v+smallAC] = (code>>24+size)<<27 | (code&0xffffff)<<size | vb
			}
		}
	}
	return c
}()

// acBits[v+1023] is sizeBits(v) for an AC coefficient, as size<<16 | bits.
var acBits = func() (t [2048]uint32) {
	for v := int32(-1023); v <= 1023; v++ {
		n, b := sizeBits(v)
		t[v+1023] = n<<16 | b
	}
	return t
}()

// sizeBits returns the size category of v and the bits that code it.
func sizeBits(v int32) (uint32, uint32) {
	m := v >> 31 // -1 when negative
	a := (v ^ m) - m
	n := uint32(bits.Len32(uint32(a)))
	return n, uint32(v+m) & (1<<n - 1)
}

// loadInside converts an MCU inside a picture whose colours are the
// first three bytes of a pixel: 16 rows of 16 pixels into four luma
// blocks, and the sums of 2×2 pixels into the two chroma blocks; it notes
// which blocks are flat.
func (s *Strip) loadInside(mx, my int) {
	e, f := s.e, s.f
	k0, k1, k2 := e.ky[0], e.ky[1], e.ky[2]
	o := my*16*f.Stride + 64*mx
	var sr, sg, sb [64]int32 // sums of the first, second and third bytes
	var diff [4]uint32
	first := [4]uint32{
		binary.LittleEndian.Uint32(f.Pix[o:]), binary.LittleEndian.Uint32(f.Pix[o+32:]),
		binary.LittleEndian.Uint32(f.Pix[o+8*f.Stride:]), binary.LittleEndian.Uint32(f.Pix[o+8*f.Stride+32:]),
	}
	for cy := 0; cy < 8; cy++ {
		r0 := f.Pix[o+2*cy*f.Stride : o+2*cy*f.Stride+64 : o+2*cy*f.Stride+64]
		r1 := f.Pix[o+(2*cy+1)*f.Stride : o+(2*cy+1)*f.Stride+64 : o+(2*cy+1)*f.Stride+64]
		for half := 0; half < 2; half++ {
			k := (cy/4)*2 + half
			blk := &s.blk[k&3]
			fk := first[k&3]
			bo := (2 * cy % 8) * 8
			var d uint32
			for cx := 0; cx < 4; cx++ {
				x := 32*half + 8*cx
				p00 := binary.LittleEndian.Uint32(r0[x&63:])
				p01 := binary.LittleEndian.Uint32(r0[(x+4)&63:])
				p10 := binary.LittleEndian.Uint32(r1[x&63:])
				p11 := binary.LittleEndian.Uint32(r1[(x+4)&63:])
				d |= (p00 ^ fk) | (p01 ^ fk) | (p10 ^ fk) | (p11 ^ fk)
				i := bo + 2*cx
				blk[i&63] = k0*int32(p00&0xff) + k1*int32(p00>>8&0xff) + k2*int32(p00>>16&0xff) - yOffset
				blk[(i+1)&63] = k0*int32(p01&0xff) + k1*int32(p01>>8&0xff) + k2*int32(p01>>16&0xff) - yOffset
				blk[(i+8)&63] = k0*int32(p10&0xff) + k1*int32(p10>>8&0xff) + k2*int32(p10>>16&0xff) - yOffset
				blk[(i+9)&63] = k0*int32(p11&0xff) + k1*int32(p11>>8&0xff) + k2*int32(p11>>16&0xff) - yOffset
				// Bytes 0 and 2 of four pixels in two 16-bit lanes, byte 1 in one.
				lo := p00&0xff00ff + p01&0xff00ff + p10&0xff00ff + p11&0xff00ff
				mid := p00>>8&0xff + p01>>8&0xff + p10>>8&0xff + p11>>8&0xff
				c := (cy*8 + 4*half + cx) & 63
				sr[c], sg[c], sb[c] = int32(lo&0xffff), int32(mid), int32(lo>>16)
			}
			diff[k&3] |= d
		}
	}
	mask := uint32(0xffffff)
	for k := range 4 {
		s.flat[k] = diff[k]&mask == 0
	}
	s.chromaBytes(&sr, &sg, &sb)
}

// chromaBytes turns sums of bytes 0, 1 and 2 of 2×2 pixels into the
// chroma blocks and notes flat ones.
func (s *Strip) chromaBytes(s0, s1, s2 *[64]int32) {
	e := s.e
	cb, cr := &s.blk[4], &s.blk[5]
	b0, b1, b2 := e.kcb[0], e.kcb[1], e.kcb[2]
	r0, r1, r2 := e.kcr[0], e.kcr[1], e.kcr[2]
	var dcb, dcr int32
	cb0 := b0*s0[0] + b1*s1[0] + b2*s2[0]
	cr0 := r0*s0[0] + r1*s1[0] + r2*s2[0]
	for i := range 64 {
		vb := b0*s0[i] + b1*s1[i] + b2*s2[i]
		vr := r0*s0[i] + r1*s1[i] + r2*s2[i]
		dcb |= vb ^ cb0
		dcr |= vr ^ cr0
		cb[i] = vb
		cr[i] = vr
	}
	s.flat[4], s.flat[5] = dcb == 0, dcr == 0
}

// chroma turns 2×2 sums into the chroma blocks and notes flat ones.
func (s *Strip) chroma(sr, sg, sb *[64]int32) {
	cb, cr := &s.blk[4], &s.blk[5]
	fcb, fcr := true, true
	for i := range 64 {
		cb[i] = cbR*sr[i] + cbG*sg[i] + cbB*sb[i]
		cr[i] = crR*sr[i] + crG*sg[i] + crB*sb[i]
		fcb = fcb && cb[i] == cb[0]
		fcr = fcr && cr[i] == cr[0]
	}
	s.flat[4], s.flat[5] = fcb, fcr
}

// loadEdge converts an MCU that the picture's right or bottom edge cuts,
// repeating the last column and row past the edge.
func (s *Strip) loadEdge(mx, my int) {
	e, f := s.e, s.f
	x0, y0 := mx*16, my*16
	var sr, sg, sb [64]int32
	for y := 0; y < 16; y++ {
		row := f.Pix[min(y0+y, s.h-1)*f.Stride:]
		for x := 0; x < 16; x++ {
			o := 4 * min(x0+x, e.w-1)
			r, g, b := int32(row[o+f.R]), int32(row[o+f.G]), int32(row[o+f.B])
			s.blk[(y/8)*2+x/8][(y%8)*8+x%8] = yR*r + yG*g + yB*b - yOffset
			c := (y/2)*8 + x/2
			sr[c] += r
			sg[c] += g
			sb[c] += b
		}
	}
	for k := range 4 {
		s.flat[k] = false
	}
	s.chroma(&sr, &sg, &sb)
}

// block transforms, quantises and entropy-codes one 8×8 block of
// component c with quantisation and Huffman table set t.
func (s *Strip) block(blk *[64]int32, t, c int) {
	nat := &s.coef
	nz := zigzagMask(fdctQuant(blk, &s.e.div[t], nat)) // bit i: zig-zag coefficient i is not zero
	// The bit writer's state in locals (registers) for the block.
	s.bw.reserve()
	buf, l, acc, n := s.bw.buf[:cap(s.bw.buf)], len(s.bw.buf), s.bw.acc, s.bw.n
	dc := min(1023, max(-1024, nat[0]))
	d := dc - s.dc[c]
	s.dc[c] = dc
	size, vb := sizeBits(d)
	code := stdCodes[2*t][size&15]
	l, acc, n = putBits(buf, l, acc, n, code&0xffffff<<size|vb, code>>24+size)
	ac := &stdCodes[2*t+1]
	nz &^= 1
	k := 1
	for nz != 0 {
		next := bits.TrailingZeros64(nz)
		run := next - k
		for run > 15 {
			l, acc, n = putBits(buf, l, acc, n, ac[0xf0]&0xffffff, ac[0xf0]>>24)
			run -= 16
		}
		v := nat[zigzag[next&63]&63]
		if uint32(v+smallAC) < 2*smallAC {
			// The code and the value's bits in one look-up.
			sym := acSmall[t&1][run&15][(v+smallAC)&(2*smallAC-1)]
			l, acc, n = putBits(buf, l, acc, n, sym&(1<<27-1), sym>>27)
		} else {
			sb := acBits[(min(1023, max(-1023, v))+1023)&2047]
			size := sb >> 16
			code := ac[(uint32(run)<<4|size)&255]
			l, acc, n = putBits(buf, l, acc, n, code&0xffffff<<size|sb&0xffff, code>>24+size)
		}
		k = next + 1
		nz &= nz - 1
	}
	if k < 64 {
		l, acc, n = putBits(buf, l, acc, n, ac[0x00]&0xffffff, ac[0x00]>>24)
	}
	s.bw.buf, s.bw.acc, s.bw.n = buf[:l], acc, n
}

// bitWriter packs Huffman codes MSB first. It writes the bits as they
// are; the zero byte JPEG wants after every 0xFF is put in afterwards by
// stuff, which finds the rare 0xFF bytes much faster than a check on
// every word would.
type bitWriter struct {
	buf []byte
	acc uint64
	n   uint32
}

// maxBlockBytes bounds what one block adds to the output: 64 codes of at
// most 27 bits, and 4 bytes pending.
const maxBlockBytes = 64*27/8 + 16

// reserve makes room for one more block without reallocating.
func (w *bitWriter) reserve() {
	if cap(w.buf)-len(w.buf) < maxBlockBytes {
		b := make([]byte, len(w.buf), 2*cap(w.buf)+maxBlockBytes)
		copy(b, w.buf)
		w.buf = b
	}
}

func (w *bitWriter) put(code, n uint32) {
	w.reserve()
	l := len(w.buf)
	l, w.acc, w.n = putBits(w.buf[:cap(w.buf)], l, w.acc, w.n, code, n)
	w.buf = w.buf[:l]
}

// putBits appends n bits of code to the bits in acc (held of them) and
// writes out 32 once there are as many, at buf[l:].
func putBits(buf []byte, l int, acc uint64, held, code, n uint32) (int, uint64, uint32) {
	acc = acc<<n | uint64(code)
	held += n
	if held >= 32 {
		held -= 32
		binary.BigEndian.PutUint32(buf[l:], uint32(acc>>held))
		l += 4
	}
	return l, acc, held
}

// pad flushes the bits left, filling the last byte with ones, and stuffs
// the strip.
func (w *bitWriter) pad() {
	for w.n >= 8 {
		w.n -= 8
		w.buf = append(w.buf, byte(w.acc>>w.n))
	}
	if w.n > 0 {
		w.buf = append(w.buf, byte(w.acc<<(8-w.n))|byte(0xff>>w.n))
	}
	w.acc, w.n = 0, 0
	w.buf = stuff(w.buf)
}

// stuff puts a zero byte after every 0xFF of entropy-coded data.
func stuff(b []byte) []byte {
	n := bytes.Count(b, []byte{0xff})
	if n == 0 {
		return b
	}
	out := make([]byte, len(b)+n)
	o := 0
	for {
		i := bytes.IndexByte(b, 0xff)
		if i < 0 {
			copy(out[o:], b)
			return out
		}
		o += copy(out[o:], b[:i+1])
		out[o] = 0
		o++
		b = b[i+1:]
	}
}
