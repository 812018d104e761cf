package guestagent

import (
	"bytes"
	"image"
	"image/color"
	"image/jpeg"
)

func encodeJPEG(img image.Image, q int) ([]byte, error) {
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: q}); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// thumbnail scales img to width w (area average).
func thumbnail(img image.Image, w int) image.Image {
	r := img.Bounds()
	w = min(w, r.Dx())
	h := max(1, r.Dy()*w/r.Dx())
	return resample(img, w, h)
}

// resample averages img into a w×h image.
func resample(img image.Image, w, h int) *image.RGBA {
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

// blurImage makes text unreadable before a shot leaves the guest (the
// profile's blur = true): the picture is reduced 16× and scaled back.
func blurImage(img image.Image) image.Image {
	r := img.Bounds()
	small := resample(img, max(1, r.Dx()/16), max(1, r.Dy()/16))
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
