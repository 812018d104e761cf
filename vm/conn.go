package vm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	libvirt "github.com/digitalocean/go-libvirt"
	"github.com/hashicorp/go-hclog"
)

// Driver is one reconnecting libvirt connection.
type Driver struct {
	opts    Options
	uri     *url.URL
	log     hclog.Logger
	domType string
	// id is the daemon identity this driver stamps its domains with
	// (owner.go); legacy maps workspaces adopted from an earlier version
	// to their old domain names (legacyGone: the reverse, of deleted ones).
	id         string
	namesMu    sync.Mutex
	legacy     map[string]string
	legacyGone map[string]string

	mu   sync.RWMutex
	l    *libvirt.Libvirt
	gen  int           // connection generation, bumped on reconnect
	up   chan struct{} // closed when a new connection is ready
	done chan struct{}
	once sync.Once
}

// New connects to libvirt, makes sure the storage pool exists and is this
// state folder's, and finds the workspaces this daemon owns (owner.go).
func New(ctx context.Context, opts Options) (*Driver, error) {
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}
	if opts.StateDir == "" {
		return nil, errors.New("vm: no state folder given")
	}
	abs, err := filepath.Abs(opts.StateDir)
	if err != nil {
		return nil, fmt.Errorf("state folder %q: %w", opts.StateDir, err)
	}
	opts.StateDir = abs
	defaultPool := opts.PoolName == ""
	if defaultPool {
		opts.PoolName = DefaultPoolName(opts.StateDir)
	}
	u, err := url.Parse(opts.URI)
	if err != nil {
		return nil, fmt.Errorf("%w: cannot reach libvirt at %s: bad URI: %v", ErrUnreachable, opts.URI, err)
	}
	d := &Driver{opts: opts, uri: u, log: opts.Logger.Named("vm"), legacy: map[string]string{}, legacyGone: map[string]string{},
		up: make(chan struct{}), done: make(chan struct{})}
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
	if err := d.findPool(l, defaultPool); err != nil {
		l.Disconnect()
		return nil, err
	}
	if err := d.ensurePool(ctx); err != nil {
		l.Disconnect()
		return nil, err
	}
	// Made once libvirt and the pool are there: a daemon refused before
	// leaves no identity behind.
	if d.id, err = LoadIdentity(opts.StateDir); err != nil {
		l.Disconnect()
		return nil, err
	}
	if err := d.adoptLegacy(l); err != nil {
		l.Disconnect()
		return nil, err
	}
	d.log.Info("daemon identity", "id", d.id, "names", d.prefix()+"NAME", "pool", d.opts.PoolName)
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
		if l == nil {
			return // closed before this loop looked (only watch itself clears it otherwise)
		}
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
