package guestagent

import (
	"errors"
	"fmt"
	"image"
	"runtime/debug"

	"github.com/hashicorp/go-hclog"

	"github.com/workspace-sandbox/workspace/internal/jpegenc"
)

// encodeShot turns one display's capture into what a tracking shot
// spools: the picture, blurred first when the policy says so, as a JPEG
// at the policy's quality, and its thumbnail. Captures that come band by
// band from the X server go through the same encodeBands.
func encodeShot(img image.Image, quality int, blur bool) (jpg, thumb []byte, err error) {
	p := pixelsOf(img)
	if err := p.Check(); err != nil {
		return nil, nil, fmt.Errorf("encode screenshot: %w", err)
	}
	src := pixelSource{p: p, rows: jpegenc.StripRows(p.Width)}
	if jpg, thumb, err = encodeBands(src, p.Width, p.Height, pixelOffsets{p.R, p.G, p.B}, quality, blur); err != nil {
		return nil, nil, fmt.Errorf("encode screenshot: %w", err)
	}
	return jpg, thumb, nil
}

// ShotOptions are the settings of a one-shot capture: the X display
// (empty: $DISPLAY) and the policy values a tracking shot uses.
type ShotOptions struct {
	Display string
	Quality int
	Blur    bool
	Logger  hclog.Logger
}

// EncodedShot is one display's shot as the tracking loop would spool it.
type EncodedShot struct {
	Display   int
	Bounds    image.Rectangle
	JPEG      []byte
	Thumbnail []byte
}

// shooter is a capturer that encodes its shots itself as it captures
// them (the X11 one, band by band), exactly as encodeShot would.
type shooter interface {
	shoot(quality int, blur bool, only int) ([]EncodedShot, error)
}

// shootWith takes one shot of every display (only: of that one; -1: all)
// with c and encodes it: what a tracking shot is, whoever asks.
func shootWith(c capturer, quality int, blur bool, only int) ([]EncodedShot, error) {
	if s, ok := c.(shooter); ok {
		return s.shoot(quality, blur, only)
	}
	shots, err := c.Capture()
	if err != nil {
		return nil, err
	}
	var out []EncodedShot
	for _, s := range shots {
		if only >= 0 && s.Display != only {
			continue
		}
		jpg, thumb, err := encodeShot(s.Image, quality, blur)
		if err != nil {
			return nil, fmt.Errorf("display %d: %w", s.Display, err)
		}
		out = append(out, EncodedShot{Display: s.Display, Bounds: s.Bounds, JPEG: jpg, Thumbnail: thumb})
	}
	return out, nil
}

// TakeShot captures every display once and encodes each shot as a
// tracking shot with the same quality and blur would be. It returns the
// shots and how they were captured (the capturer's name).
func TakeShot(opt ShotOptions) ([]EncodedShot, string, error) {
	if opt.Quality < 10 || opt.Quality > 100 {
		return nil, "", fmt.Errorf("quality %d is outside 10..100", opt.Quality)
	}
	if opt.Logger == nil {
		opt.Logger = hclog.NewNullLogger()
	}
	c := capturerFor(opt.Display, opt.Logger)
	shots, err := shootWith(c, opt.Quality, opt.Blur, -1)
	if err != nil {
		return nil, c.Name(), fmt.Errorf("no screenshot: %w", err)
	}
	if len(shots) == 0 {
		return nil, c.Name(), errors.New("no screenshot: no display")
	}
	return shots, c.Name(), nil
}

// freeAfterShots returns the memory a tracking shot's encoding used to
// the system: between shots (minutes apart) the agent keeps no picture and
// no heap grown for one.
func freeAfterShots() { debug.FreeOSMemory() }
