package daemon

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/workspace-sandbox/workspace/api"
	"github.com/workspace-sandbox/workspace/channel"
	"github.com/workspace-sandbox/workspace/tracking"
	"github.com/workspace-sandbox/workspace/vm"
)

// Suspend, resume and switch (docs/vm.md#suspend-and-resume). A suspend
// asks the agent to deliver its spool, then the driver saves the VM's
// memory to the daemon's state folder and stops it. A start of a suspended
// workspace resumes it; a saved state that is stale or cannot be restored
// is deleted and the workspace boots cold, with a notice saying why. While
// tracking, the suspended time is a gap in the diary (reason "suspended"),
// written by the host when the workspace runs again.

// GapSuspended is the reason of the diary gap a suspension leaves.
const GapSuspended = "suspended"

// savedFrom is the fingerprint of what a saved state is made from: the
// image by name and content. The profile is in the domain's definition,
// whose hash the driver records beside the state itself.
func (m *manager) savedFrom(w api.Workspace) string {
	sha := "unknown"
	if img, err := m.images.get(w.Image); err == nil {
		sha = img.SHA256
	}
	return "image " + w.Image + " sha256 " + sha
}

// suspend saves a running workspace's memory and stops its VM; flush runs
// first, under the workspace's lock (the agent delivers its spool).
func (m *manager) suspend(ctx context.Context, name string, flush func(context.Context)) (api.Workspace, error) {
	w, _, unlock, err := m.locked(ctx, name, "", time.Minute)
	if err != nil {
		return w, err
	}
	defer unlock()
	return m.suspendLocked(ctx, w, flush)
}

func (m *manager) suspendLocked(ctx context.Context, w api.Workspace, flush func(context.Context)) (api.Workspace, error) {
	switch {
	case w.State == api.StateSuspended:
		return w, nil
	case w.State != api.StateRunning && w.State != api.StatePaused:
		return w, fmt.Errorf("%w: workspace %q is %s: only a running workspace can be suspended", api.ErrConflict, w.Name, w.State)
	case w.Disposable:
		return w, fmt.Errorf("%w: workspace %q is disposable: its disk's changes live only while it runs, so it cannot be suspended; stop it instead", api.ErrConflict, w.Name)
	}
	if flush != nil {
		flush(ctx)
	}
	if _, err := m.hv.Suspend(ctx, w.Name, m.savedFrom(w)); err != nil {
		return w, fmt.Errorf("suspend workspace %q: %w", w.Name, classify(err))
	}
	return m.get(ctx, w.Name)
}

// resumeLocked starts a suspended workspace from its saved state, or cold
// when the state cannot be used; the notice says so. resumed is false
// after a cold boot.
func (m *manager) resumeLocked(ctx context.Context, w api.Workspace) (resumed bool, notice string, err error) {
	err = m.hv.Resume(ctx, w.Name, m.savedFrom(w))
	if err == nil {
		m.log.Info("workspace resumed", "workspace", w.Name)
		return true, "", nil
	}
	if !errors.Is(err, vm.ErrStaleState) {
		return false, "", fmt.Errorf("resume workspace %q: %w", w.Name, classify(err))
	}
	notice = fmt.Sprintf("workspace %q was not resumed (%v); its saved state is deleted and it boots cold", w.Name, err)
	m.log.Warn("saved state not resumable; booting cold", "workspace", w.Name, "error", err)
	if err := m.hv.Start(ctx, w.Name); err != nil {
		return false, notice, fmt.Errorf("start workspace %q: %w", w.Name, classify(err))
	}
	return false, notice, nil
}

// flush asks a connected agent to deliver its spool before its VM is
// suspended; what it cannot deliver stays spooled in the saved guest and
// arrives after the resume.
func (h *agentHub) flush(ctx context.Context, name string) {
	sess := h.session(name)
	if sess == nil {
		return
	}
	cctx, cancel := context.WithTimeout(ctx, channel.FlushWait+5*time.Second)
	defer cancel()
	var st tracking.AgentStatus
	ans, err := call(cctx, sess, channel.TypeFlush, nil)
	if err == nil {
		err = ans.Decode(&st)
	}
	switch {
	case err != nil:
		h.log.Warn("the agent did not flush its spool before the suspend; what it holds arrives after the resume", "workspace", name, "error", err)
	case st.SpoolItems > 0:
		h.log.Warn("the agent's spool is not empty at the suspend; the rest arrives after the resume", "workspace", name, "items", st.SpoolItems)
	}
}

// suspendedGap records in the diary that a tracking workspace was
// suspended from from to to (the host writes it: the guest did not run).
func (h *agentHub) suspendedGap(ctx context.Context, name string, from, to time.Time) {
	ts, err := h.trackState(name)
	if err != nil || !ts.On || from.IsZero() {
		return
	}
	from, to = from.UTC(), to.UTC()
	if !to.After(from) {
		to = from.Add(time.Second)
	}
	st, done := h.diary.use()
	defer done()
	// A host id (guests cannot pre-empt it), one per suspend: a repeat is a
	// duplicate, not a second gap.
	id := tracking.HostID("suspended", ts.Session+"-"+strconv.FormatInt(from.UnixMilli(), 10))
	rec := tracking.Record{ID: id, Type: tracking.RecordGap, Session: ts.Session, Start: from, End: to, Reason: GapSuspended}
	if _, err := st.AddRecords(ctx, name, []tracking.Record{rec}); err != nil {
		h.log.Error("the suspended time is not in the diary", "workspace", name, "from", from, "to", to, "error", err)
		return
	}
	h.log.Info("tracking resumes after a suspend", "workspace", name, "session", ts.Session, "suspended", to.Sub(from).Round(time.Second))
}

func (s *server) suspend(ctx context.Context, name string) (api.Workspace, error) {
	return s.m.suspend(ctx, name, func(ctx context.Context) { s.agents.flush(ctx, name) })
}

// switchTo suspends every other running workspace of this daemon, then
// starts or resumes name. A workspace that cannot be suspended (a
// disposable one, a failed save) keeps running, and a notice says why.
func (s *server) switchTo(ctx context.Context, name string, req api.StartRequest) (api.SwitchResult, error) {
	out := api.SwitchResult{Suspended: []string{}}
	if _, err := s.m.get(ctx, name); err != nil {
		return out, err
	}
	all, err := s.m.list(ctx)
	if err != nil {
		return out, err
	}
	for _, w := range all {
		if w.Name == name || (w.State != api.StateRunning && w.State != api.StatePaused) {
			continue
		}
		if _, err := s.suspend(ctx, w.Name); err != nil {
			out.Notices = append(out.Notices, fmt.Sprintf("%q keeps running: %v", w.Name, err))
			continue
		}
		out.Suspended = append(out.Suspended, w.Name)
	}
	w, err := s.m.start(ctx, name, req)
	if err != nil {
		return out, err
	}
	if w.Notice != "" {
		out.Notices = append(out.Notices, w.Notice)
	}
	out.Workspace = w
	return out, nil
}

// suspendAll suspends every running workspace, in parallel, within ctx's
// time (the daemon's service stop at host shutdown); those it cannot are
// left to the host's shutdown, with a log line each.
func (s *server) suspendAll(ctx context.Context) {
	all, err := s.m.list(ctx)
	if err != nil {
		s.log.Error("suspend at stop: cannot list the workspaces", "error", err)
		return
	}
	var wg sync.WaitGroup
	for _, w := range all {
		if w.State != api.StateRunning && w.State != api.StatePaused {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := s.suspend(ctx, w.Name); err != nil {
				s.log.Error("suspend at stop failed; the host's shutdown stops it", "workspace", w.Name, "error", err)
				return
			}
			s.log.Info("suspended at stop", "workspace", w.Name)
		}()
	}
	wg.Wait()
}

func (s *server) handleSuspend(r *http.Request) (any, error) {
	return s.suspend(r.Context(), r.PathValue("name"))
}

func (s *server) handleSwitch(r *http.Request, req api.StartRequest) (any, error) {
	return s.switchTo(r.Context(), r.PathValue("name"), req)
}
