package guestagent

import (
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/workspace-sandbox/workspace/internal/jpegenc"
	"github.com/workspace-sandbox/workspace/internal/thumbnail"
)

// A shot is made band by band: a band is one strip of the JPEG encoder
// (jpegenc.StripRows, 64 rows of the screen). Each core takes the next
// band, encodes it and adds it to the thumbnail's sums, so no step waits
// for the whole screen and, when the bands come straight from the X
// server (capture_shm_x11.go), no full-screen picture exists at all.

// bandSource hands out a picture's bands. band blocks until band i is
// there; every band is asked for once, by one worker, and given back
// with done.
type bandSource interface {
	band(i int) (jpegenc.Pixels, error)
	done(i int)
}

// pixelSource cuts pixels in memory into bands.
type pixelSource struct {
	p    jpegenc.Pixels
	rows int
}

func (s pixelSource) band(i int) (jpegenc.Pixels, error) {
	return s.p.Rows(i*s.rows, min((i+1)*s.rows, s.p.Height)), nil
}

func (s pixelSource) done(int) {}

// bandWorker is one core's scratch space, kept across its bands.
type bandWorker struct {
	strip   jpegenc.Strip
	sums    thumbnail.Scratch
	scratch []byte
}

// runBands calls fn for bands 0..n-1, taken in order of their index, on
// one goroutine per core; it stops at the first error and returns it.
func runBands(n int, fn func(w *bandWorker, i int) error) error {
	var next atomic.Int32
	var mu sync.Mutex
	var first error
	failed := func() bool {
		mu.Lock()
		defer mu.Unlock()
		return first != nil
	}
	work := func() {
		w := &bandWorker{}
		for !failed() {
			i := int(next.Add(1)) - 1
			if i >= n {
				return
			}
			if err := fn(w, i); err != nil {
				mu.Lock()
				if first == nil {
					first = err
				}
				mu.Unlock()
				return
			}
		}
	}
	var wg sync.WaitGroup
	for range bandWorkers(n) - 1 {
		wg.Go(work)
	}
	work()
	wg.Wait()
	return first
}

// bandWorkers is how many bands are in work at once.
func bandWorkers(n int) int { return max(1, min(n, runtime.GOMAXPROCS(0))) }

// blurBoxes is the size the blur reduces a W×H picture to.
func blurBoxes(W, H int) (int, int) { return max(1, W/16), max(1, H/16) }

// encodeBands makes a shot of a W×H picture from its bands (of
// jpegenc.StripRows(W) rows, colours at px): the JPEG at quality, blurred
// first when blur, and its thumbnail.
func encodeBands(src bandSource, W, H int, px pixelOffsets, quality int, blur bool) (jpg, thumb []byte, err error) {
	rows := jpegenc.StripRows(W)
	n := (H + rows - 1) / rows
	if blur {
		// The blur reduces the picture 16× (box averages) and scales it
		// back (nearest): the small picture first, then the bands of the
		// scaled-back picture, encoded as if they were captured.
		sw, sh := blurBoxes(W, H)
		small := thumbnail.NewSums(W, H, sw, sh)
		err = runBands(n, func(w *bandWorker, i int) error {
			b, err := src.band(i)
			if err != nil {
				return err
			}
			small.Add(&w.sums, i*rows, b)
			src.done(i)
			return nil
		})
		if err != nil {
			return nil, nil, err
		}
		p := small.Pixels(px.R, px.G, px.B)
		src, px = scaledSource{small: p, W: W, H: H, rows: rows}, pixelOffsets{p.R, p.G, p.B}
	}
	e, err := jpegenc.New(W, H, quality, px.R, px.G, px.B)
	if err != nil {
		return nil, nil, err
	}
	tw, th := thumbnail.Size(W, H)
	tsums := thumbnail.NewSums(W, H, tw, th)
	strips := make([][]byte, n)
	err = runBands(n, func(w *bandWorker, i int) error {
		var b jpegenc.Pixels
		var err error
		if s, ok := src.(scaledSource); ok {
			b = s.bandInto(i, &w.scratch)
		} else if b, err = src.band(i); err != nil {
			return err
		}
		strips[i] = e.EncodeStrip(&w.strip, b)
		tsums.Add(&w.sums, i*rows, b)
		src.done(i)
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	if thumb, err = thumbnail.Encode(tsums.Pixels(px.R, px.G, px.B)); err != nil {
		return nil, nil, err
	}
	return e.Assemble(strips), thumb, nil
}

// scaledSource makes the bands of small scaled back to W×H (nearest).
type scaledSource struct {
	small      jpegenc.Pixels
	W, H, rows int
}

func (s scaledSource) band(i int) (jpegenc.Pixels, error) {
	var buf []byte
	return s.bandInto(i, &buf), nil
}

// bandInto makes band i in *buf, grown as needed.
func (s scaledSource) bandInto(i int, buf *[]byte) jpegenc.Pixels {
	return scaleBack(s.small, s.W, s.H, i*s.rows, min(s.rows, s.H-i*s.rows), buf)
}

func (s scaledSource) done(int) {}

// scaleBack returns rows y0 to y0+n of small scaled back to W×H
// (nearest), in *buf, which it grows as needed.
func scaleBack(small jpegenc.Pixels, W, H, y0, n int, buf *[]byte) jpegenc.Pixels {
	sw, sh := small.Width, small.Height
	if cap(*buf) < 4*W*n {
		*buf = make([]byte, 4*W*n)
	}
	out := jpegenc.Pixels{Pix: (*buf)[:4*W*n], Stride: 4 * W, Width: W, Height: n, R: small.R, G: small.G, B: small.B}
	for y := range n {
		row := out.Pix[y*out.Stride : (y+1)*out.Stride]
		sy := min(sh-1, (y0+y)*sh/H)
		if y > 0 && min(sh-1, (y0+y-1)*sh/H) == sy {
			copy(row, out.Pix[(y-1)*out.Stride:])
			continue
		}
		src := small.Pix[sy*small.Stride:]
		for x := range W {
			so := 4 * min(sw-1, x*sw/W)
			copy(row[4*x:4*x+4], src[so:so+4])
		}
	}
	return out
}
