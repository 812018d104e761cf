package guestagent

import (
	"encoding/binary"
	"fmt"
	"image"
	"runtime"
	"sync"
	"sync/atomic"
)

// A shot is made band by band: a band is one strip of the JPEG encoder
// (64 rows of the screen). Each core takes the next band, encodes it and
// adds it to the thumbnail's sums, so no step waits for the whole screen
// and, when the bands come straight from the X server
// (capture_shm_x11.go), no full-screen frame exists at all.

// bandSource hands out a picture's bands. band blocks until band i is
// there; every band is asked for once, by one worker, and given back
// with done.
type bandSource interface {
	band(i int) (*Frame, error)
	done(i int)
}

// frameSource cuts a frame in memory into bands.
type frameSource struct {
	f       *Frame
	rows, n int
}

func frameBands(f *Frame, rows int) *frameSource {
	return &frameSource{f: f, rows: rows, n: (f.Rect.Dy() + rows - 1) / rows}
}

func (s *frameSource) band(i int) *Frame {
	f := s.f
	y0, y1 := i*s.rows, min((i+1)*s.rows, f.Rect.Dy())
	return &Frame{Pix: f.Pix[y0*f.Stride:], Stride: f.Stride, Rect: image.Rect(0, 0, f.Rect.Dx(), y1-y0), R: f.R, G: f.G, B: f.B}
}

// frameBandSource is a frameSource as a bandSource.
type frameBandSource struct{ *frameSource }

func (s frameBandSource) band(i int) (*Frame, error) { return s.frameSource.band(i), nil }
func (s frameBandSource) done(int)                   {}

// bandWorker is one core's scratch space, kept across its bands.
type bandWorker struct {
	strip   stripState
	sums    []uint32
	scratch []byte
}

// runBands calls fn for bands 0..n-1, in order of their index, on one
// goroutine per core; it stops at the first error and returns it.
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
	workers := min(n, runtime.GOMAXPROCS(0))
	var wg sync.WaitGroup
	for range workers - 1 {
		wg.Go(work)
	}
	work()
	wg.Wait()
	return first
}

// bandWorkers is how many bands can be in work at once.
func bandWorkers(n int) int { return min(n, runtime.GOMAXPROCS(0)) }

// stripRowsFor is the band (and JPEG strip) height of a picture w wide:
// stripMCURows rows of MCUs, fewer when a restart interval (counted in
// 16 bits) would not hold them.
func stripRowsFor(w int) int {
	return 16 * max(1, min(stripMCURows, 65535/((w+15)/16)))
}

// boxSums accumulates box averages of a W×H picture into a w×h one, band
// by band in any order: output pixel (x,y) is the truncated mean of the
// source pixels of its box, rows y*H/h up to (y+1)*H/h and columns
// x*W/w up to (x+1)*W/w (at least one of each).
type boxSums struct {
	W, H, w, h int
	rows       int // band height
	x0s, x1s   []int
	mu         sync.Mutex
	sums       []uint32 // per output pixel: sums of colour bytes 0, 2 and 1
}

func newBoxSums(W, H, w, h, rows int) *boxSums {
	b := &boxSums{W: W, H: H, w: w, h: h, rows: rows, x0s: make([]int, w), x1s: make([]int, w), sums: make([]uint32, 3*w*h)}
	for x := range w {
		b.x0s[x] = x * W / w
		b.x1s[x] = max((x+1)*W/w, b.x0s[x]+1)
	}
	return b
}

func (b *boxSums) y0(y int) int { return y * b.H / b.h }
func (b *boxSums) y1(y int) int { return max((y+1)*b.H/b.h, b.y0(y)+1) }

// add sums band i (rows i*rows on) into the boxes it touches.
func (b *boxSums) add(w *bandWorker, i int, band *Frame) {
	by0, by1 := i*b.rows, i*b.rows+band.Rect.Dy()
	// The output rows whose boxes meet the band.
	oy0 := by0 * b.h / b.H
	for oy0 > 0 && b.y1(oy0-1) > by0 {
		oy0--
	}
	for oy0 < b.h && b.y1(oy0) <= by0 {
		oy0++
	}
	oy1 := oy0
	for oy1 < b.h && b.y0(oy1) < by1 {
		oy1++
	}
	if oy1 <= oy0 {
		return
	}
	if need := 3 * b.w * (oy1 - oy0); cap(w.sums) < need {
		w.sums = make([]uint32, need)
	} else {
		w.sums = w.sums[:need]
		clear(w.sums)
	}
	for oy := oy0; oy < oy1; oy++ {
		part := w.sums[3*b.w*(oy-oy0) : 3*b.w*(oy-oy0+1)]
		for sy := max(b.y0(oy), by0); sy < min(b.y1(oy), by1); sy++ {
			b.addRow(part, band.Pix[(sy-by0)*band.Stride:(sy-by0)*band.Stride+4*b.W])
		}
	}
	b.mu.Lock()
	for k, v := range w.sums {
		b.sums[3*b.w*oy0+k] += v
	}
	b.mu.Unlock()
}

// addRow adds one source row to the sums of the output row's boxes.
func (b *boxSums) addRow(sums []uint32, row []byte) {
	for x := range b.w {
		o, end := 4*b.x0s[x], 4*b.x1s[x]
		if end-o > 4*256 { // a box too wide for the lanes below
			for ; o < end; o += 4 {
				sums[3*x] += uint32(row[o])
				sums[3*x+1] += uint32(row[o+2])
				sums[3*x+2] += uint32(row[o+1])
			}
			continue
		}
		// Bytes 0 and 2 (lo), 1 and 3 (hi) of two pixels a word, in
		// 16-bit lanes.
		var lo, hi uint64
		for ; o+8 <= end; o += 8 {
			v := binary.LittleEndian.Uint64(row[o:])
			lo += v & 0x00ff00ff00ff00ff
			hi += v >> 8 & 0x00ff00ff00ff00ff
		}
		if o < end {
			v := uint64(binary.LittleEndian.Uint32(row[o:]))
			lo += v & 0xff00ff
			hi += v >> 8 & 0xff00ff
		}
		lo += lo >> 32
		hi += hi >> 32
		sums[3*x] += uint32(lo & 0xffff)
		sums[3*x+1] += uint32(lo >> 16 & 0xffff)
		sums[3*x+2] += uint32(hi & 0xffff)
	}
}

// frame returns the averages as an RGBA-ordered frame; px says where the
// source pixels had their colours.
func (b *boxSums) frame(px pixelOffsets) *Frame {
	idx := [4]int{0, 2, 1, 0} // colour byte -> index in the sums
	ri, gi, bi := idx[px.R], idx[px.G], idx[px.B]
	out := &Frame{Pix: make([]byte, 4*b.w*b.h), Stride: 4 * b.w, Rect: image.Rect(0, 0, b.w, b.h), R: 0, G: 1, B: 2}
	for y := range b.h {
		rows := uint32(b.y1(y) - b.y0(y))
		for x := range b.w {
			n := rows * uint32(b.x1s[x]-b.x0s[x])
			c := b.sums[3*(y*b.w+x) : 3*(y*b.w+x)+3]
			o := y*out.Stride + 4*x
			out.Pix[o], out.Pix[o+1], out.Pix[o+2], out.Pix[o+3] = uint8(c[ri]/n), uint8(c[gi]/n), uint8(c[bi]/n), 255
		}
	}
	return out
}

// thumbSize is the size of the thumbnail of a W×H picture.
func thumbSize(W, H int) (int, int) {
	w := min(thumbWidth, W)
	return w, max(1, H*w/W)
}

// blurBoxes is the size a picture is reduced to by the blur.
func blurBoxes(W, H int) (int, int) { return max(1, W/16), max(1, H/16) }

// encodeBands makes a shot of a W×H picture from its bands: the JPEG at
// quality (blurred first when blur), and the thumbnail.
func encodeBands(src bandSource, W, H int, px pixelOffsets, quality int, blur bool) (jpg, thumb []byte, err error) {
	e, err := newJPEGEncoder(W, H, quality, px)
	if err != nil {
		return nil, nil, err
	}
	rows := e.stripRows()
	n := (H + rows - 1) / rows
	tw, th := thumbSize(W, H)
	strips := make([][]byte, n)
	var tsums *boxSums
	if !blur {
		tsums = newBoxSums(W, H, tw, th, rows)
		err = runBands(n, func(w *bandWorker, i int) error {
			b, err := src.band(i)
			if err != nil {
				return err
			}
			defer src.done(i)
			strips[i] = e.encodeStrip(&w.strip, b)
			tsums.add(w, i, b)
			return nil
		})
	} else {
		// The blur reduces the picture 16× (box averages) and scales it
		// back (nearest): the small picture first, then the bands of the
		// scaled-back one.
		sw, sh := blurBoxes(W, H)
		ssums := newBoxSums(W, H, sw, sh, rows)
		err = runBands(n, func(w *bandWorker, i int) error {
			b, err := src.band(i)
			if err != nil {
				return err
			}
			defer src.done(i)
			ssums.add(w, i, b)
			return nil
		})
		if err != nil {
			return nil, nil, err
		}
		small := ssums.frame(px)
		tsums = newBoxSums(W, H, tw, th, rows)
		e, err = newJPEGEncoder(W, H, quality, small.offsets())
		if err != nil {
			return nil, nil, err
		}
		err = runBands(n, func(w *bandWorker, i int) error {
			b := scaleBack(small, W, H, i*rows, min(rows, H-i*rows), &w.scratch)
			strips[i] = e.encodeStrip(&w.strip, b)
			tsums.add(w, i, b)
			return nil
		})
		px = small.offsets()
	}
	if err != nil {
		return nil, nil, err
	}
	jpg = e.assemble(strips)
	if thumb, err = encodeFrame(tsums.frame(px), thumbQuality); err != nil {
		return nil, nil, fmt.Errorf("encode thumbnail: %w", err)
	}
	return jpg, thumb, nil
}

// scaleBack returns rows y0 to y0+n of small scaled back to W×H
// (nearest), in *buf, which it grows as needed.
func scaleBack(small *Frame, W, H, y0, n int, buf *[]byte) *Frame {
	sw, sh := small.Rect.Dx(), small.Rect.Dy()
	if cap(*buf) < 4*W*n {
		*buf = make([]byte, 4*W*n)
	}
	out := &Frame{Pix: (*buf)[:4*W*n], Stride: 4 * W, Rect: image.Rect(0, 0, W, n), R: small.R, G: small.G, B: small.B}
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
