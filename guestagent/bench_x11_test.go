//go:build !windows

package guestagent

import (
	"image"
	"image/color"
	"math/rand"
	"os"
	"os/exec"
	"testing"

	"github.com/jezek/xgb"
	"github.com/jezek/xgb/xproto"

	"github.com/workspace-sandbox/workspace/internal/thumbnail"
	"github.com/workspace-sandbox/workspace/internal/xvfbtest"
)

// busyDesktop paints a 1920x1080 screen like a busy desktop: windows of
// different colours full of text-sized marks.
func busyDesktop(b *testing.B, disp string) {
	b.Helper()
	c, err := xgb.NewConnDisplay(disp)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	s := xproto.Setup(c).DefaultScreen(c)
	img := image.NewRGBA(image.Rect(0, 0, 1920, 1080))
	r := rand.New(rand.NewSource(7))
	for i := range img.Pix {
		img.Pix[i] = 0x30
	}
	for w := 0; w < 12; w++ {
		x0, y0 := r.Intn(1500), r.Intn(800)
		ww, wh := 300+r.Intn(600), 200+r.Intn(400)
		bg := color.RGBA{uint8(180 + r.Intn(75)), uint8(180 + r.Intn(75)), uint8(180 + r.Intn(75)), 255}
		for y := y0; y < min(1080, y0+wh); y++ {
			for x := x0; x < min(1920, x0+ww); x++ {
				c := bg
				if (y-y0)%18 < 11 && (x-x0)%7 < 5 && r.Intn(3) > 0 && y-y0 > 24 {
					c = color.RGBA{20, 20, 40, 255}
				}
				img.SetRGBA(x, y, c)
			}
		}
	}
	gc, _ := xproto.NewGcontextId(c)
	xproto.CreateGC(c, gc, xproto.Drawable(s.Root), 0, nil)
	// PutImage in bands (a request is limited in size); BGRX rows.
	for y0 := 0; y0 < 1080; y0 += 40 {
		h := min(40, 1080-y0)
		data := make([]byte, 1920*h*4)
		for y := 0; y < h; y++ {
			for x := 0; x < 1920; x++ {
				o, d := img.PixOffset(x, y0+y), (y*1920+x)*4
				data[d], data[d+1], data[d+2] = img.Pix[o+2], img.Pix[o+1], img.Pix[o]
			}
		}
		xproto.PutImage(c, xproto.ImageFormatZPixmap, xproto.Drawable(s.Root), gc, 1920, uint16(h), 0, int16(y0), 0, 24, data)
	}
	xproto.GetInputFocus(c).Reply()
}

// BenchmarkCapture compares the agent's capture+encode of a 1920x1080 busy
// screen (X11 GetImage without shared memory, JPEG q75, plus a thumbnail)
// with `scrot -q 75` (C, imlib2) on the same Xvfb screen in the same run.
func BenchmarkCapture(b *testing.B) {
	disp := xvfbtest.Start(b, 1920, 1080)
	busyDesktop(b, disp)
	b.Run("agent", func(b *testing.B) {
		c := &x11Capturer{display: disp}
		var n int
		for i := 0; i < b.N; i++ {
			shots, err := c.Capture()
			if err != nil {
				b.Fatal(err)
			}
			jpg, err := encodeJPEG(shots[0].Image, 75)
			if err != nil {
				b.Fatal(err)
			}
			th, _ := thumbnail.Make(shots[0].Image)
			n = len(jpg) + len(th)
		}
		b.ReportMetric(float64(n), "bytes/shot")
	})
	b.Run("scrot", func(b *testing.B) {
		if _, err := exec.LookPath("scrot"); err != nil {
			b.Skip("scrot is not installed (scripts/bench.sh installs it)")
		}
		out := b.TempDir() + "/shot.jpg"
		var n int64
		for i := 0; i < b.N; i++ {
			os.Remove(out)
			cmd := exec.Command("scrot", "-q", "75", "-o", out)
			cmd.Env = append(os.Environ(), "DISPLAY="+disp)
			if o, err := cmd.CombinedOutput(); err != nil {
				b.Fatalf("scrot: %v\n%s", err, o)
			}
			st, err := os.Stat(out)
			if err != nil {
				b.Fatal(err)
			}
			n = st.Size()
		}
		b.ReportMetric(float64(n), "bytes/shot")
	})
}
