//go:build !windows

package guestagent

import (
	"bytes"
	"image"
	"image/jpeg"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/jezek/xgb"
	"github.com/jezek/xgb/xproto"

	"github.com/workspace-sandbox/workspace/channel"
	"github.com/workspace-sandbox/workspace/internal/xvfbtest"
)

// paintBusy paints the root window of disp with lines of dark strokes on
// light "windows", like text on a desktop, in bands small enough for core
// PutImage requests.
func paintBusy(t *testing.T, disp string, w, h int) {
	t.Helper()
	c, err := xgb.NewConnDisplay(disp)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	setup := xproto.Setup(c)
	s := setup.DefaultScreen(c)
	gc, _ := xproto.NewGcontextId(c)
	xproto.CreateGC(c, gc, xproto.Drawable(s.Root), 0, nil)
	r := rand.New(rand.NewSource(5))
	pix := make([]byte, 4*w*h)
	for y := range h {
		for x := range w {
			o := 4 * (y*w + x)
			v := byte(0xf0 - (x/160)*0x18)
			if y%18 > 4 && y%18 < 15 && x%7 < 5 && r.Intn(3) > 0 {
				v = byte(r.Intn(90))
			}
			pix[o], pix[o+1], pix[o+2] = v, v, v+byte(y/8)
		}
	}
	rows := (int(setup.MaximumRequestLength)*4 - 64) / (4 * w)
	for y0 := 0; y0 < h; y0 += rows {
		n := min(rows, h-y0)
		if err := xproto.PutImageChecked(c, xproto.ImageFormatZPixmap, xproto.Drawable(s.Root), gc,
			uint16(w), uint16(n), 0, int16(y0), 0, 24, pix[4*w*y0:4*w*(y0+n)]).Check(); err != nil {
			t.Fatalf("paint: %v", err)
		}
	}
}

// The shot made band by band straight from the segment is byte for byte
// the shot of the whole frame captured first, with MIT-SHM or with core
// GetImage, blurred or not, on every head; and it decodes to the screen.
func TestBandedShotIsTheFrameShot(t *testing.T) {
	disp := xvfbtest.StartWith(t, 1000, 700, "-screen", "1", "333x200x24")
	paintBusy(t, disp, 1000, 700)
	c := newX11Capturer(disp, nil)
	core := newX11Capturer(disp, nil)
	core.noSHM = true
	for _, blur := range []bool{false, true} {
		banded, err := c.shoot(60, blur, -1)
		if err != nil {
			t.Fatal(err)
		}
		if len(banded) != 2 || banded[1].Bounds.Dx() != 333 {
			t.Fatalf("%d shots, want one per head", len(banded))
		}
		viaCore, err := core.shoot(60, blur, -1)
		if err != nil {
			t.Fatal(err)
		}
		frames, err := c.Capture()
		if err != nil {
			t.Fatal(err)
		}
		for i, s := range banded {
			jpg, thumb, err := encodeShot(frames[i].Image, 60, blur)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(s.JPEG, jpg) || !bytes.Equal(s.Thumbnail, thumb) {
				t.Errorf("blur %v, head %d: the banded shot differs from the frame's", blur, i)
			}
			if !bytes.Equal(s.JPEG, viaCore[i].JPEG) || !bytes.Equal(s.Thumbnail, viaCore[i].Thumbnail) {
				t.Errorf("blur %v, head %d: the MIT-SHM shot differs from the GetImage one", blur, i)
			}
			dec, err := jpeg.Decode(bytes.NewReader(s.JPEG))
			if err != nil {
				t.Fatal(err)
			}
			if !blur {
				// As close to the screen as Go's own encoder gets.
				var ref bytes.Buffer
				if err := jpeg.Encode(&ref, frames[i].Image, &jpeg.Options{Quality: 60}); err != nil {
					t.Fatal(err)
				}
				refDec, err := jpeg.Decode(&ref)
				if err != nil {
					t.Fatal(err)
				}
				if m, r := meanAbsError(frames[i].Image, dec), meanAbsError(frames[i].Image, refDec); m > 1.1*r+1 {
					t.Errorf("head %d: mean error %.2f against the screen, image/jpeg's %.2f", i, m, r)
				}
			}
		}
		if only, err := c.shoot(60, blur, 1); err != nil || len(only) != 1 || only[0].Display != 1 || !bytes.Equal(only[0].JPEG, banded[1].JPEG) {
			t.Errorf("only head 1: %d shots, %v", len(only), err)
		}
	}
}

// meanAbsError is the mean absolute difference of two pictures' red.
func meanAbsError(a, b image.Image) float64 {
	var sum float64
	r := a.Bounds()
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			p, _, _, _ := a.At(x, y).RGBA()
			q, _, _, _ := b.At(x, y).RGBA()
			d := float64(p>>8) - float64(q>>8)
			if d < 0 {
				d = -d
			}
			sum += d
		}
	}
	return sum / float64(r.Dx()*r.Dy())
}

// `workspace-agent shot` is a tracking shot: the files the built command
// writes are byte for byte the JPEG and thumbnail a tracking shot spools
// of the same screen with the same quality and blur, on every head.
func TestShotCommandIsATrackingShot(t *testing.T) {
	disp := xvfbtest.StartWith(t, 800, 500, "-screen", "1", "320x200x24")
	paintBusy(t, disp, 800, 500)
	bin := filepath.Join(t.TempDir(), "workspace-agent")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/workspace-agent").CombinedOutput(); err != nil {
		t.Fatalf("build the agent: %v\n%s", err, out)
	}
	for _, c := range []struct {
		quality int
		blur    bool
	}{{75, false}, {60, true}} {
		a, clk := offlineAgent(t, newX11Capturer(disp, nil))
		pol := testPolicy()
		pol.JPEGQuality, pol.Blur = c.quality, c.blur
		if _, err := a.takeShots(clk.Now(), "s1", pol, nil); err != nil {
			t.Fatal(err)
		}
		_, caps, spooledMsgs := spooled(t, a)
		if len(caps) != 2 {
			t.Fatalf("%d captures spooled, want one per head", len(caps))
		}
		msgs := make([]*channel.Message, 2)
		for k, c := range caps {
			msgs[c.Display] = spooledMsgs[k]
		}
		dir := t.TempDir()
		args := []string{"shot", "--out", filepath.Join(dir, "shot.jpg"), "--thumb", filepath.Join(dir, "thumb.jpg"),
			"--display", disp, "--quality", strconv.Itoa(c.quality)}
		if c.blur {
			args = append(args, "--blur")
		}
		if out, err := exec.Command(bin, args...).CombinedOutput(); err != nil {
			t.Fatalf("workspace-agent %v: %v\n%s", args, err, out)
		}
		for i, name := range [][2]string{{"shot.jpg", "thumb.jpg"}, {"shot-1.jpg", "thumb-1.jpg"}} {
			jpg, err := os.ReadFile(filepath.Join(dir, name[0]))
			if err != nil {
				t.Fatal(err)
			}
			thumb, err := os.ReadFile(filepath.Join(dir, name[1]))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(jpg, msgs[i].Blob(0)) || !bytes.Equal(thumb, msgs[i].Blob(1)) {
				t.Errorf("quality %d blur %v, head %d: the command's files (%d, %d bytes) are not the tracking shot's (%d, %d bytes)",
					c.quality, c.blur, i, len(jpg), len(thumb), len(msgs[i].Blob(0)), len(msgs[i].Blob(1)))
			}
			if st, err := os.Stat(filepath.Join(dir, name[0])); err != nil || st.Mode().Perm() != 0o600 {
				t.Errorf("%s: mode %v (%v), want 0600", name[0], st.Mode().Perm(), err)
			}
			if caps[i].Blurred != c.blur {
				t.Errorf("capture %d: %+v", i, caps[i])
			}
		}
		if _, err := jpeg.DecodeConfig(bytes.NewReader(msgs[1].Blob(0))); err != nil {
			t.Fatal(err)
		}
	}
}

// FuzzPixelLayout: whatever pixel formats and visual a server describes,
// the layout is refused with a reason or is three distinct bytes of a
// 32-bit pixel that hold the visual's masks.
func FuzzPixelLayout(f *testing.F) {
	f.Add(uint8(24), uint8(32), uint8(0), uint32(0xff0000), uint32(0xff00), uint32(0xff), true)
	f.Add(uint8(24), uint8(32), uint8(1), uint32(0xff0000), uint32(0xff00), uint32(0xff), true)
	f.Add(uint8(16), uint8(16), uint8(0), uint32(0xf800), uint32(0x7e0), uint32(0x1f), true)
	f.Add(uint8(24), uint8(32), uint8(0), uint32(0xff), uint32(0xff), uint32(0xff00), false)
	f.Fuzz(func(t *testing.T, depth, bpp, order uint8, rm, gm, bm uint32, rootVisual bool) {
		setup := &xproto.SetupInfo{ImageByteOrder: order, PixmapFormats: []xproto.Format{{Depth: 1, BitsPerPixel: 1}, {Depth: depth, BitsPerPixel: bpp}}}
		vis := xproto.VisualInfo{VisualId: 0x21, RedMask: rm, GreenMask: gm, BlueMask: bm}
		screen := &xproto.ScreenInfo{RootDepth: depth, RootVisual: 0x21, AllowedDepths: []xproto.DepthInfo{{Depth: depth, Visuals: []xproto.VisualInfo{vis}}}}
		if !rootVisual {
			screen.RootVisual = 0x22
		}
		px, err := pixelLayout(setup, screen)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("an error without a reason")
			}
			return
		}
		if bpp != 32 || !rootVisual {
			t.Fatalf("bpp %d, root visual found %v: accepted", bpp, rootVisual)
		}
		offs := []int{px.R, px.G, px.B}
		for k, m := range []uint32{rm, gm, bm} {
			b := offs[k]
			if order == xproto.ImageOrderMSBFirst {
				b = 3 - b
			}
			if b < 0 || b > 3 || m != 0xff<<(8*b) {
				t.Fatalf("mask %#x at byte %d (order %d)", m, offs[k], order)
			}
		}
		if px.R == px.G || px.G == px.B || px.R == px.B {
			t.Fatalf("offsets %+v overlap", px)
		}
	})
}
