//go:build !windows

package guestagent

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jezek/xgb"
	"github.com/jezek/xgb/xproto"
	"github.com/jezek/xgb/xtest"
	"golang.org/x/sys/unix"

	"github.com/workspace-sandbox/workspace/internal/xvfbtest"
	"github.com/workspace-sandbox/workspace/tracking"
)

// startXvfb starts a real X server for the test.
func startXvfb(t *testing.T) string {
	t.Helper()
	return xvfbtest.Start(t, 320, 200)
}

// fillRoot paints the root window with a colour through core X11.
func fillRoot(t *testing.T, disp string, rgb uint32) {
	t.Helper()
	c, err := xgb.NewConnDisplay(disp)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s := xproto.Setup(c).DefaultScreen(c)
	xproto.ChangeWindowAttributes(c, s.Root, xproto.CwBackPixel, []uint32{rgb})
	xproto.ClearArea(c, false, s.Root, 0, 0, 0, 0)
	xproto.GetInputFocus(c).Reply() // round trip: the paint is done
}

func TestX11CaptureUsesNoSharedMemory(t *testing.T) {
	disp := startXvfb(t)
	fillRoot(t, disp, 0x2080c0)
	shmBefore := shmSegments(t)
	c := &x11Capturer{display: disp}
	shots, err := c.Capture()
	if err != nil {
		t.Fatal(err)
	}
	if len(shots) != 1 || shots[0].Bounds.Dx() != 320 || shots[0].Bounds.Dy() != 200 {
		t.Fatalf("shots %+v", shots)
	}
	r, g, b, _ := shots[0].Image.At(10, 10).RGBA()
	if r>>8 != 0x20 || g>>8 != 0x80 || b>>8 != 0xc0 {
		t.Fatalf("pixel %x %x %x, want 20 80 c0", r>>8, g>>8, b>>8)
	}
	if after := shmSegments(t); after != shmBefore {
		t.Fatalf("shared memory segments changed during capture:\nbefore:\n%s\nafter:\n%s", shmBefore, after)
	}

	// Watch the segment table *while* capturing, as `ipcs -m` would: a
	// capture path that makes a segment and removes it within the shot
	// (as the MIT-SHM path does, mode 0777) shows up here.
	watch := func(during func()) []string {
		done := make(chan struct{})
		go func() { during(); close(done) }()
		var seen []string
		for {
			seen = append(seen, newSegments(shmBefore, shmSegments(t))...)
			select {
			case <-done:
				return seen
			default:
			}
		}
	}
	if seen := watch(func() {
		for range 40 {
			if _, err := c.Capture(); err != nil {
				t.Error(err)
			}
		}
	}); len(seen) > 0 {
		t.Fatalf("shared memory segments appeared during captures (key shmid perms ...):\n%s", strings.Join(seen, "\n"))
	}
	// The watch does see a short-lived world-readable segment.
	id, err := unix.SysvShmGet(unix.IPC_PRIVATE, 1<<20, unix.IPC_CREAT|0o777)
	if err != nil {
		t.Fatalf("cannot make a test segment to check the watch with: %v", err)
	}
	seen := watch(func() {
		time.Sleep(20 * time.Millisecond)
		unix.SysvShmCtl(id, unix.IPC_RMID, nil)
	})
	if len(seen) == 0 || !strings.Contains(strings.Join(seen, "\n"), " 777 ") {
		t.Fatalf("the watch missed a 0777 segment: %q", seen)
	}

	if _, err := (&x11Capturer{display: ":77"}).Capture(); err == nil || !strings.Contains(err.Error(), "no X display") {
		t.Fatalf("missing display: %v", err)
	}
}

// shmSegments lists System V shared memory segments (ipcs -m's source).
func shmSegments(t *testing.T) string {
	b, err := os.ReadFile("/proc/sysvipc/shm")
	if err != nil {
		t.Skip("no /proc/sysvipc/shm")
	}
	return string(b)
}

// newSegments returns the lines of after that are not in before, the
// columns collapsed to single spaces ("key shmid perms size ...").
func newSegments(before, after string) []string {
	old := map[string]bool{}
	for _, l := range strings.Split(before, "\n") {
		old[strings.Join(strings.Fields(l), " ")] = true
	}
	var out []string
	for _, l := range strings.Split(after, "\n") {
		if f := strings.Join(strings.Fields(l), " "); f != "" && !old[f] {
			out = append(out, " "+f+" ")
		}
	}
	return out
}

func TestXInputCountsRawEvents(t *testing.T) {
	disp := startXvfb(t)
	l := &xiListener{display: disp}
	var keys, moves, clicks, scrolls atomic.Int32
	stop := make(chan struct{})
	errc := make(chan error, 1)
	go func() {
		errc <- l.Run(stop, func(k InputKind) {
			switch k {
			case InputKey:
				keys.Add(1)
			case InputMove:
				moves.Add(1)
			case InputClick:
				clicks.Add(1)
			case InputScroll:
				scrolls.Add(1)
			}
		})
	}()
	time.Sleep(300 * time.Millisecond) // the listener selects its events
	c, err := xgb.NewConnDisplay(disp)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := xtest.Init(c); err != nil {
		t.Skipf("no XTEST to make input with: %v", err)
	}
	root := xproto.Setup(c).DefaultScreen(c).Root
	send := func(typ, detail byte, x, y int16) {
		xtest.FakeInputChecked(c, typ, detail, 0, root, x, y, 0).Check()
	}
	for i := 0; i < 3; i++ {
		send(xproto.KeyPress, 38, 0, 0)
		send(xproto.KeyRelease, 38, 0, 0)
	}
	send(xproto.MotionNotify, 0, 10, 10)
	send(xproto.MotionNotify, 0, 50, 60)
	send(xproto.ButtonPress, 1, 0, 0)
	send(xproto.ButtonRelease, 1, 0, 0)
	send(xproto.ButtonPress, 4, 0, 0)
	send(xproto.ButtonRelease, 4, 0, 0)
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) && (keys.Load() < 3 || moves.Load() < 2 || clicks.Load() < 1 || scrolls.Load() < 1) {
		time.Sleep(20 * time.Millisecond)
	}
	close(stop)
	if keys.Load() != 3 || moves.Load() < 2 || clicks.Load() != 1 || scrolls.Load() != 1 {
		t.Fatalf("keys %d moves %d clicks %d scrolls %d", keys.Load(), moves.Load(), clicks.Load(), scrolls.Load())
	}
	<-errc
}

func TestFindPortBySysfsName(t *testing.T) {
	root := t.TempDir()
	dev, sys := filepath.Join(root, "dev"), filepath.Join(root, "sys")
	port := func(vport, name string, withDev bool) {
		os.MkdirAll(filepath.Join(sys, vport), 0o755)
		os.WriteFile(filepath.Join(sys, vport, "name"), []byte(name+"\n"), 0o644)
		if withDev {
			os.MkdirAll(dev, 0o755)
			os.WriteFile(filepath.Join(dev, vport), nil, 0o600)
		}
	}
	// No ports at all.
	if _, err := findPortIn(dev, sys); err == nil || !strings.Contains(err.Error(), "no virtio-serial ports") {
		t.Fatalf("no ports: %v", err)
	}
	// Ports, none of them ours.
	port("vport0p1", "org.qemu.guest_agent.0", true)
	if _, err := findPortIn(dev, sys); err == nil || !strings.Contains(err.Error(), "no virtio-serial port named "+PortName+" among 1 ports") {
		t.Fatalf("other ports: %v", err)
	}
	// Ours by its sysfs name, without udev's link, but no device node.
	port("vport0p2", PortName, false)
	if _, err := findPortIn(dev, sys); err == nil || !strings.Contains(err.Error(), "vport0p2") {
		t.Fatalf("no device node: %v", err)
	}
	// With its device node.
	port("vport0p2", PortName, true)
	if p, err := findPortIn(dev, sys); err != nil || p != filepath.Join(dev, "vport0p2") {
		t.Fatalf("by sysfs name: %q %v", p, err)
	}
	// udev's link wins.
	os.MkdirAll(filepath.Join(dev, "virtio-ports"), 0o755)
	os.WriteFile(filepath.Join(dev, "virtio-ports", PortName), nil, 0o600)
	if p, err := findPortIn(dev, sys); err != nil || p != filepath.Join(dev, "virtio-ports", PortName) {
		t.Fatalf("by link: %q %v", p, err)
	}
}

// Without a port the agent retries with backoff and says why in its
// status; once the port is there it connects and the reason goes.
func TestNoPortRetriesAndSaysWhy(t *testing.T) {
	h := newFakeHost(t)
	var mu sync.Mutex
	var tries []time.Time
	open := func() (io.ReadWriteCloser, error) {
		mu.Lock()
		tries = append(tries, time.Now())
		n := len(tries)
		mu.Unlock()
		if n <= 2 {
			return nil, errors.New("no virtio-serial ports in this machine")
		}
		return h.open()
	}
	a, err := New(Config{StateDir: t.TempDir(), Open: open, capturer: &fakeCapturer{}, input: &fakeInput{}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	go a.Run(ctx)
	waitFor(t, "the port error in status.json", 10*time.Second, func() bool {
		ls, err := ReadLocalStatus(a.cfg.StateDir)
		return err == nil && strings.Contains(ls.PortError, "no virtio-serial ports") && !ls.Connected
	})
	if _, err := h.serve(ctx, testPolicy(), tracking.State{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "connected, the port error gone", 10*time.Second, func() bool {
		ls, err := ReadLocalStatus(a.cfg.StateDir)
		return err == nil && ls.PortError == "" && ls.Connected
	})
	mu.Lock()
	defer mu.Unlock()
	if d1, d2 := tries[1].Sub(tries[0]), tries[2].Sub(tries[1]); d1 < 900*time.Millisecond || d2 < 1900*time.Millisecond {
		t.Fatalf("retries %s and %s apart, want a backoff of 1 s then 2 s", d1, d2)
	}
}
