package thumbnail

import (
	"bytes"
	"image"
	"image/color"
	"image/jpeg"
	"testing"
)

func TestMake(t *testing.T) {
	for _, c := range []struct{ w, h, wantW, wantH int }{
		{1280, 800, Width, 200},
		{100, 50, 100, 50},  // narrower than Width: kept
		{4000, 1, Width, 1}, // never 0 high
	} {
		img := image.NewRGBA(image.Rect(0, 0, c.w, c.h))
		b, err := Make(img)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := jpeg.DecodeConfig(bytes.NewReader(b))
		if err != nil || cfg.Width != c.wantW || cfg.Height != c.wantH {
			t.Errorf("%dx%d: thumbnail %dx%d (%v), want %dx%d", c.w, c.h, cfg.Width, cfg.Height, err, c.wantW, c.wantH)
		}
	}
	if _, err := Make(image.NewRGBA(image.Rect(0, 0, 0, 10))); err == nil {
		t.Error("thumbnail of an empty picture")
	}
}

// TestResampleAverages: a 2x1 black and white picture averages to grey,
// through the RGBA fast path and the generic one alike.
func TestResampleAverages(t *testing.T) {
	rgba := image.NewRGBA(image.Rect(0, 0, 2, 1))
	rgba.Set(0, 0, color.Black)
	rgba.Set(1, 0, color.White)
	gray := image.NewGray(image.Rect(0, 0, 2, 1))
	gray.Set(0, 0, color.Black)
	gray.Set(1, 0, color.White)
	for _, img := range []image.Image{rgba, gray} {
		got := Resample(img, 1, 1).RGBAAt(0, 0)
		if got.R != 127 || got.G != 127 || got.B != 127 || got.A != 255 {
			t.Errorf("%T: %v, want grey 127", img, got)
		}
	}
}
