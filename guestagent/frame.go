package guestagent

import (
	"image"
	"image/color"
	"sync"

	"github.com/workspace-sandbox/workspace/internal/jpegenc"
)

// Frame is a captured picture of 4-byte pixels kept in the byte order it
// was captured in (BGRX from an X server on a little-endian machine, RGBA
// from the Windows capture), so it is never converted before it is
// encoded.
type Frame struct {
	jpegenc.Pixels

	once    sync.Once
	release func()
}

// ColorModel implements image.Image.
func (f *Frame) ColorModel() color.Model { return color.RGBAModel }

// Bounds implements image.Image.
func (f *Frame) Bounds() image.Rectangle { return image.Rect(0, 0, f.Width, f.Height) }

// At implements image.Image.
func (f *Frame) At(x, y int) color.Color {
	if x < 0 || y < 0 || x >= f.Width || y >= f.Height {
		return color.RGBA{}
	}
	o := y*f.Stride + 4*x
	return color.RGBA{f.Pix[o+f.R], f.Pix[o+f.G], f.Pix[o+f.B], 255}
}

// Release gives back the frame's memory when it is not the Go heap's.
// The frame must not be used afterwards. Safe to call more than once, and
// on frames that own nothing.
func (f *Frame) Release() {
	f.once.Do(func() {
		if f.release != nil {
			f.release()
		}
		f.Pix = nil
	})
}

// pixelsOf returns img's pixels: a Frame's own, an RGBA image's without a
// copy, or a converted copy of anything else.
func pixelsOf(img image.Image) jpegenc.Pixels {
	if f, ok := img.(*Frame); ok {
		return f.Pixels
	}
	return jpegenc.FromImage(img)
}

// pixelOffsets are the byte offsets of red, green and blue in a pixel.
type pixelOffsets struct{ R, G, B int }
