//go:build !windows

package guestagent

import (
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jezek/xgb"
	"github.com/jezek/xgb/xproto"
	"github.com/jezek/xgb/xtest"

	"github.com/workspace-sandbox/workspace/internal/xvfbtest"
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
	if _, err := os.Stat("/sys/class/virtio-ports"); err == nil {
		t.Skip("this machine has virtio ports of its own")
	}
	_, err := FindPort()
	if err == nil || !strings.Contains(err.Error(), "virtio") {
		t.Fatalf("no ports: %v", err)
	}
}
