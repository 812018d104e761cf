package daemon

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/workspace-sandbox/workspace/vm"
)

// fakeHV is an in-memory Hypervisor for handler tests.
type fakeHV struct {
	mu         sync.Mutex
	volumes    map[string][]byte
	domains    map[string]*vm.Info
	events     chan vm.Event
	down       bool
	ignoreACPI bool
	failCreate error
	// createGate, when set, holds Create until it is closed.
	createGate chan struct{}
	// snaps are each workspace's snapshots, oldest first; discarded
	// counts DiscardLeftovers calls per workspace.
	snaps     map[string][]vm.Snapshot
	discarded map[string]int
	res       *vm.Resources
	specs     map[string]vm.Spec // what Create was given, by workspace
	// staleResume makes every Resume find its state stale; resumes
	// counts the resumes that worked.
	staleResume bool
	resumes     int
}

func newFakeHV() *fakeHV {
	return &fakeHV{volumes: map[string][]byte{}, domains: map[string]*vm.Info{}, events: make(chan vm.Event, 100)}
}

func (f *fakeHV) URI() string        { return "fake:///" }
func (f *fakeHV) Connected() bool    { return !f.down }
func (f *fakeHV) DomainType() string { return "qemu" }

func (f *fakeHV) check() error {
	if f.down {
		return fmt.Errorf("%w: cannot reach libvirt at fake:///: connection refused", vm.ErrUnreachable)
	}
	return nil
}

func (f *fakeHV) UploadVolume(_ context.Context, name, format string, capacity uint64, r io.Reader, length int64) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check(); err != nil {
		return "", err
	}
	if _, ok := f.volumes[name]; ok {
		return "", fmt.Errorf("volume %q: %w", name, vm.ErrExists)
	}
	b, err := io.ReadAll(io.LimitReader(r, length))
	if err != nil {
		return "", err
	}
	f.volumes[name] = b
	return "/pool/" + name, nil
}

func (f *fakeHV) DeleteVolume(_ context.Context, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.volumes[name]; !ok {
		return fmt.Errorf("volume %q: %w", name, vm.ErrNotFound)
	}
	delete(f.volumes, name)
	return nil
}

func (f *fakeHV) Create(_ context.Context, s vm.Spec) error {
	f.mu.Lock()
	gate := f.createGate
	f.mu.Unlock()
	if gate != nil {
		<-gate
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check(); err != nil {
		return err
	}
	if f.failCreate != nil {
		return f.failCreate
	}
	if _, ok := f.domains[s.Name]; ok {
		return fmt.Errorf("domain ws-%s: %w", s.Name, vm.ErrExists)
	}
	if _, ok := f.volumes[s.BaseVolume]; !ok {
		return fmt.Errorf("base volume %q: %w", s.BaseVolume, vm.ErrNotFound)
	}
	f.domains[s.Name] = &vm.Info{Name: "ws-" + s.Name, State: vm.State("stopped"), Meta: s.Meta, DisplayType: s.DisplayType}
	if f.specs == nil {
		f.specs = map[string]vm.Spec{}
	}
	f.specs[s.Name] = s
	f.emit(s.Name, "defined")
	return nil
}

func (f *fakeHV) emit(name, typ string) {
	select {
	case f.events <- vm.Event{Workspace: name, Type: typ, Time: time.Now()}:
	default:
	}
}

func (f *fakeHV) setState(name string, st string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check(); err != nil {
		return err
	}
	d, ok := f.domains[name]
	if !ok {
		return fmt.Errorf("domain ws-%s: %w", name, vm.ErrNotFound)
	}
	d.State = vm.State(st)
	f.emit(name, map[string]string{"running": "started", "stopped": "stopped"}[st])
	return nil
}

func (f *fakeHV) Start(_ context.Context, name string) error { return f.setState(name, "running") }
func (f *fakeHV) Shutdown(_ context.Context, name string) error {
	if f.ignoreACPI {
		return f.check()
	}
	return f.setState(name, "stopped")
}
func (f *fakeHV) ForceStop(_ context.Context, name string) error { return f.setState(name, "stopped") }

func (f *fakeHV) Delete(_ context.Context, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check(); err != nil {
		return err
	}
	if _, ok := f.domains[name]; !ok {
		return fmt.Errorf("domain ws-%s: %w", name, vm.ErrNotFound)
	}
	delete(f.domains, name)
	delete(f.snaps, name)
	f.emit(name, "undefined")
	return nil
}

func (f *fakeHV) Info(_ context.Context, name string) (vm.Info, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check(); err != nil {
		return vm.Info{}, err
	}
	d, ok := f.domains[name]
	if !ok {
		return vm.Info{}, fmt.Errorf("domain ws-%s: %w", name, vm.ErrNotFound)
	}
	return *d, nil
}

func (f *fakeHV) List(_ context.Context) ([]vm.Info, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check(); err != nil {
		return nil, err
	}
	var out []vm.Info
	for _, d := range f.domains {
		out = append(out, *d)
	}
	sort.Slice(out, func(i, j int) bool { return strings.Compare(out[i].Name, out[j].Name) < 0 })
	return out, nil
}

func (f *fakeHV) Events(ctx context.Context) (<-chan vm.Event, error) {
	out := make(chan vm.Event)
	go func() {
		defer close(out)
		for {
			select {
			case <-ctx.Done():
				return
			case ev := <-f.events:
				select {
				case out <- ev:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return out, nil
}

// Screenshot returns a 4x2 PPM like QEMU's.
func (f *fakeHV) Screenshot(_ context.Context, name string, w io.Writer) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.domains[name]; !ok {
		return "", fmt.Errorf("domain ws-%s: %w", name, vm.ErrNotFound)
	}
	io.WriteString(w, "P6\n4 2\n255\n")
	for i := 0; i < 8; i++ {
		w.Write([]byte{255, 136, 0})
	}
	return "image/x-portable-pixmap", nil
}

func (f *fakeHV) domainLocked(name string) (*vm.Info, error) {
	if err := f.check(); err != nil {
		return nil, err
	}
	d, ok := f.domains[name]
	if !ok {
		return nil, fmt.Errorf("domain ws-%s: %w", name, vm.ErrNotFound)
	}
	return d, nil
}

func (f *fakeHV) CreateSnapshot(_ context.Context, name, snap string) (vm.Snapshot, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	d, err := f.domainLocked(name)
	if err != nil {
		return vm.Snapshot{}, err
	}
	if d.Meta.Disposable {
		return vm.Snapshot{}, fmt.Errorf("the workspace is disposable: %w", vm.ErrDisposable)
	}
	if f.snaps == nil {
		f.snaps = map[string][]vm.Snapshot{}
	}
	parent := ""
	for i := range f.snaps[name] {
		if f.snaps[name][i].Name == snap {
			return vm.Snapshot{}, fmt.Errorf("snapshot %q: %w", snap, vm.ErrExists)
		}
		if f.snaps[name][i].Current {
			parent = f.snaps[name][i].Name
		}
		f.snaps[name][i].Current = false
	}
	s := vm.Snapshot{Name: snap, CreatedAt: time.Now().UTC().Truncate(time.Second), State: d.State, Memory: d.State != "stopped", Current: true, Parent: parent}
	f.snaps[name] = append(f.snaps[name], s)
	return s, nil
}

func (f *fakeHV) Snapshots(_ context.Context, name string) ([]vm.Snapshot, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, err := f.domainLocked(name); err != nil {
		return nil, err
	}
	return append([]vm.Snapshot(nil), f.snaps[name]...), nil
}

func (f *fakeHV) findSnapshot(name, snap string) (int, error) {
	var names []string
	for i, s := range f.snaps[name] {
		if s.Name == snap {
			return i, nil
		}
		names = append(names, s.Name)
	}
	return -1, fmt.Errorf("no snapshot %q; its snapshots: %s: %w", snap, strings.Join(names, ", "), vm.ErrNotFound)
}

func (f *fakeHV) RestoreSnapshot(_ context.Context, name, snap string) (vm.Snapshot, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	d, err := f.domainLocked(name)
	if err != nil {
		return vm.Snapshot{}, err
	}
	i, err := f.findSnapshot(name, snap)
	if err != nil {
		return vm.Snapshot{}, err
	}
	for j := range f.snaps[name] {
		f.snaps[name][j].Current = j == i
	}
	d.State = f.snaps[name][i].State
	return f.snaps[name][i], nil
}

func (f *fakeHV) DeleteSnapshot(_ context.Context, name, snap string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, err := f.domainLocked(name); err != nil {
		return err
	}
	i, err := f.findSnapshot(name, snap)
	if err != nil {
		return err
	}
	f.snaps[name] = append(f.snaps[name][:i], f.snaps[name][i+1:]...)
	return nil
}

func (f *fakeHV) DiscardLeftovers(_ context.Context, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, err := f.domainLocked(name); err != nil {
		return err
	}
	if f.discarded == nil {
		f.discarded = map[string]int{}
	}
	f.discarded[name]++
	return nil
}

// Resources: a host of 8 CPUs and 16 GiB with 100 GiB free, unless a test
// sets res.
func (f *fakeHV) Resources(_ context.Context) (vm.Resources, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check(); err != nil {
		return vm.Resources{}, err
	}
	if f.res != nil {
		return *f.res, nil
	}
	return vm.Resources{CPUs: 8, MemoryBytes: 16 << 30, PoolFree: 100 << 30}, nil
}

// Suspend keeps a fake saved state; Resume checks from against it (a
// mismatch, or staleResume set, is vm.ErrStaleState and drops it).
func (f *fakeHV) Suspend(_ context.Context, name, from string) (vm.SavedState, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	d, err := f.domainLocked(name)
	if err != nil {
		return vm.SavedState{}, err
	}
	if d.State != "running" {
		return vm.SavedState{}, fmt.Errorf("suspend: %w", vm.ErrNotRunning)
	}
	s := vm.SavedState{From: from, SavedAt: time.Now().UTC(), Bytes: 1 << 20}
	d.State, d.Saved = "suspended", &s
	return s, nil
}

func (f *fakeHV) Resume(_ context.Context, name, from string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	d, err := f.domainLocked(name)
	if err != nil {
		return err
	}
	s := d.Saved
	d.Saved, d.State = nil, "stopped"
	if s == nil || s.From != from || f.staleResume {
		return fmt.Errorf("resume: the image or the profile changed: %w", vm.ErrStaleState)
	}
	d.State = "running"
	f.resumes++
	return nil
}
