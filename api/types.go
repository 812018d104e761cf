// Package api holds the wire types shared by the CLI, the daemon and the web
// UI, and a Go client for the daemon's HTTP/JSON API on its unix socket.
package api

import (
	"time"

	"github.com/workspace-sandbox/workspace/profiles"
	"github.com/workspace-sandbox/workspace/provision"
)

// Version is the API version served under /v1.
const Version = "v1"

// Workspace states as shown to users.
const (
	StateRunning = "running"
	StateStopped = "stopped"
	StatePaused  = "paused"
	StateCrashed = "crashed"
	// StateSuspended: the VM's memory is saved to disk and its host
	// memory free; `workspace start` resumes it.
	StateSuspended = "suspended"
)

// Workspace is one client's VM as the daemon reports it.
type Workspace struct {
	Name          string            `json:"name"`
	State         string            `json:"state"`
	Profile       string            `json:"profile"`
	Image         string            `json:"image"`
	CreatedAt     time.Time         `json:"created_at"`
	Domain        string            `json:"domain"`
	Display       string            `json:"display"`
	DisplaySocket string            `json:"display_socket,omitempty"`
	AgentSocket   string            `json:"agent_socket,omitempty"`
	ConsoleLog    string            `json:"console_log,omitempty"`
	Settings      *profiles.Profile `json:"settings,omitempty"`
	Agent         *AgentInfo        `json:"agent,omitempty"`
	// Witness is the diary log's witnessing (when the profile names witnesses).
	Witness *WitnessState `json:"witness,omitempty"`
	// Disposable workspaces lose every change to their disk at stop.
	Disposable bool `json:"disposable"`
	// Provisioning is how the profile's provision block went (when it
	// has one).
	Provisioning *provision.Status `json:"provisioning,omitempty"`
	// Saved is the saved state of a suspended workspace.
	Saved *SavedState `json:"saved,omitempty"`
	// RSSBytes is the host memory the running VM actually uses.
	RSSBytes uint64 `json:"rss_bytes,omitempty"`
	// Notice says what a start or switch did that the user should know
	// (a saved state that could not be resumed, so a cold boot).
	Notice string `json:"notice,omitempty"`
}

// SavedState is a suspended workspace's saved memory.
type SavedState struct {
	Bytes   int64     `json:"bytes"`
	SavedAt time.Time `json:"saved_at"`
}

// SwitchResult answers a switch: the workspace started or resumed, the
// ones suspended for it, and notices (a workspace left running: it could
// not be suspended, and why).
type SwitchResult struct {
	Workspace Workspace `json:"workspace"`
	Suspended []string  `json:"suspended"`
	Notices   []string  `json:"notices,omitempty"`
}

// CreateRequest asks the daemon to define a new workspace. The CLI loads and
// validates the profile file; the daemon validates the result again.
type CreateRequest struct {
	Name        string            `json:"name"`
	ProfilePath string            `json:"profile_path"`
	Profile     *profiles.Profile `json:"profile"`
	// Disposable: the disk's changes are thrown away at every stop.
	Disposable bool `json:"disposable,omitempty"`
	// Positions says where the profile set each field ("share.src.host" →
	// "acme.hcl:12:10"), so the daemon's errors can point at the line.
	Positions map[string]string `json:"positions,omitempty"`
}

// StartRequest starts a workspace; with Wait the call returns only when the
// guest has started booting (its console shows output) or Timeout passes.
type StartRequest struct {
	Wait    bool   `json:"wait"`
	Timeout string `json:"timeout,omitempty"`
}

// StopRequest stops a workspace: an ACPI/guest-agent shutdown, then a
// forced power-off after Timeout only when Force is set.
type StopRequest struct {
	Force   bool   `json:"force"`
	Timeout string `json:"timeout,omitempty"`
}

// Image is a base image imported into the daemon's storage pool.
type Image struct {
	Name        string    `json:"name"`
	Format      string    `json:"format"`
	Size        int64     `json:"size"`
	VirtualSize uint64    `json:"virtual_size"`
	SHA256      string    `json:"sha256"`
	Kernel      bool      `json:"kernel"`
	Cmdline     string    `json:"cmdline,omitempty"`
	ImportedAt  time.Time `json:"imported_at"`
	UsedBy      []string  `json:"used_by,omitempty"`
}

// ImportMeta is the first part of an image upload; the disk (and optional
// kernel and initrd) parts follow it in the same multipart body.
type ImportMeta struct {
	Name       string `json:"name"`
	DiskSize   int64  `json:"disk_size"`
	KernelSize int64  `json:"kernel_size,omitempty"`
	InitrdSize int64  `json:"initrd_size,omitempty"`
	Cmdline    string `json:"cmdline,omitempty"`
}

// Event is a lifecycle event of one of our workspaces, streamed as JSON lines.
type Event struct {
	Time      time.Time `json:"time"`
	Workspace string    `json:"workspace"`
	Type      string    `json:"type"`
	Detail    string    `json:"detail,omitempty"`
}

// Info describes the daemon.
type Info struct {
	Version    string `json:"version"`
	LibvirtURI string `json:"libvirt_uri"`
	Connected  bool   `json:"libvirt_connected"`
	DomainType string `json:"domain_type"`
	StateDir   string `json:"state_dir"`
}

// Error is the body of every non-2xx response.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"error"`
}

// Error codes on the wire; the client maps them back to the sentinel errors
// in errors.go.
const (
	CodeNotFound    = "not_found"
	CodeExists      = "exists"
	CodeInvalid     = "invalid"
	CodeConflict    = "conflict"
	CodeUnavailable = "unavailable"
	CodeForbidden   = "forbidden"
	CodeInternal    = "internal"
)

// GCResult says which images an image gc removed (or would remove) and kept.
type GCResult struct {
	DryRun  bool     `json:"dry_run"`
	Removed []string `json:"removed"`
	Kept    []string `json:"kept"`
	Bytes   int64    `json:"bytes"`
}
