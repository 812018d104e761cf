package daemon

import (
	"fmt"
	"strings"
	"time"

	"github.com/workspace-sandbox/workspace/tracking"
)

// What a guest may say about time and ids. The guest's clock and ids are
// the guest's to choose, so every time it sends must lie inside a tracking
// session of its workspace, and no id it sends may be in the host's
// namespace (tracking.HostIDPrefix).

// clockSkew is how far a guest's clock may be off the host's, either way.
const clockSkew = 2 * time.Minute

// window is the span of time a guest's records and captures may name.
type window struct {
	from, to time.Time
	session  string
}

func (w window) holds(t time.Time) bool { return !t.Before(w.from) && !t.After(w.to) }

func (w window) String() string {
	return fmt.Sprintf("session %s (%s to %s)", w.session, w.from.UTC().Format(time.RFC3339), w.to.UTC().Format(time.RFC3339))
}

// guestWindow is the span a guest of workspace name may report about now:
// the open tracking session (from its start to now, each widened by the
// clock skew), or, while it does not track, the last session this daemon
// closed (the agent delivers what it spooled before it learnt of the stop).
func (h *agentHub) guestWindow(name string, now time.Time) (window, error) {
	ts, err := h.trackState(name)
	if err != nil {
		return window{}, err
	}
	if ts.On {
		return window{from: ts.Since.Add(-clockSkew), to: now.Add(clockSkew), session: ts.Session}, nil
	}
	h.mu.Lock()
	w, ok := h.ended[name]
	h.mu.Unlock()
	if ok {
		return w, nil
	}
	return window{}, fmt.Errorf("workspace %q is not tracking: its guest's captures and records are taken only while it tracks", name)
}

// checkGuestID refuses an id in the host's namespace.
func checkGuestID(what, id string) error {
	if strings.HasPrefix(id, tracking.HostIDPrefix) {
		return fmt.Errorf("%s id %q: ids starting %q are the host's", what, id, tracking.HostIDPrefix)
	}
	return nil
}

// checkGuestRecords checks a batch of the guest's records against its
// window: only the agent's kinds, no host ids, every time inside the
// session (so no span is longer than the session).
func checkGuestRecords(recs []tracking.Record, w window) error {
	for i, r := range recs {
		if err := checkGuestID("record", r.ID); err != nil {
			return fmt.Errorf("record %d: %w", i, err)
		}
		switch r.Type {
		case tracking.RecordActivity:
			// A minute starts up to a minute before the first second it counts.
			if !r.Minute.IsZero() && !(window{from: w.from.Add(-time.Minute), to: w.to}).holds(r.Minute) {
				return fmt.Errorf("record %d (%s): minute %s is outside the tracking %s", i, r.Type, r.Minute.UTC().Format(time.RFC3339), w)
			}
		case tracking.RecordIdle, tracking.RecordGap:
			if !w.holds(r.Start) || !w.holds(r.End) {
				return fmt.Errorf("record %d (%s): span %s to %s is outside the tracking %s", i, r.Type,
					r.Start.UTC().Format(time.RFC3339), r.End.UTC().Format(time.RFC3339), w)
			}
		default:
			return fmt.Errorf("record %d: type %q is not the agent's to send", i, r.Type)
		}
	}
	return nil
}

// checkGuestCapture checks a capture's id and time against the window.
func checkGuestCapture(c tracking.Capture, w window) error {
	if err := checkGuestID("capture", c.ID); err != nil {
		return err
	}
	if !w.holds(c.Taken) {
		return fmt.Errorf("capture %s: taken %s, outside the tracking %s", c.ID, c.Taken.UTC().Format(time.RFC3339), w)
	}
	return nil
}
