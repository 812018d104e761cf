package main

// End-to-end test of `workspace view`: a real guest's display, through the
// daemon and the CLI's proxy, shown by the real remote-viewer on a real X
// server (Xvfb), compared pixel by pixel with libvirt's own capture.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jezek/xgb"
	"github.com/jezek/xgb/xproto"

	"github.com/workspace-sandbox/workspace/api"
	"github.com/workspace-sandbox/workspace/internal/xvfbtest"
)

func TestViewVNCEndToEnd(t *testing.T)   { viewEndToEnd(t, "vnc") }
func TestViewSPICEEndToEnd(t *testing.T) { viewEndToEnd(t, "spice") }

func viewEndToEnd(t *testing.T, display string) {
	if _, err := exec.LookPath("remote-viewer"); err != nil {
		t.Skip("remote-viewer is not installed (scripts/deps.sh test installs virt-viewer)")
	}
	e := newE2EEnv(t)
	e.importTestImage("testimg")
	name := "wstest-view-" + randHex(3)
	prof := filepath.Join(e.dir, "view.hcl")
	os.WriteFile(prof, []byte(fmt.Sprintf("image = \"testimg\"\ncpus = 1\nmemory = \"256MiB\"\ndisk = \"2GiB\"\nnetwork {\n  mode = \"none\"\n}\ndisplay {\n  type = %q\n}\n", display)), 0o644)
	mustCLI(t, e.socket, "create", name, "--profile", prof)
	disp := xvfbtest.Start(t, 1280, 1024)

	// A stopped workspace: a clear refusal, and no socket folder left.
	runtime := t.TempDir()
	r := viewCLI(t, e, disp, runtime, "view", name)
	if r.code == 0 || !strings.Contains(r.stderr, "is stopped") || !strings.Contains(r.stderr, "workspace start "+name) {
		t.Fatalf("view of a stopped workspace: %s", r)
	}
	if entries, _ := os.ReadDir(runtime); len(entries) > 0 {
		t.Fatalf("refused view left %v", entries)
	}

	mustCLI(t, e.socket, "start", name, "--wait", "--timeout", "90s")
	w := e.status(name)
	if w.Display != display || w.DisplaySocket == "" {
		t.Fatalf("status: display %q on %q, want %s on a socket", w.Display, w.DisplaySocket, display)
	}

	qemuListensOnNoTCPPort(t, e, name, w.DisplaySocket)
	printModeHandshake(t, e, name, display)

	// The viewer, as a user runs it.
	logStart := daemonLogSize(e)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	vc := exec.CommandContext(ctx, binPath, "view", name)
	vc.Env = append(os.Environ(), "WORKSPACE_SOCKET="+e.socket, "DISPLAY="+disp, "XDG_RUNTIME_DIR="+runtime, "NO_AT_BRIDGE=1")
	var vout, verr bytes.Buffer
	vc.Stdout, vc.Stderr = &vout, &verr
	if err := vc.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- vc.Wait() }()
	viewerLog := func() string { return fmt.Sprintf("view stdout:\n%s\nview stderr:\n%s", vout.String(), verr.String()) }

	x, err := xgb.NewConnDisplay(disp)
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	win := waitViewerWindow(t, x, name, exited, 60*time.Second, viewerLog)
	t.Logf("viewer window %q at %v", win.title, win.rect)

	client := api.NewClient(e.socket)
	at, shown := waitGuestInWindow(t, x, client, name, win, 90*time.Second)
	t.Logf("guest screen (%dx%d) shown 1:1 at %v in the viewer: %.2f%% of its pixels equal", shown.Dx(), shown.Dy(), at, 100*matchShare)

	// The viewer keeps a live connection: a few seconds on, it still runs
	// and none of its streams has ended.
	time.Sleep(3 * time.Second)
	select {
	case err := <-exited:
		t.Fatalf("workspace view exited while showing the guest: %v\n%s", err, viewerLog())
	default:
	}
	log := daemonLogSince(e, logStart)
	connected := countLines(log, "display connected", "workspace="+name)
	minStreams := 1
	if display == "spice" {
		minStreams = 2 // main and display channels at least
	}
	if connected < minStreams || countLines(log, "display disconnected", "workspace="+name) != 0 {
		t.Fatalf("daemon log: want at least %d live %s streams for %s:\n%s", minStreams, display, name, log)
	}

	// Quitting view (Ctrl-C, SIGTERM) ends the viewer and every stream and
	// removes the socket folder.
	vc.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("workspace view after SIGTERM: %v\n%s", err, viewerLog())
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("workspace view did not stop after SIGTERM\n%s", viewerLog())
	}
	waitStreamsEnded(t, e, name, logStart)
	if entries, _ := os.ReadDir(runtime); len(entries) > 0 {
		t.Fatalf("view left %v in $XDG_RUNTIME_DIR", entries)
	}
	if out, _ := exec.Command("pgrep", "-f", "remote-viewer --title "+name).Output(); len(bytes.TrimSpace(out)) > 0 {
		t.Fatalf("remote-viewer still runs: pids %s", out)
	}
}

// viewCLI runs the CLI with a display and a runtime folder of the test's.
func viewCLI(t *testing.T, e *e2eEnv, disp, runtime string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binPath, args...)
	cmd.Env = append(os.Environ(), "WORKSPACE_SOCKET="+e.socket, "DISPLAY="+disp, "XDG_RUNTIME_DIR="+runtime)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run %v: %v", args, err)
	}
	return r
}

// qemuListensOnNoTCPPort checks, in QEMU's own network namespace, that
// none of its sockets is a listening TCP socket, while one of them is the
// display's unix socket (so the inode matching is known to work).
func qemuListensOnNoTCPPort(t *testing.T, e *e2eEnv, name, displaySocket string) {
	t.Helper()
	pidFile := "/run/libvirt/qemu/" + e.status(name).Domain + ".pid"
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatalf("QEMU's pid: %v", err)
	}
	pid := strings.TrimSpace(string(b))
	fds, err := os.ReadDir("/proc/" + pid + "/fd")
	if err != nil {
		t.Fatalf("QEMU's open files: %v", err)
	}
	inodes := map[string]bool{}
	for _, fd := range fds {
		l, err := os.Readlink("/proc/" + pid + "/fd/" + fd.Name())
		if err == nil && strings.HasPrefix(l, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(l, "socket:["), "]")] = true
		}
	}
	for _, table := range []string{"tcp", "tcp6"} {
		b, err := os.ReadFile("/proc/" + pid + "/net/" + table)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			f := strings.Fields(line)
			if len(f) >= 10 && f[3] == "0A" && inodes[f[9]] {
				t.Errorf("QEMU (pid %s) listens on TCP: %s %s", pid, table, line)
			}
		}
	}
	b, err = os.ReadFile("/proc/" + pid + "/net/unix")
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) >= 8 && f[7] == displaySocket && inodes[f[6]] {
			found = true
		}
	}
	if !found {
		t.Fatalf("QEMU (pid %s) does not hold the display socket %s", pid, displaySocket)
	}
	// libvirt's live definition agrees: no port, no address to listen on.
	out, err := exec.Command("virsh", "-c", e.uri, "dumpxml", e.status(name).Domain).Output()
	if err != nil {
		t.Fatal(err)
	}
	s := string(out)
	gfx := s[strings.Index(s, "<graphics"):]
	gfx = gfx[:strings.Index(gfx, "</graphics>")]
	for _, bad := range []string{"port=", "autoport='yes'", "type='address'", "type='network'", "websocket"} {
		if strings.Contains(gfx, bad) {
			t.Errorf("live graphics element has %s:\n%s", bad, gfx)
		}
	}
}

// printModeHandshake runs `view --print --json` and speaks the start of
// the display protocol through the socket it prints: the server's answer
// comes back through the daemon.
func printModeHandshake(t *testing.T, e *e2eEnv, name, display string) {
	t.Helper()
	runtime := t.TempDir()
	cmd := exec.Command(binPath, "view", name, "--print", "--json")
	cmd.Env = append(os.Environ(), "WORKSPACE_SOCKET="+e.socket, "XDG_RUNTIME_DIR="+runtime)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	var info viewInfo
	if err := json.NewDecoder(stdout).Decode(&info); err != nil {
		t.Fatalf("view --print --json: %v\n%s", err, stderr.String())
	}
	if info.URI != display+"+unix://"+info.Socket || filepath.Dir(filepath.Dir(info.Socket)) != runtime {
		t.Fatalf("view --print --json: %+v (runtime folder %s)", info, runtime)
	}
	if fi, err := os.Stat(filepath.Dir(info.Socket)); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("socket folder: %v %v, want mode 0700", fi, err)
	}
	c, err := net.Dial("unix", info.Socket)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	switch display {
	case "vnc":
		// An RFB server speaks first: its protocol version.
		greeting := make([]byte, 12)
		if _, err := io.ReadFull(c, greeting); err != nil || string(greeting) != "RFB 003.008\n" {
			t.Fatalf("RFB greeting through the proxy: %q, %v", greeting, err)
		}
	case "spice":
		// A SPICE client speaks first: a link request for the main channel
		// (SpiceLinkHeader + SpiceLinkMess); the server answers with its
		// own header and error code 0.
		var req bytes.Buffer
		for _, v := range []any{[4]byte{'R', 'E', 'D', 'Q'}, uint32(2), uint32(2), uint32(18),
			uint32(0), uint8(1), uint8(0), uint32(0), uint32(0), uint32(18)} {
			binary.Write(&req, binary.LittleEndian, v)
		}
		if _, err := c.Write(req.Bytes()); err != nil {
			t.Fatal(err)
		}
		reply := make([]byte, 20)
		if _, err := io.ReadFull(c, reply); err != nil || string(reply[:4]) != "REDQ" || binary.LittleEndian.Uint32(reply[16:]) != 0 {
			t.Fatalf("SPICE link reply through the proxy: % x, %v", reply, err)
		}
	}
	c.Close()
	cmd.Process.Signal(os.Interrupt)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("view --print after Ctrl-C: %v\n%s", err, stderr.String())
	}
	if entries, _ := os.ReadDir(runtime); len(entries) > 0 {
		t.Fatalf("view --print left %v", entries)
	}
	// The daemon saw the stream end too.
	waitStreamsEnded(t, e, name, 0)
}

// waitStreamsEnded waits until the daemon has logged, after log offset
// off, as many ended display streams of the workspace as opened ones.
func waitStreamsEnded(t *testing.T, e *e2eEnv, name string, off int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		log := daemonLogSince(e, off)
		opened := countLines(log, "display connected", "workspace="+name)
		if opened > 0 && countLines(log, "display disconnected", "workspace="+name) == opened {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("display streams of %s not all ended:\n%s", name, log)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

type viewerWindow struct {
	id    xproto.Window
	title string
	rect  image.Rectangle
}

// waitViewerWindow waits for a mapped top-level window whose title names
// the workspace.
func waitViewerWindow(t *testing.T, x *xgb.Conn, name string, exited chan error, timeout time.Duration, logs func() string) viewerWindow {
	t.Helper()
	root := xproto.Setup(x).DefaultScreen(x).Root
	deadline := time.Now().Add(timeout)
	for {
		select {
		case err := <-exited:
			t.Fatalf("workspace view exited before showing a window: %v\n%s", err, logs())
		default:
		}
		tree, err := xproto.QueryTree(x, root).Reply()
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range tree.Children {
			prop, err := xproto.GetProperty(x, false, c, xproto.AtomWmName, xproto.GetPropertyTypeAny, 0, 256).Reply()
			if err != nil || !strings.Contains(string(prop.Value), name) {
				continue
			}
			attr, err := xproto.GetWindowAttributes(x, c).Reply()
			if err != nil || attr.MapState != xproto.MapStateViewable {
				continue
			}
			g, err := xproto.GetGeometry(x, xproto.Drawable(c)).Reply()
			if err != nil {
				continue
			}
			return viewerWindow{id: c, title: string(prop.Value), rect: image.Rect(int(g.X), int(g.Y), int(g.X)+int(g.Width), int(g.Y)+int(g.Height))}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no viewer window titled %q within %s\n%s", name, timeout, logs())
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// matchShare is the share of the guest's pixels found equal in the viewer
// by the last successful waitGuestInWindow.
var matchShare float64

// waitGuestInWindow waits until the viewer's window shows the guest's
// current screen (libvirt's capture through the daemon) at 1:1 and
// returns where.
func waitGuestInWindow(t *testing.T, x *xgb.Conn, c *api.Client, name string, win viewerWindow, timeout time.Duration) (image.Point, image.Rectangle) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var guest *image.RGBA
	var host *image.RGBA
	for {
		b, err := c.Screen(context.Background(), name)
		if err != nil {
			t.Fatalf("daemon's screen of %s: %v", name, err)
		}
		g, err := png.Decode(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("daemon's screen of %s: %v", name, err)
		}
		guest = toRGBA(g)
		host = grabRoot(t, x, win.rect)
		if at, share, ok := findGuest(guest, host); ok {
			matchShare = share
			return at.Add(win.rect.Min), guest.Bounds()
		}
		if time.Now().After(deadline) {
			dir, _ := os.MkdirTemp("", "wstest-view-fail-")
			savePNG(filepath.Join(dir, "guest.png"), guest)
			savePNG(filepath.Join(dir, "viewer.png"), host)
			t.Fatalf("the viewer window never showed the guest's screen within %s (pictures in %s)", timeout, dir)
		}
		time.Sleep(time.Second)
	}
}

// findGuest looks for guest at 1:1 anywhere inside host. It first checks
// the guest's lit pixels (text on the console), which pin the offset, then
// requires 99% of all pixels to be equal within a small tolerance.
func findGuest(guest, host *image.RGBA) (image.Point, float64, bool) {
	gb, hb := guest.Bounds(), host.Bounds()
	var lit []image.Point
	for y := gb.Min.Y; y < gb.Max.Y; y++ {
		for x := gb.Min.X; x < gb.Max.X; x++ {
			o := guest.PixOffset(x, y)
			if max(guest.Pix[o], guest.Pix[o+1], guest.Pix[o+2]) > 96 {
				lit = append(lit, image.Pt(x-gb.Min.X, y-gb.Min.Y))
			}
		}
	}
	if len(lit) < 200 {
		return image.Point{}, 0, false // nothing distinctive on the guest's screen yet
	}
	same := func(gx, gy, hx, hy int) bool {
		o, p := guest.PixOffset(gx, gy), host.PixOffset(hx, hy)
		for i := 0; i < 3; i++ {
			d := int(guest.Pix[o+i]) - int(host.Pix[p+i])
			if d < -24 || d > 24 {
				return false
			}
		}
		return true
	}
	budget := len(lit) / 50
	for dy := 0; dy+gb.Dy() <= hb.Dy(); dy++ {
		for dx := 0; dx+gb.Dx() <= hb.Dx(); dx++ {
			miss := 0
			for _, p := range lit {
				if !same(gb.Min.X+p.X, gb.Min.Y+p.Y, hb.Min.X+dx+p.X, hb.Min.Y+dy+p.Y) {
					if miss++; miss > budget {
						break
					}
				}
			}
			if miss > budget {
				continue
			}
			eq := 0
			for y := 0; y < gb.Dy(); y++ {
				for x := 0; x < gb.Dx(); x++ {
					if same(gb.Min.X+x, gb.Min.Y+y, hb.Min.X+dx+x, hb.Min.Y+dy+y) {
						eq++
					}
				}
			}
			share := float64(eq) / float64(gb.Dx()*gb.Dy())
			if share >= 0.99 {
				return image.Pt(dx, dy), share, true
			}
		}
	}
	return image.Point{}, 0, false
}

// grabRoot reads r of the X screen (24-bit depth, 32 bits per pixel, BGRX).
func grabRoot(t *testing.T, x *xgb.Conn, r image.Rectangle) *image.RGBA {
	t.Helper()
	root := xproto.Setup(x).DefaultScreen(x).Root
	img, err := xproto.GetImage(x, xproto.ImageFormatZPixmap, xproto.Drawable(root),
		int16(r.Min.X), int16(r.Min.Y), uint16(r.Dx()), uint16(r.Dy()), 0xffffffff).Reply()
	if err != nil {
		t.Fatalf("X GetImage: %v", err)
	}
	if len(img.Data) < 4*r.Dx()*r.Dy() {
		t.Fatalf("X GetImage: %d bytes for %v", len(img.Data), r)
	}
	out := image.NewRGBA(image.Rect(0, 0, r.Dx(), r.Dy()))
	for i := 0; i < r.Dx()*r.Dy(); i++ {
		out.Pix[4*i], out.Pix[4*i+1], out.Pix[4*i+2], out.Pix[4*i+3] = img.Data[4*i+2], img.Data[4*i+1], img.Data[4*i], 255
	}
	return out
}

func toRGBA(img image.Image) *image.RGBA {
	if r, ok := img.(*image.RGBA); ok {
		return r
	}
	b := img.Bounds()
	out := image.NewRGBA(b)
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			out.Set(x, y, img.At(x, y))
		}
	}
	return out
}

func savePNG(path string, img image.Image) {
	f, err := os.Create(path)
	if err != nil {
		return
	}
	defer f.Close()
	png.Encode(f, img)
}

func daemonLogSize(e *e2eEnv) int64 {
	fi, err := os.Stat(filepath.Join(e.dir, "daemon.log"))
	if err != nil {
		return 0
	}
	return fi.Size()
}

func daemonLogSince(e *e2eEnv, off int64) string {
	f, err := os.Open(filepath.Join(e.dir, "daemon.log"))
	if err != nil {
		return ""
	}
	defer f.Close()
	f.Seek(off, io.SeekStart)
	b, _ := io.ReadAll(f)
	return string(b)
}

// countLines counts the lines of s holding every one of words.
func countLines(s string, words ...string) int {
	n := 0
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		ok := true
		for _, w := range words {
			ok = ok && strings.Contains(sc.Text(), w)
		}
		if ok {
			n++
		}
	}
	return n
}
