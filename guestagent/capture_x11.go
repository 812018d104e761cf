//go:build !windows

package guestagent

import (
	"errors"
	"fmt"
	"image"
	"io"
	"log"
	"os"

	"github.com/jezek/xgb"
	"github.com/jezek/xgb/xinerama"
	"github.com/jezek/xgb/xproto"
)

// x11Capturer takes screenshots with core X11 GetImage through xgb: no
// MIT-SHM segment at all (the capture library's X11 path creates a
// world-readable 0777 one), so no other process in the guest can read a
// screenshot while it is taken.
type x11Capturer struct {
	display string
}

func init() {
	// xgb logs to stderr by itself; the agent logs what matters.
	xgb.Logger = log.New(io.Discard, "", 0)
}

func newCapturer() capturer {
	return &x11Capturer{display: os.Getenv("DISPLAY")}
}

func (c *x11Capturer) Name() string { return "x11 " + c.display }

// Capture returns one image per display (Xinerama head), or the whole
// root window when Xinerama reports none.
func (c *x11Capturer) Capture() ([]Shot, error) {
	if c.display == "" {
		return nil, errors.New("no X display: DISPLAY is not set")
	}
	conn, err := xgb.NewConnDisplay(c.display)
	if err != nil {
		return nil, fmt.Errorf("no X display %s: %w", c.display, err)
	}
	defer conn.Close()
	screen := xproto.Setup(conn).DefaultScreen(conn)
	heads := []image.Rectangle{image.Rect(0, 0, int(screen.WidthInPixels), int(screen.HeightInPixels))}
	if err := xinerama.Init(conn); err == nil {
		if r, err := xinerama.QueryScreens(conn).Reply(); err == nil && len(r.ScreenInfo) > 0 {
			heads = heads[:0]
			for _, s := range r.ScreenInfo {
				heads = append(heads, image.Rect(int(s.XOrg), int(s.YOrg), int(s.XOrg)+int(s.Width), int(s.YOrg)+int(s.Height)))
			}
		}
	}
	var out []Shot
	for i, h := range heads {
		img, err := getImage(conn, screen.Root, h)
		if err != nil {
			return nil, fmt.Errorf("capture display %d: %w", i, err)
		}
		out = append(out, Shot{Display: i, Bounds: h, Image: img})
	}
	return out, nil
}

// getImage reads a rectangle of the root window as 32-bit ZPixmap (BGRX)
// and converts it to RGBA.
func getImage(conn *xgb.Conn, root xproto.Window, r image.Rectangle) (*image.RGBA, error) {
	rep, err := xproto.GetImage(conn, xproto.ImageFormatZPixmap, xproto.Drawable(root),
		int16(r.Min.X), int16(r.Min.Y), uint16(r.Dx()), uint16(r.Dy()), 0xffffffff).Reply()
	if err != nil {
		return nil, err
	}
	w, h := r.Dx(), r.Dy()
	if len(rep.Data) < w*h*4 {
		return nil, fmt.Errorf("depth %d image of %d bytes for %dx%d: only 24/32-bit visuals are supported", rep.Depth, len(rep.Data), w, h)
	}
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	src, dst := rep.Data, img.Pix
	for i := 0; i < w*h; i++ {
		dst[4*i], dst[4*i+1], dst[4*i+2], dst[4*i+3] = src[4*i+2], src[4*i+1], src[4*i], 255
	}
	return img, nil
}
