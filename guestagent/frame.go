package guestagent

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"sync"
)

// Frame is a picture of 4-byte pixels kept in the byte order it was
// captured in (BGRX from an X server on a little-endian machine, RGBA from
// the Windows capture), so a capture is never converted before it is
// encoded. R, G and B are the byte offsets of the colours in a pixel; the
// fourth byte is ignored.
type Frame struct {
	Pix     []byte
	Stride  int
	Rect    image.Rectangle // Min is always 0,0
	R, G, B int

	once    sync.Once
	release func()
}

// ColorModel implements image.Image.
func (f *Frame) ColorModel() color.Model { return color.RGBAModel }

// Bounds implements image.Image.
func (f *Frame) Bounds() image.Rectangle { return f.Rect }

// At implements image.Image.
func (f *Frame) At(x, y int) color.Color {
	if !(image.Point{x, y}).In(f.Rect) {
		return color.RGBA{}
	}
	o := y*f.Stride + 4*x
	return color.RGBA{f.Pix[o+f.R], f.Pix[o+f.G], f.Pix[o+f.B], 255}
}

// Release gives back the frame's memory when it is not the Go heap's (a
// shared-memory segment). The frame must not be used afterwards. Safe to
// call more than once, and on frames that own nothing.
func (f *Frame) Release() {
	f.once.Do(func() {
		if f.release != nil {
			f.release()
		}
		f.Pix = nil
	})
}

// pixelOffsets are the byte offsets of red, green and blue in a pixel.
type pixelOffsets struct{ R, G, B int }

func (f *Frame) offsets() pixelOffsets { return pixelOffsets{f.R, f.G, f.B} }

// newFrame allocates a w×h frame in BGRX order.
func newFrame(w, h int) *Frame {
	return &Frame{Pix: make([]byte, 4*w*h), Stride: 4 * w, Rect: image.Rect(0, 0, w, h), R: 2, G: 1, B: 0}
}

// check refuses a frame whose buffer cannot hold its rectangle or whose
// offsets are not three distinct bytes of a pixel.
func (f *Frame) check() error {
	w, h := f.Rect.Dx(), f.Rect.Dy()
	if f.Rect.Min != (image.Point{}) || w <= 0 || h <= 0 {
		return fmt.Errorf("frame of %v: empty or not at 0,0", f.Rect)
	}
	if f.Stride < 4*w || len(f.Pix) < f.Stride*(h-1)+4*w {
		return fmt.Errorf("frame of %dx%d: %d bytes at a stride of %d are too few", w, h, len(f.Pix), f.Stride)
	}
	if f.R < 0 || f.G < 0 || f.B < 0 || f.R > 3 || f.G > 3 || f.B > 3 || f.R == f.G || f.G == f.B || f.R == f.B {
		return fmt.Errorf("frame with colour offsets %d,%d,%d: not three bytes of a pixel", f.R, f.G, f.B)
	}
	return nil
}

// frameOf returns img as a Frame: itself, an RGBA image's pixels without a
// copy, or a converted copy of anything else.
func frameOf(img image.Image) *Frame {
	switch m := img.(type) {
	case *Frame:
		return m
	case *image.RGBA:
		r := m.Rect
		return &Frame{Pix: m.Pix[m.PixOffset(r.Min.X, r.Min.Y):], Stride: m.Stride, Rect: image.Rect(0, 0, r.Dx(), r.Dy()), R: 0, G: 1, B: 2}
	}
	r := img.Bounds()
	dst := image.NewRGBA(image.Rect(0, 0, r.Dx(), r.Dy()))
	draw.Draw(dst, dst.Rect, img, r.Min, draw.Src)
	return frameOf(dst)
}
