package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/workspace-sandbox/workspace/api"
	"github.com/workspace-sandbox/workspace/channel"
	"github.com/workspace-sandbox/workspace/diary"
	"github.com/workspace-sandbox/workspace/internal/atomicfile"
	"github.com/workspace-sandbox/workspace/tracking"
)

// Tracking: whether each workspace tracks (STATE/tracking/NAME.json, kept
// across daemon restarts and pushed to its agent), turning it on and off,
// the agent's status, and retakes.

// trackState reads whether a workspace tracks; a workspace without a file
// does not. A file that cannot be read or decoded is an error, never "not
// tracking": the session it holds would be lost.
func (h *agentHub) trackState(name string) (tracking.State, error) {
	var ts tracking.State
	p := filepath.Join(h.dir, name+".json")
	b, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return ts, nil
	}
	if err != nil {
		return ts, fmt.Errorf("tracking state of %q: %w", name, err)
	}
	if err := json.Unmarshal(b, &ts); err != nil {
		return ts, fmt.Errorf("tracking state of %q: %s is damaged (%v): fix or remove it", name, p, err)
	}
	return ts, nil
}

func (h *agentHub) setTrackState(name string, ts tracking.State) error {
	if err := os.MkdirAll(h.dir, 0o700); err != nil {
		return err
	}
	b, err := json.Marshal(ts)
	if err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(h.dir, name+".json"), b, 0o600)
}

// track turns tracking on or off: recorded in the diary as a session start
// or stop, kept across daemon restarts, and pushed to the agent (now when
// it is connected, else when it connects).
func (h *agentHub) track(ctx context.Context, name string, req api.TrackRequest) (api.TrackStatus, error) {
	w, err := h.m.get(ctx, name)
	if err != nil {
		return api.TrackStatus{}, err
	}
	cur, err := h.trackState(name)
	if err != nil {
		return api.TrackStatus{}, err
	}
	now := time.Now().UTC()
	st, done := h.diary.use()
	defer done()
	if req.On {
		if w.State != api.StateRunning {
			return api.TrackStatus{}, fmt.Errorf("%w: workspace %q is %s: start it first (`workspace start %s`)", api.ErrConflict, name, w.State, name)
		}
		if cur.On {
			return api.TrackStatus{}, fmt.Errorf("%w: workspace %q is already tracking (session %s)", api.ErrConflict, name, cur.Session)
		}
		if err := h.diary.ensureFromLibvirt(ctx, st, name); err != nil {
			return api.TrackStatus{}, fmt.Errorf("track %q: %w", name, err)
		}
		next := tracking.State{On: true, Session: tracking.NewID(now), Memo: req.Memo, Since: now}
		if _, err := st.AddRecords(ctx, name, []tracking.Record{{ID: tracking.HostID("start", next.Session), Type: tracking.RecordSessionStart, Session: next.Session, Time: now, Memo: req.Memo}}); err != nil {
			return api.TrackStatus{}, fmt.Errorf("track %q: %w", name, err)
		}
		cur = next
	} else {
		if !cur.On {
			return api.TrackStatus{}, fmt.Errorf("%w: workspace %q is not tracking", api.ErrConflict, name)
		}
		if _, err := st.AddRecords(ctx, name, []tracking.Record{{ID: tracking.HostID("stop", cur.Session), Type: tracking.RecordSessionStop, Session: cur.Session, Time: now}}); err != nil {
			return api.TrackStatus{}, fmt.Errorf("track %q: %w", name, err)
		}
		h.mu.Lock()
		h.ended[name] = window{from: cur.Since.Add(-clockSkew), to: now.Add(clockSkew), session: cur.Session}
		h.mu.Unlock()
		cur = tracking.State{}
	}
	if err := h.setTrackState(name, cur); err != nil {
		return api.TrackStatus{}, fmt.Errorf("track %q: %w", name, err)
	}
	if sess := h.session(name); sess != nil {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		if _, err := call(cctx, sess, channel.TypeTrack, cur); err != nil {
			h.log.Warn("tell the agent about tracking; it learns at its next connect", "workspace", name, "error", err)
		}
		cancel()
	}
	h.log.Info("tracking", "workspace", name, "on", cur.On, "session", cur.Session)
	return h.status(ctx, name)
}

// status reports tracking and, when connected, the agent's own status.
func (h *agentHub) status(ctx context.Context, name string) (api.TrackStatus, error) {
	if _, err := h.m.get(ctx, name); err != nil {
		return api.TrackStatus{}, err
	}
	ts, err := h.trackState(name)
	if err != nil {
		return api.TrackStatus{}, err
	}
	out := api.TrackStatus{Workspace: name, Tracking: ts.On, Session: ts.Session, Memo: ts.Memo, Since: ts.Since, Agent: *h.info(name)}
	if sess := h.session(name); sess != nil {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		var gs tracking.AgentStatus
		ans, err := call(cctx, sess, channel.TypeStatus, nil)
		if err == nil {
			err = ans.Decode(&gs)
		}
		if err != nil {
			// The status answers without the agent's part; say why in the log.
			h.log.Debug("no status from the agent", "workspace", name, "error", err)
		} else {
			out.Guest = &gs
		}
	}
	return out, nil
}

// retakeWait bounds how long a retake request waits for the agent's new
// shot to reach the diary after the agent spooled it.
const retakeWait = 30 * time.Second

// retake asks the agent of the shot's workspace for a retake of the shot
// now (the diary checks that it can be retaken) and waits until the retake
// is in the diary.
func (h *agentHub) retake(ctx context.Context, id string) (api.Retake, error) {
	st, done := h.diary.use()
	t, err := st.CheckRetake(ctx, id)
	done()
	if err != nil {
		return api.Retake{}, fmt.Errorf("retake shot %s: %w", id, err)
	}
	name := t.Workspace
	ts, err := h.trackState(name)
	if err != nil {
		return api.Retake{}, fmt.Errorf("retake shot %s: %w", id, err)
	}
	if !ts.On {
		return api.Retake{}, fmt.Errorf("%w: retake shot %s: workspace %q is not tracking, and its agent takes a retake only while tracking", api.ErrConflict, id, name)
	}
	sess := h.session(name)
	if sess == nil {
		return api.Retake{}, fmt.Errorf("%w: retake shot %s: the agent of workspace %q is not connected", api.ErrConflict, id, name)
	}
	cctx, cancel := context.WithTimeout(ctx, retakeWait)
	defer cancel()
	ans, err := call(cctx, sess, channel.TypeShoot, channel.Shoot{RetakeOf: id, Display: t.Display})
	if err != nil {
		return api.Retake{}, fmt.Errorf("%w: retake shot %s: the agent of %q could not: %v", api.ErrConflict, id, name, err)
	}
	var res channel.Shot
	if err := ans.Decode(&res); err != nil || len(res.IDs) == 0 {
		return api.Retake{}, fmt.Errorf("retake shot %s: the agent of %q answered %v without a shot", id, name, err)
	}
	out := api.Retake{Shot: id, Workspace: name, Retakes: res.IDs}
	// The agent answered once the retake was in its spool; it reaches the
	// diary through the channel like every shot.
	for {
		st, done := h.diary.use()
		_, err := st.CheckRetake(ctx, id)
		done()
		if errors.Is(err, diary.ErrConflict) {
			h.log.Info("shot retaken", "workspace", name, "shot", id, "retake", res.IDs)
			return out, nil
		}
		select {
		case <-cctx.Done():
			out.Pending = true // spooled in the guest; it arrives with the agent's next delivery
			return out, nil
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (s *server) handleTrack(r *http.Request, req api.TrackRequest) (any, error) {
	out, err := s.agents.track(r.Context(), r.PathValue("name"), req)
	if err == nil && !req.On {
		s.witness.flush(r.Context(), out.Workspace, false) // at once, not in a minute
	}
	return out, err
}

func (s *server) handleTrackStatus(r *http.Request) (any, error) {
	out, err := s.agents.status(r.Context(), r.PathValue("name"))
	if err == nil {
		if w, gerr := s.m.get(r.Context(), out.Workspace); gerr == nil {
			out.Witness = s.witness.status(r.Context(), out.Workspace, w.Settings)
		}
	}
	return out, err
}

func (s *server) handleRetake(r *http.Request) (any, error) {
	return s.agents.retake(r.Context(), r.PathValue("id"))
}
