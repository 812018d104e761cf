package api

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"regexp"
)

// ExecProtocol is the HTTP Upgrade token of `workspace exec` and `workspace
// shell` (GET /v1/workspaces/NAME/exec?arg=...&user=...&stdin=1, upgraded).
// After "101 Switching Protocols" the client sends the command's stdin as
// raw bytes (only with stdin=1; closing its write side is EOF) and the
// daemon sends ExecFrame JSON lines: output as it comes, then one frame with
// the exit status (or an error).
const ExecProtocol = "workspace-exec"

// ExecRequest is a command to run in a workspace's guest through the QEMU
// guest agent.
type ExecRequest struct {
	Argv []string
	// User runs the command as that guest user; "" is the desktop user
	// (the guest's uid 1000), with its X display set.
	User string
	// Stdin streams the client's stdin to the command.
	Stdin bool
}

// ExecFrame is one line the daemon sends on an exec stream.
type ExecFrame struct {
	Stdout []byte `json:"stdout,omitempty"`
	Stderr []byte `json:"stderr,omitempty"`
	// Exit is the command's exit status (128+N when a signal N ended it).
	Exit *int `json:"exit,omitempty"`
	// Error ends the stream when the command's status cannot be known.
	Error string `json:"error,omitempty"`
}

// MaxExecArgs bounds a command line sent to the guest agent.
const (
	MaxExecArgs     = 256
	MaxExecArgBytes = 64 << 10
	// maxExecFrame bounds one frame line (output is sent in chunks of at
	// most 64 KiB, base64 in JSON).
	maxExecFrame = 256 << 10
)

var guestUserRE = regexp.MustCompile(`^[a-z_][a-z0-9_-]{0,31}$`)

// Validate checks the command line and the user name.
func (r ExecRequest) Validate() error {
	if len(r.Argv) == 0 || r.Argv[0] == "" {
		return fmt.Errorf("%w: exec: no command", ErrInvalid)
	}
	if len(r.Argv) > MaxExecArgs {
		return fmt.Errorf("%w: exec: %d arguments, at most %d", ErrInvalid, len(r.Argv), MaxExecArgs)
	}
	n := 0
	for _, a := range r.Argv {
		n += len(a)
	}
	if n > MaxExecArgBytes {
		return fmt.Errorf("%w: exec: the command line is %d bytes, at most %d", ErrInvalid, n, MaxExecArgBytes)
	}
	if r.User != "" && !guestUserRE.MatchString(r.User) {
		return fmt.Errorf("%w: exec: %q is not a user name (lower-case letters, digits, '_', '-')", ErrInvalid, r.User)
	}
	return nil
}

// Query is the request's form in the upgrade URL.
func (r ExecRequest) Query() url.Values {
	q := url.Values{"arg": r.Argv}
	if r.User != "" {
		q.Set("user", r.User)
	}
	if r.Stdin {
		q.Set("stdin", "1")
	}
	return q
}

// ExecRequestFrom reads a request from the upgrade URL's query.
func ExecRequestFrom(q url.Values) (ExecRequest, error) {
	r := ExecRequest{Argv: q["arg"], User: q.Get("user"), Stdin: q.Get("stdin") == "1"}
	return r, r.Validate()
}

// Exec starts a command in a running workspace and returns the upgraded
// stream (see ExecProtocol); ReadExecFrames reads it.
func (c *Client) Exec(ctx context.Context, name string, req ExecRequest) (net.Conn, error) {
	if err := req.Validate(); err != nil {
		return nil, err
	}
	return c.upgrade(ctx, c.url("/workspaces/"+url.PathEscape(name)+"/exec", req.Query()), ExecProtocol, "exec")
}

// ReadExecFrames copies an exec stream's output to stdout and stderr and
// returns the command's exit status.
func ReadExecFrames(r io.Reader, stdout, stderr io.Writer) (int, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxExecFrame)
	for sc.Scan() {
		var f ExecFrame
		if err := json.Unmarshal(sc.Bytes(), &f); err != nil {
			return 0, fmt.Errorf("exec stream: bad frame: %w", err)
		}
		if len(f.Stdout) > 0 {
			if _, err := stdout.Write(f.Stdout); err != nil {
				return 0, fmt.Errorf("exec: write output: %w", err)
			}
		}
		if len(f.Stderr) > 0 {
			if _, err := stderr.Write(f.Stderr); err != nil {
				return 0, fmt.Errorf("exec: write output: %w", err)
			}
		}
		if f.Error != "" {
			return 0, fmt.Errorf("%w: exec: %s", ErrUnavailable, f.Error)
		}
		if f.Exit != nil {
			return *f.Exit, nil
		}
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("exec stream: %w", err)
	}
	return 0, errors.New("exec stream: the daemon closed it before the command's exit status")
}
