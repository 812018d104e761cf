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
