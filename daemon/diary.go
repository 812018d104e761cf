package daemon

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/workspace-sandbox/workspace/api"
	"github.com/workspace-sandbox/workspace/diary"
	"github.com/workspace-sandbox/workspace/profiles"
)

// diaryService owns the diary store and the freelancer's keys in the daemon.
// Handlers hold the read side of mu while they use the store; restore takes
// the write side to swap it.
type diaryService struct {
	mu       sync.RWMutex
	store    *diary.Store
	stateDir string
	keyDir   string
	diaryDir string
	m        *manager
	log      hclog.Logger
	now      func() time.Time
	onAppend atomic.Pointer[func(ws string, size int64)] // the witness queue's hook
}

func newDiaryService(ctx context.Context, stateDir string, m *manager, log hclog.Logger) (*diaryService, error) {
	d := &diaryService{stateDir: stateDir, keyDir: filepath.Join(stateDir, "keys"), diaryDir: filepath.Join(stateDir, "diary"), m: m, log: log, now: time.Now}
	if err := d.open(ctx); err != nil {
		return nil, err
	}
	return d, nil
}

// open opens the store and unlocks it when the identity has no passphrase.
func (d *diaryService) open(ctx context.Context) error {
	st, err := diary.Open(ctx, d.diaryDir, diary.Options{Logger: d.log, OnAppend: d.appended})
	if err != nil {
		return err
	}
	d.store = st
	switch keys, err := diary.LoadKeys(d.keyDir, ""); {
	case err == nil:
		st.Unlock(keys)
	case errors.Is(err, diary.ErrLocked):
		st.SetLockReason(err)
		d.log.Warn("the diary identity is passphrase-protected: run `workspace unlock` to record screenshots")
	case errors.Is(err, diary.ErrNotInitialized):
		st.SetLockReason(err)
		d.log.Warn("no diary identity yet: run `workspace init`")
	default:
		return err
	}
	return nil
}

func (d *diaryService) close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.store.Close()
}

// use returns the store for the length of one request.
func (d *diaryService) use() (*diary.Store, func()) {
	d.mu.RLock()
	return d.store, d.mu.RUnlock
}

// diaryErr maps diary error classes onto API classes.
func diaryErr(err error) error {
	if err == nil {
		return nil
	}
	var ee *diary.EntryError
	switch {
	case errors.Is(err, diary.ErrNotFound):
		return &classified{api.ErrNotFound, err}
	case errors.Is(err, diary.ErrInvalid), errors.Is(err, diary.ErrBadBackup):
		return &classified{api.ErrInvalid, err}
	case errors.Is(err, diary.ErrConflict), errors.Is(err, diary.ErrInitialized), errors.As(err, &ee):
		return &classified{api.ErrConflict, err}
	case errors.Is(err, diary.ErrLocked), errors.Is(err, diary.ErrNotInitialized):
		return &classified{api.ErrUnavailable, err}
	case errors.Is(err, diary.ErrBadPassphrase):
		return &classified{api.ErrForbidden, err}
	}
	return err
}

// ensure creates or refreshes the diary of a workspace from its profile.
func (d *diaryService) ensure(ctx context.Context, st *diary.Store, name string, p *profiles.Profile) error {
	o := diary.WorkspaceOptions{}
	if p != nil {
		o.SlotSeconds = int(time.Duration(p.Tracking.Slot) / time.Second)
		if p.Client != nil {
			o.Client, o.Recipient = p.Client.Name, p.Client.Recipient
		}
	}
	return st.EnsureWorkspace(ctx, name, o)
}

// ensureFromLibvirt makes sure a defined workspace has a diary; a name only
// the diary knows (the VM was destroyed) keeps its diary as it is.
func (d *diaryService) ensureFromLibvirt(ctx context.Context, st *diary.Store, name string) error {
	if _, err := st.Workspace(ctx, name); err == nil {
		return nil
	}
	w, err := d.m.get(ctx, name)
	if err != nil {
		return err
	}
	return d.ensure(ctx, st, name, w.Settings)
}

// ensureAll gives every defined workspace a diary (after unlock or start).
func (d *diaryService) ensureAll(ctx context.Context) {
	st, done := d.use()
	defer done()
	if _, err := st.Keys(); err != nil {
		return
	}
	ws, err := d.m.list(ctx)
	if err != nil {
		d.log.Warn("list workspaces for their diaries", "error", err)
		return
	}
	for _, w := range ws {
		full, err := d.m.get(ctx, w.Name) // list leaves the profile out
		if err == nil {
			err = d.ensure(ctx, st, w.Name, full.Settings)
		}
		if err != nil {
			d.log.Warn("prepare diary", "workspace", w.Name, "error", err)
		}
	}
}

func (d *diaryService) status() (api.DiaryStatus, error) {
	info, err := diary.ReadKeyInfo(d.keyDir)
	if err != nil {
		return api.DiaryStatus{}, err
	}
	st, done := d.use()
	defer done()
	_, lerr := st.Keys()
	return api.DiaryStatus{Initialized: info.Initialized, Protected: info.Protected, Locked: info.Initialized && lerr != nil, Recipient: info.Recipient, Signer: info.Verifier}, nil
}
