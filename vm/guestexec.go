package vm

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// ExecResult is what a command run in the guest left behind.
type ExecResult struct {
	ExitCode int
	Stdout   []byte
	Stderr   []byte
}

// ErrNoGuestAgent means the guest's qemu-guest-agent did not answer.
var ErrNoGuestAgent = errors.New("qemu-guest-agent not answering")

// GuestExec runs argv in the guest through qemu-guest-agent (guest-exec,
// then guest-exec-status until it exits or ctx ends) and returns its exit
// code and output. Libvirt owns the agent's channel; this is its
// qemu-agent-command passthrough.
func (d *Driver) GuestExec(ctx context.Context, name string, argv []string) (ExecResult, error) {
	if len(argv) == 0 {
		return ExecResult{}, errors.New("guest exec: no command")
	}
	start, err := json.Marshal(map[string]any{
		"execute": "guest-exec",
		"arguments": map[string]any{
			"path": argv[0], "arg": argv[1:], "capture-output": true,
		},
	})
	if err != nil {
		return ExecResult{}, err
	}
	var started struct {
		Return struct {
			PID int `json:"pid"`
		} `json:"return"`
	}
	if err := d.agentCommand(name, string(start), &started); err != nil {
		return ExecResult{}, fmt.Errorf("guest exec %q in %s: %w", argv[0], d.DomainName(name), err)
	}
	status := fmt.Sprintf(`{"execute":"guest-exec-status","arguments":{"pid":%d}}`, started.Return.PID)
	for {
		var st struct {
			Return struct {
				Exited   bool   `json:"exited"`
				ExitCode int    `json:"exitcode"`
				Signal   int    `json:"signal"`
				OutData  string `json:"out-data"`
				ErrData  string `json:"err-data"`
			} `json:"return"`
		}
		if err := d.agentCommand(name, status, &st); err != nil {
			return ExecResult{}, fmt.Errorf("guest exec %q in %s: %w", argv[0], d.DomainName(name), err)
		}
		if st.Return.Exited {
			r := ExecResult{ExitCode: st.Return.ExitCode}
			r.Stdout, _ = base64.StdEncoding.DecodeString(st.Return.OutData)
			r.Stderr, _ = base64.StdEncoding.DecodeString(st.Return.ErrData)
			if st.Return.Signal != 0 {
				r.ExitCode = 128 + st.Return.Signal
			}
			return r, nil
		}
		select {
		case <-ctx.Done():
			return ExecResult{}, fmt.Errorf("guest exec %q in %s: %w", argv[0], d.DomainName(name), ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// GuestExecStart starts argv in the guest (guest-exec) without waiting;
// input, when not nil, is the command's whole stdin. It returns the guest's
// pid for GuestExecStatus.
func (d *Driver) GuestExecStart(ctx context.Context, name string, argv []string, input []byte) (int, error) {
	if len(argv) == 0 {
		return 0, errors.New("guest exec: no command")
	}
	args := map[string]any{"path": argv[0], "arg": argv[1:]}
	if input != nil {
		args["input-data"] = base64.StdEncoding.EncodeToString(input)
	}
	var started struct {
		Return struct {
			PID int `json:"pid"`
		} `json:"return"`
	}
	if err := d.agentExecute(name, "guest-exec", args, &started); err != nil {
		return 0, fmt.Errorf("guest exec %q in %s: %w", argv[0], d.DomainName(name), err)
	}
	return started.Return.PID, nil
}

// ExecStatus is guest-exec-status: whether the command exited and how.
type ExecStatus struct {
	Exited bool
	// ExitCode is the exit status, or 128+N for a signal N.
	ExitCode int
}

// GuestExecStatus asks whether the command pid started by GuestExecStart
// has exited.
func (d *Driver) GuestExecStatus(ctx context.Context, name string, pid int) (ExecStatus, error) {
	var st struct {
		Return struct {
			Exited   bool `json:"exited"`
			ExitCode int  `json:"exitcode"`
			Signal   int  `json:"signal"`
		} `json:"return"`
	}
	if err := d.agentExecute(name, "guest-exec-status", map[string]any{"pid": pid}, &st); err != nil {
		return ExecStatus{}, fmt.Errorf("guest exec status in %s: %w", d.DomainName(name), err)
	}
	out := ExecStatus{Exited: st.Return.Exited, ExitCode: st.Return.ExitCode}
	if st.Return.Signal != 0 {
		out.ExitCode = 128 + st.Return.Signal
	}
	return out, nil
}

// GuestFileOpen opens a file in the guest (guest-file-open; mode as
// fopen's) and returns its handle.
func (d *Driver) GuestFileOpen(ctx context.Context, name, path, mode string) (int, error) {
	var r struct {
		Return int `json:"return"`
	}
	if err := d.agentExecute(name, "guest-file-open", map[string]any{"path": path, "mode": mode}, &r); err != nil {
		return 0, fmt.Errorf("open %s in %s: %w", path, d.DomainName(name), err)
	}
	return r.Return, nil
}

// GuestFileRead reads up to count bytes at the handle's position.
func (d *Driver) GuestFileRead(ctx context.Context, name string, handle, count int) ([]byte, error) {
	var r struct {
		Return struct {
			Count  int    `json:"count"`
			BufB64 string `json:"buf-b64"`
		} `json:"return"`
	}
	if err := d.agentExecute(name, "guest-file-read", map[string]any{"handle": handle, "count": count}, &r); err != nil {
		return nil, fmt.Errorf("read a guest file in %s: %w", d.DomainName(name), err)
	}
	b, err := base64.StdEncoding.DecodeString(r.Return.BufB64)
	if err != nil {
		return nil, fmt.Errorf("read a guest file in %s: %w", d.DomainName(name), err)
	}
	return b, nil
}

// GuestFileSeek moves the handle's position to offset from the start. It
// also clears the end-of-file mark, which glibc's stdio keeps (since 2.28):
// a file read to its end and then grown is read further only after a seek.
func (d *Driver) GuestFileSeek(ctx context.Context, name string, handle int, offset int64) error {
	if err := d.agentExecute(name, "guest-file-seek", map[string]any{"handle": handle, "offset": offset, "whence": "set"}, nil); err != nil {
		return fmt.Errorf("seek in a guest file in %s: %w", d.DomainName(name), err)
	}
	return nil
}

// GuestFileWrite writes data at the handle's position and flushes it.
func (d *Driver) GuestFileWrite(ctx context.Context, name string, handle int, data []byte) error {
	args := map[string]any{"handle": handle, "buf-b64": base64.StdEncoding.EncodeToString(data)}
	if err := d.agentExecute(name, "guest-file-write", args, nil); err != nil {
		return fmt.Errorf("write a guest file in %s: %w", d.DomainName(name), err)
	}
	if err := d.agentExecute(name, "guest-file-flush", map[string]any{"handle": handle}, nil); err != nil {
		return fmt.Errorf("flush a guest file in %s: %w", d.DomainName(name), err)
	}
	return nil
}

// GuestFileClose closes a handle of GuestFileOpen.
func (d *Driver) GuestFileClose(ctx context.Context, name string, handle int) error {
	if err := d.agentExecute(name, "guest-file-close", map[string]any{"handle": handle}, nil); err != nil {
		return fmt.Errorf("close a guest file in %s: %w", d.DomainName(name), err)
	}
	return nil
}

// agentExecute sends one QGA command with arguments.
func (d *Driver) agentExecute(name, execute string, args any, out any) error {
	cmd, err := json.Marshal(map[string]any{"execute": execute, "arguments": args})
	if err != nil {
		return err
	}
	return d.agentCommand(name, string(cmd), out)
}

// GuestPing tells whether the guest's qemu-guest-agent answers.
func (d *Driver) GuestPing(ctx context.Context, name string) error {
	if err := d.agentCommand(name, `{"execute":"guest-ping"}`, nil); err != nil {
		return fmt.Errorf("guest ping %s: %w", d.DomainName(name), err)
	}
	return nil
}

// agentCommand sends one QGA command through libvirt (5 s timeout) and
// decodes the reply into out.
func (d *Driver) agentCommand(name, cmd string, out any) error {
	l, dom, err := d.domain(name)
	if err != nil {
		return err
	}
	res, err := l.QEMUDomainAgentCommand(dom, cmd, 5, 0)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrNoGuestAgent, d.lverr(err))
	}
	if out == nil {
		return nil
	}
	if len(res) == 0 {
		return fmt.Errorf("%w: empty reply", ErrNoGuestAgent)
	}
	if err := json.Unmarshal([]byte(res[0]), out); err != nil {
		return fmt.Errorf("decode agent reply: %w", err)
	}
	return nil
}
