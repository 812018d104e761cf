package thumbnail

import (
	"bytes"
	"image"
	"image/color"
	"image/jpeg"
	"math/rand"
	"slices"
	"testing"

	"github.com/workspace-sandbox/workspace/internal/jpegenc"
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

// naiveResample is the definition Sums implements: each output pixel the
// truncated mean of its box, boxes from the integer division of the sizes.
func naiveResample(img *image.RGBA, w, h int) *image.RGBA {
	W, H := img.Rect.Dx(), img.Rect.Dy()
	out := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		y0 := y * H / h
		y1 := max((y+1)*H/h, y0+1)
		for x := range w {
			x0 := x * W / w
			x1 := max((x+1)*W/w, x0+1)
			var s [3]uint32
			for yy := y0; yy < y1; yy++ {
				for xx := x0; xx < x1; xx++ {
					c := img.RGBAAt(xx, yy)
					s[0], s[1], s[2] = s[0]+uint32(c.R), s[1]+uint32(c.G), s[2]+uint32(c.B)
				}
			}
			n := uint32((y1 - y0) * (x1 - x0))
			out.SetRGBA(x, y, color.RGBA{uint8(s[0] / n), uint8(s[1] / n), uint8(s[2] / n), 255})
		}
	}
	return out
}

// Sums fed with bands of any height, in any order, from pixels in either
// byte order, gives exactly the averages of the definition; so do
// Resample and, for thumbnails, Make's picture.
func TestSumsInBandsAreTheAverages(t *testing.T) {
	r := rand.New(rand.NewSource(3))
	for _, c := range []struct{ W, H, w, h int }{
		{1920, 1080, 320, 180}, {1366, 768, 320, 179}, {1920, 1080, 120, 67}, {100, 50, 100, 50},
		{333, 219, 20, 13}, {7, 5, 3, 2}, {300, 2, 1, 1}, {2, 300, 1, 299}, {1500, 40, 5, 1},
	} {
		img := image.NewRGBA(image.Rect(0, 0, c.W, c.H))
		r.Read(img.Pix)
		want := naiveResample(img, c.w, c.h)
		if got := Resample(img, c.w, c.h); !bytes.Equal(got.Pix, want.Pix) {
			t.Errorf("%dx%d to %dx%d: Resample differs from the definition", c.W, c.H, c.w, c.h)
		}
		// BGRX, in bands of 1 to 70 rows added last band first.
		p := jpegenc.Pixels{Pix: make([]byte, len(img.Pix)), Stride: img.Stride, Width: c.W, Height: c.H, R: 2, G: 1, B: 0}
		for i := 0; i < len(p.Pix); i += 4 {
			p.Pix[i], p.Pix[i+1], p.Pix[i+2] = img.Pix[i+2], img.Pix[i+1], img.Pix[i]
		}
		rows := 1 + r.Intn(70)
		s := NewSums(c.W, c.H, c.w, c.h)
		var scratch Scratch
		for y0 := (c.H - 1) / rows * rows; y0 >= 0; y0 -= rows {
			s.Add(&scratch, y0, p.Rows(y0, min(y0+rows, c.H)))
		}
		if got := s.Pixels(p.R, p.G, p.B); !bytes.Equal(got.Pix, want.Pix) {
			t.Errorf("%dx%d to %dx%d in bands of %d rows: the sums differ from the definition", c.W, c.H, c.w, c.h, rows)
		}
	}
}

// Make is the thumbnail of the definition, encoded by jpegenc at Quality.
func TestMakeIsTheEncodedAverages(t *testing.T) {
	img := image.NewRGBA(image.Rect(0, 0, 1000, 700))
	rand.New(rand.NewSource(4)).Read(img.Pix)
	got, err := Make(img)
	if err != nil {
		t.Fatal(err)
	}
	w, h := Size(1000, 700)
	want, err := jpegenc.EncodeImage(naiveResample(img, w, h), Quality)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("Make is not the encoded averages")
	}
}

// The column sums of this machine (SSE on amd64) are the Go loop's.
func TestAddBytesIsTheGoLoop(t *testing.T) {
	r := rand.New(rand.NewSource(8))
	for range 500 {
		n := r.Intn(200)
		row := make([]byte, n)
		r.Read(row)
		a, b := make([]uint16, n), make([]uint16, n)
		for i := range a {
			a[i] = uint16(r.Intn(60000))
			b[i] = a[i]
		}
		addBytes(a, row)
		addBytesGo(b, row)
		if !slices.Equal(a, b) {
			t.Fatalf("%d bytes: %v, want %v", n, a, b)
		}
	}
}
