package sshconn

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/workspace-sandbox/workspace/api"
)

// The test binary stands in for ssh when FAKE_SSH names what it should do
// (unit tests only: the end-to-end test in cmd/workspace runs the real
// OpenSSH client and server).
func TestMain(m *testing.M) {
	if mode := os.Getenv("FAKE_SSH"); mode != "" {
		os.Exit(fakeSSH(mode))
	}
	os.Exit(m.Run())
}

func fakeSSH(mode string) int {
	if f := os.Getenv("FAKE_SSH_ARGS"); f != "" {
		os.WriteFile(f, []byte(strings.Join(os.Args[1:], "\n")), 0o600)
	}
	switch mode {
	case "echo": // the remote command copies its input back (tests write HTTP), then exits 0
		io.Copy(os.Stdout, os.Stdin)
		return 0
	case "refused":
		fmt.Fprintln(os.Stderr, "ssh: connect to host lab port 2222: Connection refused")
		return 255
	case "nodaemon":
		fmt.Fprintln(os.Stderr, "workspace daemon is not running on lab (no daemon listens on /run/workspace/workspace.sock)")
		return ExitNoDaemon
	case "notfound":
		fmt.Fprintln(os.Stderr, "bash: line 1: workspace: command not found")
		return 127
	case "hostile":
		fmt.Fprint(os.Stderr, "Permission denied\x1b[2J\x1b[31m (publickey).\r\n")
		return 255
	case "hello-then-hang": // answers, then hangs until killed
		os.Stdout.WriteString("HTTP/")
		time.Sleep(time.Hour)
	case "banner": // a ~/.bashrc that prints, then the real stream
		os.Stdout.WriteString("Welcome to lab!\r\n\x1b[1m")
		io.Copy(os.Stdout, os.Stdin)
		return 0
	case "nologin":
		os.Stdout.WriteString("This account is currently not available.\n")
		return 1
	case "deaf": // ignores the end of its input
		io.Copy(io.Discard, os.Stdin)
		time.Sleep(time.Hour)
	}
	return 1
}

func fakeDialer(t *testing.T, mode string) *Dialer {
	t.Helper()
	t.Setenv("FAKE_SSH", mode)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return &Dialer{Target: Target{User: "alice", Host: "lab", Port: 2222}, Command: []string{exe, "-F", "cfg"}}
}

func TestEchoAndNormalEnd(t *testing.T) {
	d := fakeDialer(t, "echo")
	args := filepath.Join(t.TempDir(), "args")
	t.Setenv("FAKE_SSH_ARGS", args)
	c, err := d.Dial(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("HTTP/1.1 200 OK\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	c.(interface{ CloseWrite() error }).CloseWrite()
	b, err := io.ReadAll(c)
	if err != nil || string(b) != "HTTP/1.1 200 OK\r\n\r\n" {
		t.Fatalf("echo: %q, %v", b, err)
	}
	got, _ := os.ReadFile(args)
	want := "-F\ncfg\n-T\n-x\n-a\n-e\nnone\n-o\nClearAllForwardings=yes\n-o\nRemoteCommand=none\n-l\nalice\n-p\n2222\n--\nlab\nworkspace\nsystem\ndial-stdio"
	if string(got) != want {
		t.Fatalf("ssh's arguments:\n%s\nwant\n%s", got, want)
	}
	if c.RemoteAddr().String() != "ssh://alice@lab:2222" || c.RemoteAddr().Network() != "ssh" {
		t.Fatalf("remote address %v", c.RemoteAddr())
	}
}

// readErr reads until an error.
func readErr(t *testing.T, c net.Conn) (string, error) {
	t.Helper()
	b, err := io.ReadAll(c)
	if err == nil {
		t.Fatalf("read %q and a normal end, want an error", b)
	}
	return string(b), err
}

func TestFailures(t *testing.T) {
	for _, tc := range []struct {
		mode  string
		want  []string
		class error
	}{
		{"refused", []string{"ssh could not connect (ssh exited with status 255)", "Connection refused"}, api.ErrUnavailable},
		{"nodaemon", []string{"on the server: workspace daemon is not running on lab"}, api.ErrDaemonNotRunning},
		{"notfound", []string{"`workspace system dial-stdio` did not run on the server", "PATH", "command not found"}, api.ErrUnavailable},
		{"hostile", []string{`Permission denied\x1b[2J\x1b[31m (publickey).`}, api.ErrUnavailable},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			c, err := fakeDialer(t, tc.mode).Dial(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_, err = readErr(t, c)
			var se *Error
			if !errors.As(err, &se) || !errors.Is(err, tc.class) {
				t.Fatalf("error %v (%T), want an *Error of class %v", err, err, tc.class)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if strings.ContainsRune(err.Error(), 0x1b) {
				t.Errorf("an escape character reached the message: %q", err)
			}
			// Writing to the dead ssh says the same.
			if _, werr := c.Write([]byte("more")); werr == nil || !errors.As(werr, &se) {
				t.Errorf("write after ssh ended: %v", werr)
			}
		})
	}
}

// TestStrayOutput: a stream that does not begin as the daemon's answers do
// (a login shell's or ~/.bashrc's text, nologin) is refused with that text.
func TestStrayOutput(t *testing.T) {
	for mode, want := range map[string]string{
		"banner":  `the server wrote "Welcome to lab!\n\\x1b[1mHTTP/1.1 200 OK" where the daemon's answer should begin`,
		"nologin": `the server wrote "This account is currently not available." where the daemon's answer should begin`,
	} {
		c, err := fakeDialer(t, mode).Dial(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		c.Write([]byte("HTTP/1.1 200 OK\r\n\r\n")) // echoed by "banner"
		_, err = readErr(t, c)
		c.Close()
		if !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "~/.bashrc") {
			t.Errorf("%s: %v\nwant %s", mode, err, want)
		}
	}
	// A stream that begins right passes unchanged, even byte by byte.
	c, err := fakeDialer(t, "echo").Dial(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("HTTP/1.1 204 No Content\r\n\r\n"))
	c.(interface{ CloseWrite() error }).CloseWrite()
	var got []byte
	one := make([]byte, 1)
	for {
		n, err := c.Read(one)
		got = append(got, one[:n]...)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if string(got) != "HTTP/1.1 204 No Content\r\n\r\n" {
		t.Fatalf("read %q", got)
	}
}

func TestKilledMidStream(t *testing.T) {
	c, err := fakeDialer(t, "hello-then-hang").Dial(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 5)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "HTTP/" {
		t.Fatalf("read %q, %v", buf, err)
	}
	c.(*conn).cmd.Process.Kill()
	_, err = readErr(t, c)
	if !strings.Contains(err.Error(), "the ssh connection was lost (ssh was ended by signal: killed)") {
		t.Fatalf("after kill: %v", err)
	}
}

func TestDeadline(t *testing.T) {
	c, err := fakeDialer(t, "hello-then-hang").Dial(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 5)
	io.ReadFull(c, buf)
	c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if _, err := c.Read(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read past the deadline: %v", err)
	}
	// The connection still works after a deadline passed.
	c.SetReadDeadline(time.Time{})
	if _, err := c.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
}

func TestCloseKillsADeafSSH(t *testing.T) {
	c, err := fakeDialer(t, "deaf").Dial(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	pid := c.(*conn).cmd.Process.Pid
	done := c.(*conn).done
	start := time.Now()
	c.Close()
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("read after close: %v", err)
	}
	select {
	case <-done:
	case <-time.After(closeGrace + 5*time.Second):
		t.Fatalf("ssh (pid %d) still runs %s after close", pid, time.Since(start))
	}
	if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); err == nil {
		t.Fatalf("ssh (pid %d) left a process behind", pid)
	}
}

func TestNoSSHClient(t *testing.T) {
	d := &Dialer{Target: Target{Host: "lab"}, Command: []string{"no-such-ssh-client-here"}}
	_, err := d.Dial(context.Background())
	if err == nil || !strings.Contains(err.Error(), "not installed") || !errors.Is(err, api.ErrUnavailable) {
		t.Fatalf("dial without ssh: %v", err)
	}
}
