//go:build windows

package guestagent

import (
	"fmt"

	"github.com/hashicorp/go-hclog"

	"github.com/kbinani/screenshot"
)

// winCapturer captures every display with the capture library (GDI on
// Windows; its X11 shared-memory path is not used anywhere).
type winCapturer struct{}

func newCapturer(hclog.Logger) capturer { return winCapturer{} }

// capturerFor returns the capturer of `workspace-agent shot`: Windows has
// one desktop, so display is not used.
func capturerFor(display string, log hclog.Logger) capturer { return winCapturer{} }

func (winCapturer) Name() string { return "windows gdi" }

func (winCapturer) Capture() ([]Shot, error) {
	n := screenshot.NumActiveDisplays()
	if n == 0 {
		return nil, fmt.Errorf("no active display")
	}
	var out []Shot
	for i := 0; i < n; i++ {
		b := screenshot.GetDisplayBounds(i)
		img, err := screenshot.CaptureRect(b)
		if err != nil {
			return nil, fmt.Errorf("capture display %d: %w", i, err)
		}
		out = append(out, Shot{Display: i, Bounds: b, Image: img})
	}
	return out, nil
}
