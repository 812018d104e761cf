package daemon

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/workspace-sandbox/workspace/api"
	"github.com/workspace-sandbox/workspace/diary"
	"github.com/workspace-sandbox/workspace/profiles"
	"github.com/workspace-sandbox/workspace/witness"
)

// The witness queue submits each workspace's new checkpoints to the
// witnesses its profile names (c2sp.org/tlog-witness): at most once per
// workspace per interval (a minute), at once when tracking stops and
// before an export. Offline is normal: a witness that does not answer is
// retried with back-off while tracking goes on.
//
// The queue is durable without a file of its own: what a witness still
// has to cosign is the diary's log beyond the largest size that witness
// cosigned, and both are in the diary's database. After a crash (even in
// the middle of a submission) the daemon starts over from there; a
// witness that cosigned a checkpoint whose answer was lost says so with a
// 409 and its size, and the next submission proves consistency from it.

// Defaults of the witness queue.
const (
	DefaultWitnessInterval = time.Minute
	witnessMinBackoff      = 5 * time.Second
	witnessMaxBackoff      = 5 * time.Minute
	witnessRefusedBackoff  = 15 * time.Minute // after a refusal: the client may register the log meanwhile
	witnessTimeout         = 20 * time.Second
)

type witnessQueue struct {
	diary    *diaryService
	m        *manager
	log      hclog.Logger
	interval time.Duration
	http     *http.Client
	now      func() time.Time
	// back-off after a failed submission: doubling from min to max
	minBackoff, maxBackoff time.Duration

	kick chan struct{}
	mu   sync.Mutex
	ws   map[string]*wsWitnessing
}

// wsWitnessing is one workspace's queue state (in memory; see above).
type wsWitnessing struct {
	dirty   bool      // appended since the last round
	urgent  bool      // a flush asked for a round now
	last    time.Time // when the last round started
	waiters []chan int64
	wit     map[string]*witnessTry // by witness key
}

// witnessTry is what the queue knows of one witness of one workspace.
type witnessTry struct {
	known    int64 // the size the witness said it cosigned (a 409), -1 when not told
	failures int
	lastErr  string
	next     time.Time // no attempt before (back-off)
}

func newWitnessQueue(d *diaryService, m *manager, interval time.Duration, log hclog.Logger) *witnessQueue {
	if interval <= 0 {
		interval = DefaultWitnessInterval
	}
	q := &witnessQueue{diary: d, m: m, log: log, interval: interval, http: &http.Client{Timeout: witnessTimeout},
		now: time.Now, kick: make(chan struct{}, 1), ws: map[string]*wsWitnessing{}, minBackoff: witnessMinBackoff, maxBackoff: witnessMaxBackoff}
	d.setOnAppend(q.appended)
	return q
}

// state returns (making) the queue state of ws; q.mu is held.
func (q *witnessQueue) state(ws string) *wsWitnessing {
	s := q.ws[ws]
	if s == nil {
		s = &wsWitnessing{wit: map[string]*witnessTry{}}
		q.ws[ws] = s
	}
	return s
}

func (q *witnessQueue) wake() {
	select {
	case q.kick <- struct{}{}:
	default:
	}
}

// appended is the diary's hook: ws's log grew.
func (q *witnessQueue) appended(ws string, _ int64) {
	q.mu.Lock()
	q.state(ws).dirty = true
	q.mu.Unlock()
	q.wake()
}

// flush asks for a round for ws now (track stop, export) and, with wait,
// waits for it: it returns the log size the round submitted (0 when ws has
// no witnesses or no entries).
func (q *witnessQueue) flush(ctx context.Context, ws string, wait bool) int64 {
	ch := make(chan int64, 1)
	q.mu.Lock()
	s := q.state(ws)
	s.urgent = true
	if wait {
		s.waiters = append(s.waiters, ch)
	}
	q.mu.Unlock()
	q.wake()
	if !wait {
		return 0
	}
	select {
	case n := <-ch:
		return n
	case <-ctx.Done():
		return 0
	}
}

// run is the queue's loop: it starts with every workspace that has a
// diary (entries may have waited across a restart), then runs rounds as
// they fall due.
func (q *witnessQueue) run(ctx context.Context) {
	st, done := q.diary.use()
	names, err := st.Workspaces(ctx)
	done()
	if err != nil {
		q.log.Warn("list diaries for witnessing", "error", err)
	}
	q.mu.Lock()
	for _, n := range names {
		q.state(n).dirty = true
	}
	q.mu.Unlock()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-q.kick:
		case <-timer.C:
		}
		wait := q.runDue(ctx)
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(wait)
	}
}

// runDue runs every round that is due and returns how long until the next
// one may be.
func (q *witnessQueue) runDue(ctx context.Context) time.Duration {
	now := q.now()
	var due []string
	q.mu.Lock()
	for name, s := range q.ws {
		if s.urgent || (s.dirty && !now.Before(s.last.Add(q.interval))) {
			due = append(due, name)
		}
	}
	q.mu.Unlock()
	sort.Strings(due)
	for _, name := range due {
		if ctx.Err() != nil {
			break
		}
		q.round(ctx, name)
	}
	// The next round falls due at the end of a workspace's interval.
	now = q.now()
	next := time.Hour
	q.mu.Lock()
	for _, s := range q.ws {
		if s.urgent {
			next = 0
		}
		if !s.dirty {
			continue
		}
		// A witness in back-off is skipped by the rounds until its time
		// comes (and the workspace stays dirty meanwhile).
		next = min(next, s.last.Add(q.interval).Sub(now))
	}
	q.mu.Unlock()
	return max(next, 10*time.Millisecond)
}

// round submits ws's latest checkpoint to each of its witnesses that needs
// it and is not backing off (all of them when urgent).
func (q *witnessQueue) round(ctx context.Context, ws string) {
	q.mu.Lock()
	s := q.state(ws)
	urgent := s.urgent
	s.urgent, s.dirty, s.last = false, false, q.now()
	waiters := s.waiters
	s.waiters = nil
	q.mu.Unlock()
	var size int64
	defer func() {
		for _, ch := range waiters {
			ch <- size
		}
	}()
	witnesses, err := q.witnessesOf(ctx, ws)
	if err != nil || len(witnesses) == 0 {
		return
	}
	st, done := q.diary.use()
	tip, err := st.Tip(ctx, ws)
	done()
	if err != nil {
		if !errors.Is(err, diary.ErrNotFound) && !errors.Is(err, diary.ErrLocked) && !errors.Is(err, diary.ErrNotInitialized) {
			q.log.Warn("witnessing: the log's checkpoint", "workspace", ws, "error", err)
		}
		return
	}
	size = tip.Size
	for _, w := range witnesses {
		q.mu.Lock()
		t := s.wit[w.Key]
		if t == nil {
			t = &witnessTry{known: -1}
			s.wit[w.Key] = t
		}
		skip := !urgent && t.lastErr != "" && t.next.After(q.now())
		q.mu.Unlock()
		if skip {
			q.mu.Lock()
			s.dirty = true // try again when the back-off ends
			q.mu.Unlock()
			continue
		}
		err := q.submit(ctx, ws, w, tip, t)
		q.mu.Lock()
		if err != nil {
			t.failures++
			t.lastErr = err.Error()
			backoff := min(q.minBackoff<<min(t.failures-1, 10), q.maxBackoff)
			if witness.IsPermanent(err) {
				backoff = witnessRefusedBackoff
			}
			t.next = q.now().Add(backoff)
			s.dirty = true
			q.log.Warn("witness did not cosign; will retry", "workspace", ws, "witness", w.Name, "size", tip.Size, "retry_in", backoff, "error", err)
		} else {
			t.failures, t.lastErr, t.next = 0, "", time.Time{}
		}
		q.mu.Unlock()
	}
}

// witnessesOf returns the witnesses of ws's profile (none for a workspace
// whose VM is gone).
func (q *witnessQueue) witnessesOf(ctx context.Context, ws string) ([]profiles.Witness, error) {
	w, err := q.m.get(ctx, ws)
	if err != nil || w.Settings == nil {
		return nil, err
	}
	return w.Settings.Witnesses, nil
}

// submit brings one witness up to tip: nothing when it cosigned tip
// already; else an add-checkpoint from the size it last cosigned, once
// more from the size it names in a 409.
func (q *witnessQueue) submit(ctx context.Context, ws string, w profiles.Witness, tip diary.Tip, t *witnessTry) error {
	v, err := witness.NewVerifier(w.Key)
	if err != nil {
		return err
	}
	st, done := q.diary.use()
	cosigned, _, err := st.WitnessProgress(ctx, ws, v.String())
	done()
	if err != nil {
		return err
	}
	if cosigned == tip.Size {
		return nil
	}
	q.mu.Lock()
	old := cosigned
	if t.known > old && t.known <= tip.Size {
		old = t.known
	}
	q.mu.Unlock()
	cl := &witness.Client{URL: w.URL, Verifier: v, HTTP: q.http}
	for try := 0; ; try++ {
		if old > tip.Size {
			return &witness.RefusedError{Status: http.StatusConflict, Reason: fmt.Sprintf("the witness has cosigned %d entries of this log, more than the diary's %d: the diary was rolled back, or another diary signs this log", old, tip.Size)}
		}
		st, done := q.diary.use()
		proof, err := st.ConsistencyProof(ctx, ws, old, tip.Size)
		done()
		if err != nil {
			return err
		}
		cctx, cancel := context.WithTimeout(ctx, witnessTimeout)
		c, err := cl.AddCheckpoint(cctx, old, proof, tip.Note)
		cancel()
		var ce *witness.ConflictError
		if errors.As(err, &ce) && try == 0 {
			q.mu.Lock()
			t.known = ce.Known
			q.mu.Unlock()
			q.log.Info("witness knows another size of the log; proving from it", "workspace", ws, "witness", w.Name, "sent", old, "known", ce.Known)
			old = ce.Known
			continue
		}
		if err != nil {
			return err
		}
		st, done = q.diary.use()
		at, err := st.AddCosignature(ctx, ws, tip.Size, v.String(), c.Line)
		done()
		if err != nil {
			return fmt.Errorf("keep the cosignature: %w", err)
		}
		q.mu.Lock()
		t.known = tip.Size
		q.mu.Unlock()
		q.log.Debug("cosigned", "workspace", ws, "witness", w.Name, "size", tip.Size, "at", at)
		return nil
	}
}

// handleWitnessState answers a workspace's witnessing, with its log's
// origin and key even when the profile names no witness yet.
func (s *server) handleWitnessState(r *http.Request) (any, error) {
	w, err := s.m.get(r.Context(), r.PathValue("name"))
	if err != nil {
		return nil, err
	}
	st, done := s.diary.use()
	_, kerr := st.Keys()
	done()
	if kerr != nil {
		return nil, kerr
	}
	return s.witness.report(r.Context(), w.Name, w.Settings), nil
}

// status is ws's witnessing as status and the web UI show it (nil when
// its profile names no witness).
func (q *witnessQueue) status(ctx context.Context, ws string, p *profiles.Profile) *api.WitnessState {
	if p == nil || len(p.Witnesses) == 0 {
		return nil
	}
	return q.report(ctx, ws, p)
}

// report is ws's witnessing with the witnesses of p (maybe none).
func (q *witnessQueue) report(ctx context.Context, ws string, p *profiles.Profile) *api.WitnessState {
	st, done := q.diary.use()
	defer done()
	out := &api.WitnessState{Witnesses: []api.WitnessStatus{}}
	out.Origin, out.LogKey, _ = st.LogID(ws)
	if tip, err := st.Tip(ctx, ws); err == nil {
		out.Size = tip.Size
	}
	if p != nil {
		for _, w := range p.Witnesses {
			out.Witnesses = append(out.Witnesses, api.WitnessStatus{Name: w.Name, URL: w.URL, Key: w.Key})
		}
	}
	for i := range out.Witnesses {
		w := &out.Witnesses[i]
		if v, err := witness.NewVerifier(w.Key); err == nil {
			w.CosignedSize, w.CosignedAt, _ = st.WitnessProgress(ctx, ws, v.String())
		}
		if w.Pending = out.Size - w.CosignedSize; w.Pending > 0 {
			w.QueuedSince, _ = st.Logged(ctx, ws, w.CosignedSize)
		}
		q.mu.Lock()
		if s := q.ws[ws]; s != nil {
			if t := s.wit[w.Key]; t != nil {
				w.LastError, w.NextAttempt = t.lastErr, t.next
			}
		}
		q.mu.Unlock()
	}
	return out
}

// setOnAppend sets the hook the diary calls after each durable append.
func (d *diaryService) setOnAppend(fn func(ws string, size int64)) { d.onAppend.Store(&fn) }

// appended passes a durable append on to the hook.
func (d *diaryService) appended(ws string, size int64) {
	if fn := d.onAppend.Load(); fn != nil {
		(*fn)(ws, size)
	}
}

// exportWitnessWait bounds how long an export waits for its witnesses.
const exportWitnessWait = 45 * time.Second
