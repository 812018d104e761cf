package guestagent

import (
	"bytes"
	"image"
	"image/jpeg"

	"github.com/workspace-sandbox/workspace/internal/thumbnail"
)

func encodeJPEG(img image.Image, q int) ([]byte, error) {
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: q}); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// blurImage makes text unreadable before a shot leaves the guest (the
// profile's blur = true): the picture is reduced 16× and scaled back.
func blurImage(img image.Image) image.Image {
	r := img.Bounds()
	small := thumbnail.Resample(img, max(1, r.Dx()/16), max(1, r.Dy()/16))
	out := image.NewRGBA(image.Rect(0, 0, r.Dx(), r.Dy()))
	sw, sh := small.Bounds().Dx(), small.Bounds().Dy()
	for y := 0; y < r.Dy(); y++ {
		sy := min(sh-1, y*sh/r.Dy())
		for x := 0; x < r.Dx(); x++ {
			sx := min(sw-1, x*sw/r.Dx())
			o, so := out.PixOffset(x, y), small.PixOffset(sx, sy)
			copy(out.Pix[o:o+4], small.Pix[so:so+4])
		}
	}
	return out
}
