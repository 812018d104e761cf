package vm

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"

	libvirt "github.com/digitalocean/go-libvirt"
	"github.com/workspace-sandbox/workspace/internal/dirperm"
)

// qemuOwner returns the uid/gid QEMU runs as (qemu.conf, default libvirt-qemu).
func qemuOwner() (int, int, bool) {
	name := "libvirt-qemu"
	if b, err := os.ReadFile("/etc/libvirt/qemu.conf"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			line = strings.TrimSpace(line)
			if v, ok := strings.CutPrefix(line, "user"); ok {
				if v, ok = strings.CutPrefix(strings.TrimSpace(v), "="); ok {
					name = strings.Trim(strings.TrimSpace(v), `"`)
				}
			}
		}
	}
	u, err := user.Lookup(name)
	if err != nil {
		return 0, 0, false
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return uid, gid, true
}

// Create makes a workspace's folder, overlay, network and domain; anything
// made is undone in reverse order when a later step fails.
func (d *Driver) Create(ctx context.Context, s Spec) (err error) {
	log := d.log.With("workspace", s.Name)
	l, pool, err := d.pool()
	if err != nil {
		return err
	}
	name := d.DomainName(s.Name)
	if _, err := l.DomainLookupByName(name); err == nil {
		return fmt.Errorf("domain %s: %w", name, ErrExists)
	}
	allow, err := ParseAllow(s.Allow)
	if err != nil {
		return &invalidError{err}
	}
	owner, err := d.checkShares(s.Shares)
	if err != nil {
		return &invalidError{err}
	}
	s.RunAs = owner
	var undo revert
	defer func() {
		if err != nil {
			undo.run(log)
		}
	}()

	paths := WorkspacePaths(d.opts.StateDir, s.Name)
	if err := dirperm.Ensure(filepath.Dir(paths.Dir), 0o711); err != nil {
		return fmt.Errorf("workspace folder: %w", err)
	}
	if err := os.Mkdir(paths.Dir, 0o700); err != nil {
		return fmt.Errorf("workspace folder: %w", err)
	}
	undo.add("remove workspace folder", func() error { return os.RemoveAll(paths.Dir) })
	if uid, gid, ok := qemuOwner(); ok && d.uri.Host == "" {
		if s.RunAs != nil { // QEMU makes its sockets here
			uid, gid = s.RunAs.UID, s.RunAs.GID
		}
		if err := os.Chown(paths.Dir, uid, gid); err != nil {
			return fmt.Errorf("workspace folder: %w", err)
		}
	}

	base, err := l.StorageVolLookupByName(pool, s.BaseVolume)
	if err != nil {
		return fmt.Errorf("base volume %q: %w", s.BaseVolume, d.lverr(err))
	}
	basePath, err := l.StorageVolGetPath(base)
	if err != nil {
		return fmt.Errorf("base volume %q: %w", s.BaseVolume, d.lverr(err))
	}
	_, baseCap, _, err := l.StorageVolGetInfo(base)
	if err == nil && s.DiskBytes < baseCap {
		return fmt.Errorf("disk size %d is smaller than the base image (%d bytes)", s.DiskBytes, baseCap)
	}
	ov, err := l.StorageVolCreateXML(pool, string(renderVolume(overlayName(name), "qcow2", s.DiskBytes, basePath, s.BaseFormat)), 0)
	if err != nil {
		return fmt.Errorf("create overlay: %w", d.lverr(err))
	}
	undo.add("delete overlay", func() error { return l.StorageVolDelete(ov, 0) })
	ovPath, err := l.StorageVolGetPath(ov)
	if err != nil {
		return fmt.Errorf("overlay path: %w", d.lverr(err))
	}
	in := domainInput{Spec: s, Name: name, Owner: d.id, Type: d.domType, TBCacheMiB: d.opts.TBCacheMiB, Paths: paths, Overlay: ovPath}
	if s.KernelVolume != "" {
		if in.KernelPath, err = d.VolumePath(ctx, s.KernelVolume); err != nil {
			return err
		}
		if in.InitrdPath, err = d.VolumePath(ctx, s.InitrdVolume); err != nil {
			return err
		}
	}

	if s.NetworkMode == "nat" || s.NetworkMode == "isolated" {
		n, err := d.freeSubnet(l)
		if err != nil {
			return err
		}
		in.Subnet = n
		nx, err := renderNetwork(name, s.NetworkMode, n)
		if err != nil {
			return err
		}
		net, err := l.NetworkDefineXML(string(nx))
		if err != nil {
			return fmt.Errorf("define network: %w", d.lverr(err))
		}
		undo.add("undefine network", func() error { return l.NetworkUndefine(net) })
		if err := l.NetworkCreate(net); err != nil {
			return fmt.Errorf("start network: %w", d.lverr(err))
		}
		undo.add("stop network", func() error { return l.NetworkDestroy(net) })
		_ = l.NetworkSetAutostart(net, 1)

		if err := d.refreshHostFilter(l); err != nil {
			return err
		}
		gw := gatewayIP(n)
		fname := name
		if _, err := l.NwfilterLookupByName(fname); err == nil {
			return fmt.Errorf("network filter %s: %w", fname, ErrExists)
		}
		if _, err := d.defineFilter(l, fname, func(uuid string) ([]byte, error) {
			return renderFilter(name, s.NetworkMode, gw, allow, uuid)
		}); err != nil {
			return err
		}
		undo.add("undefine network filter", func() error {
			f, err := l.NwfilterLookupByName(fname)
			if err != nil {
				return err
			}
			return l.NwfilterUndefine(f)
		})
	}

	dx, err := renderDomain(in)
	if err != nil {
		return err
	}
	if _, err := l.DomainDefineXMLFlags(string(dx), libvirt.DomainDefineValidate); err != nil {
		return fmt.Errorf("define domain: %w", d.lverr(err))
	}
	log.Info("workspace defined", "domain", name, "type", d.domType, "overlay", ovPath)
	return nil
}

// freeSubnet picks N for 10.213.N.0/24 not used by any libvirt network.
func (d *Driver) freeSubnet(l *libvirt.Libvirt) (int, error) {
	nets, _, err := l.ConnectListAllNetworks(1, 0)
	if err != nil {
		return 0, fmt.Errorf("list networks: %w", d.lverr(err))
	}
	used := map[int]bool{}
	for _, n := range nets {
		x, err := l.NetworkGetXMLDesc(n, 0)
		if err != nil {
			continue
		}
		if i := strings.Index(x, "10.213."); i >= 0 {
			rest := x[i+len("10.213."):]
			if j := strings.IndexByte(rest, '.'); j > 0 {
				if v, err := strconv.Atoi(rest[:j]); err == nil {
					used[v] = true
				}
			}
		}
	}
	for n := 1; n < 255; n++ {
		if !used[n] {
			return n, nil
		}
	}
	return 0, errors.New("no free subnet left in 10.213.0.0/16")
}

func (d *Driver) domain(name string) (*libvirt.Libvirt, libvirt.Domain, error) {
	l, err := d.conn()
	if err != nil {
		return nil, libvirt.Domain{}, err
	}
	dn := d.DomainName(name)
	dom, err := l.DomainLookupByName(dn)
	if err != nil {
		return nil, dom, fmt.Errorf("domain %s: %w", dn, d.lverr(err))
	}
	if err := d.checkOwned(l, dom, name); err != nil {
		return nil, dom, err
	}
	return l, dom, nil
}

// Start boots a workspace (and its network if it is down).
func (d *Driver) Start(ctx context.Context, name string) error {
	l, dom, err := d.domain(name)
	if err != nil {
		return err
	}
	if err := d.prepareStart(l, dom, name); err != nil {
		return fmt.Errorf("start %s: %w", dom.Name, err)
	}
	// A cold boot moves the disk on: a saved state would no longer match it.
	d.discardSavedState(dom.Name, "cold start")
	if err := l.DomainCreate(dom); err != nil {
		return fmt.Errorf("start domain %s: %w", dom.Name, d.lverr(err))
	}
	return nil
}

// prepareStart readies what a start or a resume needs: a disposable
// workspace's leftovers gone, its network up with a fresh host filter.
func (d *Driver) prepareStart(l *libvirt.Libvirt, dom libvirt.Domain, name string) error {
	if err := d.discardLeftovers(l, dom, name); err != nil {
		return err
	}
	if net, err := l.NetworkLookupByName(dom.Name); err == nil {
		if active, err := l.NetworkIsActive(net); err == nil && active == 0 {
			if err := l.NetworkCreate(net); err != nil {
				return fmt.Errorf("start network: %w", d.lverr(err))
			}
		}
		// The host's addresses may have changed since the last start.
		if err := d.refreshHostFilter(l); err != nil {
			return err
		}
	}
	return nil
}

// Shutdown asks the guest to power off (guest agent, else ACPI).
func (d *Driver) Shutdown(ctx context.Context, name string) error {
	l, dom, err := d.domain(name)
	if err != nil {
		return err
	}
	if err := l.DomainShutdownFlags(dom, libvirt.DomainShutdownAcpiPowerBtn); err != nil {
		return fmt.Errorf("shut down %s: %w", dom.Name, d.lverr(err))
	}
	return nil
}

// ForceStop powers the VM off at once.
func (d *Driver) ForceStop(ctx context.Context, name string) error {
	l, dom, err := d.domain(name)
	if err != nil {
		return err
	}
	if err := l.DomainDestroy(dom); err != nil {
		return fmt.Errorf("power off %s: %w", dom.Name, d.lverr(err))
	}
	return nil
}

// Delete removes everything a workspace of this daemon has: domain,
// overlay, network, filter, folder. A domain of that name that is not this
// daemon's is not found, and nothing is touched.
func (d *Driver) Delete(ctx context.Context, name string) error {
	l, pool, err := d.pool()
	if err != nil {
		return err
	}
	base := d.DomainName(name)
	found := false
	var errs []error
	if dom, err := l.DomainLookupByName(base); err == nil {
		if err := d.checkOwned(l, dom, name); err != nil {
			return fmt.Errorf("workspace %q: %w", name, err)
		}
		found = true
		if st, _, err := l.DomainGetState(dom, 0); err == nil && libvirt.DomainState(st) != libvirt.DomainShutoff {
			_ = l.DomainDestroy(dom)
		}
		// Snapshots live in the overlay, deleted below; libvirt keeps
		// their metadata and refuses to undefine unless told.
		if err := l.DomainUndefineFlags(dom, libvirt.DomainUndefineManagedSave|libvirt.DomainUndefineNvram|libvirt.DomainUndefineSnapshotsMetadata); err != nil {
			errs = append(errs, fmt.Errorf("undefine: %w", d.lverr(err)))
		}
	}
	if vol, err := l.StorageVolLookupByName(pool, overlayName(base)); err == nil {
		found = true
		if err := l.StorageVolDelete(vol, 0); err != nil {
			errs = append(errs, fmt.Errorf("delete overlay: %w", d.lverr(err)))
		}
	}
	if err := d.removeTransientOverlays(l, pool, name); err != nil {
		errs = append(errs, err)
	}
	if net, err := l.NetworkLookupByName(base); err == nil {
		found = true
		if active, _ := l.NetworkIsActive(net); active == 1 {
			_ = l.NetworkDestroy(net)
		}
		if err := l.NetworkUndefine(net); err != nil {
			errs = append(errs, fmt.Errorf("undefine network: %w", d.lverr(err)))
		}
	}
	if f, err := l.NwfilterLookupByName(base); err == nil {
		found = true
		if err := l.NwfilterUndefine(f); err != nil {
			errs = append(errs, fmt.Errorf("undefine network filter: %w", d.lverr(err)))
		}
	}
	if d.uri.Host == "" {
		_ = os.RemoveAll(WorkspacePaths(d.opts.StateDir, name).Dir)
	}
	if err := d.removeSavedState(base); err != nil {
		errs = append(errs, fmt.Errorf("delete saved state: %w", err))
	}
	if !found && len(errs) == 0 {
		return fmt.Errorf("workspace %q: %w", name, ErrNotFound)
	}
	if len(errs) == 0 {
		d.forgetLegacy(name)
	}
	return errors.Join(errs...)
}
