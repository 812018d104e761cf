// Package daemon is the host daemon. It owns the libvirt connection and
// serves the HTTP/JSON API on a unix socket (peer credentials checked):
// the workspaces' lifecycle, base images, snapshots and lifecycle events;
// the work diary (keys, ingestion, review, export, report, backup and
// restore); the agent hub, one resyncing channel to each running
// workspace's guest agent, which pushes the tracking policy and state and
// stores what the agent sends; tracking on and off and retakes; the display
// stream and live screen; and it hosts the web UI. docs/architecture.md
// lists its files by concern.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/workspace-sandbox/workspace/api"
	"github.com/workspace-sandbox/workspace/internal/dirperm"
	"github.com/workspace-sandbox/workspace/vm"
)

// Config is how the daemon is run.
type Config struct {
	StateDir   string
	Socket     string
	LibvirtURI string
	// PoolName is the libvirt storage pool for images and overlays; empty
	// for the state folder's own (vm.DefaultPoolName). A pool whose folder
	// is not StateDir/pool is refused.
	PoolName string
	Version  string
	Logger   hclog.Logger
	// UIAddr is the web UI's address (DefaultUIAddr when empty, "off" for
	// none); a non-loopback one needs UITLSCert and UITLSKey.
	UIAddr, UITLSCert, UITLSKey string
	// ShareRoots are the folders below which profiles may share host
	// folders; none means the home folder of the user asking.
	ShareRoots []string
	// WitnessInterval is the shortest time between two submissions of a
	// workspace's checkpoints to its witnesses (DefaultWitnessInterval
	// when 0).
	WitnessInterval time.Duration
	// SuspendOnStop: when the daemon is told to stop (SIGTERM from the
	// service manager at host shutdown), it first suspends every running
	// workspace, in parallel, for at most SuspendTimeout
	// (DefaultSuspendTimeout when 0); what it cannot suspend in that time
	// is left to the host's shutdown.
	SuspendOnStop  bool
	SuspendTimeout time.Duration
	// DiaryMinFree is the free space the diary's file system keeps: below
	// it, guests' captures are refused (DefaultMinFree when 0; negative
	// for no floor).
	DiaryMinFree int64
	// TCGCache caps the translation cache of each guest QEMU emulates
	// (no KVM), in bytes: DefaultTCGCache when 0, QEMU's default (1 GiB)
	// when negative.
	TCGCache int64
}

// DefaultTCGCache is the translation cache a TCG guest gets: QEMU's own
// default of 1 GiB fills up as a guest boots and stays in the host's
// memory while it idles (docs/benchmarks.md).
const DefaultTCGCache = 256 << 20

// DefaultSuspendTimeout bounds the suspends of a stop with SuspendOnStop;
// the service unit's TimeoutStopSec leaves room for it.
const DefaultSuspendTimeout = 3 * time.Minute

// Daemon is a running daemon.
type Daemon struct {
	ui     uiState
	cfg    Config
	hv     Hypervisor
	log    hclog.Logger
	server *server
}

// New prepares a daemon around an existing hypervisor connection.
func New(cfg Config, hv Hypervisor) (*Daemon, error) {
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	log := cfg.Logger.Named("daemon")
	imgDir := filepath.Join(cfg.StateDir, "images")
	if err := os.MkdirAll(imgDir, 0o700); err != nil {
		return nil, fmt.Errorf("prepare state dir: %w", err)
	}
	if err := os.Chmod(imgDir, 0o700); err != nil { // an older daemon made it 0755
		return nil, fmt.Errorf("prepare state dir: %w", err)
	}
	images := &imageStore{dir: imgDir, hv: hv, log: log.Named("images")}
	d := &Daemon{cfg: cfg, hv: hv, log: log}
	m := newManager(hv, images, log.Named("workspaces"))
	m.shares.roots, m.shares.stateDir = cfg.ShareRoots, cfg.StateDir
	for _, r := range cfg.ShareRoots {
		if !filepath.IsAbs(r) || filepath.Clean(r) != r || r == "/" {
			return nil, fmt.Errorf("--share-root %q: need a clean absolute folder other than /", r)
		}
	}
	ds, err := newDiaryService(context.Background(), cfg.StateDir, m, log.Named("diary"))
	if err != nil {
		return nil, fmt.Errorf("open diary: %w", err)
	}
	if cfg.UIAddr == "" {
		cfg.UIAddr = DefaultUIAddr
	}
	if cfg.UIAddr != "off" {
		if err := checkUIAddr(cfg.UIAddr, cfg.UITLSCert, cfg.UITLSKey); err != nil {
			return nil, err
		}
	}
	d.cfg = cfg
	prov := newProvisioner(m, cfg.StateDir, log.Named("provision"))
	m.checkProvision = prov.checkPackages
	agents := newAgentHub(m, ds, cfg.StateDir, minFree(cfg.DiaryMinFree), log.Named("agents"))
	m.resumed = func(ctx context.Context, name string, since time.Time) {
		agents.suspendedGap(ctx, name, since, time.Now())
	}
	d.server = &server{
		prov:    prov,
		ui:      &d.ui,
		m:       m,
		diary:   ds,
		agents:  agents,
		images:  images,
		events:  newBroker(log.Named("events")),
		witness: newWitnessQueue(ds, m, cfg.WitnessInterval, log.Named("witness")),
		log:     log.Named("api"),
		info: func() api.Info {
			return api.Info{Version: cfg.Version, LibvirtURI: hv.URI(), Connected: hv.Connected(), DomainType: hv.DomainType(), StateDir: cfg.StateDir}
		},
	}
	return d, nil
}

// Close releases what New opened (the diary database).
func (d *Daemon) Close() error { return d.server.diary.close() }

// Handler returns the API handler (tests serve it without a socket).
func (d *Daemon) Handler() http.Handler { return d.server.routes() }

// Run connects to libvirt, serves the API on cfg.Socket and returns when ctx
// ends (then it shuts the server down) or serving fails.
func Run(ctx context.Context, cfg Config) error {
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	if err := checkLibvirtURI(cfg.LibvirtURI, isThisHost); err != nil {
		return err
	}
	abs, err := filepath.Abs(cfg.StateDir)
	if err != nil {
		return fmt.Errorf("state dir %q: %w", cfg.StateDir, err)
	}
	cfg.StateDir = abs
	// qemu runs as its own user and must traverse into workspace folders.
	if err := dirperm.Ensure(cfg.StateDir, 0o711); err != nil {
		return fmt.Errorf("create state dir: %w", err)
	}
	drv, err := vm.New(ctx, vm.Options{URI: cfg.LibvirtURI, StateDir: cfg.StateDir, PoolName: cfg.PoolName, Logger: cfg.Logger, TBCacheMiB: tbCacheMiB(cfg.TCGCache)})
	if err != nil {
		return err
	}
	defer drv.Close()
	d, err := New(cfg, drv)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Serve(ctx)
}

// Serve listens on the socket and serves until ctx ends.
func (d *Daemon) Serve(ctx context.Context) error {
	ln, err := listen(d.cfg.Socket, d.log)
	if err != nil {
		return err
	}
	defer os.Remove(d.cfg.Socket)

	// The agent hub outlives the stop signal for as long as suspending
	// at stop needs it (the agents flush their spools then).
	hubCtx, hubCancel := context.WithCancel(context.Background())
	defer hubCancel()
	go d.server.agents.run(hubCtx)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go d.server.events.run(ctx, d.forwardEvents(ctx))
	go d.server.witness.run(ctx)
	if err := d.reconcile(ctx); err != nil {
		d.log.Warn("reconcile", "error", err)
	}

	srv := &http.Server{
		Handler:           d.Handler(),
		ConnContext:       connContext,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          d.log.StandardLogger(&hclog.StandardLoggerOptions{InferLevels: true}),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	d.log.Info("serving", "socket", d.cfg.Socket, "libvirt", d.hv.URI(), "state_dir", d.cfg.StateDir)
	d.startUI(ctx)
	select {
	case <-ctx.Done():
		if d.cfg.SuspendOnStop {
			d.suspendAtStop()
		}
		hubCancel()
		sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer scancel()
		if err := srv.Shutdown(sctx); err != nil {
			d.log.Warn("shutdown: connections still open after the grace period", "error", err)
		}
		d.log.Info("stopped")
		return nil
	case err := <-errc:
		return fmt.Errorf("serve %s: %w", d.cfg.Socket, err)
	}
}

// suspendAtStop suspends every running workspace within the configured
// time, so a host shutdown does not cut their guests off.
func (d *Daemon) suspendAtStop() {
	limit := d.cfg.SuspendTimeout
	if limit <= 0 {
		limit = DefaultSuspendTimeout
	}
	d.log.Info("stopping: suspending the running workspaces", "within", limit)
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	d.server.suspendAll(ctx)
}

// reconcile logs what libvirt holds after a (re)start: running workspaces
// keep running, and the API reports them from libvirt's own state.
func (d *Daemon) reconcile(ctx context.Context) error {
	ws, err := d.server.m.list(ctx)
	if err != nil {
		return err
	}
	for _, w := range ws {
		d.log.Info("found workspace", "workspace", w.Name, "state", w.State, "image", w.Image)
	}
	d.server.m.discardLeftovers(ctx, ws)
	d.server.diary.ensureAll(ctx)
	return nil
}

// listen opens the API socket: mode 0660, group "workspace" when it exists.
// A stale socket file is replaced; a live daemon on it is an error.
func listen(path string, log hclog.Logger) (net.Listener, error) {
	// Members of the workspace group must reach the socket.
	if err := dirperm.Ensure(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("create socket dir: %w", err)
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return nil, fmt.Errorf("another workspace daemon is already listening on %s", path)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("remove stale socket %s: %w", path, err)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o660); err != nil {
		ln.Close()
		return nil, fmt.Errorf("chmod %s: %w", path, err)
	}
	if gid := groupID(); gid >= 0 {
		if err := os.Chown(path, -1, gid); err != nil {
			log.Warn("cannot give the socket to the workspace group", "error", err)
		}
	}
	return ln, nil
}

// minFree is the diary's free-space floor of a configured value.
func minFree(v int64) uint64 {
	switch {
	case v == 0:
		return DefaultMinFree
	case v < 0:
		return 0
	}
	return uint64(v)
}

// tbCacheMiB is the translation cache size for vm.Options of the daemon's
// TCGCache setting.
func tbCacheMiB(n int64) uint64 {
	switch {
	case n == 0:
		return DefaultTCGCache >> 20
	case n < 0:
		return 0
	}
	return max(uint64(n)>>20, 1)
}
