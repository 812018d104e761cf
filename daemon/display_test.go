package daemon

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/workspace-sandbox/workspace/api"
)

// fakeDisplay is a unix-socket display server that speaks first like an
// RFB server (its greeting names the session) and then answers every line
// with the line upper-cased.
type fakeDisplay struct {
	path string
	ln   net.Listener

	mu       sync.Mutex
	sessions int
	ended    chan int // session numbers, when their client went away
}

func newFakeDisplay(t *testing.T) *fakeDisplay {
	t.Helper()
	dir, err := os.MkdirTemp("", "wsdisp")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeDisplay{path: filepath.Join(dir, "display.sock"), ended: make(chan int, 16)}
	f.ln, err = net.Listen("unix", f.path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.ln.Close(); os.RemoveAll(dir) })
	go f.serve()
	return f
}

func (f *fakeDisplay) serve() {
	for {
		c, err := f.ln.Accept()
		if err != nil {
			return
		}
		f.mu.Lock()
		f.sessions++
		n := f.sessions
		f.mu.Unlock()
		go func() {
			defer c.Close()
			io.WriteString(c, "RFB 003.008 session "+string(rune('0'+n))+"\n")
			r := bufio.NewReader(c)
			for {
				line, err := r.ReadString('\n')
				if err != nil {
					break
				}
				io.WriteString(c, strings.ToUpper(line))
			}
			f.ended <- n
		}()
	}
}

// displayWorkspace creates and starts workspace name with the given
// profile on hv, its display socket at sock.
func displayWorkspace(t *testing.T, c *api.Client, hv *fakeHV, name, profile, sock string, start bool) {
	t.Helper()
	ctx := context.Background()
	if _, err := c.Create(ctx, api.CreateRequest{Name: name, ProfilePath: "/p.hcl", Profile: testProfile(t, profile)}); err != nil {
		t.Fatal(err)
	}
	if start {
		if _, err := c.Start(ctx, name, api.StartRequest{}); err != nil {
			t.Fatal(err)
		}
	}
	hv.mu.Lock()
	if hv.domains[name].DisplayType != "none" {
		hv.domains[name].DisplaySocket = sock
	}
	hv.mu.Unlock()
}

func readLine(t *testing.T, r *bufio.Reader, c net.Conn) string {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	s, err := r.ReadString('\n')
	if err != nil {
		t.Fatalf("read from display stream: %v (got %q)", err, s)
	}
	return strings.TrimSuffix(s, "\n")
}

func TestDisplayRefusals(t *testing.T) {
	hv := newFakeHV()
	c, _ := startDaemon(t, hv)
	ctx := context.Background()
	if _, err := importBytes(t, c, "test", qcow2Bytes(1<<30, false, 4096)); err != nil {
		t.Fatal(err)
	}
	disp := newFakeDisplay(t)
	displayWorkspace(t, c, hv, "stopped", `image = "test"`, disp.path, false)
	displayWorkspace(t, c, hv, "blind", "image = \"test\"\ndisplay {\n  type = \"none\"\n}\n", "", true)
	displayWorkspace(t, c, hv, "gone", `image = "test"`, filepath.Join(t.TempDir(), "no.sock"), true)

	for _, tc := range []struct {
		name  string
		class error
		msg   []string
	}{
		{"nope", api.ErrNotFound, []string{`no workspace named "nope"`}},
		{"Bad_Name", api.ErrInvalid, []string{"Bad_Name"}},
		{"stopped", api.ErrConflict, []string{`workspace "stopped" is stopped`, "workspace start stopped"}},
		{"blind", api.ErrConflict, []string{`workspace "blind" has no display`, `type = "none"`}},
		{"gone", api.ErrUnavailable, []string{`display of "gone"`, "no.sock"}},
	} {
		conn, err := c.Display(ctx, tc.name)
		if err == nil {
			conn.Close()
			t.Errorf("%s: display opened", tc.name)
			continue
		}
		if !errors.Is(err, tc.class) {
			t.Errorf("%s: want %v, got %v", tc.name, tc.class, err)
		}
		for _, m := range tc.msg {
			if !strings.Contains(err.Error(), m) {
				t.Errorf("%s: error %q lacks %q", tc.name, err, m)
			}
		}
	}
	disp.mu.Lock()
	if disp.sessions != 0 {
		t.Errorf("refused requests reached the display server %d times", disp.sessions)
	}
	disp.mu.Unlock()

	// A plain GET (no upgrade) is a bad request, not a hang.
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", c.Socket())
	}}}
	resp, err := hc.Get("http://workspace/v1/workspaces/stopped/display")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !bytes.Contains(b, []byte("Upgrade: workspace-display")) {
		t.Fatalf("plain GET: %s %s", resp.Status, b)
	}
}

func TestDisplaySplicesEachConnection(t *testing.T) {
	hv := newFakeHV()
	c, _ := startDaemon(t, hv)
	ctx := context.Background()
	if _, err := importBytes(t, c, "test", qcow2Bytes(1<<30, false, 4096)); err != nil {
		t.Fatal(err)
	}
	disp := newFakeDisplay(t)
	displayWorkspace(t, c, hv, "acme", `image = "test"`, disp.path, true)

	// Two connections at once, as a SPICE client opens one per channel:
	// each is its own session on the display socket.
	a, err := c.Display(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := c.Display(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ar, br := bufio.NewReader(a), bufio.NewReader(b)
	ga, gb := readLine(t, ar, a), readLine(t, br, b)
	if !strings.HasPrefix(ga, "RFB 003.008 session ") || !strings.HasPrefix(gb, "RFB 003.008 session ") || ga == gb {
		t.Fatalf("greetings %q and %q: want two sessions of the display server", ga, gb)
	}
	io.WriteString(a, "hello from a\n")
	io.WriteString(b, "hello from b\n")
	if got := readLine(t, br, b); got != "HELLO FROM B" {
		t.Fatalf("b got %q", got)
	}
	if got := readLine(t, ar, a); got != "HELLO FROM A" {
		t.Fatalf("a got %q", got)
	}
	// A large message arrives whole.
	big := strings.Repeat("x", 1<<20)
	go io.WriteString(a, big+"\n")
	if got := readLine(t, ar, a); got != strings.ToUpper(big) {
		t.Fatalf("1 MiB line came back as %d bytes", len(got))
	}

	// The viewer leaves: the daemon closes its side of the display socket.
	a.Close()
	select {
	case <-disp.ended:
	case <-time.After(5 * time.Second):
		t.Fatal("display server never saw the client leave")
	}
	// The display goes away (the VM stops): the viewer's stream ends.
	disp.ln.Close()
	b.Close()
	b2, err := c.Display(ctx, "acme")
	if err == nil {
		b2.Close()
		t.Fatal("display opened while nothing listens on its socket")
	}
}

func TestDisplayEndsWhenServerCloses(t *testing.T) {
	hv := newFakeHV()
	c, _ := startDaemon(t, hv)
	ctx := context.Background()
	if _, err := importBytes(t, c, "test", qcow2Bytes(1<<30, false, 4096)); err != nil {
		t.Fatal(err)
	}
	// A display server that greets and hangs up, like QEMU when the VM
	// powers off.
	dir := t.TempDir()
	ln, err := net.Listen("unix", filepath.Join(dir, "d.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			io.WriteString(c, "bye\n")
			c.Close()
		}
	}()
	displayWorkspace(t, c, hv, "acme", `image = "test"`, ln.Addr().String(), true)
	conn, err := c.Display(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	b, err := io.ReadAll(conn)
	if err != nil || string(b) != "bye\n" {
		t.Fatalf("want the display's bytes then EOF, got %q, %v", b, err)
	}
}

// TestDisplayLoggedAndClosedOnShutdown: connects and disconnects are
// logged, and a daemon that stops serving ends open display streams.
func TestDisplayLoggedAndClosedOnShutdown(t *testing.T) {
	dir, err := os.MkdirTemp("", "wsd")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	var logs syncBuffer
	hv := newFakeHV()
	cfg := Config{StateDir: dir, Socket: filepath.Join(dir, "d.sock"), Version: "test", UIAddr: "off",
		Logger: hclog.New(&hclog.LoggerOptions{Output: &logs, Level: hclog.Info})}
	d, err := New(cfg, hv)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	sctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	served := make(chan error, 1)
	go func() { served <- d.Serve(sctx) }()
	c := api.NewClient(cfg.Socket)
	ctx := context.Background()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, err := c.Info(ctx); err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatal(err)
		}
	}
	if _, err := importBytes(t, c, "test", qcow2Bytes(1<<30, false, 4096)); err != nil {
		t.Fatal(err)
	}
	disp := newFakeDisplay(t)
	displayWorkspace(t, c, hv, "acme", "image = \"test\"\ndisplay {\n  type = \"vnc\"\n}\n", disp.path, true)
	conn, err := c.Display(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	r := bufio.NewReader(conn)
	readLine(t, r, conn)

	cancel()
	if err := <-served; err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := r.ReadString('\n'); err != io.EOF {
		t.Fatalf("stream after the daemon stopped: want EOF, got %v", err)
	}
	select {
	case <-disp.ended:
	case <-time.After(5 * time.Second):
		t.Fatal("display server's session outlived the daemon")
	}
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(logs.String(), "display disconnected"); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			break
		}
	}
	out := logs.String()
	for _, want := range []string{"display connected", "display disconnected", "workspace=acme", "display=vnc", "uid=", "bytes_in="} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
