package guestagent

import (
	"image"

	"github.com/workspace-sandbox/workspace/internal/jpegenc"
	"github.com/workspace-sandbox/workspace/internal/thumbnail"
)

// blurPixels is img as a blurred shot shows it: what encodeBands encodes
// when blur is on.
func blurPixels(img image.Image) jpegenc.Pixels {
	p := pixelsOf(img)
	sw, sh := blurBoxes(p.Width, p.Height)
	small := thumbnail.NewSums(p.Width, p.Height, sw, sh)
	var scratch thumbnail.Scratch
	small.Add(&scratch, 0, p)
	var buf []byte
	return scaledSource{small: small.Pixels(p.R, p.G, p.B), W: p.Width, H: p.Height, rows: p.Height}.bandInto(0, &buf)
}
