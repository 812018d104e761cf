// Package thumbnail makes the project's one kind of thumbnail: the picture
// scaled to Width pixels wide by area averaging, as a JPEG of Quality. The
// agent makes them for its screenshots; the diary for covered shots and for
// captures that arrive without one. It imports only the standard library,
// so the guest links it.
package thumbnail

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
)

// Width and Quality of every thumbnail.
const (
	Width   = 320
	Quality = 70
)

// Make returns img's thumbnail: at most Width wide (a narrower picture
// keeps its width), the aspect kept, as a JPEG.
func Make(img image.Image) ([]byte, error) {
	r := img.Bounds()
	if r.Empty() {
		return nil, fmt.Errorf("thumbnail of an empty %dx%d picture", r.Dx(), r.Dy())
	}
	w := min(Width, r.Dx())
	h := max(1, r.Dy()*w/r.Dx())
	var b bytes.Buffer
	if err := jpeg.Encode(&b, Resample(img, w, h), &jpeg.Options{Quality: Quality}); err != nil {
		return nil, fmt.Errorf("encode thumbnail: %w", err)
	}
	return b.Bytes(), nil
}

// Resample averages img into a w×h picture: each pixel is the mean of the
// source pixels it covers (at least one).
func Resample(img image.Image, w, h int) *image.RGBA {
	r := img.Bounds()
	dst := image.NewRGBA(image.Rect(0, 0, w, h))
	rgba, _ := img.(*image.RGBA)
	for y := 0; y < h; y++ {
		y0, y1 := r.Min.Y+y*r.Dy()/h, max(r.Min.Y+(y+1)*r.Dy()/h, r.Min.Y+y*r.Dy()/h+1)
		for x := 0; x < w; x++ {
			x0, x1 := r.Min.X+x*r.Dx()/w, max(r.Min.X+(x+1)*r.Dx()/w, r.Min.X+x*r.Dx()/w+1)
			var sr, sg, sb, n uint32
			for yy := y0; yy < y1; yy++ {
				for xx := x0; xx < x1; xx++ {
					if rgba != nil {
						o := rgba.PixOffset(xx, yy)
						sr, sg, sb = sr+uint32(rgba.Pix[o]), sg+uint32(rgba.Pix[o+1]), sb+uint32(rgba.Pix[o+2])
					} else {
						cr, cg, cb, _ := img.At(xx, yy).RGBA()
						sr, sg, sb = sr+cr>>8, sg+cg>>8, sb+cb>>8
					}
					n++
				}
			}
			dst.SetRGBA(x, y, color.RGBA{uint8(sr / n), uint8(sg / n), uint8(sb / n), 255})
		}
	}
	return dst
}
