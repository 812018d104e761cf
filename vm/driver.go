// Package vm is the libvirt driver: it connects to libvirtd through
// go-libvirt's RPC, renders domain and network XML, manages the storage
// pool, overlays and per-workspace networks, and reports lifecycle events.
package vm

import (
	"errors"
	"time"

	"github.com/hashicorp/go-hclog"
)

// Error classes; driver errors wrap one of these where it applies.
var (
	ErrNotFound    = errors.New("not found")
	ErrExists      = errors.New("already exists")
	ErrUnreachable = errors.New("libvirt unreachable")
	// ErrInvalid: the spec asks for something that cannot be (a share
	// folder that does not exist, an allow entry that is no address).
	ErrInvalid = errors.New("invalid")
)

// Options configure a Driver.
type Options struct {
	URI      string
	StateDir string
	PoolName string
	Logger   hclog.Logger
	// TBCacheMiB caps the TCG translation cache of each guest the driver
	// defines when libvirt offers no KVM (0 keeps QEMU's default, 1 GiB).
	TBCacheMiB uint64
}

// Spec is a workspace to create.
type Spec struct {
	Name                       string
	VCPUs                      int
	MemoryBytes                uint64
	DiskBytes                  uint64
	BaseVolume                 string
	BaseFormat                 string
	KernelVolume, InitrdVolume string
	Cmdline                    string
	NetworkMode                string
	// Allow lists addresses or CIDR prefixes the guest may reach although
	// they are private or the host's (network isolation, see nwfilter.go).
	Allow       []string
	DisplayType string
	// Clipboard adds the SPICE agent channel (needs a spice display).
	Clipboard bool
	Shares    []ShareSpec
	// RunAs is the user QEMU runs as instead of libvirt's (qemu.conf's);
	// Create sets it to the owner of the read-write shares (see shares.go).
	RunAs *Owner
	Meta  Metadata
}

// ShareSpec is a host folder shared into the guest under a tag.
type ShareSpec struct {
	Tag      string
	HostPath string
	ReadOnly bool
}

// Metadata is what we store in a domain's <metadata>.
type Metadata struct {
	Workspace, Profile, Image string
	// Owner is the identity of the daemon the domain belongs to; the
	// driver writes it (see owner.go).
	Owner       string
	CreatedAt   time.Time
	ProfileJSON string
	// Disposable workspaces discard every change to their disk at stop
	// (see disposable.go); it also makes the disk transient.
	Disposable bool
}

// State is a workspace's run state.
type State string

// Info describes one workspace's domain.
type Info struct {
	Name                                   string
	State                                  State
	Meta                                   Metadata
	AgentSocket, DisplaySocket, ConsoleLog string
	DisplayType                            string
	// Saved is the saved state of a suspended workspace (State
	// "suspended": its domain is shut off and resumes from it).
	Saved *SavedState
	// RSSBytes is the host memory the running VM uses (QEMU's RSS).
	RSSBytes uint64
}

// Event is a lifecycle event of a workspace domain.
type Event struct {
	Workspace string
	Type      string
	Detail    string
	Time      time.Time
}

// invalidError carries ErrInvalid without changing the message.
type invalidError struct{ err error }

func (e *invalidError) Error() string   { return e.err.Error() }
func (e *invalidError) Unwrap() []error { return []error{ErrInvalid, e.err} }
