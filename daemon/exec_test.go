package daemon

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/workspace-sandbox/workspace/api"
	"github.com/workspace-sandbox/workspace/vm"
)

// silentAgentHV is a hypervisor whose guests have no guest agent
// answering (as a guest without qemu-guest-agent).
type silentAgentHV struct{ *fakeHV }

func (silentAgentHV) GuestPing(context.Context, string) error {
	return errors.New("Guest agent is not responding: QEMU guest agent is not connected")
}
func (silentAgentHV) GuestExecStart(context.Context, string, []string, []byte) (int, error) {
	panic("exec started although the agent did not answer")
}
func (silentAgentHV) GuestExecStatus(context.Context, string, int) (vm.ExecStatus, error) {
	panic("unreachable")
}
func (silentAgentHV) GuestFileOpen(context.Context, string, string, string) (int, error) {
	panic("unreachable")
}
func (silentAgentHV) GuestFileRead(context.Context, string, int, int) ([]byte, error) {
	panic("unreachable")
}
func (silentAgentHV) GuestFileSeek(context.Context, string, int, int64) error { panic("unreachable") }
func (silentAgentHV) GuestFileWrite(context.Context, string, int, []byte) error {
	panic("unreachable")
}
func (silentAgentHV) GuestFileClose(context.Context, string, int) error { panic("unreachable") }

// TestExecRefusedWithoutGuestAgent: exec in a stopped workspace, or in a
// running one whose guest agent does not answer, is refused with the
// reason before anything runs; a bad request is refused as such.
func TestExecRefusedWithoutGuestAgent(t *testing.T) {
	hv := silentAgentHV{newFakeHV()}
	c, _ := startDaemon(t, hv)
	ctx := context.Background()
	if _, err := importBytes(t, c, "test", qcow2Bytes(1<<30, false, 4096)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Create(ctx, api.CreateRequest{Name: "acme", Profile: testProfile(t, `image = "test"`)}); err != nil {
		t.Fatal(err)
	}
	req := api.ExecRequest{Argv: []string{"true"}}
	if _, err := c.Exec(ctx, "acme", req); !errors.Is(err, api.ErrConflict) || !strings.Contains(err.Error(), "start it first") {
		t.Fatalf("exec while stopped: %v", err)
	}
	if _, err := c.Start(ctx, "acme", api.StartRequest{}); err != nil {
		t.Fatal(err)
	}
	_, err := c.Exec(ctx, "acme", req)
	if !errors.Is(err, api.ErrUnavailable) || !strings.Contains(err.Error(), "does not answer on the QEMU guest agent") || !strings.Contains(err.Error(), "qemu-guest-agent") {
		t.Fatalf("exec without a guest agent: %v", err)
	}
	if _, err := c.Exec(ctx, "nope", req); !errors.Is(err, api.ErrNotFound) {
		t.Fatalf("exec in no workspace: %v", err)
	}
	if _, err := c.Exec(ctx, "acme", api.ExecRequest{Argv: []string{"ls"}, User: "x;y"}); !errors.Is(err, api.ErrInvalid) {
		t.Fatalf("bad user: %v", err)
	}
}
