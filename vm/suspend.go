package vm

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	libvirt "github.com/digitalocean/go-libvirt"

	"github.com/workspace-sandbox/workspace/internal/atomicfile"
)

// Suspend and resume: a running workspace's memory is saved to a file the
// driver names, STATE/saved/DOMAIN.save (mode 0600 in a 0700 folder of the
// daemon's own state folder), with libvirt's DomainSaveFlags, and read back
// with DomainRestoreFlags. Libvirt's managed save is not used: it keeps
// the file in libvirt's own folder (/var/lib/libvirt/qemu/save), outside
// what this daemon owns, sweeps and removes. Beside the state,
// STATE/saved/DOMAIN.json records what it was made from: the caller's
// fingerprint (image and profile) and the hash of the domain's persistent
// definition. A state whose record no longer matches is stale: it is
// deleted and the workspace boots cold.

// ErrStaleState marks a saved state that could not be resumed (stale or
// failed); the state is deleted by then, and a cold start is what is left.
var ErrStaleState = errors.New("saved state not resumable")

// ErrNotRunning marks a suspend of a workspace that is not running.
var ErrNotRunning = errors.New("not running")

// SavedState describes a suspended workspace's saved memory.
type SavedState struct {
	// From is the caller's fingerprint of what the state was made from.
	From string `json:"from"`
	// Definition is the sha256 of the domain's persistent XML at save.
	Definition string    `json:"definition"`
	SavedAt    time.Time `json:"saved_at"`
	Bytes      int64     `json:"bytes"`
}

// savedStateDir is where saved states live.
func (d *Driver) savedStateDir() string { return filepath.Join(d.opts.StateDir, "saved") }

// savedStateFiles are a domain's saved memory and its record.
func (d *Driver) savedStateFiles(domain string) (state, record string) {
	base := filepath.Join(d.savedStateDir(), domain)
	return base + ".save", base + ".json"
}

// SavedStatePath is where a workspace's saved memory is kept while it is
// suspended.
func (d *Driver) SavedStatePath(name string) string {
	p, _ := d.savedStateFiles(d.DomainName(name))
	return p
}

// readSavedState returns a domain's saved state record; ok is false when
// there is no complete saved state (the memory file and its record).
func (d *Driver) readSavedState(domain string) (SavedState, bool) {
	state, record := d.savedStateFiles(domain)
	b, err := os.ReadFile(record)
	if err != nil {
		return SavedState{}, false
	}
	var s SavedState
	if err := json.Unmarshal(b, &s); err != nil {
		return SavedState{}, false
	}
	fi, err := os.Stat(state)
	if err != nil {
		return SavedState{}, false
	}
	s.Bytes = fi.Size()
	return s, true
}

// removeSavedState deletes a domain's saved state (both files).
func (d *Driver) removeSavedState(domain string) error {
	state, record := d.savedStateFiles(domain)
	var errs []error
	for _, p := range []string{record, state} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// definitionHash is the sha256 of a domain's persistent definition: a
// changed profile (or anything else redefined) changes it.
func (d *Driver) definitionHash(l *libvirt.Libvirt, dom libvirt.Domain) (string, error) {
	x, err := l.DomainGetXMLDesc(dom, libvirt.DomainXMLInactive)
	if err != nil {
		return "", d.lverr(err)
	}
	sum := sha256.Sum256([]byte(x))
	return hex.EncodeToString(sum[:]), nil
}

// Suspend saves a running workspace's memory to its saved state and stops
// its VM, which frees the host memory. from is recorded beside the state
// and must match at Resume.
func (d *Driver) Suspend(ctx context.Context, name, from string) (SavedState, error) {
	l, dom, err := d.domain(name)
	if err != nil {
		return SavedState{}, err
	}
	if st, _, err := l.DomainGetState(dom, 0); err != nil {
		return SavedState{}, fmt.Errorf("suspend %s: %w", dom.Name, d.lverr(err))
	} else if s := stateOf(st); s != "running" && s != "paused" {
		return SavedState{}, fmt.Errorf("suspend %s: it is %s: %w", dom.Name, s, ErrNotRunning)
	}
	def, err := d.definitionHash(l, dom)
	if err != nil {
		return SavedState{}, fmt.Errorf("suspend %s: %w", dom.Name, err)
	}
	if err := os.MkdirAll(d.savedStateDir(), 0o700); err != nil {
		return SavedState{}, fmt.Errorf("suspend %s: saved state folder: %w", dom.Name, err)
	}
	if err := d.removeSavedState(dom.Name); err != nil {
		return SavedState{}, fmt.Errorf("suspend %s: an earlier saved state: %w", dom.Name, err)
	}
	state, record := d.savedStateFiles(dom.Name)
	start := time.Now()
	// Libvirt creates the file 0600 (as root, or as QEMU's user where
	// root cannot write) and has QEMU stream the memory into it.
	if err := l.DomainSaveFlags(dom, state, libvirt.OptString{}, 0); err != nil {
		_ = d.removeSavedState(dom.Name)
		err = d.lverr(err)
		if strings.Contains(strings.ToLower(err.Error()), "migrat") {
			// Saving memory is a migration to a file: a 9p share the
			// guest has mounted, or a virtiofs share, blocks it. QEMU
			// refuses before it pauses the guest, which keeps running.
			return SavedState{}, &refusal{ErrMemoryState, fmt.Sprintf(
				"suspend %s: its memory cannot be saved (libvirt: %v): a shared folder mounted in the guest blocks it; the workspace keeps running (stop it instead)", dom.Name, err)}
		}
		return SavedState{}, fmt.Errorf("suspend %s: save memory: %w", dom.Name, err)
	}
	if err := os.Chmod(state, 0o600); err != nil {
		return SavedState{}, fmt.Errorf("suspend %s: saved state: %w", dom.Name, err)
	}
	s := SavedState{From: from, Definition: def, SavedAt: start.UTC()}
	b, err := json.Marshal(s)
	if err != nil {
		return SavedState{}, err
	}
	if err := atomicfile.Write(record, b, 0o600); err != nil {
		// Without its record the state cannot be checked: never resume it.
		_ = d.removeSavedState(dom.Name)
		return SavedState{}, fmt.Errorf("suspend %s: saved state record: %w", dom.Name, err)
	}
	s, _ = d.readSavedState(dom.Name)
	d.log.Info("workspace suspended", "workspace", name, "bytes", s.Bytes, "took", time.Since(start).Round(time.Millisecond))
	return s, nil
}

// staleReason says why a saved state must not be resumed; "" when it may.
func staleReason(s SavedState, from, def string) string {
	switch {
	case s.From != from:
		return "the image or the profile changed since it was suspended"
	case s.Definition != def:
		return "the workspace's definition changed since it was suspended"
	}
	return ""
}

// Resume starts a suspended workspace from its saved state. When the state
// is stale (from differs, or the definition changed) or libvirt cannot
// restore it, the state is deleted and the error wraps ErrStaleState with
// the reason: the caller boots the workspace cold. On success the state is
// deleted too: the guest has moved on from it.
func (d *Driver) Resume(ctx context.Context, name, from string) error {
	l, dom, err := d.domain(name)
	if err != nil {
		return err
	}
	s, ok := d.readSavedState(dom.Name)
	if !ok {
		_ = d.removeSavedState(dom.Name) // a half-written one, if any
		return fmt.Errorf("resume %s: no saved state: %w", dom.Name, ErrStaleState)
	}
	def, err := d.definitionHash(l, dom)
	if err != nil {
		return fmt.Errorf("resume %s: %w", dom.Name, err)
	}
	stale := func(why string) error {
		if err := d.removeSavedState(dom.Name); err != nil {
			d.log.Warn("cannot delete a stale saved state", "workspace", name, "error", err)
		}
		return fmt.Errorf("resume %s: saved state of %s not used: %s: %w", dom.Name, s.SavedAt.Format(time.RFC3339), why, ErrStaleState)
	}
	if why := staleReason(s, from, def); why != "" {
		return stale(why)
	}
	if err := d.prepareStart(l, dom, name); err != nil {
		return fmt.Errorf("resume %s: %w", dom.Name, err)
	}
	state, _ := d.savedStateFiles(dom.Name)
	start := time.Now()
	if err := l.DomainRestoreFlags(state, libvirt.OptString{}, 0); err != nil {
		return stale(fmt.Sprintf("libvirt could not restore it: %v", d.lverr(err)))
	}
	if err := d.removeSavedState(dom.Name); err != nil {
		d.log.Warn("cannot delete a used saved state", "workspace", name, "error", err)
	}
	d.log.Info("workspace resumed", "workspace", name, "took", time.Since(start).Round(time.Millisecond))
	go d.syncGuestClock(l, dom, name)
	return nil
}

// clockSyncFor bounds how long a resume keeps trying to set the guest's
// clock through its guest agent.
const clockSyncFor = 30 * time.Second

// syncGuestClock sets a resumed guest's clock to the host's: its clock
// stood still while it was saved, and the tracker in it stamps shots and
// activity with it. It goes through the QEMU guest agent (libvirt's
// DomainSetTime), trying until the agent answers or clockSyncFor passed;
// a guest without one keeps its late clock until its own time sync runs.
func (d *Driver) syncGuestClock(l *libvirt.Libvirt, dom libvirt.Domain, name string) {
	deadline := time.Now().Add(clockSyncFor)
	for {
		now := time.Now()
		err := l.DomainSetTime(dom, now.Unix(), uint32(now.Nanosecond()), 0)
		if err == nil {
			d.log.Debug("guest clock set after the resume", "workspace", name)
			return
		}
		// A guest agent without guest-set-time (no hwclock in the guest)
		// will not grow one: no use trying on.
		if time.Now().After(deadline) || strings.Contains(err.Error(), "not currently supported") {
			d.log.Warn("cannot set the resumed guest's clock (no guest agent answering?): it is late by the time it was suspended until it syncs itself", "workspace", name, "error", d.lverr(err))
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// discardSavedState deletes a saved state a cold start or a snapshot
// restore makes useless (the disk moves on without it), saying so.
func (d *Driver) discardSavedState(domain, why string) {
	if _, ok := d.readSavedState(domain); !ok {
		_ = d.removeSavedState(domain)
		return
	}
	if err := d.removeSavedState(domain); err != nil {
		d.log.Warn("cannot delete a saved state", "domain", domain, "error", err)
		return
	}
	d.log.Info("saved state deleted", "domain", domain, "why", why)
}

// memoryRSS is the host memory a running domain's QEMU process uses
// (libvirt's RSS memory statistic); 0 when unknown.
func (d *Driver) memoryRSS(l *libvirt.Libvirt, dom libvirt.Domain) uint64 {
	stats, err := l.DomainMemoryStats(dom, uint32(libvirt.DomainMemoryStatNr), 0)
	if err != nil {
		return 0
	}
	for _, s := range stats {
		if libvirt.DomainMemoryStatTags(s.Tag) == libvirt.DomainMemoryStatRss {
			return s.Val * 1024 // KiB
		}
	}
	return 0
}
