package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/workspace-sandbox/workspace/api"
	"github.com/workspace-sandbox/workspace/internal/safetext"
	"github.com/workspace-sandbox/workspace/profiles"
	"github.com/workspace-sandbox/workspace/vm"
)

// manager owns the workspace lifecycle. Libvirt is the record of what
// exists: every domain carries its workspace's metadata, so a restarted
// daemon reconciles by listing domains, and running VMs stay running.
type manager struct {
	hv     Hypervisor
	images *imageStore
	log    hclog.Logger
	now    func() time.Time
	poll   time.Duration

	// shares decides which host folders profiles may share.
	shares sharePolicy
	// checkProvision refuses, at create, packages the archive lacks.
	checkProvision func(ctx context.Context, pr profiles.Provision, positions map[string]string) error

	mu    sync.Mutex
	locks map[string]*sync.Mutex
	// bases keeps base images and the workspaces made on them consistent:
	// create holds it shared from the image lookup to the domain's
	// definition, image rm and gc exclusively from the check of an image's
	// users to its removal, so a base cannot go while a workspace is being
	// made on it.
	bases sync.RWMutex

	// resumed, when set, hears that a suspended workspace runs again
	// (resumed or booted cold) and since when it was suspended.
	resumed func(ctx context.Context, name string, since time.Time)
}

func newManager(hv Hypervisor, images *imageStore, log hclog.Logger) *manager {
	return &manager{hv: hv, images: images, log: log, now: time.Now, poll: 500 * time.Millisecond, locks: map[string]*sync.Mutex{},
		shares: sharePolicy{home: userHome}}
}

// lock serialises operations on one workspace name.
func (m *manager) lock(name string) func() {
	m.mu.Lock()
	l, ok := m.locks[name]
	if !ok {
		l = &sync.Mutex{}
		m.locks[name] = l
	}
	m.mu.Unlock()
	l.Lock()
	return l.Unlock
}

func toAPI(info vm.Info) api.Workspace {
	w := api.Workspace{
		Name:          info.Meta.Workspace,
		State:         string(info.State),
		Profile:       info.Meta.Profile,
		Image:         info.Meta.Image,
		CreatedAt:     info.Meta.CreatedAt,
		Domain:        info.Name,
		Display:       info.DisplayType,
		DisplaySocket: info.DisplaySocket,
		AgentSocket:   info.AgentSocket,
		ConsoleLog:    info.ConsoleLog,
		Disposable:    info.Meta.Disposable,
		RSSBytes:      info.RSSBytes,
	}
	if info.Saved != nil {
		w.Saved = &api.SavedState{Bytes: info.Saved.Bytes, SavedAt: info.Saved.SavedAt}
	}
	if w.Name == "" {
		w.Name = strings.TrimPrefix(info.Name, "ws-")
	}
	if w.Display == "" {
		w.Display = "none"
	}
	if info.Meta.ProfileJSON != "" {
		var p profiles.Profile
		if err := json.Unmarshal([]byte(info.Meta.ProfileJSON), &p); err == nil {
			w.Settings = &p
		}
	}
	return w
}

func (m *manager) list(ctx context.Context) ([]api.Workspace, error) {
	infos, err := m.hv.List(ctx)
	if err != nil {
		return nil, fmt.Errorf("list workspaces: %w", classify(err))
	}
	out := make([]api.Workspace, 0, len(infos))
	for _, info := range infos {
		w := toAPI(info)
		w.Settings = nil
		out = append(out, w)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func (m *manager) get(ctx context.Context, name string) (api.Workspace, error) {
	if err := api.ValidateWorkspaceName(name); err != nil {
		return api.Workspace{}, err
	}
	info, err := m.hv.Info(ctx, name)
	if errors.Is(err, vm.ErrNotFound) {
		return api.Workspace{}, noWorkspace(name)
	}
	if err != nil {
		return api.Workspace{}, fmt.Errorf("workspace %q: %w", name, classify(err))
	}
	return toAPI(info), nil
}

// usersOf returns the workspaces whose base is image.
func (m *manager) usersOf(ctx context.Context, image string) ([]string, error) {
	infos, err := m.hv.List(ctx)
	if err != nil {
		return nil, fmt.Errorf("list workspaces: %w", classify(err))
	}
	var users []string
	for _, info := range infos {
		if info.Meta.Image == image {
			users = append(users, toAPI(info).Name)
		}
	}
	sort.Strings(users)
	return users, nil
}

func (m *manager) create(ctx context.Context, req api.CreateRequest, who requester) (api.Workspace, error) {
	if err := api.ValidateWorkspaceName(req.Name); err != nil {
		return api.Workspace{}, err
	}
	if req.Profile == nil {
		return api.Workspace{}, fmt.Errorf("%w: create workspace %q: no profile given", api.ErrInvalid, req.Name)
	}
	if err := req.Profile.ValidateAt(req.Positions); err != nil {
		return api.Workspace{}, fmt.Errorf("%w: create workspace %q: profile %s: %v", api.ErrInvalid, req.Name, safetext.Term(req.ProfilePath), err)
	}
	// Shares are checked on the real folders, and recorded by their real
	// paths: those are what QEMU opens.
	resolved, err := m.shares.check(req.Profile, who, req.Positions)
	if err != nil {
		return api.Workspace{}, fmt.Errorf("create workspace %q: profile %s: %w", req.Name, safetext.Term(req.ProfilePath), err)
	}
	req.Profile = resolved
	if err := m.checkResources(ctx, req); err != nil {
		return api.Workspace{}, fmt.Errorf("create workspace %q: profile %s: %w", req.Name, safetext.Term(req.ProfilePath), err)
	}
	if m.checkProvision != nil {
		if err := m.checkProvision(ctx, req.Profile.Provision, req.Positions); err != nil {
			return api.Workspace{}, fmt.Errorf("create workspace %q: profile %s: %w", req.Name, safetext.Term(req.ProfilePath), err)
		}
	}
	defer m.lock(req.Name)()
	m.bases.RLock()
	defer m.bases.RUnlock()

	if _, err := m.hv.Info(ctx, req.Name); err == nil {
		return api.Workspace{}, fmt.Errorf("%w: workspace %q already exists", api.ErrExists, req.Name)
	} else if !errors.Is(err, vm.ErrNotFound) {
		return api.Workspace{}, fmt.Errorf("create workspace %q: %w", req.Name, classify(err))
	}
	p := req.Profile
	img, err := m.images.get(p.Image)
	if err != nil {
		return api.Workspace{}, fmt.Errorf("create workspace %q: %w", req.Name, err)
	}
	if uint64(p.Disk) < img.VirtualSize {
		return api.Workspace{}, fmt.Errorf("%w: create workspace %q: disk = %q is smaller than image %q (%s)", api.ErrInvalid, req.Name, p.Disk, img.Name, profiles.Size(img.VirtualSize))
	}
	pj, err := json.Marshal(p)
	if err != nil {
		return api.Workspace{}, fmt.Errorf("create workspace %q: encode profile: %w", req.Name, err)
	}
	spec := vm.Spec{
		Name:        req.Name,
		VCPUs:       p.CPUs,
		MemoryBytes: uint64(p.Memory),
		DiskBytes:   uint64(p.Disk),
		BaseVolume:  diskVolume(img.Name),
		BaseFormat:  img.Format,
		NetworkMode: p.Network.Mode,
		Allow:       p.Network.Allow,
		DisplayType: p.Display.Type,
		Clipboard:   p.Clipboard == "both",
		Meta: vm.Metadata{
			Workspace:   req.Name,
			Profile:     req.ProfilePath,
			Image:       img.Name,
			CreatedAt:   m.now().UTC().Truncate(time.Second),
			ProfileJSON: string(pj),
			Disposable:  req.Disposable,
		},
	}
	for _, sh := range p.Shares {
		spec.Shares = append(spec.Shares, vm.ShareSpec{Tag: sh.Tag, HostPath: sh.Host, ReadOnly: sh.ReadOnly})
	}
	if img.Kernel {
		spec.KernelVolume, spec.InitrdVolume, spec.Cmdline = kernelVolume(img.Name), initrdVolume(img.Name), img.Cmdline
	}
	if err := m.hv.Create(ctx, spec); err != nil {
		return api.Workspace{}, fmt.Errorf("create workspace %q: %w", req.Name, classify(err))
	}
	m.log.Info("workspace created", "workspace", req.Name, "image", img.Name, "profile", req.ProfilePath, "disposable", req.Disposable)
	return m.get(ctx, req.Name)
}

func parseTimeout(s string, def time.Duration) (time.Duration, error) {
	if s == "" {
		return def, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%w: timeout %q is not a positive duration like 60s", api.ErrInvalid, s)
	}
	return d, nil
}

// locked parses a request's timeout (def when it has none), reads the
// workspace and takes its name's lock; the caller calls unlock.
func (m *manager) locked(ctx context.Context, name, timeout string, def time.Duration) (w api.Workspace, d time.Duration, unlock func(), err error) {
	if d, err = parseTimeout(timeout, def); err != nil {
		return w, 0, nil, err
	}
	if w, err = m.get(ctx, name); err != nil {
		return w, 0, nil, err
	}
	return w, d, m.lock(name), nil
}

func (m *manager) start(ctx context.Context, name string, req api.StartRequest) (api.Workspace, error) {
	w, timeout, unlock, err := m.locked(ctx, name, req.Timeout, 2*time.Minute)
	if err != nil {
		return w, err
	}
	defer unlock()
	var resumed bool
	var notice string
	if w.State != api.StateRunning {
		if err := recheckShares(w.Settings); err != nil {
			return w, fmt.Errorf("start workspace %q: %w", name, err)
		}
		if w.State == api.StateSuspended {
			if resumed, notice, err = m.resumeLocked(ctx, w); err != nil {
				return w, err
			}
			if m.resumed != nil && w.Saved != nil {
				m.resumed(ctx, name, w.Saved.SavedAt)
			}
		} else if err := m.hv.Start(ctx, name); err != nil {
			return w, fmt.Errorf("start workspace %q: %w", name, classify(err))
		}
		if !resumed {
			m.log.Info("workspace started", "workspace", name)
		}
	}
	if req.Wait && !resumed { // a resumed guest booted long ago
		if err := m.waitBooted(ctx, name, timeout); err != nil {
			return w, err
		}
	}
	out, err := m.get(ctx, name)
	out.Notice = notice
	return out, err
}

// waitBooted waits until the guest's serial console shows output, i.e. the
// guest kernel is running. (The agent issue extends this to "agent connected".)
func (m *manager) waitBooted(ctx context.Context, name string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		w, err := m.get(ctx, name)
		if err != nil {
			return err
		}
		if w.State != api.StateRunning {
			return fmt.Errorf("%w: workspace %q is %s while waiting for it to boot", api.ErrConflict, name, w.State)
		}
		if w.ConsoleLog == "" {
			return nil // remote libvirt: no local console log to watch
		}
		if fi, err := os.Stat(w.ConsoleLog); err == nil && fi.Size() > 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: workspace %q: no console output from the guest within %s", api.ErrUnavailable, name, timeout)
		case <-time.After(m.poll):
		}
	}
}

func (m *manager) stop(ctx context.Context, name string, req api.StopRequest) (api.Workspace, error) {
	return m.stopThen(ctx, name, req, nil)
}

// stopThen stops a workspace as req says, then, under the same lock, runs
// then (when not nil); it returns the workspace as it is after both.
func (m *manager) stopThen(ctx context.Context, name string, req api.StopRequest, then func() error) (api.Workspace, error) {
	w, timeout, unlock, err := m.locked(ctx, name, req.Timeout, 60*time.Second)
	if err != nil {
		return w, err
	}
	defer unlock()
	if err := m.stopLocked(ctx, name, w.State, req.Force, timeout); err != nil {
		return w, err
	}
	if then != nil {
		if err := then(); err != nil {
			return w, err
		}
	}
	return m.get(ctx, name)
}

func (m *manager) stopLocked(ctx context.Context, name, state string, force bool, timeout time.Duration) error {
	switch state {
	case api.StateStopped:
		return nil
	case api.StateSuspended:
		return fmt.Errorf("%w: workspace %q is suspended: `workspace start %s` resumes it, `workspace destroy %s` removes it", api.ErrConflict, name, name, name)
	case api.StateCrashed, api.StatePaused:
		if !force {
			return fmt.Errorf("%w: workspace %q is %s and cannot shut down by itself; use --force", api.ErrConflict, name, state)
		}
		return m.forceStop(ctx, name)
	}
	if err := m.hv.Shutdown(ctx, name); err != nil {
		return fmt.Errorf("stop workspace %q: %w", name, classify(err))
	}
	m.log.Info("shutdown requested", "workspace", name, "timeout", timeout)
	if m.waitState(ctx, name, api.StateStopped, timeout) {
		m.log.Info("workspace stopped", "workspace", name)
		return nil
	}
	if !force {
		return fmt.Errorf("%w: workspace %q did not shut down within %s; run `workspace stop %s --force` to power it off", api.ErrConflict, name, timeout, name)
	}
	return m.forceStop(ctx, name)
}

func (m *manager) forceStop(ctx context.Context, name string) error {
	if err := m.hv.ForceStop(ctx, name); err != nil {
		return fmt.Errorf("force stop workspace %q: %w", name, classify(err))
	}
	m.log.Warn("workspace powered off", "workspace", name)
	return nil
}

// waitState polls until the workspace is in state or timeout passes.
func (m *manager) waitState(ctx context.Context, name, state string, timeout time.Duration) bool {
	deadline := m.now().Add(timeout)
	for {
		info, err := m.hv.Info(ctx, name)
		if err == nil && string(info.State) == state {
			return true
		}
		if !m.now().Before(deadline) || ctx.Err() != nil {
			return false
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(m.poll):
		}
	}
}

// restart is a clean stop, then a start.
func (m *manager) restart(ctx context.Context, name string, req api.StopRequest) (api.Workspace, error) {
	return m.stopThen(ctx, name, req, func() error {
		if err := m.hv.Start(ctx, name); err != nil {
			return fmt.Errorf("restart workspace %q: %w", name, classify(err))
		}
		m.log.Info("workspace restarted", "workspace", name)
		return nil
	})
}

func (m *manager) destroy(ctx context.Context, name string) error {
	if _, err := m.get(ctx, name); err != nil {
		return err
	}
	defer m.lock(name)()
	if err := m.hv.Delete(ctx, name); err != nil {
		if errors.Is(err, vm.ErrNotFound) {
			return noWorkspace(name)
		}
		return fmt.Errorf("destroy workspace %q: %w", name, classify(err))
	}
	m.log.Info("workspace destroyed", "workspace", name)
	return nil
}

// checkResources refuses a profile asking for more than the host has: more
// CPUs or memory than the host's, a disk larger than the pool's free space.
func (m *manager) checkResources(ctx context.Context, req api.CreateRequest) error {
	res, err := m.hv.Resources(ctx)
	if err != nil {
		return fmt.Errorf("host resources: %w", classify(err))
	}
	p := req.Profile
	at := func(field string) string {
		if pos := req.Positions[field]; pos != "" {
			return safetext.Term(pos) + ": " + field
		}
		return field
	}
	var errs []error
	if res.CPUs > 0 && p.CPUs > res.CPUs {
		errs = append(errs, fmt.Errorf("%s: %d CPUs is more than this host's %d", at("cpus"), p.CPUs, res.CPUs))
	}
	if res.MemoryBytes > 0 && uint64(p.Memory) > res.MemoryBytes {
		errs = append(errs, fmt.Errorf("%s: %s is more than this host's %s of memory", at("memory"), p.Memory, profiles.Size(res.MemoryBytes&^(1<<20-1))))
	}
	if uint64(p.Disk) > res.PoolFree {
		errs = append(errs, fmt.Errorf("%s: %s is more than the %s free in the storage pool", at("disk"), p.Disk, profiles.Size(res.PoolFree&^(1<<20-1))))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: %w", api.ErrInvalid, err)
	}
	return nil
}

func (s *server) handleList(r *http.Request) (any, error) {
	out, err := s.m.list(r.Context())
	if err != nil {
		return nil, err
	}
	for i := range out {
		out[i].Agent = s.agents.info(out[i].Name)
	}
	return out, nil
}

func (s *server) handleGet(r *http.Request) (any, error) {
	out, err := s.m.get(r.Context(), r.PathValue("name"))
	if err != nil {
		return nil, err
	}
	out.Agent = s.agents.info(out.Name)
	out.Witness = s.witness.status(r.Context(), out.Name, out.Settings)
	out.Provisioning = s.prov.status(out)
	return out, nil
}

func (s *server) handleCreate(r *http.Request, req api.CreateRequest) (any, error) {
	pc, ok := r.Context().Value(peerKey{}).(peerCred)
	out, err := s.m.create(r.Context(), req, requesterOf(pc, ok))
	if err != nil {
		return nil, err
	}
	// The diary is made now when the keys are unlocked, else at unlock or
	// at the first capture.
	st, done := s.diary.use()
	if err := s.diary.ensure(r.Context(), st, req.Name, req.Profile); err != nil {
		s.log.Warn("diary not prepared yet", "workspace", req.Name, "error", err)
	}
	done()
	return created{out}, nil
}

func (s *server) handleStart(r *http.Request, req api.StartRequest) (any, error) {
	s.prov.retry(r.PathValue("name"))
	w, err := s.m.start(r.Context(), r.PathValue("name"), req)
	if err == nil {
		if w.Disposable {
			// Its disk started afresh: provisioning too.
			s.prov.forget(w.Name)
		}
		w.Provisioning = s.prov.status(w)
	}
	return w, err
}

func (s *server) handleStop(r *http.Request, req api.StopRequest) (any, error) {
	return s.m.stop(r.Context(), r.PathValue("name"), req)
}

func (s *server) handleRestart(r *http.Request, req api.StopRequest) (any, error) {
	return s.m.restart(r.Context(), r.PathValue("name"), req)
}

func (s *server) handleDestroy(r *http.Request) (any, error) {
	if err := s.m.destroy(r.Context(), r.PathValue("name")); err != nil {
		return nil, err
	}
	s.prov.forget(r.PathValue("name"))
	return noContent{}, nil
}
