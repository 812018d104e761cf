package daemon

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/workspace-sandbox/workspace/channel"
	"github.com/workspace-sandbox/workspace/diary"
	"github.com/workspace-sandbox/workspace/internal/safetext"
	"github.com/workspace-sandbox/workspace/tracking"
)

// What the agent sends over its channel, checked by the ingestion guard
// (guard.go) before the diary stores it.

// profileOf returns the guard of workspace name with its profile known.
func (h *agentHub) profileOf(ctx context.Context, name string) (*wsGuard, error) {
	g := h.guard.of(name)
	g.mu.Lock()
	known := g.known
	g.mu.Unlock()
	if !known {
		w, err := h.m.get(ctx, name)
		if err != nil {
			return nil, err
		}
		g.setProfile(w.Settings)
	}
	return g, nil
}

// ingestCapture checks and stores one capture of the agent of name.
func (h *agentHub) ingestCapture(ctx context.Context, name string, req *channel.Message) (tracking.Ack, error) {
	var c tracking.Capture
	if err := req.Decode(&c); err != nil {
		return tracking.Ack{}, channel.Invalid(err)
	}
	orig, thumb := req.Blob(0), req.Blob(1)
	now := time.Now()
	win, err := h.guestWindow(name, now)
	if err != nil {
		return tracking.Ack{}, refuse(refuseTracking, "%v", err)
	}
	if err := checkGuestCapture(c, win); err != nil {
		return tracking.Ack{}, refuse(refuseTime, "%v", err)
	}
	oi, ti, err := checkImages(c, orig, thumb)
	if err != nil {
		return tracking.Ack{}, err
	}
	g, err := h.profileOf(ctx, name)
	if err != nil {
		return tracking.Ack{}, err
	}
	select {
	case g.turn <- struct{}{}:
	case <-ctx.Done():
		return tracking.Ack{}, ctx.Err()
	}
	defer func() { <-g.turn }()
	dup, err := h.admitCapture(ctx, name, g, c, now, int64(len(orig)+len(thumb)))
	if err != nil {
		return tracking.Ack{}, err
	}
	if dup {
		return h.diary.ingestCapture(ctx, name, c, orig, thumb) // answered as a duplicate
	}
	if err := h.guard.decode(ctx, c, orig, thumb, oi, ti); err != nil {
		return tracking.Ack{}, err
	}
	ack, err := h.diary.ingestCapture(ctx, name, c, orig, thumb)
	if err == nil {
		g.stored(int64(len(orig) + len(thumb)))
	}
	return ack, err
}

// admitCapture checks the quotas of a capture of size bytes: the host's
// free space, the workspace's daily budget and its captures per slot. A
// replay of a stored capture is let through as a duplicate.
func (h *agentHub) admitCapture(ctx context.Context, name string, g *wsGuard, c tracking.Capture, now time.Time, size int64) (dup bool, err error) {
	st, done := h.diary.use()
	defer done()
	if dup, err := st.HasRecord(ctx, name, c.ID); err != nil || dup {
		return dup, err
	}
	if err := h.guard.checkDisk(st.Dir(), size); err != nil {
		return false, err
	}
	if err := g.overBudget(now, size, func(since time.Time) (int64, error) { return st.BlobBytesSince(name, since) }); err != nil {
		return false, err
	}
	g.mu.Lock()
	pol := g.pol
	g.mu.Unlock()
	slotLen := time.Duration(pol.SlotSeconds) * time.Second
	slot := tracking.SlotOf(c.Taken, slotLen)
	n, err := st.CapturesIn(ctx, name, slot, slot.Add(slotLen))
	if err != nil {
		return false, err
	}
	if limit := slotLimit(pol); n >= limit {
		return false, refuse(refuseSlot, "capture %q: its slot at %s already holds %d captures, the most %d screenshot(s) per slot on %d display(s) and one retake allow",
			c.ID, slot.UTC().Format(time.RFC3339), n, pol.ScreenshotsPerSlot, guestDisplays)
	}
	return false, nil
}

// ingestRecords checks and stores a batch of the agent's records.
func (h *agentHub) ingestRecords(ctx context.Context, name string, req *channel.Message) (tracking.Ack, error) {
	var rs channel.Records
	if err := req.Decode(&rs); err != nil {
		return tracking.Ack{}, channel.Invalid(err)
	}
	for _, r := range rs.Records {
		if r.Type != tracking.RecordActivity && r.Type != tracking.RecordIdle && r.Type != tracking.RecordGap {
			return tracking.Ack{}, channel.Invalid(fmt.Errorf("record type %q is not the agent's to send", r.Type))
		}
	}
	now := time.Now()
	win, err := h.guestWindow(name, now)
	if err != nil {
		return tracking.Ack{}, refuse(refuseTracking, "%v", err)
	}
	if err := checkGuestRecords(rs.Records, win); err != nil {
		return tracking.Ack{}, refuse(refuseTime, "%v", err)
	}
	g, err := h.profileOf(ctx, name)
	if err != nil {
		return tracking.Ack{}, err
	}
	size := int64(len(req.Body))
	st, done := h.diary.use()
	err = g.overBudget(now, size, func(since time.Time) (int64, error) { return st.BlobBytesSince(name, since) })
	if err == nil {
		err = h.checkRecordQuota(ctx, st, name, g, rs.Records)
	}
	done()
	if err != nil {
		return tracking.Ack{}, err
	}
	ack, err := h.diary.ingestRecords(ctx, name, rs.Records)
	if err == nil && len(ack.Stored) > 0 {
		g.stored(size)
	}
	return ack, err
}

// refused answers a refusal: counted, logged with the workspace, noted in
// the diary as a gap once per kind and slot while the workspace tracks,
// and answered only after the workspace's refusal delay.
func (h *agentHub) refused(ctx context.Context, name string, rf *refusal) error {
	g := h.guard.of(name)
	wait := g.refusedOne(rf.reason)
	h.log.Warn("refused what the guest sent", "workspace", name, "kind", rf.kind, "reason", safetext.Term(rf.reason), "answer_in", wait)
	h.noteRefusal(ctx, name, g, rf)
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
	return channel.Refused(errors.New(rf.reason))
}

// noteRefusal writes the gap that says why the guest's captures or
// records were refused, once per kind and slot, while the workspace
// tracks (a refusal while it does not is only logged and counted).
func (h *agentHub) noteRefusal(ctx context.Context, name string, g *wsGuard, rf *refusal) {
	ts, err := h.trackState(name)
	if err != nil || !ts.On {
		return
	}
	now := time.Now().UTC()
	g.mu.Lock()
	slot := tracking.SlotOf(now, time.Duration(max(g.pol.SlotSeconds, 1))*time.Second)
	id := gapID(rf.kind, slot)
	seen := g.noted[id]
	if !seen {
		if len(g.noted) > 1024 {
			clear(g.noted)
		}
		g.noted[id] = true
	}
	g.mu.Unlock()
	if seen {
		return
	}
	reason := gapReason(rf.kind, rf.reason)
	if len(reason) > 900 {
		reason = reason[:900]
	}
	rec := tracking.Record{ID: id, Type: tracking.RecordGap, Session: ts.Session, Start: now, End: now.Add(time.Second), Reason: reason}
	if _, err := h.diary.ingestRecords(ctx, name, []tracking.Record{rec}); err != nil {
		h.log.Warn("could not note a refusal in the diary", "workspace", name, "error", err)
	}
}

// checkRecordQuota refuses records past a slot's share (recordLimits):
// what is stored already of that slot and kind, and the new records of
// the batch (replays of stored ones aside).
func (h *agentHub) checkRecordQuota(ctx context.Context, st *diary.Store, name string, g *wsGuard, recs []tracking.Record) error {
	g.mu.Lock()
	pol := g.pol
	g.mu.Unlock()
	slotLen := time.Duration(pol.SlotSeconds) * time.Second
	actLimit, spanLimit := recordLimits(pol)
	type key struct {
		slot     int64
		activity bool
	}
	fresh := map[key]int{}
	for _, r := range recs {
		if dup, err := st.HasRecord(ctx, name, r.ID); err != nil || dup {
			if err != nil {
				return err
			}
			continue
		}
		at := r.Start
		if r.Type == tracking.RecordActivity {
			at = r.Minute
		}
		fresh[key{tracking.SlotOf(at, slotLen).Unix(), r.Type == tracking.RecordActivity}]++
	}
	for k, n := range fresh {
		from := time.Unix(k.slot, 0)
		types, limit, what := []string{diary.TypeIdle, diary.TypeGap}, spanLimit, "idle and gap records"
		if k.activity {
			types, limit, what = []string{diary.TypeActivity}, actLimit, "activity records"
		}
		have, err := st.EntriesIn(ctx, name, from, from.Add(slotLen), types...)
		if err != nil {
			return err
		}
		if have+n > limit {
			return refuse(refuseSlot, "%d more %s for the slot at %s, which holds %d; a slot takes at most %d",
				n, what, from.UTC().Format(time.RFC3339), have, limit)
		}
	}
	return nil
}
