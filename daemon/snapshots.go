package daemon

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/workspace-sandbox/workspace/api"
	"github.com/workspace-sandbox/workspace/vm"
)

// defaultSnapshotLayout names a snapshot taken without a name after the
// daemon's local time, to the minute.
const defaultSnapshotLayout = "20060102-1504"

func snapshotToAPI(s vm.Snapshot) api.Snapshot {
	return api.Snapshot{Name: s.Name, CreatedAt: s.CreatedAt, State: string(s.State), Memory: s.Memory, Current: s.Current, Parent: s.Parent}
}

// snapshotTarget checks the names and that the workspace exists.
func (m *manager) snapshotTarget(ctx context.Context, name, snap string) (api.Workspace, error) {
	w, err := m.get(ctx, name)
	if err != nil {
		return w, err
	}
	if snap != "" {
		if err := api.ValidateSnapshotName(snap); err != nil {
			return w, err
		}
	}
	return w, nil
}

func (m *manager) snapshots(ctx context.Context, name string) ([]api.Snapshot, error) {
	if _, err := m.snapshotTarget(ctx, name, ""); err != nil {
		return nil, err
	}
	snaps, err := m.hv.Snapshots(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("snapshots of workspace %q: %w", name, classify(err))
	}
	out := make([]api.Snapshot, 0, len(snaps))
	for _, s := range snaps {
		out = append(out, snapshotToAPI(s))
	}
	return out, nil
}

func (m *manager) createSnapshot(ctx context.Context, name string, req api.SnapshotRequest) (api.Snapshot, error) {
	w, err := m.snapshotTarget(ctx, name, req.Name)
	if err != nil {
		return api.Snapshot{}, err
	}
	if w.Disposable {
		return api.Snapshot{}, fmt.Errorf("%w: snapshot workspace %q: it is disposable, its disk is thrown away at every stop, so it has no snapshots (create a workspace without --disposable to keep them)", api.ErrConflict, name)
	}
	defer m.lock(name)()
	snap := req.Name
	if snap == "" {
		if snap, err = m.defaultSnapshotName(ctx, name); err != nil {
			return api.Snapshot{}, err
		}
	}
	s, err := m.hv.CreateSnapshot(ctx, name, snap)
	if err != nil {
		return api.Snapshot{}, fmt.Errorf("snapshot workspace %q: %w", name, classify(err))
	}
	m.log.Info("snapshot taken", "workspace", name, "snapshot", s.Name, "state", s.State, "memory", s.Memory)
	return snapshotToAPI(s), nil
}

// defaultSnapshotName is the time to the minute, with -2, -3... when a
// snapshot of that name exists.
func (m *manager) defaultSnapshotName(ctx context.Context, name string) (string, error) {
	snaps, err := m.hv.Snapshots(ctx, name)
	if err != nil {
		return "", fmt.Errorf("snapshot workspace %q: %w", name, classify(err))
	}
	taken := map[string]bool{}
	for _, s := range snaps {
		taken[s.Name] = true
	}
	base := m.now().Local().Format(defaultSnapshotLayout)
	snap := base
	for i := 2; taken[snap]; i++ {
		snap = base + "-" + strconv.Itoa(i)
	}
	return snap, nil
}

func (m *manager) restoreSnapshot(ctx context.Context, name, snap string) (api.SnapshotRestore, error) {
	if _, err := m.snapshotTarget(ctx, name, snap); err != nil {
		return api.SnapshotRestore{}, err
	}
	defer m.lock(name)()
	s, err := m.hv.RestoreSnapshot(ctx, name, snap)
	if err != nil {
		return api.SnapshotRestore{}, fmt.Errorf("restore workspace %q: %w", name, classify(err))
	}
	m.log.Info("snapshot restored", "workspace", name, "snapshot", snap, "state", s.State)
	w, err := m.get(ctx, name)
	if err != nil {
		return api.SnapshotRestore{}, err
	}
	return api.SnapshotRestore{Snapshot: snapshotToAPI(s), Workspace: w}, nil
}

func (m *manager) deleteSnapshot(ctx context.Context, name, snap string) error {
	if _, err := m.snapshotTarget(ctx, name, snap); err != nil {
		return err
	}
	defer m.lock(name)()
	if err := m.hv.DeleteSnapshot(ctx, name, snap); err != nil {
		return fmt.Errorf("delete snapshot of workspace %q: %w", name, classify(err))
	}
	m.log.Info("snapshot deleted", "workspace", name, "snapshot", snap)
	return nil
}

// discardLeftovers cleans after disposable workspaces whose last run did
// not end cleanly (the daemon calls it at start; Start does it too).
func (m *manager) discardLeftovers(ctx context.Context, ws []api.Workspace) {
	for _, w := range ws {
		if !w.Disposable || w.State != api.StateStopped {
			continue
		}
		if err := m.hv.DiscardLeftovers(ctx, w.Name); err != nil && !errors.Is(err, vm.ErrNotFound) {
			m.log.Warn("cannot clean up after a disposable workspace", "workspace", w.Name, "error", err)
		}
	}
}

func (s *server) handleSnapshots(r *http.Request) (any, error) {
	return s.m.snapshots(r.Context(), r.PathValue("name"))
}

func (s *server) handleCreateSnapshot(r *http.Request, req api.SnapshotRequest) (any, error) {
	out, err := s.m.createSnapshot(r.Context(), r.PathValue("name"), req)
	if err != nil {
		return nil, err
	}
	return created{out}, nil
}

func (s *server) handleRestoreSnapshot(r *http.Request) (any, error) {
	out, err := s.m.restoreSnapshot(r.Context(), r.PathValue("name"), r.PathValue("snap"))
	if err != nil {
		return nil, err
	}
	out.Workspace.Agent = s.agents.info(out.Workspace.Name)
	return out, nil
}

func (s *server) handleDeleteSnapshot(r *http.Request) (any, error) {
	return noContent{}, s.m.deleteSnapshot(r.Context(), r.PathValue("name"), r.PathValue("snap"))
}
