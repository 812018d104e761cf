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
// i%slots once band i-slots is done with it.
type shmBands struct {
	conn      *xgb.Conn
	root      xproto.Window
	r         image.Rectangle
	px        pixelOffsets
	rows, n   int
	slots     int
	slotBytes int
	id        int
	mem       []byte
	seg       shm.Seg

	ready []chan struct{} // closed when band i is in its slot (or failed)
	free  []chan struct{} // a token in free[k] while slot k may be written
	stop  chan struct{}
	once  sync.Once
	wg    sync.WaitGroup
	mu    sync.Mutex
	err   error
}

// openSHMBands makes the segment, has the X server attach it, marks it for
// removal and starts capturing.
func (c *x11Capturer) openSHMBands(conn *xgb.Conn, root xproto.Window, r image.Rectangle, px pixelOffsets, rows, slots int) (*shmBands, error) {
	w, h := r.Dx(), r.Dy()
	n := (h + rows - 1) / rows
	slots = max(1, min(slots, n))
	s := &shmBands{conn: conn, root: root, r: r, px: px, rows: rows, n: n, slots: slots, slotBytes: 4 * w * rows,
		ready: make([]chan struct{}, n), free: make([]chan struct{}, slots), stop: make(chan struct{})}
	size := s.slots * s.slotBytes
	id, err := unix.SysvShmGet(unix.IPC_PRIVATE, size, unix.IPC_CREAT|unix.IPC_EXCL|0o600)
	if err != nil {
		return nil, fmt.Errorf("make a %d-byte shared memory segment: %w", size, err)
	}
	s.id = id
	mem, err := unix.SysvShmAttach(id, 0, 0)
	if err != nil {
		unix.SysvShmCtl(id, unix.IPC_RMID, nil)
		return nil, fmt.Errorf("attach the shared memory segment: %w", err)
	}
	s.mem = mem
	if s.seg, err = shm.NewSegId(conn); err != nil {
		unix.SysvShmCtl(id, unix.IPC_RMID, nil)
		unix.SysvShmDetach(mem)
		return nil, fmt.Errorf("X resource id for the segment: %w", err)
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
	for i := range s.ready {
		s.ready[i] = make(chan struct{})
	}
	for k := range s.free {
		s.free[k] = make(chan struct{}, 1)
		s.free[k] <- struct{}{}
	}
	s.wg.Add(1)
	go s.run()
	return s, nil
}

// run asks the server for each band as its slot becomes free, a few
// requests ahead, and marks bands ready as their replies come.
func (s *shmBands) run() {
	defer s.wg.Done()
	type pending struct {
		i      int
		cookie shm.GetImageCookie
	}
	q := make(chan pending, s.slots)
	replies := make(chan struct{})
	go func() {
		defer close(replies)
		for p := range q {
			rep, err := p.cookie.Reply()
			if err == nil && int(rep.Size) < 4*s.r.Dx()*s.bandRows(p.i) {
				err = fmt.Errorf("depth %d band of %d bytes for %dx%d", rep.Depth, rep.Size, s.r.Dx(), s.bandRows(p.i))
			}
			if err != nil {
				s.fail(fmt.Errorf("MIT-SHM GetImage: %w", err))
			}
			close(s.ready[p.i])
		}
	}()
	issued := 0
loop:
	for ; issued < s.n; issued++ {
		select {
		case <-s.free[issued%s.slots]:
		case <-s.stop:
			break loop
		}
		y := s.r.Min.Y + issued*s.rows
		q <- pending{issued, shm.GetImage(s.conn, xproto.Drawable(s.root), int16(s.r.Min.X), int16(y), uint16(s.r.Dx()), uint16(s.bandRows(issued)),
			0xffffffff, xproto.ImageFormatZPixmap, s.seg, uint32((issued%s.slots)*s.slotBytes))}
	}
	close(q)
	<-replies
	for i := issued; i < s.n; i++ {
		close(s.ready[i]) // never asked for: their waiters see the error
	}
}

func (s *shmBands) bandRows(i int) int { return min(s.rows, s.r.Dy()-i*s.rows) }

func (s *shmBands) fail(err error) {
	s.mu.Lock()
	if s.err == nil {
		s.err = err
	}
	s.mu.Unlock()
	s.once.Do(func() { close(s.stop) })
}

func (s *shmBands) failed() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// band waits for band i and returns its slot's pixels.
func (s *shmBands) band(i int) (jpegenc.Pixels, error) {
	<-s.ready[i]
	if err := s.failed(); err != nil {
		return jpegenc.Pixels{}, err
	}
	o, bh := (i%s.slots)*s.slotBytes, s.bandRows(i)
	w := s.r.Dx()
	return jpegenc.Pixels{Pix: s.mem[o : o+4*w*bh], Stride: 4 * w, Width: w, Height: bh, R: s.px.R, G: s.px.G, B: s.px.B}, nil
}

// done frees band i's slot for the band that comes slots bands later.
func (s *shmBands) done(i int) { s.free[i%s.slots] <- struct{}{} }

// close stops the capture, has the server detach the segment (a round
// trip: it has when close returns) and detaches it here, which removes it.
func (s *shmBands) close() {
	s.once.Do(func() { close(s.stop) })
	s.wg.Wait()
	shm.DetachChecked(s.conn, s.seg).Check()
	unix.SysvShmDetach(s.mem)
}
