package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/workspace-sandbox/workspace/api"
	"github.com/workspace-sandbox/workspace/vm"
)

// Hypervisor is what the daemon needs from the VM driver. *vm.Driver is the
// real one; handler tests use a fake.
type Hypervisor interface {
	URI() string
	Connected() bool
	DomainType() string

	UploadVolume(ctx context.Context, name, format string, capacity uint64, r io.Reader, length int64) (string, error)
	DeleteVolume(ctx context.Context, name string) error

	Create(ctx context.Context, s vm.Spec) error
	Start(ctx context.Context, name string) error
	Shutdown(ctx context.Context, name string) error
	ForceStop(ctx context.Context, name string) error
	// Suspend saves a running workspace's memory (recording from, the
	// caller's fingerprint of its image) and stops it; Resume restores it,
	// or fails with vm.ErrStaleState (the state deleted) when it is stale
	// or cannot be restored.
	Suspend(ctx context.Context, name, from string) (vm.SavedState, error)
	Resume(ctx context.Context, name, from string) error
	Delete(ctx context.Context, name string) error
	Info(ctx context.Context, name string) (vm.Info, error)
	List(ctx context.Context) ([]vm.Info, error)
	Events(ctx context.Context) (<-chan vm.Event, error)
	// Screenshot writes the VM's screen as libvirt captures it (PNG from
	// QEMU 7.1 on, PPM before) and returns its MIME type.
	Screenshot(ctx context.Context, name string, w io.Writer) (string, error)

	// Snapshots of a workspace (internal qcow2 snapshots, with memory
	// when taken while it runs).
	CreateSnapshot(ctx context.Context, name, snap string) (vm.Snapshot, error)
	Snapshots(ctx context.Context, name string) ([]vm.Snapshot, error)
	RestoreSnapshot(ctx context.Context, name, snap string) (vm.Snapshot, error)
	DeleteSnapshot(ctx context.Context, name, snap string) error
	// DiscardLeftovers deletes what a disposable workspace's run that did
	// not end cleanly left on the host.
	DiscardLeftovers(ctx context.Context, name string) error
	// Resources is what the host can give a workspace at most: its CPUs,
	// memory and the pool's free space.
	Resources(ctx context.Context) (vm.Resources, error)
}

var _ Hypervisor = (*vm.Driver)(nil)

// classified carries an api error class next to the original error, so the
// HTTP boundary can pick a status while the message stays the driver's.
type classified struct {
	class error
	err   error
}

func (c *classified) Error() string   { return c.err.Error() }
func (c *classified) Unwrap() []error { return []error{c.class, c.err} }

// classify maps driver error classes to api error classes.
func classify(err error) error {
	if err == nil {
		return nil
	}
	switch {
	case errors.Is(err, vm.ErrUnreachable):
		return &classified{api.ErrUnavailable, err}
	case errors.Is(err, vm.ErrExists):
		return &classified{api.ErrExists, err}
	case errors.Is(err, vm.ErrNotFound):
		return &classified{api.ErrNotFound, err}
	case errors.Is(err, vm.ErrInvalid):
		return &classified{api.ErrInvalid, err}
	case errors.Is(err, vm.ErrDisposable), errors.Is(err, vm.ErrMemoryState), errors.Is(err, vm.ErrNotRunning):
		return &classified{api.ErrConflict, err}
	}
	return err
}

func noWorkspace(name string) error {
	return fmt.Errorf("%w: no workspace named %q", api.ErrNotFound, name)
}
