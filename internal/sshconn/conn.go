package sshconn

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/workspace-sandbox/workspace/api"
)

// Exit statuses of `workspace system dial-stdio` when it cannot connect to
// its daemon, so the client can tell the cases apart through ssh (which
// exits with the remote command's status).
const (
	ExitNoDaemon  = 3 // no daemon listens on the server's socket
	ExitForbidden = 4 // the SSH user may not open the server's socket
)

// exitNotFound is the shell's status for a command it cannot find;
// sshFailed is ssh's own when it fails (it exits with the remote command's
// status otherwise).
const (
	exitNotFound = 127
	sshFailed    = 255
)

// RemoteCommand is what runs on the server: the daemon's API on stdin and
// stdout.
var RemoteCommand = []string{"workspace", "system", "dial-stdio"}

// Dialer runs one ssh process per connection.
type Dialer struct {
	Target Target
	// Command is the ssh program and its first arguments: ["ssh"] unless
	// the user says otherwise (WORKSPACE_SSH_COMMAND).
	Command []string
	// Remote is the command to run on the server (RemoteCommand when nil).
	Remote []string
}

// waitAfterEOF bounds how long a connection waits, once ssh's output has
// ended, for ssh to exit and say why.
const waitAfterEOF = 5 * time.Second

// closeGrace is how long a closed connection's ssh may take to exit on its
// own (its input ended) before it is killed.
const closeGrace = 3 * time.Second

// Dial starts ssh and returns its stdin and stdout as a connection. SSH's
// handshake runs while the first request is sent: its failures (an
// unreachable host, a refused key, an unknown host key, a server without
// `workspace`) come back from Read and Write as an *Error, with what ssh
// said.
func (d *Dialer) Dial(ctx context.Context) (net.Conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	command := d.Command
	if len(command) == 0 {
		command = []string{"ssh"}
	}
	remote := d.Remote
	if remote == nil {
		remote = RemoteCommand
	}
	args := append(append([]string{}, command[1:]...), d.Target.Args(remote...)...)
	cmd := exec.Command(command[0], args...)
	inR, inW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("ssh to %s: %w", d.Target, err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		inR.Close()
		inW.Close()
		return nil, fmt.Errorf("ssh to %s: %w", d.Target, err)
	}
	c := &conn{target: d.Target, stdin: inW, stdout: outR, stderr: &tail{max: 4096}, done: make(chan struct{})}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = inR, outW, c.stderr
	// A process ssh leaves behind (a ProxyCommand) must not hold Wait.
	cmd.WaitDelay = 2 * time.Second
	err = cmd.Start()
	inR.Close()
	outW.Close()
	if err != nil {
		inW.Close()
		outR.Close()
		if errors.Is(err, exec.ErrNotFound) {
			return nil, fmt.Errorf("%w: the ssh client %q is not installed (on Debian: apt install openssh-client; or set WORKSPACE_SSH_COMMAND): %v", api.ErrUnavailable, command[0], err)
		}
		return nil, fmt.Errorf("%w: run %s: %v", api.ErrUnavailable, command[0], err)
	}
	c.cmd = cmd
	go func() {
		c.waitErr = cmd.Wait()
		close(c.done)
	}()
	return c, nil
}

// conn is one ssh process's stdin and stdout.
type conn struct {
	target  Target
	cmd     *exec.Cmd
	stdin   *os.File // ours: what we write, ssh reads
	stdout  *os.File // ours: what ssh writes, we read
	stderr  *tail
	done    chan struct{} // closed when ssh has exited; then waitErr is set
	waitErr error

	read   atomic.Int64
	closed atomic.Bool
	once   sync.Once

	// head is the stream's first bytes, up to len(httpStart), checked
	// as they arrive (only Read touches it).
	head []byte
}

// httpStart is how every stream from the daemon begins: the daemon's
// answer to the first request is an HTTP response.
const httpStart = "HTTP/"

func (c *conn) Read(p []byte) (int, error) {
	n, err := c.stdout.Read(p)
	c.read.Add(int64(n))
	if len(c.head) < len(httpStart) && n > 0 {
		k := min(n, len(httpStart)-len(c.head))
		c.head = append(c.head, p[:k]...)
		if !strings.HasPrefix(httpStart, string(c.head)) {
			return 0, c.stray(p[:n])
		}
	}
	if err != nil {
		err = c.explain(err)
	}
	return n, err
}

// stray ends a stream that did not begin with the daemon's answer: a
// login shell or ~/.bashrc on the server printed text, or the account
// cannot run commands (nologin). got is what was read so far.
func (c *conn) stray(got []byte) error {
	text := append([]byte{}, got...)
	if len(text) < 200 {
		_ = c.stdout.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		buf := make([]byte, 200-len(text))
		n, _ := io.ReadFull(c.stdout, buf)
		text = append(text, buf[:n]...)
		_ = c.stdout.SetReadDeadline(time.Time{})
	}
	select {
	case <-c.done:
	case <-time.After(2 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.done
	}
	e := c.failure()
	e.Stray = Escape(strings.TrimSpace(string(text)))
	return e
}

func (c *conn) Write(p []byte) (int, error) {
	n, err := c.stdin.Write(p)
	if err != nil {
		err = c.explain(err)
	}
	return n, err
}

// explain turns the end of ssh's output, or a write ssh no longer reads,
// into what happened to ssh.
func (c *conn) explain(err error) error {
	if c.closed.Load() {
		return net.ErrClosed
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return err
	}
	select {
	case <-c.done:
	case <-time.After(waitAfterEOF):
		return err
	}
	if c.waitErr == nil && errors.Is(err, io.EOF) {
		return io.EOF // the server ended the stream: a normal end
	}
	return c.failure()
}

// failure describes how ssh ended.
func (c *conn) failure() *Error {
	e := &Error{Target: c.target.String(), Started: c.read.Load() > 0, Said: c.stderr.String(), Code: -1}
	var ee *exec.ExitError
	switch {
	case c.waitErr == nil:
		e.How = "ssh exited"
		e.Code = 0
	case errors.As(c.waitErr, &ee) && ee.Exited():
		e.Code = ee.ExitCode()
		e.How = fmt.Sprintf("ssh exited with status %d", e.Code)
	case errors.As(c.waitErr, &ee):
		e.How = "ssh was ended by " + ee.ProcessState.String()
	default:
		e.How = "ssh: " + c.waitErr.Error()
	}
	return e
}

// CloseWrite ends what ssh reads: the server sees the end of the stream.
func (c *conn) CloseWrite() error { return c.stdin.Close() }

// Close ends the connection: ssh's input ends (the server's dial-stdio
// then closes its side) and ssh is killed if it has not exited a few
// seconds later.
func (c *conn) Close() error {
	c.once.Do(func() {
		c.closed.Store(true)
		c.stdin.Close()
		c.stdout.Close()
		go func() {
			select {
			case <-c.done:
			case <-time.After(closeGrace):
				_ = c.cmd.Process.Kill()
			}
		}()
	})
	return nil
}

func (c *conn) LocalAddr() net.Addr  { return addr("ssh client") }
func (c *conn) RemoteAddr() net.Addr { return addr(c.target.String()) }

// SetDeadline sets the read and write deadlines (pipes support them on
// Unix; elsewhere it returns an error and reads wait until data or close).
func (c *conn) SetDeadline(t time.Time) error {
	return errors.Join(c.stdout.SetReadDeadline(t), c.stdin.SetWriteDeadline(t))
}
func (c *conn) SetReadDeadline(t time.Time) error  { return c.stdout.SetReadDeadline(t) }
func (c *conn) SetWriteDeadline(t time.Time) error { return c.stdin.SetWriteDeadline(t) }

type addr string

func (a addr) Network() string { return "ssh" }
func (a addr) String() string  { return string(a) }

// Error is how an ssh connection to a daemon failed.
type Error struct {
	Target  string // the ssh:// URL
	Started bool   // whether the daemon's stream had begun (the connection was lost, rather than never made)
	How     string // how ssh ended: "ssh exited with status 255", "ssh was ended by signal: killed"
	Code    int    // ssh's exit status (the remote command's, when it ran); -1 when killed
	Said    string // the end of what ssh and the remote command wrote to stderr, control characters escaped
	// Stray is what the server wrote where the daemon's answer should
	// have begun (escaped), when it wrote something else.
	Stray string
}

func (e *Error) Error() string {
	said := orNothing(e.Said)
	switch {
	case e.Stray != "":
		return fmt.Sprintf("the server wrote %q where the daemon's answer should begin: its login shell or ~/.bashrc there prints text, or the account cannot run commands (%s; stderr: %s)", e.Stray, e.How, said)
	case e.Code == exitNotFound && !e.Started:
		return fmt.Sprintf("`%s` did not run on the server: is workspace installed there, and on the PATH of non-interactive ssh sessions? (%s: %s)", strings.Join(RemoteCommand, " "), e.How, said)
	case e.Code == ExitNoDaemon || e.Code == ExitForbidden:
		return "on the server: " + said
	case e.Started:
		return fmt.Sprintf("the ssh connection was lost (%s): %s", e.How, said)
	case e.Code > 0 && e.Code != sshFailed:
		return fmt.Sprintf("`%s` failed on the server (exit status %d): %s", strings.Join(RemoteCommand, " "), e.Code, said)
	}
	return fmt.Sprintf("ssh could not connect (%s): %s", e.How, said)
}

func orNothing(s string) string {
	if s == "" {
		return "it said nothing"
	}
	return s
}

// Is lets errors.Is see the daemon's error classes: no daemon on the
// server, a refused SSH user, or an unreachable server.
func (e *Error) Is(target error) bool {
	switch target {
	case api.ErrDaemonNotRunning:
		return e.Code == ExitNoDaemon
	case api.ErrForbidden:
		return e.Code == ExitForbidden
	case api.ErrUnavailable:
		return e.Code != ExitNoDaemon && e.Code != ExitForbidden
	}
	return false
}

// tail keeps the last max bytes written to it.
type tail struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = append(t.b[:0], t.b[len(t.b)-t.max:]...)
	}
	return len(p), nil
}

// String is what was written, trimmed, with control characters (other
// than new lines) escaped: the server's words cannot move the cursor or
// color the user's terminal.
func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return Escape(strings.TrimSpace(string(t.b)))
}

// Escape shows control characters other than new lines as \xNN and
// invalid UTF-8 as \uFFFD.
func Escape(s string) string {
	var b strings.Builder
	for _, r := range strings.ToValidUTF8(s, string(utf8.RuneError)) {
		switch {
		case r == '\n':
			b.WriteRune(r)
		case r == '\r':
			// "\r\n" from a remote terminal: keep only the new line.
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0):
			fmt.Fprintf(&b, "\\x%02x", r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}
