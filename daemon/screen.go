package daemon

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/png"
	"io"
	"net/http"
	"strconv"

	"github.com/workspace-sandbox/workspace/api"
)

// handleScreen serves the VM's current screen as PNG (libvirt's host-side
// capture, for the web UI's live view). It is never stored.
func (s *server) handleScreen(r *http.Request) (any, error) {
	name := r.PathValue("name")
	ws, err := s.m.get(r.Context(), name)
	if err != nil {
		return nil, err
	}
	if ws.State != api.StateRunning {
		return nil, fmt.Errorf("%w: workspace %q is %s: nothing on its screen", api.ErrConflict, name, ws.State)
	}
	var buf bytes.Buffer
	mime, err := s.m.hv.Screenshot(r.Context(), name, &buf)
	if err != nil {
		return nil, fmt.Errorf("screen of %q: %w", name, classify(err))
	}
	// libvirt asks QEMU (7.1 and later) for PNG when it can; the bytes,
	// not the reported type, say which it is.
	if bytes.HasPrefix(buf.Bytes(), []byte("\x89PNG\r\n\x1a\n")) {
		return blob{"image/png", buf.Bytes()}, nil
	}
	img, err := decodePPM(&buf)
	if err != nil {
		return nil, fmt.Errorf("screen of %q (%s): %w", name, mime, err)
	}
	var out bytes.Buffer
	if err := png.Encode(&out, img); err != nil {
		return nil, fmt.Errorf("screen of %q: encode PNG: %w", name, err)
	}
	return blob{"image/png", out.Bytes()}, nil
}

// decodePPM reads a binary PPM (P6, maxval 255), what QEMU's screendump
// writes.
func decodePPM(r io.Reader) (*image.RGBA, error) {
	br := bufio.NewReader(r)
	var fields []int
	magic := make([]byte, 2)
	if _, err := io.ReadFull(br, magic); err != nil || string(magic) != "P6" {
		return nil, errors.New("not a P6 PPM image")
	}
	for len(fields) < 3 {
		c, err := br.ReadByte()
		if err != nil {
			return nil, errors.New("truncated PPM header")
		}
		switch {
		case c == '#':
			if _, err := br.ReadString('\n'); err != nil {
				return nil, errors.New("truncated PPM header")
			}
		case c >= '0' && c <= '9':
			num := []byte{c}
			for {
				d, err := br.ReadByte()
				if err != nil {
					return nil, errors.New("truncated PPM header")
				}
				if d < '0' || d > '9' {
					break
				}
				num = append(num, d)
			}
			n, err := strconv.Atoi(string(num))
			if err != nil {
				return nil, err
			}
			fields = append(fields, n)
		}
	}
	w, h, maxv := fields[0], fields[1], fields[2]
	if w <= 0 || h <= 0 || w > 16384 || h > 16384 || maxv != 255 {
		return nil, fmt.Errorf("PPM of %dx%d, maxval %d: not supported", w, h, maxv)
	}
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	row := make([]byte, 3*w)
	for y := 0; y < h; y++ {
		if _, err := io.ReadFull(br, row); err != nil {
			return nil, errors.New("truncated PPM pixels")
		}
		for x := 0; x < w; x++ {
			o := img.PixOffset(x, y)
			img.Pix[o], img.Pix[o+1], img.Pix[o+2], img.Pix[o+3] = row[3*x], row[3*x+1], row[3*x+2], 255
		}
	}
	return img, nil
}
