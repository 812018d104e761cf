//go:build !windows

package guestagent

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
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

// A capture with MIT-SHM uses a segment of its own that no other user can
// ever attach: mode 0600 from the start, marked for removal (so it has no
// key and goes with the last detach) once the agent and the X server have
// both attached it, and gone after the shot. Checked on a real Xvfb at
// each attach and by watching /proc/sysvipc/shm during 40 tracking shots while
// another user tries to attach every segment it sees.
func TestX11CaptureSharedMemoryIsPrivate(t *testing.T) {
	disp := xvfbtest.Start(t, 1920, 1080)
	fillRoot(t, disp, 0x2080c0)
	shmBefore := shmSegments(t)
	var logs syncBuffer
	c := newX11Capturer(disp, hclog.New(&hclog.LoggerOptions{Output: &logs, Level: hclog.Info}))
	var attaches []string
	var mu sync.Mutex
	c.attached = func(id int) {
		// Both sides attached and the segment marked for removal: 01000
		// (SHM_DEST) | 0600, two attaches, our user.
		l := segment(shmSegments(t), id)
		mu.Lock()
		attaches = append(attaches, l)
		mu.Unlock()
		f := strings.Fields(l)
		if len(f) < 8 || f[2] != "1600" || f[6] != "2" || f[7] != strconv.Itoa(os.Getuid()) {
			t.Errorf("segment %d once attached (key shmid perms size cpid lpid nattch uid ...): %q, want perms 1600, nattch 2, uid %d", id, l, os.Getuid())
		}
	}
	shots, err := c.Capture()
	if err != nil {
		t.Fatal(err)
	}
	if len(shots) != 1 || shots[0].Bounds.Dx() != 1920 || shots[0].Bounds.Dy() != 1080 {
		t.Fatalf("shots %+v", shots)
	}
	r, g, b, _ := shots[0].Image.At(10, 10).RGBA()
	if r>>8 != 0x20 || g>>8 != 0x80 || b>>8 != 0xc0 {
		t.Fatalf("pixel %x %x %x, want 20 80 c0", r>>8, g>>8, b>>8)
	}
	if !strings.Contains(c.Name(), "MIT-SHM") || !strings.Contains(logs.String(), "capturing with MIT-SHM into a private segment") {
		t.Fatalf("capturer %q, log:\n%s", c.Name(), logs.String())
	}
	if len(attaches) != 1 {
		t.Fatalf("%d attaches seen for one capture", len(attaches))
	}
	mu.Lock()
	attaches = nil
	mu.Unlock()
	if left := newSegments(shmBefore, shmSegments(t)); len(left) > 0 {
		t.Fatalf("segments left after the capture:\n%s", strings.Join(left, "\n"))
	}

	// 40 shots as tracking takes them (captured band by band and encoded
	// meanwhile), while another user reads the segment table and tries to
	// attach every segment it lists.
	var seen []string
	var attached []string
	tried := 0
	watch := func(attach bool) {
		done := make(chan struct{})
		go func() {
			defer close(done)
			for range 40 {
				if _, err := c.shoot(75, false, -1); err != nil {
					t.Error(err)
					return
				}
			}
		}()
		for {
			for _, l := range newSegments(shmBefore, shmSegments(t)) {
				seen = append(seen, l)
				if id, err := strconv.Atoi(strings.Fields(l)[1]); err == nil && attach {
					tried++
					if tryAttach(id) {
						attached = append(attached, l)
					}
				}
			}
			select {
			case <-done:
				return
			default:
			}
		}
	}
	switched := asOtherUser(t, func() { watch(true) })
	if !switched {
		t.Log("not root: the segments' modes are checked, no attach as another user is tried")
		watch(false)
	}
	if len(attached) > 0 {
		t.Fatalf("another user attached our segments:\n%s", strings.Join(attached, "\n"))
	}
	if len(seen) == 0 {
		t.Fatal("the watch saw no segment during 40 captures: it shows nothing")
	}
	for _, l := range seen {
		f := strings.Fields(l)
		if f[2] != "600" && f[2] != "1600" {
			t.Fatalf("a segment with mode %s appeared (key shmid perms ...): %s", f[2], l)
		}
		if f[0] != "0" {
			t.Fatalf("a segment with a key appeared: %s", l)
		}
	}
	if len(attaches) != 40 {
		t.Fatalf("%d attaches checked for 40 shots", len(attaches))
	}
	t.Logf("%d segment sightings during 40 shots, %d attach attempts as another user, all refused; %d attaches checked", len(seen), tried, len(attaches))
	if left := newSegments(shmBefore, shmSegments(t)); len(left) > 0 {
		t.Fatalf("segments left after the shots:\n%s", strings.Join(left, "\n"))
	}

	// The watch and the other user do see a world-readable segment.
	id, err := unix.SysvShmGet(unix.IPC_PRIVATE, 1<<20, unix.IPC_CREAT|0o777)
	if err != nil {
		t.Fatalf("cannot make a test segment to check the watch with: %v", err)
	}
	defer unix.SysvShmCtl(id, unix.IPC_RMID, nil)
	if l := segment(shmSegments(t), id); !strings.Contains(l, " 777 ") {
		t.Fatalf("the watch missed a 0777 segment: %q", l)
	}
	if switched && !asOtherUser(t, func() {
		if !tryAttach(id) {
			t.Error("another user cannot attach a 0777 segment: the attach check shows nothing")
		}
	}) {
		t.Fatal("could switch user once, not twice")
	}

	if _, err := (&x11Capturer{display: ":77"}).Capture(); err == nil || !strings.Contains(err.Error(), "no X display") {
		t.Fatalf("missing display: %v", err)
	}
}

// Without MIT-SHM in the server the capture uses core GetImage, says so
// once in the log and in its name, makes no segment at all, and its shots
// are those a server with MIT-SHM gives of the same screen.
func TestX11CaptureFallsBackWithoutMITSHM(t *testing.T) {
	disp := xvfbtest.StartWith(t, 640, 400, "-extension", "MIT-SHM")
	paintBusy(t, disp, 640, 400)
	var logs syncBuffer
	c := newX11Capturer(disp, hclog.New(&hclog.LoggerOptions{Output: &logs, Level: hclog.Info}))
	before := shmSegments(t)
	var seen []string
	var shots []EncodedShot
	for range 10 {
		var err error
		if shots, err = c.shoot(75, false, -1); err != nil {
			t.Fatal(err)
		}
		seen = append(seen, newSegments(before, shmSegments(t))...)
	}
	if len(seen) > 0 {
		t.Fatalf("segments appeared without MIT-SHM:\n%s", strings.Join(seen, "\n"))
	}
	if c.Name() != "x11 "+disp+" (GetImage)" {
		t.Fatalf("capturer name %q", c.Name())
	}
	if n := strings.Count(logs.String(), "MIT-SHM is not usable; capturing with core GetImage"); n != 1 || !strings.Contains(logs.String(), "the X server has no MIT-SHM") {
		t.Fatalf("fallback logged %d times, want once with the reason:\n%s", n, logs.String())
	}
	withSHM := xvfbtest.Start(t, 640, 400)
	paintBusy(t, withSHM, 640, 400)
	same, err := newX11Capturer(withSHM, nil).shoot(75, false, -1)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(shots[0].JPEG, same[0].JPEG) || !bytes.Equal(shots[0].Thumbnail, same[0].Thumbnail) {
		t.Fatal("the GetImage shot differs from the MIT-SHM shot of the same screen")
	}
	frames, err := c.Capture()
	if err != nil {
		t.Fatal(err)
	}
	if r, _, _, _ := frames[0].Image.At(0, 0).RGBA(); r>>8 == 0 {
		t.Fatal("the GetImage frame is black")
	}
}

// asOtherUser runs fn on an OS thread of its own whose user and groups are
// nobody's (65534): the kernel checks fn's system calls as another user's.
// It reports false, without running fn, when the test may not switch
// (not root).
func asOtherUser(t *testing.T, fn func()) bool {
	t.Helper()
	ok := make(chan bool)
	go func() {
		// Never unlocked: the thread ends with this goroutine and no other
		// goroutine ever runs as nobody.
		runtime.LockOSThread()
		for _, c := range [][4]uintptr{{unix.SYS_SETGROUPS, 0, 0, 0}, {unix.SYS_SETRESGID, 65534, 65534, 65534}, {unix.SYS_SETRESUID, 65534, 65534, 65534}} {
			if _, _, e := unix.RawSyscall(c[0], c[1], c[2], c[3]); e != 0 {
				ok <- false
				return
			}
		}
		fn()
		ok <- true
	}()
	return <-ok
}

// tryAttach attaches segment id read-only and detaches it again; true
// when the kernel let it.
func tryAttach(id int) bool {
	addr, _, e := unix.Syscall(unix.SYS_SHMAT, uintptr(id), 0, unix.SHM_RDONLY)
	if e != 0 {
		return false
	}
	unix.Syscall(unix.SYS_SHMDT, addr, 0, 0)
	return true
}

// segment returns the line of /proc/sysvipc/shm for shmid, columns
// collapsed to single spaces.
func segment(table string, shmid int) string {
	for _, l := range strings.Split(table, "\n") {
		if f := strings.Fields(l); len(f) > 2 && f[1] == strconv.Itoa(shmid) {
			return strings.Join(f, " ")
		}
	}
	return ""
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
			out = append(out, f)
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
