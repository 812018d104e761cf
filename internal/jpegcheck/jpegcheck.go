// Package jpegcheck checks a JPEG that came from an untrusted guest before
// anything trusts it: Parse walks its markers without decoding (declared
// size, frame type, nothing after the end marker, a bound on its bytes),
// and a Budget decodes it in full, to reject corrupt data, only when the
// memory the decode needs fits a daemon-wide budget. Nothing here
// allocates in proportion to the size a JPEG declares.
package jpegcheck

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image/jpeg"

	"golang.org/x/sync/semaphore"
)

// ErrRefused classes every refusal of this package.
var ErrRefused = errors.New("jpeg refused")

// Limits bound what Parse accepts.
type Limits struct {
	// MaxBytes bounds the file.
	MaxBytes int
	// MaxWidth and MaxHeight bound the declared size.
	MaxWidth, MaxHeight int
}

// MaxSide is the largest width or height the daemon ever accepts.
const MaxSide = 8192

// Info is what a JPEG's markers declare.
type Info struct {
	Width, Height int
	Components    int
	Progressive   bool
}

// Cost is the most memory, in bytes, decoding the JPEG takes: the pixels
// (at most 4 bytes each, padded to whole 16×16 blocks), and for a
// progressive JPEG the coefficients it keeps of every block of every
// component (64 int32 per 8×8 block: 4 bytes a pixel a component).
func (i Info) Cost() int64 {
	w, h := int64(i.Width+15)&^15, int64(i.Height+15)&^15
	c := w * h * 4
	if i.Progressive {
		c += w * h * 4 * int64(max(i.Components, 1))
	}
	return c
}

func refuse(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrRefused, fmt.Sprintf(format, args...))
}

// Parse walks b's markers and returns what its frame declares; it refuses
// a file over lim.MaxBytes, a size over the limits or zero, a frame kind
// the decoder does not know (arithmetic, lossless, hierarchical), a file
// without one frame and a scan, one cut short, and any byte after its end
// marker.
func Parse(b []byte, lim Limits) (Info, error) {
	var info Info
	if lim.MaxBytes > 0 && len(b) > lim.MaxBytes {
		return info, refuse("%d bytes (limit %d)", len(b), lim.MaxBytes)
	}
	if len(b) < 4 || b[0] != 0xff || b[1] != 0xd8 {
		return info, refuse("not a JPEG (no start-of-image marker)")
	}
	frames, scans := 0, 0
	p := 2
	for {
		// A marker: 0xff, any fill bytes 0xff, then its code.
		if p >= len(b) || b[p] != 0xff {
			return info, refuse("no marker at byte %d", p)
		}
		for p < len(b) && b[p] == 0xff {
			p++
		}
		if p >= len(b) {
			return info, refuse("cut short in a marker")
		}
		code := b[p]
		p++
		switch {
		case code == 0xd9: // EOI
			if p != len(b) {
				return info, refuse("%d bytes after the end-of-image marker", len(b)-p)
			}
			if frames != 1 || scans == 0 {
				return info, refuse("%d frames and %d scans (want one frame with scans)", frames, scans)
			}
			return info, nil
		case code == 0x01 || code >= 0xd0 && code <= 0xd7: // TEM, RSTn outside a scan
			continue
		case code == 0x00 || code == 0xd8:
			return info, refuse("marker 0x%02x out of place at byte %d", code, p-1)
		}
		if p+2 > len(b) {
			return info, refuse("cut short in the length of marker 0x%02x", code)
		}
		n := int(b[p])<<8 | int(b[p+1])
		if n < 2 || p+n > len(b) {
			return info, refuse("marker 0x%02x: length %d runs past the file", code, n)
		}
		seg := b[p+2 : p+n]
		p += n
		switch code {
		case 0xc0, 0xc1, 0xc2:
			frames++
			if frames > 1 {
				return info, refuse("a second frame")
			}
			var err error
			if info, err = parseFrame(seg, code == 0xc2, lim); err != nil {
				return info, err
			}
		case 0xc3, 0xc5, 0xc6, 0xc7, 0xc9, 0xca, 0xcb, 0xcd, 0xce, 0xcf:
			return info, refuse("frame kind 0x%02x (lossless, hierarchical or arithmetic) is not accepted", code)
		case 0xda: // SOS: then the entropy-coded data up to the next marker
			if frames != 1 {
				return info, refuse("a scan before the frame")
			}
			scans++
			q, err := skipScan(b, p)
			if err != nil {
				return info, err
			}
			p = q
		}
	}
}

func parseFrame(seg []byte, progressive bool, lim Limits) (Info, error) {
	if len(seg) < 6 {
		return Info{}, refuse("frame header of %d bytes", len(seg))
	}
	info := Info{Height: int(seg[1])<<8 | int(seg[2]), Width: int(seg[3])<<8 | int(seg[4]), Components: int(seg[5]), Progressive: progressive}
	if len(seg) != 6+3*info.Components || (info.Components != 1 && info.Components != 3 && info.Components != 4) {
		return Info{}, refuse("frame of %d components in %d bytes", info.Components, len(seg))
	}
	maxW, maxH := min(lim.MaxWidth, MaxSide), min(lim.MaxHeight, MaxSide)
	if lim.MaxWidth <= 0 {
		maxW = MaxSide
	}
	if lim.MaxHeight <= 0 {
		maxH = MaxSide
	}
	if info.Width <= 0 || info.Height <= 0 || info.Width > maxW || info.Height > maxH {
		return Info{}, refuse("declared size %dx%d is outside 1x1..%dx%d", info.Width, info.Height, maxW, maxH)
	}
	return info, nil
}

// skipScan returns the offset of the marker that ends the entropy-coded
// data starting at p: the first 0xff not followed by 0x00 (a stuffed
// byte), a restart marker or a fill byte.
func skipScan(b []byte, p int) (int, error) {
	for {
		i := bytes.IndexByte(b[p:], 0xff)
		if i < 0 {
			return 0, refuse("cut short in a scan")
		}
		p += i
		q := p + 1
		for q < len(b) && b[q] == 0xff {
			q++
		}
		if q >= len(b) {
			return 0, refuse("cut short in a scan")
		}
		if c := b[q]; c == 0x00 || c >= 0xd0 && c <= 0xd7 {
			p = q + 1
			continue
		}
		return p, nil
	}
}

// Budget decodes JPEGs whose decode fits in a shared memory budget: each
// decode holds its Cost of it until it ends, so however many run at once,
// together they never need more than the budget.
type Budget struct {
	size int64
	sem  *semaphore.Weighted
}

// NewBudget returns a budget of size bytes.
func NewBudget(size int64) *Budget {
	return &Budget{size: size, sem: semaphore.NewWeighted(size)}
}

// Size is the budget's size in bytes.
func (b *Budget) Size() int64 { return b.size }

// Decode decodes data (already Parsed into info) in full and fails when it
// is corrupt or not of the size info says. One that could never fit the
// budget is refused at once; one that fits waits for its share (or ctx).
func (b *Budget) Decode(ctx context.Context, data []byte, info Info) error {
	cost := info.Cost()
	if cost > b.size {
		return refuse("decoding %dx%d takes %d MiB, more than the %d MiB this host spends on it", info.Width, info.Height, cost>>20, b.size>>20)
	}
	if err := b.sem.Acquire(ctx, cost); err != nil {
		return fmt.Errorf("wait to decode: %w", err)
	}
	defer b.sem.Release(cost)
	img, err := jpeg.Decode(bytes.NewReader(data))
	if err != nil {
		return refuse("does not decode: %v", err)
	}
	if r := img.Bounds(); r.Dx() != info.Width || r.Dy() != info.Height {
		return refuse("decodes to %dx%d, declared %dx%d", r.Dx(), r.Dy(), info.Width, info.Height)
	}
	return nil
}
