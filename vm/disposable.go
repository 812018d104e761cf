package vm

// Disposable workspaces (Windows Sandbox, Qubes disposables): every change
// to the disk is thrown away when the VM stops, so each start begins from
// the clean base image.
//
// The workspace's disk is marked <transient/>. At every start libvirt's QEMU
// driver makes a throw-away qcow2 overlay next to the workspace's overlay
// ("ws-ID-NAME.qcow2.TRANSIENT-ws-ID-NAME"), the guest writes only into it, and
// libvirtd deletes it when QEMU ends: also when our daemon is not running,
// since libvirtd itself does it. ws-ID-NAME.qcow2 stays as it was created, an
// empty overlay on the base image. Libvirt forbids with a transient disk
// what would copy or keep its contents: snapshots of the running VM (they
// are "migrations"), block jobs, and external snapshots.
//
// What libvirtd cannot clean up is an overlay left by a host crash or a
// libvirtd that died with the VM: it then refuses to start the domain
// ("overlay file ... already exists"). Such leftovers hold a previous run's
// data, so they are deleted before every start (Start), when the daemon
// starts (DiscardLeftovers) and with the workspace (Delete).

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	libvirt "github.com/digitalocean/go-libvirt"
)

// ErrDisposable marks what a disposable workspace cannot do (snapshots).
var ErrDisposable = errors.New("workspace is disposable")

func disposableEl(on bool) string {
	if !on {
		return ""
	}
	return "<ws:disposable>true</ws:disposable>"
}

// transientPrefix is how libvirt names a transient disk's overlay: the
// disk's path, ".TRANSIENT-" and (libvirt 9) the domain's name.
func transientPrefix(domain string) string { return overlayName(domain) + ".TRANSIENT-" }

// DiscardLeftovers deletes the throw-away overlays a disposable workspace's
// earlier run left behind (see above). It does nothing while the VM runs,
// and for a workspace that is not disposable.
func (d *Driver) DiscardLeftovers(ctx context.Context, name string) error {
	l, dom, err := d.domain(name)
	if err != nil {
		return err
	}
	if err := d.discardLeftovers(l, dom, name); err != nil {
		return fmt.Errorf("workspace %q: %w", name, err)
	}
	return nil
}

func (d *Driver) discardLeftovers(l *libvirt.Libvirt, dom libvirt.Domain, name string) error {
	st, _, err := l.DomainGetState(dom, 0)
	if err != nil {
		return d.lverr(err)
	}
	if libvirt.DomainState(st) != libvirt.DomainShutoff {
		return nil // a live overlay is in use
	}
	x, err := l.DomainGetXMLDesc(dom, libvirt.DomainXMLInactive)
	if err != nil {
		return d.lverr(err)
	}
	meta, _, err := parseDomain([]byte(x))
	if err != nil || !meta.Disposable {
		return err
	}
	_, pool, err := d.pool()
	if err != nil {
		return err
	}
	return d.removeTransientOverlays(l, pool, name)
}

// removeTransientOverlays deletes every transient overlay of workspace name
// from the pool. For a local libvirt it looks in the pool's folder (a pool
// refresh may be refused while a volume is being built); for a remote one
// it refreshes the pool and deletes the volumes.
func (d *Driver) removeTransientOverlays(l *libvirt.Libvirt, pool libvirt.StoragePool, name string) error {
	prefix := transientPrefix(d.DomainName(name))
	if d.uri.Host == "" {
		dir, err := d.poolPath(l, pool)
		if err != nil {
			return err
		}
		found, err := filepath.Glob(filepath.Join(dir, prefix+"*"))
		if err != nil {
			return fmt.Errorf("look for leftover overlays: %w", err)
		}
		var errs []error
		for _, f := range found {
			if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, fmt.Errorf("delete leftover overlay: %w", err))
				continue
			}
			d.log.Warn("deleted the throw-away overlay an earlier run of a disposable workspace left behind", "workspace", name, "file", f)
		}
		if len(found) > 0 {
			_ = l.StoragePoolRefresh(pool, 0) // forget it as a volume too
		}
		return errors.Join(errs...)
	}
	if err := l.StoragePoolRefresh(pool, 0); err != nil {
		return fmt.Errorf("look for leftover overlays: refresh pool: %w", d.lverr(err))
	}
	vols, _, err := l.StoragePoolListAllVolumes(pool, 1, 0)
	if err != nil {
		return fmt.Errorf("look for leftover overlays: %w", d.lverr(err))
	}
	var errs []error
	for _, v := range vols {
		if !strings.HasPrefix(v.Name, prefix) {
			continue
		}
		if err := l.StorageVolDelete(v, 0); err != nil {
			errs = append(errs, fmt.Errorf("delete leftover overlay %s: %w", v.Name, d.lverr(err)))
			continue
		}
		d.log.Warn("deleted the throw-away overlay an earlier run of a disposable workspace left behind", "workspace", name, "volume", v.Name)
	}
	return errors.Join(errs...)
}

// poolPath is the folder of a dir pool.
func (d *Driver) poolPath(l *libvirt.Libvirt, pool libvirt.StoragePool) (string, error) {
	x, err := l.StoragePoolGetXMLDesc(pool, 0)
	if err != nil {
		return "", fmt.Errorf("storage pool %q: %w", d.opts.PoolName, d.lverr(err))
	}
	var p struct {
		Target struct {
			Path string `xml:"path"`
		} `xml:"target"`
	}
	if err := xml.Unmarshal([]byte(x), &p); err != nil || p.Target.Path == "" {
		return "", fmt.Errorf("storage pool %q: no target path in its XML (%v)", d.opts.PoolName, err)
	}
	return p.Target.Path, nil
}
