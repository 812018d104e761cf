package daemon

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/workspace-sandbox/workspace/api"
	"github.com/workspace-sandbox/workspace/vm"
)

func TestSnapshots(t *testing.T) {
	hv := newFakeHV()
	c, d := startDaemon(t, hv)
	ctx := context.Background()
	if _, err := importBytes(t, c, "test", qcow2Bytes(1<<30, false, 4096)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Create(ctx, api.CreateRequest{Name: "acme", ProfilePath: "/p.hcl", Profile: testProfile(t, `image = "test"`)}); err != nil {
		t.Fatal(err)
	}
	d.server.m.now = func() time.Time { return time.Date(2026, 11, 23, 15, 4, 30, 0, time.Local) }

	s, err := c.CreateSnapshot(ctx, "acme", api.SnapshotRequest{Name: "clean"})
	if err != nil || s.Name != "clean" || s.State != api.StateStopped || s.Memory || !s.Current {
		t.Fatalf("stopped snapshot: %+v %v", s, err)
	}
	if _, err := c.CreateSnapshot(ctx, "acme", api.SnapshotRequest{Name: "clean"}); !errors.Is(err, api.ErrExists) || !strings.Contains(err.Error(), `snapshot workspace "acme"`) {
		t.Fatalf("duplicate snapshot: %v", err)
	}
	if _, err := c.Start(ctx, "acme", api.StartRequest{}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"20261123-1504", "20261123-1504-2"} {
		s, err := c.CreateSnapshot(ctx, "acme", api.SnapshotRequest{})
		if err != nil || s.Name != want || s.State != api.StateRunning || !s.Memory {
			t.Fatalf("default-named running snapshot: want %s, got %+v %v", want, s, err)
		}
	}
	list, err := c.Snapshots(ctx, "acme")
	if err != nil || len(list) != 3 || list[0].Name != "clean" || !list[2].Current || list[0].Current {
		t.Fatalf("list: %+v %v", list, err)
	}

	// A snapshot that does not exist: the error names the workspace, the
	// snapshot and the ones there are, and nothing changes.
	_, err = c.RestoreSnapshot(ctx, "acme", "nope")
	if !errors.Is(err, api.ErrNotFound) {
		t.Fatalf("restore of a missing snapshot: %v", err)
	}
	for _, want := range []string{`"acme"`, `"nope"`, "clean, 20261123-1504, 20261123-1504-2"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("restore error %q lacks %s", err, want)
		}
	}
	if w, _ := c.Workspace(ctx, "acme"); w.State != api.StateRunning {
		t.Errorf("failed restore changed the state to %s", w.State)
	}
	if after, _ := c.Snapshots(ctx, "acme"); len(after) != 3 || !after[2].Current {
		t.Errorf("failed restore changed the snapshots: %+v", after)
	}

	r, err := c.RestoreSnapshot(ctx, "acme", "clean")
	if err != nil || r.Snapshot.Name != "clean" || r.Workspace.Name != "acme" || r.Workspace.State != api.StateStopped {
		t.Fatalf("restore: %+v %v", r, err)
	}
	if err := c.DeleteSnapshot(ctx, "acme", "20261123-1504"); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteSnapshot(ctx, "acme", "20261123-1504"); !errors.Is(err, api.ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
	if list, _ := c.Snapshots(ctx, "acme"); len(list) != 2 {
		t.Fatalf("after delete: %+v", list)
	}
	// Destroying the workspace takes its snapshots along.
	if err := c.Destroy(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	if len(hv.snaps) != 0 {
		t.Fatalf("snapshots left: %v", hv.snaps)
	}
}

func TestSnapshotBadInputChangesNothing(t *testing.T) {
	hv := newFakeHV()
	c, _ := startDaemon(t, hv)
	ctx := context.Background()
	if _, err := importBytes(t, c, "test", qcow2Bytes(1<<30, false, 4096)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Create(ctx, api.CreateRequest{Name: "acme", Profile: testProfile(t, `image = "test"`)}); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"bad name", "-dash", ".hidden", "a/b", "ümlaut", strings.Repeat("x", 65)} {
		_, err := c.CreateSnapshot(ctx, "acme", api.SnapshotRequest{Name: bad})
		if !errors.Is(err, api.ErrInvalid) || !strings.Contains(err.Error(), "snapshot name") {
			t.Errorf("snapshot named %q: %v", bad, err)
		}
	}
	if _, err := c.CreateSnapshot(ctx, "acme", api.SnapshotRequest{Name: strings.Repeat("x", 64)}); err != nil {
		t.Errorf("a 64-character name: %v", err)
	}
	if _, err := c.RestoreSnapshot(ctx, "acme", "bad name"); !errors.Is(err, api.ErrInvalid) {
		t.Errorf("restore of a bad name: %v", err)
	}
	if len(hv.snaps["acme"]) != 1 {
		t.Fatalf("bad names made snapshots: %+v", hv.snaps["acme"])
	}

	calls := map[string]func() error{
		"snapshot": func() error { _, err := c.CreateSnapshot(ctx, "nope", api.SnapshotRequest{}); return err },
		"list":     func() error { _, err := c.Snapshots(ctx, "nope"); return err },
		"restore":  func() error { _, err := c.RestoreSnapshot(ctx, "nope", "x"); return err },
		"delete":   func() error { return c.DeleteSnapshot(ctx, "nope", "x") },
	}
	for name, call := range calls {
		if err := call(); !errors.Is(err, api.ErrNotFound) || err.Error() != `not found: no workspace named "nope"` {
			t.Errorf("%s of a missing workspace: %v", name, err)
		}
	}

	// Libvirt away: a clear unavailable error.
	hv.down = true
	if _, err := c.CreateSnapshot(ctx, "acme", api.SnapshotRequest{Name: "x"}); !errors.Is(err, api.ErrUnavailable) {
		t.Errorf("snapshot while libvirt is down: %v", err)
	}
}

func TestDisposable(t *testing.T) {
	hv := newFakeHV()
	// Found at daemon start: a stopped disposable workspace is cleaned up
	// after (its last run may not have ended cleanly), a running one and a
	// normal one are left alone.
	hv.domains["old"] = &vm.Info{Name: "ws-old", State: "stopped", Meta: vm.Metadata{Workspace: "old", Disposable: true}}
	hv.domains["live"] = &vm.Info{Name: "ws-live", State: "running", Meta: vm.Metadata{Workspace: "live", Disposable: true}}
	hv.domains["keep"] = &vm.Info{Name: "ws-keep", State: "stopped", Meta: vm.Metadata{Workspace: "keep"}}
	c, _ := startDaemon(t, hv)
	ctx := context.Background()
	hv.mu.Lock()
	discarded := map[string]int{}
	for k, v := range hv.discarded {
		discarded[k] = v
	}
	hv.mu.Unlock()
	if discarded["old"] != 1 || discarded["live"] != 0 || discarded["keep"] != 0 {
		t.Fatalf("leftovers discarded at start: %v", discarded)
	}

	if _, err := importBytes(t, c, "test", qcow2Bytes(1<<30, false, 4096)); err != nil {
		t.Fatal(err)
	}
	w, err := c.Create(ctx, api.CreateRequest{Name: "tmp", Profile: testProfile(t, `image = "test"`), Disposable: true})
	if err != nil || !w.Disposable {
		t.Fatalf("create --disposable: %+v %v", w, err)
	}
	if !hv.domains["tmp"].Meta.Disposable {
		t.Fatal("the driver was not asked for a disposable workspace")
	}
	if w, _ := c.Workspace(ctx, "tmp"); !w.Disposable {
		t.Fatalf("status: %+v", w)
	}
	ws, _ := c.Workspaces(ctx)
	for _, w := range ws {
		if w.Disposable != (w.Name != "keep") {
			t.Errorf("list: %s disposable=%v", w.Name, w.Disposable)
		}
	}
	_, err = c.CreateSnapshot(ctx, "tmp", api.SnapshotRequest{Name: "x"})
	if !errors.Is(err, api.ErrConflict) || !strings.Contains(err.Error(), "disposable") {
		t.Fatalf("snapshot of a disposable workspace: %v", err)
	}
	if len(hv.snaps["tmp"]) != 0 {
		t.Fatal("a disposable workspace got a snapshot")
	}
}
