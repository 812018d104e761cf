// Package vm is the libvirt driver: it connects to libvirtd through
// go-libvirt's RPC, renders domain and network XML, manages the storage
// pool, overlays and per-workspace networks, and reports lifecycle events.
package vm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	libvirt "github.com/digitalocean/go-libvirt"
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
	CreatedAt                 time.Time
	ProfileJSON               string
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
}

// Event is a lifecycle event of a workspace domain.
type Event struct {
	Workspace string
	Type      string
	Detail    string
	Time      time.Time
}

// Driver is one reconnecting libvirt connection.
type Driver struct {
	opts    Options
	uri     *url.URL
	log     hclog.Logger
	domType string

	mu   sync.RWMutex
	l    *libvirt.Libvirt
	gen  int           // connection generation, bumped on reconnect
	up   chan struct{} // closed when a new connection is ready
	done chan struct{}
	once sync.Once
}

// New connects to libvirt and makes sure the storage pool exists.
func New(ctx context.Context, opts Options) (*Driver, error) {
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}
	if opts.PoolName == "" {
		opts.PoolName = "workspace"
	}
	u, err := url.Parse(opts.URI)
	if err != nil {
		return nil, fmt.Errorf("%w: cannot reach libvirt at %s: bad URI: %v", ErrUnreachable, opts.URI, err)
	}
	d := &Driver{opts: opts, uri: u, log: opts.Logger.Named("vm"), up: make(chan struct{}), done: make(chan struct{})}
	l, err := d.dial()
	if err != nil {
		return nil, err
	}
	d.l = l
	close(d.up)
	d.domType = "qemu"
	if !strings.HasPrefix(u.Scheme, "test") {
		// Ask libvirt: it offers kvm only when QEMU, as the user it runs
		// as, can use /dev/kvm (a root-only /dev/kvm is not enough).
		if caps, err := l.Capabilities(); err == nil && bytes.Contains(caps, []byte("<domain type='kvm'")) {
			d.domType = "kvm"
		}
	}
	if d.domType == "kvm" && u.Host == "" && pvmOnly() {
		d.domType = "qemu"
		d.log.Warn("KVM here is PVM (kvm_pvm), which boots only PVM-enabled guest kernels: using TCG")
	}
	if strings.HasPrefix(u.Scheme, "qemu") && d.domType == "qemu" {
		d.log.Warn("libvirt offers no KVM here: guests run under TCG software emulation and are slow")
	}
	if err := d.ensurePool(ctx); err != nil {
		l.Disconnect()
		return nil, err
	}
	go d.watch()
	return d, nil
}

func (d *Driver) dial() (*libvirt.Libvirt, error) {
	l, err := libvirt.ConnectToURI(d.uri)
	if err != nil {
		return nil, fmt.Errorf("%w: cannot reach libvirt at %s: %v", ErrUnreachable, d.opts.URI, err)
	}
	return l, nil
}

// watch reconnects with backoff whenever the connection drops.
func (d *Driver) watch() {
	for {
		d.mu.RLock()
		l := d.l
		d.mu.RUnlock()
		select {
		case <-d.done:
			return
		case <-l.Disconnected():
		}
		d.mu.Lock()
		d.up = make(chan struct{})
		d.l = nil
		d.mu.Unlock()
		d.log.Warn("lost the libvirt connection; reconnecting", "uri", d.opts.URI)
		backoff := 200 * time.Millisecond
		for {
			select {
			case <-d.done:
				return
			case <-time.After(backoff):
			}
			nl, err := d.dial()
			if err == nil {
				d.mu.Lock()
				d.l = nl
				d.gen++
				close(d.up)
				d.mu.Unlock()
				d.log.Info("reconnected to libvirt", "uri", d.opts.URI)
				if err := d.ensurePool(context.Background()); err != nil {
					d.log.Error("storage pool after reconnect", "error", err)
				}
				break
			}
			backoff = min(2*backoff, 5*time.Second)
		}
	}
}

// conn returns the live connection or an ErrUnreachable error.
func (d *Driver) conn() (*libvirt.Libvirt, error) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.l == nil {
		return nil, fmt.Errorf("%w: cannot reach libvirt at %s: connection lost, reconnecting", ErrUnreachable, d.opts.URI)
	}
	return d.l, nil
}

// Close ends the connection.
func (d *Driver) Close() error {
	d.once.Do(func() { close(d.done) })
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.l != nil {
		err := d.l.Disconnect()
		d.l = nil
		return err
	}
	return nil
}

// URI is the libvirt URI.
func (d *Driver) URI() string { return d.opts.URI }

// Connected tells whether the connection is up.
func (d *Driver) Connected() bool {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.l != nil
}

// pvmOnly says whether this host's KVM is only the PVM backend (nested
// clouds): ordinary guest kernels hang under it, so TCG is the working choice.
func pvmOnly() bool {
	exists := func(p string) bool { _, err := os.Stat(p); return err == nil }
	return exists("/sys/module/kvm_pvm") && !exists("/sys/module/kvm_intel") && !exists("/sys/module/kvm_amd")
}

// DomainType is "kvm" when libvirt offers KVM (and it is not PVM-only), else
// "qemu" (TCG).
func (d *Driver) DomainType() string { return d.domType }

// lverr maps libvirt errors to our classes and connection loss to ErrUnreachable.
func (d *Driver) lverr(err error) error {
	if err == nil {
		return nil
	}
	var le libvirt.Error
	if errors.As(err, &le) {
		switch libvirt.ErrorNumber(le.Code) {
		case libvirt.ErrNoDomain, libvirt.ErrNoNetwork, libvirt.ErrNoStorageVol, libvirt.ErrNoStoragePool:
			return fmt.Errorf("%w: %s", ErrNotFound, le.Message)
		}
		return errors.New(le.Message)
	}
	if !d.Connected() || errors.Is(err, io.EOF) || strings.Contains(err.Error(), "closed") {
		return fmt.Errorf("%w: cannot reach libvirt at %s: %v", ErrUnreachable, d.opts.URI, err)
	}
	return err
}

func (d *Driver) poolDir() string { return filepath.Join(d.opts.StateDir, "pool") }

func (d *Driver) ensurePool(ctx context.Context) error {
	l, err := d.conn()
	if err != nil {
		return err
	}
	pool, err := l.StoragePoolLookupByName(d.opts.PoolName)
	if err != nil {
		if !errors.Is(d.lverr(err), ErrNotFound) {
			return fmt.Errorf("storage pool %q: %w", d.opts.PoolName, d.lverr(err))
		}
		if err := ensureDir(d.poolDir(), 0o711); err != nil {
			return fmt.Errorf("storage pool %q: %w", d.opts.PoolName, err)
		}
		pool, err = l.StoragePoolDefineXML(string(renderPool(d.opts.PoolName, d.poolDir())), 0)
		if err != nil {
			return fmt.Errorf("define storage pool %q: %w", d.opts.PoolName, d.lverr(err))
		}
		_ = l.StoragePoolSetAutostart(pool, 1)
		d.log.Info("defined storage pool", "pool", d.opts.PoolName, "path", d.poolDir())
	}
	state, _, _, _, err := l.StoragePoolGetInfo(pool)
	if err != nil {
		return fmt.Errorf("storage pool %q: %w", d.opts.PoolName, d.lverr(err))
	}
	if libvirt.StoragePoolState(state) != libvirt.StoragePoolRunning {
		if err := ensureDir(d.poolDir(), 0o711); err != nil {
			return fmt.Errorf("storage pool %q: %w", d.opts.PoolName, err)
		}
		if err := l.StoragePoolCreate(pool, 0); err != nil {
			return fmt.Errorf("start storage pool %q: %w", d.opts.PoolName, d.lverr(err))
		}
	} else {
		_ = l.StoragePoolRefresh(pool, 0)
	}
	return nil
}

func (d *Driver) pool() (*libvirt.Libvirt, libvirt.StoragePool, error) {
	l, err := d.conn()
	if err != nil {
		return nil, libvirt.StoragePool{}, err
	}
	p, err := l.StoragePoolLookupByName(d.opts.PoolName)
	if err != nil {
		return nil, p, fmt.Errorf("storage pool %q: %w", d.opts.PoolName, d.lverr(err))
	}
	return l, p, nil
}

// UploadVolume creates a volume and streams length bytes of r into it.
func (d *Driver) UploadVolume(ctx context.Context, name, format string, capacity uint64, r io.Reader, length int64) (string, error) {
	l, pool, err := d.pool()
	if err != nil {
		return "", err
	}
	if _, err := l.StorageVolLookupByName(pool, name); err == nil {
		return "", fmt.Errorf("volume %q: %w", name, ErrExists)
	}
	vol, err := l.StorageVolCreateXML(pool, string(renderVolume(name, format, capacity, "", "")), 0)
	if err != nil {
		return "", fmt.Errorf("create volume %q: %w", name, d.lverr(err))
	}
	if err := l.StorageVolUpload(vol, r, 0, uint64(length), 0); err != nil {
		_ = l.StorageVolDelete(vol, 0)
		return "", fmt.Errorf("upload volume %q: %w", name, d.lverr(err))
	}
	path, err := l.StorageVolGetPath(vol)
	if err != nil {
		return "", fmt.Errorf("volume %q: %w", name, d.lverr(err))
	}
	d.log.Info("uploaded volume", "volume", name, "format", format, "bytes", length)
	return path, nil
}

// DeleteVolume removes a volume from the pool.
func (d *Driver) DeleteVolume(ctx context.Context, name string) error {
	l, pool, err := d.pool()
	if err != nil {
		return err
	}
	vol, err := l.StorageVolLookupByName(pool, name)
	if err != nil {
		return fmt.Errorf("volume %q: %w", name, d.lverr(err))
	}
	if err := l.StorageVolDelete(vol, 0); err != nil {
		return fmt.Errorf("delete volume %q: %w", name, d.lverr(err))
	}
	return nil
}

// VolumePath returns a volume's path on the libvirt host.
func (d *Driver) VolumePath(ctx context.Context, name string) (string, error) {
	l, pool, err := d.pool()
	if err != nil {
		return "", err
	}
	vol, err := l.StorageVolLookupByName(pool, name)
	if err != nil {
		return "", fmt.Errorf("volume %q: %w", name, d.lverr(err))
	}
	p, err := l.StorageVolGetPath(vol)
	if err != nil {
		return "", fmt.Errorf("volume %q: %w", name, d.lverr(err))
	}
	return p, nil
}

func overlayName(workspace string) string { return DomainName(workspace) + ".qcow2" }

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
	name := DomainName(s.Name)
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
	if err := ensureDir(filepath.Dir(paths.Dir), 0o711); err != nil {
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
	ov, err := l.StorageVolCreateXML(pool, string(renderVolume(overlayName(s.Name), "qcow2", s.DiskBytes, basePath, s.BaseFormat)), 0)
	if err != nil {
		return fmt.Errorf("create overlay: %w", d.lverr(err))
	}
	undo.add("delete overlay", func() error { return l.StorageVolDelete(ov, 0) })
	ovPath, err := l.StorageVolGetPath(ov)
	if err != nil {
		return fmt.Errorf("overlay path: %w", d.lverr(err))
	}
	in := domainInput{Spec: s, Type: d.domType, Paths: paths, Overlay: ovPath}
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
		nx, err := renderNetwork(s.Name, s.NetworkMode, n)
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
		fname := FilterName(s.Name)
		if _, err := l.NwfilterLookupByName(fname); err == nil {
			return fmt.Errorf("network filter %s: %w", fname, ErrExists)
		}
		if _, err := d.defineFilter(l, fname, func(uuid string) ([]byte, error) {
			return renderFilter(s.Name, s.NetworkMode, gw, allow, uuid)
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
	dom, err := l.DomainLookupByName(DomainName(name))
	if err != nil {
		return nil, dom, fmt.Errorf("domain %s: %w", DomainName(name), d.lverr(err))
	}
	return l, dom, nil
}

// Start boots a workspace (and its network if it is down).
func (d *Driver) Start(ctx context.Context, name string) error {
	l, dom, err := d.domain(name)
	if err != nil {
		return err
	}
	if err := d.discardLeftovers(l, dom, name); err != nil {
		return fmt.Errorf("start %s: %w", dom.Name, err)
	}
	if net, err := l.NetworkLookupByName(DomainName(name)); err == nil {
		if active, err := l.NetworkIsActive(net); err == nil && active == 0 {
			if err := l.NetworkCreate(net); err != nil {
				return fmt.Errorf("start network: %w", d.lverr(err))
			}
		}
		// The host's addresses may have changed since the last start.
		if err := d.refreshHostFilter(l); err != nil {
			return fmt.Errorf("start %s: %w", dom.Name, err)
		}
	}
	if err := l.DomainCreate(dom); err != nil {
		return fmt.Errorf("start domain %s: %w", dom.Name, d.lverr(err))
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

// Delete removes everything a workspace has: domain, overlay, network, folder.
func (d *Driver) Delete(ctx context.Context, name string) error {
	l, pool, err := d.pool()
	if err != nil {
		return err
	}
	found := false
	var errs []error
	if dom, err := l.DomainLookupByName(DomainName(name)); err == nil {
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
	if vol, err := l.StorageVolLookupByName(pool, overlayName(name)); err == nil {
		found = true
		if err := l.StorageVolDelete(vol, 0); err != nil {
			errs = append(errs, fmt.Errorf("delete overlay: %w", d.lverr(err)))
		}
	}
	if err := d.removeTransientOverlays(l, pool, name); err != nil {
		errs = append(errs, err)
	}
	if net, err := l.NetworkLookupByName(DomainName(name)); err == nil {
		found = true
		if active, _ := l.NetworkIsActive(net); active == 1 {
			_ = l.NetworkDestroy(net)
		}
		if err := l.NetworkUndefine(net); err != nil {
			errs = append(errs, fmt.Errorf("undefine network: %w", d.lverr(err)))
		}
	}
	if f, err := l.NwfilterLookupByName(FilterName(name)); err == nil {
		found = true
		if err := l.NwfilterUndefine(f); err != nil {
			errs = append(errs, fmt.Errorf("undefine network filter: %w", d.lverr(err)))
		}
	}
	if d.uri.Host == "" {
		_ = os.RemoveAll(WorkspacePaths(d.opts.StateDir, name).Dir)
	}
	if !found && len(errs) == 0 {
		return fmt.Errorf("workspace %q: %w", name, ErrNotFound)
	}
	return errors.Join(errs...)
}

func stateOf(s int32) State {
	switch libvirt.DomainState(s) {
	case libvirt.DomainRunning, libvirt.DomainBlocked:
		return "running"
	case libvirt.DomainPaused, libvirt.DomainPmsuspended:
		return "paused"
	case libvirt.DomainCrashed:
		return "crashed"
	}
	return "stopped"
}

func (d *Driver) info(l *libvirt.Libvirt, dom libvirt.Domain) (Info, error) {
	st, _, err := l.DomainGetState(dom, 0)
	if err != nil {
		return Info{}, fmt.Errorf("domain %s: %w", dom.Name, d.lverr(err))
	}
	x, err := l.DomainGetXMLDesc(dom, 0)
	if err != nil {
		return Info{}, fmt.Errorf("domain %s: %w", dom.Name, d.lverr(err))
	}
	meta, display, err := parseDomain([]byte(x))
	if err != nil {
		return Info{}, err
	}
	ws := meta.Workspace
	if ws == "" {
		ws = strings.TrimPrefix(dom.Name, "ws-")
	}
	p := WorkspacePaths(d.opts.StateDir, ws)
	info := Info{Name: dom.Name, State: stateOf(st), Meta: meta, DisplayType: display, AgentSocket: p.AgentSocket, ConsoleLog: p.ConsoleLog}
	if display != "none" {
		info.DisplaySocket = p.DisplaySocket
	}
	if d.uri.Host != "" {
		info.ConsoleLog = ""
	}
	return info, nil
}

// Info describes one workspace.
func (d *Driver) Info(ctx context.Context, name string) (Info, error) {
	l, dom, err := d.domain(name)
	if err != nil {
		return Info{}, err
	}
	return d.info(l, dom)
}

// List describes every ws-* domain.
func (d *Driver) List(ctx context.Context) ([]Info, error) {
	l, err := d.conn()
	if err != nil {
		return nil, err
	}
	doms, _, err := l.ConnectListAllDomains(1, 0)
	if err != nil {
		return nil, fmt.Errorf("list domains: %w", d.lverr(err))
	}
	var out []Info
	for _, dom := range doms {
		if !strings.HasPrefix(dom.Name, "ws-") {
			continue
		}
		info, err := d.info(l, dom)
		if errors.Is(err, ErrNotFound) {
			continue // undefined meanwhile
		}
		if err != nil {
			return nil, err
		}
		out = append(out, info)
	}
	return out, nil
}

var eventTypes = []string{"defined", "undefined", "started", "suspended", "resumed", "stopped", "shutdown", "pmsuspended", "crashed"}

// Events streams lifecycle events of ws-* domains, resubscribing after a
// reconnect, until ctx ends.
func (d *Driver) Events(ctx context.Context) (<-chan Event, error) {
	if _, err := d.conn(); err != nil {
		return nil, err
	}
	out := make(chan Event, 64)
	go func() {
		defer close(out)
		for ctx.Err() == nil {
			d.mu.RLock()
			l, up := d.l, d.up
			d.mu.RUnlock()
			if l == nil {
				select {
				case <-ctx.Done():
					return
				case <-up:
					continue
				}
			}
			sub, cancel := context.WithCancel(ctx)
			ch, err := l.LifecycleEvents(sub)
			if err != nil {
				cancel()
				d.log.Warn("subscribe to lifecycle events", "error", err)
				select {
				case <-ctx.Done():
					return
				case <-time.After(time.Second):
				}
				continue
			}
			for ev := range ch {
				if !strings.HasPrefix(ev.Dom.Name, "ws-") {
					continue
				}
				typ := "unknown"
				if ev.Event >= 0 && int(ev.Event) < len(eventTypes) {
					typ = eventTypes[ev.Event]
				}
				e := Event{Workspace: strings.TrimPrefix(ev.Dom.Name, "ws-"), Type: typ, Detail: strconv.Itoa(int(ev.Detail)), Time: time.Now().UTC()}
				select {
				case out <- e:
				case <-ctx.Done():
				}
			}
			cancel()
		}
	}()
	return out, nil
}

// Sweep removes every domain, network and volume named "ws-"+prefix*.
func (d *Driver) Sweep(ctx context.Context, prefix string) error {
	l, err := d.conn()
	if err != nil {
		return err
	}
	doms, _, _ := l.ConnectListAllDomains(1, 0)
	nets, _, _ := l.ConnectListAllNetworks(1, 0)
	seen := map[string]bool{}
	for _, dom := range doms {
		if strings.HasPrefix(dom.Name, "ws-"+prefix) {
			seen[strings.TrimPrefix(dom.Name, "ws-")] = true
		}
	}
	for _, n := range nets {
		if strings.HasPrefix(n.Name, "ws-"+prefix) {
			seen[strings.TrimPrefix(n.Name, "ws-")] = true
		}
	}
	filters, _, _ := l.ConnectListAllNwfilters(1, 0)
	for _, f := range filters {
		if strings.HasPrefix(f.Name, "ws-"+prefix) {
			seen[strings.TrimPrefix(f.Name, "ws-")] = true
		}
	}
	var errs []error
	for name := range seen {
		if err := d.Delete(ctx, name); err != nil && !errors.Is(err, ErrNotFound) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// invalidError carries ErrInvalid without changing the message.
type invalidError struct{ err error }

func (e *invalidError) Error() string   { return e.err.Error() }
func (e *invalidError) Unwrap() []error { return []error{ErrInvalid, e.err} }

// revert undoes steps in reverse order (after incus's shared/revert).
type revert struct {
	steps []struct {
		what string
		fn   func() error
	}
}

func (r *revert) add(what string, fn func() error) {
	r.steps = append(r.steps, struct {
		what string
		fn   func() error
	}{what, fn})
}

func (r *revert) run(log hclog.Logger) {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	for i := len(r.steps) - 1; i >= 0; i-- {
		if err := r.steps[i].fn(); err != nil {
			log.Error("rollback step failed", "step", r.steps[i].what, "error", err)
		} else {
			log.Debug("rolled back", "step", r.steps[i].what)
		}
	}
}
