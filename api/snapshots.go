package api

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"time"
)

// Snapshot is one snapshot of a workspace.
type Snapshot struct {
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
	// State is the workspace's state when the snapshot was taken; a
	// restore returns to it (running snapshots hold the VM's memory).
	State   string `json:"state"`
	Memory  bool   `json:"memory"`
	Current bool   `json:"current"`
	Parent  string `json:"parent,omitempty"`
}

// SnapshotRequest takes a snapshot; an empty Name lets the daemon name it
// after the time (20261123-1504).
type SnapshotRequest struct {
	Name string `json:"name,omitempty"`
}

// SnapshotRestore is the answer to a restore: the snapshot and the
// workspace as it is now.
type SnapshotRestore struct {
	Snapshot  Snapshot  `json:"snapshot"`
	Workspace Workspace `json:"workspace"`
}

var snapshotName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// ValidateSnapshotName checks a snapshot name: 1-64 letters, digits, '.',
// '_' or '-', starting with a letter or digit. The error wraps ErrInvalid.
func ValidateSnapshotName(name string) error {
	if !snapshotName.MatchString(name) {
		return fmt.Errorf("%w: snapshot name %q must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit", ErrInvalid, name)
	}
	return nil
}

func snapshotsPath(workspace string) string {
	return "/workspaces/" + url.PathEscape(workspace) + "/snapshots"
}

// CreateSnapshot takes a snapshot of a workspace, stopped (disk) or
// running (disk and memory).
func (c *Client) CreateSnapshot(ctx context.Context, workspace string, req SnapshotRequest) (Snapshot, error) {
	return doJSON[Snapshot](ctx, c, http.MethodPost, snapshotsPath(workspace), req)
}

// Snapshots lists a workspace's snapshots, oldest first.
func (c *Client) Snapshots(ctx context.Context, workspace string) ([]Snapshot, error) {
	return doJSON[[]Snapshot](ctx, c, http.MethodGet, snapshotsPath(workspace), nil)
}

// RestoreSnapshot returns a workspace to one of its snapshots.
func (c *Client) RestoreSnapshot(ctx context.Context, workspace, snapshot string) (SnapshotRestore, error) {
	return doJSON[SnapshotRestore](ctx, c, http.MethodPost, snapshotsPath(workspace)+"/"+url.PathEscape(snapshot)+"/restore", nil)
}

// DeleteSnapshot deletes one snapshot of a workspace.
func (c *Client) DeleteSnapshot(ctx context.Context, workspace, snapshot string) error {
	return c.do(ctx, http.MethodDelete, snapshotsPath(workspace)+"/"+url.PathEscape(snapshot), nil, nil)
}
