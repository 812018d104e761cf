package guestagent

import (
	"image"
	"image/color"

	"github.com/workspace-sandbox/workspace/internal/jpegenc"
)

// Frame is a captured picture of 4-byte pixels kept in the byte order it
// was captured in (BGRX from an X server on a little-endian machine), so
// it is never converted before it is encoded.
type Frame struct {
	jpegenc.Pixels
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
