package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/workspace-sandbox/workspace/api"
)

// echoDisplay is a unix-socket display server for the proxy's unit tests:
// it greets every connection with its number, then echoes lines
// upper-cased.
func echoDisplay(t *testing.T) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "d.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for n := 1; ; n++ {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func(n int) {
				defer c.Close()
				io.WriteString(c, "hello "+string(rune('0'+n))+"\n")
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					io.WriteString(c, strings.ToUpper(line))
				}
			}(n)
		}
	}()
	return sock
}

func line(t *testing.T, r *bufio.Reader, c net.Conn) string {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	s, err := r.ReadString('\n')
	if err != nil {
		t.Fatalf("read: %v (got %q)", err, s)
	}
	return strings.TrimSuffix(s, "\n")
}

func TestViewProxy(t *testing.T) {
	runtime := t.TempDir()
	t.Setenv("XDG_RUNTIME_DIR", runtime)
	sock := echoDisplay(t)
	var mu sync.Mutex
	var reported []error
	fail := false
	open := func(ctx context.Context) (net.Conn, error) {
		mu.Lock()
		defer mu.Unlock()
		if fail {
			return nil, errors.New(`workspace "acme" is stopped`)
		}
		var d net.Dialer
		return d.DialContext(ctx, "unix", sock)
	}
	px, err := startViewProxy(context.Background(), open, func(err error) {
		mu.Lock()
		reported = append(reported, err)
		mu.Unlock()
	}, false)
	if err != nil {
		t.Fatal(err)
	}
	defer px.Close()

	if filepath.Dir(px.dir) != runtime {
		t.Errorf("proxy folder %s is not under $XDG_RUNTIME_DIR %s", px.dir, runtime)
	}
	fi, err := os.Stat(px.dir)
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("proxy folder: %v, mode %v; want 0700", err, fi.Mode())
	}

	// Two viewer connections at once (SPICE channels): each its own stream.
	a, err := net.Dial("unix", px.socket)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := net.Dial("unix", px.socket)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ar, br := bufio.NewReader(a), bufio.NewReader(b)
	ga, gb := line(t, ar, a), line(t, br, b)
	if !strings.HasPrefix(ga, "hello ") || !strings.HasPrefix(gb, "hello ") || ga == gb {
		t.Fatalf("greetings %q, %q: want two display sessions", ga, gb)
	}
	io.WriteString(b, "from b\n")
	io.WriteString(a, "from a\n")
	if got := line(t, ar, a); got != "FROM A" {
		t.Fatalf("a got %q", got)
	}
	if got := line(t, br, b); got != "FROM B" {
		t.Fatalf("b got %q", got)
	}

	// A stream the daemon refuses: the viewer's connection is closed and
	// the reason reported; the proxy keeps serving.
	mu.Lock()
	fail = true
	mu.Unlock()
	c, err := net.Dial("unix", px.socket)
	if err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := c.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("refused stream: want EOF, got %d bytes, %v", n, err)
	}
	c.Close()
	mu.Lock()
	if len(reported) != 1 || !strings.Contains(reported[0].Error(), "is stopped") {
		t.Fatalf("reported %v", reported)
	}
	mu.Unlock()

	// Close ends the open streams and removes the folder.
	px.Close()
	a.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := ar.ReadString('\n'); err != io.EOF {
		t.Fatalf("stream after Close: want EOF, got %v", err)
	}
	if _, err := os.Stat(px.dir); !os.IsNotExist(err) {
		t.Fatalf("proxy folder left behind: %v", err)
	}
}

// TestViewProxyLoopbackSameUserOnly: the loopback port made for
// remote-viewer's VNC serves this user and refuses every other one.
func TestViewProxyLoopbackSameUserOnly(t *testing.T) {
	t.Setenv("XDG_RUNTIME_DIR", t.TempDir())
	sock := echoDisplay(t)
	var mu sync.Mutex
	var reported []error
	opened := 0
	open := func(ctx context.Context) (net.Conn, error) {
		mu.Lock()
		opened++
		mu.Unlock()
		var d net.Dialer
		return d.DialContext(ctx, "unix", sock)
	}
	px, err := startViewProxy(context.Background(), open, func(err error) {
		mu.Lock()
		reported = append(reported, err)
		mu.Unlock()
	}, true)
	if err != nil {
		t.Fatal(err)
	}
	defer px.Close()
	if !strings.HasPrefix(px.loopback, "127.0.0.1:") {
		t.Fatalf("loopback address %q", px.loopback)
	}

	c, err := net.Dial("tcp", px.loopback)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got := line(t, bufio.NewReader(c), c); !strings.HasPrefix(got, "hello ") {
		t.Fatalf("own connection got %q", got)
	}

	if os.Getuid() != 0 {
		t.Skip("connecting as another user needs root")
	}
	// nobody connects with bash's /dev/tcp and prints whatever it gets.
	other := exec.Command("bash", "-c", `exec 3<>/dev/tcp/${0%:*}/${0##*:} && timeout 3 cat <&3`, px.loopback)
	other.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := other.CombinedOutput()
	if len(out) > 0 {
		t.Fatalf("another user got display bytes: %q (%v)", out, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if opened != 1 {
		t.Errorf("the display was opened %d times, want once (for this user only)", opened)
	}
	if len(reported) != 1 || !strings.Contains(reported[0].Error(), "uid 65534") {
		t.Fatalf("refusal not reported: %v", reported)
	}
}

func TestPeerUIDIn(t *testing.T) {
	table := `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:A000 0100007F:9C40 06 00000000:00000000 03:00000FA0 00000000     0        0 0 3 0000000000000000
   1: 0100007F:A000 0100007F:9C40 01 00000000:00000000 00:00000000 00000000  1000        0 4242 1 0000000000000000 20 4 30 10 -1
   2: 0100007F:9C40 0100007F:A000 01 00000000:00000000 00:00000000 00000000     0        0 4243 1 0000000000000000 20 4 30 10 -1
`
	peer := netip.MustParseAddrPort("127.0.0.1:40960")
	us := netip.MustParseAddrPort("127.0.0.1:40000")
	uid, err := peerUIDIn(bufio.NewScanner(strings.NewReader(table)), peer, us)
	if err != nil || uid != 1000 {
		t.Fatalf("uid = %d, %v; want 1000 (the established socket, not the TIME_WAIT one)", uid, err)
	}
	if _, err := peerUIDIn(bufio.NewScanner(strings.NewReader(table)), netip.MustParseAddrPort("127.0.0.1:1"), us); err == nil {
		t.Fatal("found a socket that is not in the table")
	}
	if _, err := peerUIDIn(bufio.NewScanner(strings.NewReader(table)), netip.MustParseAddrPort("[::1]:40960"), us); err == nil {
		t.Fatal("IPv6 peer accepted")
	}
}

func TestViewScheme(t *testing.T) {
	for _, tc := range []struct {
		w       api.Workspace
		scheme  string
		message string
	}{
		{api.Workspace{Name: "a", State: "running", Display: "vnc", DisplaySocket: "/s"}, "vnc+unix", ""},
		{api.Workspace{Name: "a", State: "running", Display: "spice", DisplaySocket: "/s"}, "spice+unix", ""},
		{api.Workspace{Name: "a", State: "running", Display: "none"}, "", `workspace "a" has no display`},
		{api.Workspace{Name: "a", State: "stopped", Display: "vnc", DisplaySocket: "/s"}, "", "workspace start a"},
	} {
		got, err := viewScheme(tc.w)
		if tc.message == "" && (err != nil || got != tc.scheme) {
			t.Errorf("%+v: got %q, %v; want %q", tc.w, got, err, tc.scheme)
		}
		if tc.message != "" && (err == nil || !strings.Contains(err.Error(), tc.message)) {
			t.Errorf("%+v: got %q, %v; want an error saying %q", tc.w, got, err, tc.message)
		}
	}
}

// TestRunViewerArguments runs a stand-in viewer (a shell script) that
// records how it was called.
func TestRunViewerArguments(t *testing.T) {
	dir := t.TempDir()
	rec := filepath.Join(dir, "args")
	viewer := filepath.Join(dir, "viewer")
	os.WriteFile(viewer, []byte("#!/bin/sh\nprintf '%s\\n' \"$@\" > "+rec+"\nexit ${VIEWER_EXIT:-0}\n"), 0o755)
	var out bytes.Buffer
	a := &app{stdout: &out, stderr: &out}
	uri := "vnc+unix:///run/user/1000/workspace-view-1/display.sock"
	if err := runViewer(context.Background(), a, viewer, "acme", uri); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(rec)
	if got := strings.Split(strings.TrimSpace(string(b)), "\n"); strings.Join(got, "|") != "--title|acme - workspace|"+uri {
		t.Fatalf("viewer called with %q", got)
	}
	t.Setenv("VIEWER_EXIT", "3")
	err := runViewer(context.Background(), a, viewer, "acme", uri)
	if err == nil || !strings.Contains(err.Error(), `view "acme"`) || !strings.Contains(err.Error(), "exit status 3") {
		t.Fatalf("viewer failing: %v", err)
	}
}

// TestViewWithoutRemoteViewer: the built binary, without remote-viewer on
// PATH, says what to install and does nothing else (it does not even ask
// the daemon, and makes no socket folder).
func TestViewWithoutRemoteViewer(t *testing.T) {
	runtime := t.TempDir()
	cmd := exec.Command(binPath, "view", "acme")
	cmd.Env = []string{"PATH=" + t.TempDir(), "XDG_RUNTIME_DIR=" + runtime, "TMPDIR=" + runtime,
		"DISPLAY=:99", "WORKSPACE_SOCKET=" + filepath.Join(t.TempDir(), "nothing.sock")}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() == 0 {
		t.Fatalf("want a non-zero exit, got %v", err)
	}
	if !strings.Contains(stderr.String(), "remote-viewer is not installed") || !strings.Contains(stderr.String(), "sudo apt install virt-viewer") {
		t.Fatalf("stderr does not say what to install:\n%s", stderr.String())
	}
	if strings.Contains(stderr.String(), "daemon") || stdout.Len() > 0 {
		t.Fatalf("view did more than say what to install:\nstdout: %s\nstderr: %s", stdout.String(), stderr.String())
	}
	if entries, _ := os.ReadDir(runtime); len(entries) > 0 {
		t.Fatalf("view left %v in $XDG_RUNTIME_DIR", entries)
	}

	// A viewer named with --viewer that does not exist is named back.
	r := cli(t, filepath.Join(t.TempDir(), "nothing.sock"), "view", "acme", "--viewer", "/nonexistent/viewer")
	if r.code == 0 || !strings.Contains(r.stderr, "/nonexistent/viewer") {
		t.Fatalf("--viewer missing: %s", r)
	}
}

func TestViewWithoutGraphicalSession(t *testing.T) {
	cmd := exec.Command(binPath, "view", "acme", "--viewer", "/bin/true")
	cmd.Env = []string{"PATH=/usr/bin:/bin", "WORKSPACE_SOCKET=" + filepath.Join(t.TempDir(), "nothing.sock")}
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "DISPLAY and WAYLAND_DISPLAY are unset") || !strings.Contains(string(out), "--print") {
		t.Fatalf("want an error about the missing graphical session, got %v:\n%s", err, out)
	}
}
