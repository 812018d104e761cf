package jpegcheck

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/color"
	"image/jpeg"
	"testing"
)

func testJPEG(t testing.TB, w, h int) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, color.RGBA{uint8(x), uint8(y), uint8(x ^ y), 255})
		}
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 75}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// withSize rewrites the size a JPEG's frame declares (a decode bomb: a
// small file that claims a large picture).
func withSize(t testing.TB, b []byte, w, h int) []byte {
	t.Helper()
	out := append([]byte{}, b...)
	i := bytes.Index(out, []byte{0xff, 0xc0})
	if i < 0 {
		t.Fatal("no SOF0")
	}
	out[i+5], out[i+6], out[i+7], out[i+8] = byte(h>>8), byte(h), byte(w>>8), byte(w)
	return out
}

var lim = Limits{MaxBytes: 1 << 20, MaxWidth: MaxSide, MaxHeight: MaxSide}

func TestParseAcceptsAJPEG(t *testing.T) {
	info, err := Parse(testJPEG(t, 160, 100), lim)
	if err != nil || info.Width != 160 || info.Height != 100 || info.Components != 3 || info.Progressive {
		t.Fatalf("%+v %v", info, err)
	}
	if err := NewBudget(64<<20).Decode(context.Background(), testJPEG(t, 160, 100), info); err != nil {
		t.Fatal(err)
	}
}

func TestParseRefuses(t *testing.T) {
	good := testJPEG(t, 64, 40)
	for name, b := range map[string][]byte{
		"empty":         nil,
		"junk":          []byte("this is not a picture at all"),
		"png":           []byte("\x89PNG\r\n\x1a\n0000000000"),
		"trailing junk": append(append([]byte{}, good...), "MZ hidden payload"...),
		"cut short":     good[:len(good)/2],
		"no end":        good[:len(good)-2],
		"too large":     append(append([]byte{}, good[:len(good)-2]...), append(make([]byte, 2<<20), 0xff, 0xd9)...),
		"16384 wide":    withSize(t, good, 16384, 16384),
		"zero high":     withSize(t, good, 64, 0),
		"lossless":      bytes.Replace(good, []byte{0xff, 0xc0}, []byte{0xff, 0xc3}, 1),
	} {
		if _, err := Parse(b, lim); !errors.Is(err, ErrRefused) {
			t.Errorf("%s: %v", name, err)
		}
	}
	// Over the workspace's display.
	if _, err := Parse(good, Limits{MaxWidth: 32, MaxHeight: 32}); !errors.Is(err, ErrRefused) {
		t.Errorf("over the display: %v", err)
	}
}

func TestBudgetRefusesBombsAndCorruptData(t *testing.T) {
	good := testJPEG(t, 64, 40)
	b := NewBudget(128 << 20)
	// Declares 8192x8192: parses, but its decode would need 256 MiB.
	bomb := withSize(t, good, 8192, 8192)
	info, err := Parse(bomb, lim)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Decode(context.Background(), bomb, info); !errors.Is(err, ErrRefused) {
		t.Fatalf("bomb: %v", err)
	}
	// Declares 2000x2000 with a 64x40 scan: within budget, refused as corrupt.
	small := withSize(t, good, 2000, 2000)
	info, err = Parse(small, lim)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Decode(context.Background(), small, info); !errors.Is(err, ErrRefused) {
		t.Fatalf("corrupt: %v", err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add(testJPEG(f, 16, 8))
	f.Add(withSize(f, testJPEG(f, 16, 8), 9000, 1))
	f.Add([]byte{0xff, 0xd8, 0xff, 0xd9})
	f.Add([]byte{0xff, 0xd8, 0xff, 0xda, 0x00, 0x02, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		info, err := Parse(b, Limits{MaxBytes: 1 << 16, MaxWidth: 4096, MaxHeight: 4096})
		if err != nil {
			return
		}
		if info.Width < 1 || info.Height < 1 || info.Width > 4096 || info.Height > 4096 || len(b) > 1<<16 {
			t.Fatalf("accepted %+v of %d bytes", info, len(b))
		}
		if b[len(b)-2] != 0xff || b[len(b)-1] != 0xd9 {
			t.Fatal("accepted a file that does not end at its end marker")
		}
		// What the standard decoder reads of the header agrees.
		if cfg, err := jpeg.DecodeConfig(bytes.NewReader(b)); err == nil && (cfg.Width != info.Width || cfg.Height != info.Height) {
			t.Fatalf("Parse says %dx%d, image/jpeg %dx%d", info.Width, info.Height, cfg.Width, cfg.Height)
		}
	})
}
