//go:build !windows

package guestagent

import (
	"errors"
	"fmt"
	"image"
	"io"
	"log"
	"os"
	"sync"

	"github.com/hashicorp/go-hclog"
	"github.com/jezek/xgb"
	"github.com/jezek/xgb/xinerama"
	"github.com/jezek/xgb/xproto"

	"github.com/workspace-sandbox/workspace/internal/jpegenc"
)

// x11Capturer takes screenshots straight from the X server through xgb:
// with MIT-SHM into a private segment of its own (capture_shm_x11.go),
// or with core GetImage when the server has no MIT-SHM or the segment
// cannot be used. It never uses the capture library's X11 path, which
// makes a world-readable 0777 segment.
type x11Capturer struct {
	display string
	log     hclog.Logger
	// noSHM makes the capturer use core GetImage only (tests).
	noSHM bool
	// attached is called (tests) once the X server has attached a
	// segment and it has been marked for removal.
	attached func(shmid int)

	mu     sync.Mutex
	method string // how the last capture was taken
}

func init() {
	// xgb logs to stderr by itself; the agent logs what matters.
	xgb.Logger = log.New(io.Discard, "", 0)
}

func newCapturer(log hclog.Logger) capturer {
	return newX11Capturer(os.Getenv("DISPLAY"), log)
}

// capturerFor returns the capturer of `workspace-agent shot`: display,
// or $DISPLAY when empty.
func capturerFor(display string, log hclog.Logger) capturer {
	if display == "" {
		return newCapturer(log)
	}
	return newX11Capturer(display, log)
}

func newX11Capturer(display string, log hclog.Logger) *x11Capturer {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	return &x11Capturer{display: display, log: log}
}

// Name says which display is captured, and how once a capture was taken.
func (c *x11Capturer) Name() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.method == "" {
		return "x11 " + c.display
	}
	return "x11 " + c.display + " (" + c.method + ")"
}

// setMethod records how a capture was taken and logs when that changes,
// so a fallback to GetImage is said once, with its reason.
func (c *x11Capturer) setMethod(method, reason string) {
	c.mu.Lock()
	changed := c.method != method
	c.method = method
	c.mu.Unlock()
	if !changed || c.log == nil {
		return
	}
	if reason == "" {
		c.log.Info("capturing with MIT-SHM into a private segment", "display", c.display)
		return
	}
	c.log.Warn("MIT-SHM is not usable; capturing with core GetImage", "display", c.display, "reason", reason)
}

// x11Session is one connection's view of the screen.
type x11Session struct {
	conn   *xgb.Conn
	root   xproto.Window
	px     pixelOffsets
	heads  []image.Rectangle
	shmErr error // why MIT-SHM is not used, nil while it is
}

// open connects to the display and finds its heads, pixel layout and
// whether MIT-SHM can be used.
func (c *x11Capturer) open() (*x11Session, error) {
	if c.display == "" {
		return nil, errors.New("no X display: DISPLAY is not set")
	}
	conn, err := xgb.NewConnDisplay(c.display)
	if err != nil {
		return nil, fmt.Errorf("no X display %s: %w", c.display, err)
	}
	setup := xproto.Setup(conn)
	screen := setup.DefaultScreen(conn)
	px, err := pixelLayout(setup, screen)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("display %s: %w", c.display, err)
	}
	x := &x11Session{conn: conn, root: screen.Root, px: px,
		heads: []image.Rectangle{image.Rect(0, 0, int(screen.WidthInPixels), int(screen.HeightInPixels))}}
	if err := xinerama.Init(conn); err == nil {
		if r, err := xinerama.QueryScreens(conn).Reply(); err == nil && len(r.ScreenInfo) > 0 {
			x.heads = x.heads[:0]
			for _, s := range r.ScreenInfo {
				x.heads = append(x.heads, image.Rect(int(s.XOrg), int(s.YOrg), int(s.XOrg)+int(s.Width), int(s.YOrg)+int(s.Height)))
			}
		}
	}
	if c.noSHM {
		x.shmErr = errors.New("MIT-SHM is turned off")
	} else {
		x.shmErr = initSHM(conn)
	}
	return x, nil
}

// done records how the session captured and closes it.
func (c *x11Capturer) done(x *x11Session) {
	if x.shmErr != nil {
		c.setMethod("GetImage", x.shmErr.Error())
	} else {
		c.setMethod("MIT-SHM", "")
	}
	x.conn.Close()
}

// shmSlots is how many bands the segment holds: one per core at work and
// two for the server to fill meanwhile.
func shmSlots() int { return min(8, bandWorkers(1<<20)+2) }

// shoot captures the displays (only: just that one; -1: all) and encodes
// each as encodeShot would, band by band as the X server delivers them.
func (c *x11Capturer) shoot(quality int, blur bool, only int) ([]EncodedShot, error) {
	x, err := c.open()
	if err != nil {
		return nil, err
	}
	defer c.done(x)
	var out []EncodedShot
	for i, h := range x.heads {
		if only >= 0 && i != only {
			continue
		}
		W, H := h.Dx(), h.Dy()
		var jpg, thumb []byte
		err := x.shmErr
		if err == nil {
			var src *shmBands
			if src, err = c.openSHMBands(x.conn, x.root, h, x.px, jpegenc.StripRows(W), shmSlots()); err == nil {
				jpg, thumb, err = encodeBands(src, W, H, x.px, quality, blur)
				src.close()
			}
			if err != nil {
				x.shmErr = err
			}
		}
		if err != nil {
			f, err := getImage(x.conn, x.root, h, x.px)
			if err != nil {
				return nil, fmt.Errorf("capture display %d: %w", i, err)
			}
			if jpg, thumb, err = encodeShot(f, quality, blur); err != nil {
				return nil, fmt.Errorf("display %d: %w", i, err)
			}
		}
		out = append(out, EncodedShot{Display: i, Bounds: h, JPEG: jpg, Thumbnail: thumb})
	}
	return out, nil
}

// Capture returns one picture per display (Xinerama head), or of the
// whole root window when Xinerama reports none, as Frames in memory.
func (c *x11Capturer) Capture() ([]Shot, error) {
	x, err := c.open()
	if err != nil {
		return nil, err
	}
	defer c.done(x)
	var out []Shot
	for i, h := range x.heads {
		var f *Frame
		err := x.shmErr
		if err == nil {
			if f, err = c.shmFrame(x, h); err != nil {
				x.shmErr = err
			}
		}
		if err != nil {
			if f, err = getImage(x.conn, x.root, h, x.px); err != nil {
				return nil, fmt.Errorf("capture display %d: %w", i, err)
			}
		}
		out = append(out, Shot{Display: i, Bounds: h, Image: f})
	}
	return out, nil
}

// shmFrame captures a head through MIT-SHM into a frame in memory.
func (c *x11Capturer) shmFrame(x *x11Session, h image.Rectangle) (*Frame, error) {
	rows := jpegenc.StripRows(h.Dx())
	src, err := c.openSHMBands(x.conn, x.root, h, x.px, rows, 2)
	if err != nil {
		return nil, err
	}
	defer src.close()
	w := h.Dx()
	f := &Frame{Pixels: jpegenc.Pixels{Pix: make([]byte, 4*w*h.Dy()), Stride: 4 * w, Width: w, Height: h.Dy(), R: x.px.R, G: x.px.G, B: x.px.B}}
	for i := range src.n {
		b, err := src.band(i)
		if err != nil {
			return nil, err
		}
		copy(f.Pix[i*rows*f.Stride:], b.Pix[:4*w*b.Height])
		src.done(i)
	}
	return f, nil
}

// pixelLayout returns the byte offsets of red, green and blue in a pixel
// of the screen's ZPixmap images: 32 bits a pixel with 8-bit masks (the
// depth 24 and 32 TrueColor visuals of every current X server).
func pixelLayout(setup *xproto.SetupInfo, screen *xproto.ScreenInfo) (pixelOffsets, error) {
	var f pixelOffsets
	bpp := 0
	for _, pf := range setup.PixmapFormats {
		if pf.Depth == screen.RootDepth {
			bpp = int(pf.BitsPerPixel)
		}
	}
	if bpp != 32 {
		return f, fmt.Errorf("depth %d at %d bits a pixel: only 32-bit pixels are supported", screen.RootDepth, bpp)
	}
	var vis *xproto.VisualInfo
	for _, d := range screen.AllowedDepths {
		for i := range d.Visuals {
			if d.Visuals[i].VisualId == screen.RootVisual {
				vis = &d.Visuals[i]
			}
		}
	}
	if vis == nil {
		return f, fmt.Errorf("root visual %d is not among the screen's visuals", screen.RootVisual)
	}
	offset := func(name string, mask uint32) (int, error) {
		for k := range 4 {
			if mask == 0xff<<(8*k) {
				if setup.ImageByteOrder == xproto.ImageOrderMSBFirst {
					return 3 - k, nil
				}
				return k, nil
			}
		}
		return 0, fmt.Errorf("root visual's %s mask %#x is not one byte of a pixel", name, mask)
	}
	var err error
	if f.R, err = offset("red", vis.RedMask); err != nil {
		return f, err
	}
	if f.G, err = offset("green", vis.GreenMask); err != nil {
		return f, err
	}
	if f.B, err = offset("blue", vis.BlueMask); err != nil {
		return f, err
	}
	if f.R == f.G || f.G == f.B || f.R == f.B {
		return f, fmt.Errorf("root visual's masks %#x %#x %#x overlap", vis.RedMask, vis.GreenMask, vis.BlueMask)
	}
	return f, nil
}

// getImage reads a rectangle of the root window with core GetImage; the
// reply's pixels are the frame, unconverted.
func getImage(conn *xgb.Conn, root xproto.Window, r image.Rectangle, layout pixelOffsets) (*Frame, error) {
	rep, err := xproto.GetImage(conn, xproto.ImageFormatZPixmap, xproto.Drawable(root),
		int16(r.Min.X), int16(r.Min.Y), uint16(r.Dx()), uint16(r.Dy()), 0xffffffff).Reply()
	if err != nil {
		return nil, err
	}
	w, h := r.Dx(), r.Dy()
	if len(rep.Data) < w*h*4 {
		return nil, fmt.Errorf("depth %d image of %d bytes for %dx%d: only 24/32-bit visuals are supported", rep.Depth, len(rep.Data), w, h)
	}
	return &Frame{Pixels: jpegenc.Pixels{Pix: rep.Data[:w*h*4], Stride: 4 * w, Width: w, Height: h, R: layout.R, G: layout.G, B: layout.B}}, nil
}
