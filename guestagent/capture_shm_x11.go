//go:build !windows

package guestagent

import (
	"fmt"
	"image"
	"sync"

	"github.com/jezek/xgb"
	"github.com/jezek/xgb/shm"
	"github.com/jezek/xgb/xproto"
	"golang.org/x/sys/unix"

	"github.com/workspace-sandbox/workspace/internal/jpegenc"
)

// MIT-SHM capture with a private segment. The X server copies the screen
// into System V shared memory instead of sending it over the socket, one
// band (64 rows) at a time into a few band slots, while the cores encode
// the bands already there. The segment is the agent's own and nobody
// else's:
//
//   - made with IPC_PRIVATE (no key another process could look it up by)
//     and mode 0600, so no other user can attach it;
//   - marked for removal (IPC_RMID) as soon as the agent and the X server
//     have both attached it, so it goes away with the last detach;
//   - one per shot, a few bands large: it exists while the shot is taken,
//     and no full-screen picture is ever kept.
//
// The capture library's own X11 path makes its segment 0777 for anyone
// to read while a shot is taken: that path is never linked into the agent.

// initSHM says whether the server offers MIT-SHM.
func initSHM(conn *xgb.Conn) error {
	if err := shm.Init(conn); err != nil {
		return fmt.Errorf("the X server has no MIT-SHM: %w", err)
	}
	return nil
}

// shmBands captures a rectangle of the root window band by band through a
// private segment of slots band slots: a bandSource. Band i goes to slot
// i%slots; it is asked of the server when band i-slots is done with the
// slot, by the worker that was done, so the server fills slots ahead of
// the encoding without a goroutine of its own.
type shmBands struct {
	conn      *xgb.Conn
	root      xproto.Window
	r         image.Rectangle
	px        pixelOffsets
	rows, n   int
	slots     int
	slotBytes int
	mem       []byte
	seg       shm.Seg

	cookies []shm.GetImageCookie
	issued  []chan struct{} // closed once band i is asked of the server
	failed  chan struct{}   // closed at the first failure
	once    sync.Once
	mu      sync.Mutex
	err     error
}

// openSHMBands makes the segment, has the X server attach it, marks it for
// removal and asks for the first bands.
func (c *x11Capturer) openSHMBands(conn *xgb.Conn, root xproto.Window, r image.Rectangle, px pixelOffsets, rows, slots int) (*shmBands, error) {
	w, h := r.Dx(), r.Dy()
	n := (h + rows - 1) / rows
	slots = max(1, min(slots, n))
	s := &shmBands{conn: conn, root: root, r: r, px: px, rows: rows, n: n, slots: slots, slotBytes: 4 * w * rows,
		cookies: make([]shm.GetImageCookie, n), issued: make([]chan struct{}, n), failed: make(chan struct{})}
	size := s.slots * s.slotBytes
	id, err := unix.SysvShmGet(unix.IPC_PRIVATE, size, unix.IPC_CREAT|unix.IPC_EXCL|0o600)
	if err != nil {
		return nil, fmt.Errorf("make a %d-byte shared memory segment: %w", size, err)
	}
	mem, err := unix.SysvShmAttach(id, 0, 0)
	if err != nil {
		unix.SysvShmCtl(id, unix.IPC_RMID, nil)
		return nil, fmt.Errorf("attach the shared memory segment: %w", err)
	}
	s.mem = mem
	if s.seg, err = shm.NewSegId(conn); err != nil {
		unix.SysvShmCtl(id, unix.IPC_RMID, nil)
		unix.SysvShmDetach(mem)
		return nil, fmt.Errorf("no X resource id for the segment: %w", err)
	}
	// A checked request is a round trip: when it returns, the server has
	// attached the segment (or refused it).
	attachErr := shm.AttachChecked(conn, s.seg, uint32(id), false).Check()
	// Both sides attached (or the server never will): nobody needs to
	// find the segment again.
	if _, err := unix.SysvShmCtl(id, unix.IPC_RMID, nil); err != nil {
		unix.SysvShmDetach(mem)
		return nil, fmt.Errorf("mark the shared memory segment for removal: %w", err)
	}
	if attachErr != nil {
		unix.SysvShmDetach(mem)
		return nil, fmt.Errorf("the X server cannot attach the segment: %w", attachErr)
	}
	if c.attached != nil {
		c.attached(id)
	}
	for i := range s.issued {
		s.issued[i] = make(chan struct{})
	}
	for i := range slots {
		s.issue(i)
	}
	return s, nil
}

// issue asks the server for band i, into its slot.
func (s *shmBands) issue(i int) {
	if i >= s.n {
		return
	}
	y := s.r.Min.Y + i*s.rows
	s.cookies[i] = shm.GetImage(s.conn, xproto.Drawable(s.root), int16(s.r.Min.X), int16(y), uint16(s.r.Dx()), uint16(s.bandRows(i)),
		0xffffffff, xproto.ImageFormatZPixmap, s.seg, uint32((i%s.slots)*s.slotBytes))
	close(s.issued[i])
}

func (s *shmBands) bandRows(i int) int { return min(s.rows, s.r.Dy()-i*s.rows) }

// fail records the first failure, wakes every worker waiting for a band
// and returns that first failure.
func (s *shmBands) fail(err error) error {
	s.mu.Lock()
	if s.err == nil {
		s.err = err
	}
	err = s.err
	s.mu.Unlock()
	s.once.Do(func() { close(s.failed) })
	return err
}

// band waits for band i and returns its slot's pixels.
func (s *shmBands) band(i int) (jpegenc.Pixels, error) {
	select {
	case <-s.issued[i]:
	case <-s.failed:
		return jpegenc.Pixels{}, s.fail(nil)
	}
	rep, err := s.cookies[i].Reply()
	if err == nil && int(rep.Size) < 4*s.r.Dx()*s.bandRows(i) {
		err = fmt.Errorf("depth %d band of %d bytes for %dx%d", rep.Depth, rep.Size, s.r.Dx(), s.bandRows(i))
	}
	if err != nil {
		return jpegenc.Pixels{}, s.fail(fmt.Errorf("MIT-SHM GetImage: %w", err))
	}
	o, bh := (i%s.slots)*s.slotBytes, s.bandRows(i)
	w := s.r.Dx()
	return jpegenc.Pixels{Pix: s.mem[o : o+4*w*bh], Stride: 4 * w, Width: w, Height: bh, R: s.px.R, G: s.px.G, B: s.px.B}, nil
}

// done frees band i's slot: the band slots later goes into it.
func (s *shmBands) done(i int) { s.issue(i + s.slots) }

// close has the server detach the segment, after every band it was asked
// for (requests are served in order, and this one is a round trip: the
// server has detached when close returns), and detaches it here, which
// removes it.
func (s *shmBands) close() {
	shm.DetachChecked(s.conn, s.seg).Check()
	unix.SysvShmDetach(s.mem)
}
