package vm

// Snapshots are libvirt's internal snapshots: qcow2 snapshots inside the
// workspace's overlay (ws-NAME.qcow2), the base image untouched. Taken while
// the VM is stopped, a snapshot holds the disk. Taken while it runs, it also
// holds the VM's memory and device state (QEMU's savevm, the VM pauses for
// it), and restoring it brings the VM back running at that moment, without
// a boot. Memory cannot be saved when a device cannot migrate, such as a
// virtiofs share (vhost-user-fs) or a 9p share the guest has mounted: that
// snapshot is refused with ErrMemoryState, and one taken while the
// workspace is stopped works. Disposable workspaces have none (their disk
// is thrown away at every stop): ErrDisposable.

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	libvirt "github.com/digitalocean/go-libvirt"
)

// ErrMemoryState marks a snapshot of a running VM whose memory cannot be
// saved.
var ErrMemoryState = errors.New("the running VM's memory cannot be saved")

// Snapshot is one snapshot of a workspace.
type Snapshot struct {
	Name      string
	CreatedAt time.Time
	// State is the VM's state when the snapshot was taken: restoring
	// returns to it.
	State State
	// Memory says the snapshot holds the VM's memory (taken while it ran
	// or was paused).
	Memory bool
	// Current is the snapshot the workspace last took or was restored to.
	Current bool
	Parent  string
}

// refusal is an error with our own message and a class for errors.Is.
type refusal struct {
	class error
	msg   string
}

func (r *refusal) Error() string { return r.msg }
func (r *refusal) Unwrap() error { return r.class }

type snapshotXML struct {
	XMLName      xml.Name `xml:"domainsnapshot"`
	Name         string   `xml:"name"`
	State        string   `xml:"state"`
	CreationTime int64    `xml:"creationTime"`
	Parent       struct {
		Name string `xml:"name"`
	} `xml:"parent"`
	Memory struct {
		Snapshot string `xml:"snapshot,attr"`
	} `xml:"memory"`
}

// snapshotState maps libvirt's snapshot states to ours.
func snapshotState(s string) State {
	switch s {
	case "running", "blocked", "disk-snapshot":
		return "running"
	case "paused", "pmsuspended":
		return "paused"
	case "crashed":
		return "crashed"
	}
	return "stopped"
}

func renderSnapshot(name string) []byte {
	return []byte("<domainsnapshot><name>" + xmlEscape(name) + "</name><description>taken by workspace</description></domainsnapshot>")
}

func parseSnapshot(b []byte) (Snapshot, error) {
	var x snapshotXML
	if err := xml.Unmarshal(b, &x); err != nil {
		return Snapshot{}, fmt.Errorf("parse snapshot XML: %w", err)
	}
	s := Snapshot{Name: x.Name, State: snapshotState(x.State), Parent: x.Parent.Name,
		Memory: x.Memory.Snapshot != "" && x.Memory.Snapshot != "no"}
	if x.CreationTime > 0 {
		s.CreatedAt = time.Unix(x.CreationTime, 0).UTC()
	}
	return s, nil
}

func isNoSnapshot(err error) bool {
	var le libvirt.Error
	return errors.As(err, &le) && libvirt.ErrorNumber(le.Code) == libvirt.ErrNoDomainSnapshot
}

// describe reads one snapshot back from libvirt.
func (d *Driver) describe(l *libvirt.Libvirt, snap libvirt.DomainSnapshot) (Snapshot, error) {
	x, err := l.DomainSnapshotGetXMLDesc(snap, 0)
	if err != nil {
		return Snapshot{}, fmt.Errorf("snapshot %q: %w", snap.Name, d.lverr(err))
	}
	s, err := parseSnapshot([]byte(x))
	if err != nil {
		return Snapshot{}, fmt.Errorf("snapshot %q: %w", snap.Name, err)
	}
	if cur, err := l.DomainSnapshotIsCurrent(snap, 0); err == nil {
		s.Current = cur == 1
	}
	return s, nil
}

// CreateSnapshot takes snapshot snap of workspace name: disk only while the
// VM is stopped, disk and memory while it runs.
func (d *Driver) CreateSnapshot(ctx context.Context, name, snap string) (Snapshot, error) {
	l, dom, err := d.domain(name)
	if err != nil {
		return Snapshot{}, err
	}
	x, err := l.DomainGetXMLDesc(dom, libvirt.DomainXMLInactive)
	if err != nil {
		return Snapshot{}, fmt.Errorf("domain %s: %w", dom.Name, d.lverr(err))
	}
	if meta, _, err := parseDomain([]byte(x)); err != nil {
		return Snapshot{}, err
	} else if meta.Disposable {
		return Snapshot{}, &refusal{ErrDisposable, "the workspace is disposable: its disk is thrown away at every stop, so it has no snapshots"}
	}
	if _, err := l.DomainSnapshotLookupByName(dom, snap, 0); err == nil {
		return Snapshot{}, &refusal{ErrExists, fmt.Sprintf("snapshot %q already exists", snap)}
	} else if !isNoSnapshot(err) {
		return Snapshot{}, fmt.Errorf("snapshot %q of %s: %w", snap, dom.Name, d.lverr(err))
	}
	st, _, err := l.DomainGetState(dom, 0)
	if err != nil {
		return Snapshot{}, fmt.Errorf("domain %s: %w", dom.Name, d.lverr(err))
	}
	running := libvirt.DomainState(st) != libvirt.DomainShutoff
	s, err := l.DomainSnapshotCreateXML(dom, string(renderSnapshot(snap)), uint32(libvirt.DomainSnapshotCreateAtomic))
	if err != nil {
		err = d.lverr(err)
		if running && strings.Contains(strings.ToLower(err.Error()), "migrat") {
			return Snapshot{}, &refusal{ErrMemoryState, fmt.Sprintf(
				"the workspace is running and its memory cannot be saved (libvirt: %v); stop it and take the snapshot while it is stopped (disk only)", err)}
		}
		return Snapshot{}, fmt.Errorf("snapshot %q of %s: %w", snap, dom.Name, err)
	}
	d.log.Info("snapshot taken", "workspace", name, "snapshot", snap, "with_memory", running)
	return d.describe(l, s)
}

// Snapshots lists a workspace's snapshots, oldest first.
func (d *Driver) Snapshots(ctx context.Context, name string) ([]Snapshot, error) {
	l, dom, err := d.domain(name)
	if err != nil {
		return nil, err
	}
	return d.snapshots(l, dom)
}

func (d *Driver) snapshots(l *libvirt.Libvirt, dom libvirt.Domain) ([]Snapshot, error) {
	snaps, _, err := l.DomainListAllSnapshots(dom, 1, 0)
	if err != nil {
		return nil, fmt.Errorf("snapshots of %s: %w", dom.Name, d.lverr(err))
	}
	out := make([]Snapshot, 0, len(snaps))
	for _, sn := range snaps {
		s, err := d.describe(l, sn)
		if err != nil {
			if _, lerr := l.DomainSnapshotLookupByName(dom, sn.Name, 0); isNoSnapshot(lerr) {
				continue // deleted meanwhile
			}
			return nil, err
		}
		out = append(out, s)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].CreatedAt.Equal(out[j].CreatedAt) {
			return out[i].CreatedAt.Before(out[j].CreatedAt)
		}
		return out[i].Name < out[j].Name
	})
	return out, nil
}

// lookupSnapshot finds snap, or says which snapshots the workspace has.
func (d *Driver) lookupSnapshot(l *libvirt.Libvirt, dom libvirt.Domain, snap string) (libvirt.DomainSnapshot, error) {
	s, err := l.DomainSnapshotLookupByName(dom, snap, 0)
	if err == nil {
		return s, nil
	}
	if !isNoSnapshot(err) {
		return s, fmt.Errorf("snapshot %q of %s: %w", snap, dom.Name, d.lverr(err))
	}
	have := "the workspace has no snapshots"
	if all, err := d.snapshots(l, dom); err == nil && len(all) > 0 {
		names := make([]string, len(all))
		for i, a := range all {
			names[i] = a.Name
		}
		have = "its snapshots: " + strings.Join(names, ", ")
	}
	return s, &refusal{ErrNotFound, fmt.Sprintf("no snapshot %q; %s", snap, have)}
}

// RestoreSnapshot returns workspace name to snapshot snap: its disk, and
// with a snapshot that holds memory the running VM at that moment. The
// current disk and, if it runs, the current VM state are lost. A missing
// snapshot changes nothing.
func (d *Driver) RestoreSnapshot(ctx context.Context, name, snap string) (Snapshot, error) {
	l, dom, err := d.domain(name)
	if err != nil {
		return Snapshot{}, err
	}
	s, err := d.lookupSnapshot(l, dom, snap)
	if err != nil {
		return Snapshot{}, err
	}
	if err := l.DomainRevertToSnapshot(s, 0); err != nil {
		return Snapshot{}, fmt.Errorf("restore %s to snapshot %q: %w", dom.Name, snap, d.lverr(err))
	}
	d.discardSavedState(dom.Name, "snapshot restored")
	d.log.Info("snapshot restored", "workspace", name, "snapshot", snap)
	return d.describe(l, s)
}

// DeleteSnapshot deletes one snapshot; its children stay (libvirt
// re-parents them).
func (d *Driver) DeleteSnapshot(ctx context.Context, name, snap string) error {
	l, dom, err := d.domain(name)
	if err != nil {
		return err
	}
	s, err := d.lookupSnapshot(l, dom, snap)
	if err != nil {
		return err
	}
	if err := l.DomainSnapshotDelete(s, 0); err != nil {
		return fmt.Errorf("delete snapshot %q of %s: %w", snap, dom.Name, d.lverr(err))
	}
	d.log.Info("snapshot deleted", "workspace", name, "snapshot", snap)
	return nil
}
