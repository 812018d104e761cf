// Package thumbnail makes the project's one kind of thumbnail: the picture
// scaled to Width pixels wide by area averaging, as a JPEG of Quality
// (internal/jpegenc). The agent makes them for its screenshots, band by
// band as it encodes the shot (Sums); the diary for covered shots and for
// captures that arrive without one (Make). Both give the same bytes for
// the same picture. It imports only the standard library and jpegenc, so
// the guest links it.
package thumbnail

import (
	"fmt"
	"image"
	"runtime"
	"sync"

	"github.com/workspace-sandbox/workspace/internal/jpegenc"
)

// Width and Quality of every thumbnail.
const (
	Width   = 320
	Quality = 70
)

// Size is the size of the thumbnail of a W×H picture: at most Width wide
// (a narrower picture keeps its width), the aspect kept, never 0 high.
func Size(W, H int) (int, int) {
	w := min(Width, W)
	return w, max(1, H*w/W)
}

// Make returns img's thumbnail as a JPEG.
func Make(img image.Image) ([]byte, error) {
	r := img.Bounds()
	if r.Empty() {
		return nil, fmt.Errorf("thumbnail of an empty %dx%d picture", r.Dx(), r.Dy())
	}
	p := jpegenc.FromImage(img)
	w, h := Size(p.Width, p.Height)
	return Encode(resample(p, w, h))
}

// Encode encodes a picture already of thumbnail size as the thumbnail JPEG.
func Encode(p jpegenc.Pixels) ([]byte, error) {
	b, err := jpegenc.Encode(p, Quality)
	if err != nil {
		return nil, fmt.Errorf("encode thumbnail: %w", err)
	}
	return b, nil
}

// Resample averages img into a w×h picture: each pixel is the mean of the
// source pixels it covers (at least one).
func Resample(img image.Image, w, h int) *image.RGBA {
	p := resample(jpegenc.FromImage(img), w, h)
	return &image.RGBA{Pix: p.Pix, Stride: p.Stride, Rect: image.Rect(0, 0, w, h)}
}

// resample averages p into w×h RGBA pixels, bands on all cores.
func resample(p jpegenc.Pixels, w, h int) jpegenc.Pixels {
	rows := jpegenc.StripRows(p.Width)
	n := (p.Height + rows - 1) / rows
	s := NewSums(p.Width, p.Height, w, h)
	var wg sync.WaitGroup
	workers := min(n, runtime.GOMAXPROCS(0))
	for k := range workers {
		wg.Go(func() {
			var scratch Scratch
			for i := k; i < n; i += workers {
				s.Add(&scratch, i*rows, p.Rows(i*rows, min((i+1)*rows, p.Height)))
			}
		})
	}
	wg.Wait()
	return s.Pixels(p.R, p.G, p.B)
}

// Sums accumulates the box averages of a W×H picture into a w×h one from
// bands of its rows, added in any order and from any goroutine. Output
// pixel (x,y) is the truncated mean of the source pixels of its box: rows
// y*H/h up to (y+1)*H/h, columns x*W/w up to (x+1)*W/w (at least one of
// each).
type Sums struct {
	W, H, w, h int
	x0s, x1s   []int
	mu         sync.Mutex
	sums       []uint32 // per output pixel: sums of colour bytes 0, 2 and 1
}

// NewSums prepares the sums of a W×H picture averaged into w×h.
func NewSums(W, H, w, h int) *Sums {
	s := &Sums{W: W, H: H, w: w, h: h, x0s: make([]int, w), x1s: make([]int, w), sums: make([]uint32, 3*w*h)}
	for x := range w {
		s.x0s[x] = x * W / w
		s.x1s[x] = max((x+1)*W/w, s.x0s[x]+1)
	}
	return s
}

func (s *Sums) y0(y int) int { return y * s.H / s.h }
func (s *Sums) y1(y int) int { return max((y+1)*s.H/s.h, s.y0(y)+1) }

// Scratch is a goroutine's scratch space for Add, kept between calls.
type Scratch struct {
	part []uint32
	cols []uint16
}

// Add sums band, the source rows from by0 on, into the boxes it meets.
func (s *Sums) Add(scratch *Scratch, by0 int, band jpegenc.Pixels) {
	by1 := by0 + band.Height
	// The output rows whose boxes meet the band.
	oy0 := by0 * s.h / s.H
	for oy0 > 0 && s.y1(oy0-1) > by0 {
		oy0--
	}
	for oy0 < s.h && s.y1(oy0) <= by0 {
		oy0++
	}
	oy1 := oy0
	for oy1 < s.h && s.y0(oy1) < by1 {
		oy1++
	}
	if oy1 <= oy0 {
		return
	}
	need := 3 * s.w * (oy1 - oy0)
	if cap(scratch.part) < need {
		scratch.part = make([]uint32, need)
	}
	part := scratch.part[:need]
	clear(part)
	if cap(scratch.cols) < 4*s.W {
		scratch.cols = make([]uint16, 4*s.W)
	}
	cols := scratch.cols[:4*s.W]
	for oy := oy0; oy < oy1; oy++ {
		row := part[3*s.w*(oy-oy0) : 3*s.w*(oy-oy0+1)]
		r0, r1 := max(s.y0(oy), by0)-by0, min(s.y1(oy), by1)-by0
		// Down the columns first, each byte of each pixel in 16 bits:
		// up to 257 rows at a time.
		for ; r0 < r1; r0 += 256 {
			clear(cols)
			for r := r0; r < min(r0+256, r1); r++ {
				addBytes(cols, band.Pix[r*band.Stride:r*band.Stride+4*s.W])
			}
			s.addCols(row, cols)
		}
	}
	s.mu.Lock()
	for k, v := range part {
		s.sums[3*s.w*oy0+k] += v
	}
	s.mu.Unlock()
}

// addCols adds the column sums of the bytes of the pixels to the sums of
// the boxes they belong to (bytes 0, 2 and 1).
func (s *Sums) addCols(sums []uint32, cols []uint16) {
	for x := range s.w {
		var b0, b1, b2 uint32
		c := cols[4*s.x0s[x] : 4*s.x1s[x]]
		for ; len(c) >= 4; c = c[4:] {
			b0 += uint32(c[0])
			b1 += uint32(c[1])
			b2 += uint32(c[2])
		}
		sums[3*x] += b0
		sums[3*x+1] += b2
		sums[3*x+2] += b1
	}
}

// addBytesGo adds each byte of row to its 16-bit column sum.
func addBytesGo(cols []uint16, row []byte) {
	cols = cols[:len(row)]
	for i, b := range row {
		cols[i] += uint16(b)
	}
}

// Pixels returns the averages, once every row was added, as RGBA pixels
// (alpha 255); r, g and b are where the source pixels had their colours.
func (s *Sums) Pixels(r, g, b int) jpegenc.Pixels {
	idx := [4]int{0, 2, 1, 0} // colour byte -> index in the sums
	ri, gi, bi := idx[r], idx[g], idx[b]
	out := jpegenc.Pixels{Pix: make([]byte, 4*s.w*s.h), Stride: 4 * s.w, Width: s.w, Height: s.h, R: 0, G: 1, B: 2}
	for y := range s.h {
		rows := uint32(s.y1(y) - s.y0(y))
		for x := range s.w {
			n := rows * uint32(s.x1s[x]-s.x0s[x])
			c := s.sums[3*(y*s.w+x) : 3*(y*s.w+x)+3]
			o := y*out.Stride + 4*x
			out.Pix[o], out.Pix[o+1], out.Pix[o+2], out.Pix[o+3] = uint8(c[ri]/n), uint8(c[gi]/n), uint8(c[bi]/n), 255
		}
	}
	return out
}
