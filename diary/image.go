package diary

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/jpeg"

	"github.com/workspace-sandbox/workspace/internal/thumbnail"
	"github.com/workspace-sandbox/workspace/tracking"
)

func decodeImage(b []byte) (image.Image, error) {
	img, _, err := image.Decode(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("decode image: %w", err)
	}
	return img, nil
}

func encodeJPEG(img image.Image, q int) ([]byte, error) {
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: q}); err != nil {
		return nil, fmt.Errorf("encode JPEG: %w", err)
	}
	return buf.Bytes(), nil
}

// makeThumbnail makes the thumbnail of an encoded image, in memory.
func makeThumbnail(b []byte) ([]byte, error) {
	img, err := decodeImage(b)
	if err != nil {
		return nil, err
	}
	return thumbnail.Make(img)
}

func average(img image.Image, r image.Rectangle) color.RGBA {
	var sr, sg, sb, n uint64
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			cr, cg, cb, _ := img.At(x, y).RGBA()
			sr, sg, sb = sr+uint64(cr), sg+uint64(cg), sb+uint64(cb)
			n++
		}
	}
	if n == 0 {
		return color.RGBA{A: 255}
	}
	return color.RGBA{uint8(sr / n >> 8), uint8(sg / n >> 8), uint8(sb / n >> 8), 255}
}

// CoverBlock is the side of the blocks a covered region is reduced to; at
// 24 px a block is taller than a line of screen text, so no glyph survives.
const CoverBlock = 24

// checkRects refuses rectangles that are empty or leave the image.
func checkRects(rects []tracking.Rect, size image.Point) error {
	// Compared with the room left, not as sums: x+w can wrap around.
	for i, r := range rects {
		if r.W <= 0 || r.H <= 0 || r.X < 0 || r.Y < 0 || r.W > size.X-r.X || r.H > size.Y-r.Y {
			return fmt.Errorf("%w: rectangle %d (%d,%d %dx%d) is not inside the %dx%d image", ErrInvalid, i+1, r.X, r.Y, r.W, r.H, size.X, size.Y)
		}
	}
	return nil
}

// coverImage returns a copy of img with each rectangle (or the whole image
// when rects is empty) reduced to flat CoverBlock-sized blocks of their mean
// colour and then box-blurred across block edges: the layout's colours stay,
// text does not.
func coverImage(img image.Image, rects []tracking.Rect) *image.RGBA {
	b := img.Bounds()
	out := image.NewRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
	draw.Draw(out, out.Bounds(), img, b.Min, draw.Src)
	if len(rects) == 0 {
		rects = []tracking.Rect{{X: 0, Y: 0, W: b.Dx(), H: b.Dy()}}
	}
	for _, r := range rects {
		area := image.Rect(r.X, r.Y, r.X+r.W, r.Y+r.H).Intersect(out.Bounds())
		for y := area.Min.Y; y < area.Max.Y; y += CoverBlock {
			for x := area.Min.X; x < area.Max.X; x += CoverBlock {
				blk := image.Rect(x, y, min(x+CoverBlock, area.Max.X), min(y+CoverBlock, area.Max.Y))
				c := average(out, blk)
				draw.Draw(out, blk, &image.Uniform{c}, image.Point{}, draw.Src)
			}
		}
		boxBlur(out, area, CoverBlock/2)
	}
	return out
}

// boxBlur blurs area of img in place with a (2r+1)² box, clamped to area.
func boxBlur(img *image.RGBA, area image.Rectangle, r int) {
	if area.Empty() {
		return
	}
	w, h := area.Dx(), area.Dy()
	tmp := make([][3]int, w*h)
	at := func(x, y int) [3]int {
		o := img.PixOffset(area.Min.X+x, area.Min.Y+y)
		return [3]int{int(img.Pix[o]), int(img.Pix[o+1]), int(img.Pix[o+2])}
	}
	for y := 0; y < h; y++ { // horizontal pass
		for x := 0; x < w; x++ {
			var s [3]int
			n := 0
			for k := max(0, x-r); k <= min(w-1, x+r); k++ {
				p := at(k, y)
				s[0], s[1], s[2] = s[0]+p[0], s[1]+p[1], s[2]+p[2]
				n++
			}
			tmp[y*w+x] = [3]int{s[0] / n, s[1] / n, s[2] / n}
		}
	}
	for x := 0; x < w; x++ { // vertical pass
		for y := 0; y < h; y++ {
			var s [3]int
			n := 0
			for k := max(0, y-r); k <= min(h-1, y+r); k++ {
				p := tmp[k*w+x]
				s[0], s[1], s[2] = s[0]+p[0], s[1]+p[1], s[2]+p[2]
				n++
			}
			o := img.PixOffset(area.Min.X+x, area.Min.Y+y)
			img.Pix[o], img.Pix[o+1], img.Pix[o+2], img.Pix[o+3] = uint8(s[0]/n), uint8(s[1]/n), uint8(s[2]/n), 255
		}
	}
}
