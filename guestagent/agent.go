// Package guestagent is the tracker inside a workspace VM: it counts input
// (never which key), takes the screenshots the policy asks for, keeps them
// in a bounded on-disk spool, and delivers them to the host over the
// channel, deleting each only after the host has stored it durably.
package guestagent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/yamux"

	"github.com/workspace-sandbox/workspace/channel"
	"github.com/workspace-sandbox/workspace/internal/atomicfile"
	"github.com/workspace-sandbox/workspace/internal/backoff"
	"github.com/workspace-sandbox/workspace/tracking"
)

// Shot is one display's picture.
type Shot struct {
	Display int
	Bounds  image.Rectangle
	Image   image.Image
}

type capturer interface {
	Name() string
	Capture() ([]Shot, error)
}

// InputKind is what an input event was, and all the agent keeps of it.
type InputKind int

// Input kinds.
const (
	InputKey InputKind = iota
	InputClick
	InputMove
	InputScroll
)

type inputSource interface {
	Run(stop <-chan struct{}, ev func(InputKind)) error
}

// Config configures an agent.
type Config struct {
	StateDir string // spool, state.json, status.json
	Port     string // the virtio port; empty: FindPort
	Version  string
	Logger   hclog.Logger
	Now      func() time.Time
	// Open opens the channel (tests); by default the port device.
	Open func() (io.ReadWriteCloser, error)

	capturer capturer
	input    inputSource
}

// state is what the agent keeps across restarts.
type state struct {
	Policy *tracking.Policy `json:"policy,omitempty"`
	Track  tracking.State   `json:"track"`
}

// Agent is the running tracker.
type Agent struct {
	cfg   Config
	log   hclog.Logger
	spool *Spool
	wake  chan struct{}

	mu         sync.Mutex
	st         state
	connected  bool
	portErr    string
	displayErr string
	policyErr  string
	inputErr   string
	lastShot   time.Time
	gaps       int
	refused    int
	// refusals spaces out deliveries after the host refused an item
	// (channel.ErrRefused): doubling, back to none after an accepted one.
	refusals *backoff.Backoff
	// activity of the current minute and slot
	cur, slotAct  tracking.Activity
	lastActiveSec int64
	lastInput     time.Time
	idle          bool
	idleStart     time.Time
}

// New prepares an agent: its state dir, persisted state and spool.
func New(cfg Config) (*Agent, error) {
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.capturer == nil {
		cfg.capturer = newCapturer(cfg.Logger.Named("capture"))
	}
	if cfg.input == nil {
		cfg.input = newInputSource()
	}
	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("agent state dir: %w", err)
	}
	a := &Agent{cfg: cfg, log: cfg.Logger, wake: make(chan struct{}, 1), lastInput: cfg.Now(), refusals: backoff.New(time.Second, 5*time.Minute)}
	if b, err := os.ReadFile(filepath.Join(cfg.StateDir, "state.json")); err == nil {
		if err := json.Unmarshal(b, &a.st); err != nil {
			a.log.Warn("state.json is damaged; starting without policy", "error", err)
			a.st = state{}
		}
	}
	limit := tracking.DefaultPolicy.SpoolLimit
	if a.st.Policy != nil {
		limit = a.st.Policy.SpoolLimit
	}
	sp, err := OpenSpool(filepath.Join(cfg.StateDir, "spool"), limit)
	if err != nil {
		return nil, err
	}
	a.spool = sp
	return a, nil
}

// saveState keeps the policy and tracking state across restarts. A failure
// is logged: the agent goes on with the state in memory, and the host
// pushes both again at its next connect.
func (a *Agent) saveState() {
	a.mu.Lock()
	b, err := json.Marshal(a.st)
	a.mu.Unlock()
	if err == nil {
		err = atomicfile.Write(filepath.Join(a.cfg.StateDir, "state.json"), b, 0o600)
	}
	if err != nil {
		a.log.Warn("save state; it is pushed again at the next connect", "error", err)
	}
}

// Run runs the agent until ctx ends.
func (a *Agent) Run(ctx context.Context) error {
	a.log.Info("agent starting", "version", a.cfg.Version, "capture", a.cfg.capturer.Name(), "state_dir", a.cfg.StateDir)
	go a.inputLoop(ctx)
	go a.trackLoop(ctx)
	go a.statusLoop(ctx)
	a.connLoop(ctx)
	return ctx.Err()
}

// ---- input ----

func (a *Agent) inputLoop(ctx context.Context) {
	b := backoff.New(time.Second, 30*time.Second)
	for ctx.Err() == nil {
		stop := make(chan struct{})
		go func() { <-ctx.Done(); close(stop) }()
		err := a.cfg.input.Run(stop, a.onInput)
		if ctx.Err() != nil {
			return
		}
		a.mu.Lock()
		a.inputErr = err.Error()
		a.mu.Unlock()
		a.log.Warn("input counting stopped; retrying", "error", err, "in", b.Next())
		if !b.Wait(ctx) {
			return
		}
	}
}

func (a *Agent) onInput(k InputKind) {
	now := a.cfg.Now()
	a.mu.Lock()
	defer a.mu.Unlock()
	a.inputErr = ""
	for _, act := range []*tracking.Activity{&a.cur, &a.slotAct} {
		switch k {
		case InputKey:
			act.Keys++
		case InputClick:
			act.Clicks++
		case InputMove:
			act.Moves++
		case InputScroll:
			act.Scrolls++
		}
	}
	if s := now.Unix(); s != a.lastActiveSec {
		a.lastActiveSec = s
		a.cur.Active = min(60, a.cur.Active+1)
		a.slotAct.Active++
	}
	a.lastInput = now
}

// ---- tracking ----

// trackLoop runs once a second: it schedules and takes the slot's
// screenshots, closes activity minutes and idle periods.
func (a *Agent) trackLoop(ctx context.Context) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var curSlot, curEnd, curMinute, lastTick time.Time
	var moments []time.Time
	rng := rand.New(rand.NewSource(time.Now().UnixNano()))
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		now := a.cfg.Now()
		// A tick far later than a second after the last one: the guest
		// did not run (suspended, or its clock was set after a resume).
		stood := now.Sub(lastTick)
		lastTick = now
		a.mu.Lock()
		pol, tr := a.st.Policy, a.st.Track
		a.mu.Unlock()
		if pol == nil || !tr.On {
			curSlot, moments = time.Time{}, nil
			a.closeMinute(curMinute, false)
			curMinute = time.Time{}
			a.closeIdle(now)
			continue
		}
		slotLen := time.Duration(pol.SlotSeconds) * time.Second
		if s := tracking.SlotOf(now, slotLen); !s.Equal(curSlot) {
			if len(moments) > 0 && !curSlot.IsZero() && !now.Before(curEnd) {
				// The loop ran late past the old slot's end: say so in
				// that slot rather than lose its shot silently.
				why := "the agent ran late"
				if stood > suspendedTick {
					why = fmt.Sprintf("the guest did not run for %s (suspended?)", stood.Round(time.Second))
				}
				a.gap(curEnd.Add(-time.Second), fmt.Sprintf("missed %d screenshot moment(s) of the slot: %s", len(moments), why))
			}
			curSlot, curEnd = s, s.Add(slotLen)
			moments = slotMoments(s, now, slotLen, pol.ScreenshotsPerSlot, rng)
			a.mu.Lock()
			a.slotAct = tracking.Activity{}
			a.mu.Unlock()
		}
		for len(moments) > 0 && !moments[0].After(now) {
			moments = moments[1:]
			_, _ = a.takeShots(now, tr.Session, *pol, nil) // failures are gap records
		}
		if m := now.Truncate(time.Minute); !m.Equal(curMinute) {
			a.closeMinute(curMinute, true)
			curMinute = m
		}
		a.checkIdle(now, time.Duration(pol.IdleSeconds)*time.Second)
	}
}

// suspendedTick is the time between two ticks of the tracking loop beyond
// which the guest is taken to have not run at all rather than run late.
const suspendedTick = 30 * time.Second

// momentMargin keeps screenshot moments off a slot's last seconds: the
// loop ticks once a second, and a moment it reaches only after the slot
// ended would be taken in the next one.
const momentMargin = 2 * time.Second

// slotMoments returns n random moments, in order, in what is left of the
// slot that starts at s: all of it at the slot's start, the rest of it when
// tracking (or the guest) starts mid-slot; none in its last momentMargin.
func slotMoments(s, now time.Time, slotLen time.Duration, n int, rng *rand.Rand) []time.Time {
	from := s
	if now.After(from) {
		from = now
	}
	left := s.Add(slotLen - momentMargin).Sub(from)
	if left <= 0 {
		return nil
	}
	moments := make([]time.Time, 0, n)
	for range n {
		moments = append(moments, from.Add(time.Duration(rng.Int63n(int64(left)))))
	}
	sort.Slice(moments, func(i, j int) bool { return moments[i].Before(moments[j]) })
	return moments
}

// closeMinute spools the activity record of a finished minute.
func (a *Agent) closeMinute(minute time.Time, keep bool) {
	a.mu.Lock()
	act := a.cur
	a.cur = tracking.Activity{}
	inputErr := a.inputErr
	a.mu.Unlock()
	if minute.IsZero() || !keep {
		return
	}
	recs := []tracking.Record{{ID: tracking.NewID(minute), Type: tracking.RecordActivity, Minute: minute, Activity: &act}}
	if inputErr != "" && act == (tracking.Activity{}) {
		recs = append(recs, tracking.Record{ID: tracking.NewID(minute), Type: tracking.RecordGap, Start: minute, End: minute.Add(time.Minute), Reason: "no input counts: " + inputErr})
	}
	a.spoolRecords(recs, false)
}

func (a *Agent) checkIdle(now time.Time, timeout time.Duration) {
	a.mu.Lock()
	last, idle := a.lastInput, a.idle
	if !idle && now.Sub(last) >= timeout {
		a.idle, a.idleStart = true, last
	}
	var rec *tracking.Record
	if idle && last.After(a.idleStart) {
		rec = &tracking.Record{ID: tracking.NewID(a.idleStart), Type: tracking.RecordIdle, Start: a.idleStart, End: last}
		a.idle = false
	}
	a.mu.Unlock()
	if rec != nil {
		a.spoolRecords([]tracking.Record{*rec}, false)
	}
}

func (a *Agent) closeIdle(now time.Time) {
	a.mu.Lock()
	var rec *tracking.Record
	if a.idle && now.After(a.idleStart) {
		rec = &tracking.Record{ID: tracking.NewID(a.idleStart), Type: tracking.RecordIdle, Start: a.idleStart, End: now}
	}
	a.idle = false
	a.lastInput = now
	a.mu.Unlock()
	if rec != nil {
		a.spoolRecords([]tracking.Record{*rec}, false)
	}
}

func (a *Agent) spoolRecords(recs []tracking.Record, gap bool) {
	m, err := channel.NewMessage(channel.TypeRecords, channel.Records{Records: recs})
	if err != nil {
		a.log.Error("encode records", "error", err)
		return
	}
	if err := a.spool.Put(tracking.NewID(a.cfg.Now()), m, gap); err != nil {
		a.log.Warn("records not spooled", "error", err)
		if !gap {
			a.gap(a.cfg.Now(), "spool full: activity records dropped")
		}
		return
	}
	a.kick()
}

// gap records that something was not captured, and why.
func (a *Agent) gap(at time.Time, reason string) {
	a.mu.Lock()
	a.gaps++
	a.mu.Unlock()
	a.log.Warn("gap", "reason", reason)
	a.spoolRecords([]tracking.Record{{ID: tracking.NewID(at), Type: tracking.RecordGap, Start: at, End: at.Add(time.Second), Reason: reason}}, true)
}

func (a *Agent) kick() {
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

// takeShots captures every display and spools each shot; a retake only
// the retaken shot's display, marked as its retake. It returns the ids
// spooled, and why none was when none was.
func (a *Agent) takeShots(now time.Time, session string, pol tracking.Policy, retake *channel.Shoot) ([]string, error) {
	only, retakeOf := -1, ""
	if retake != nil {
		only, retakeOf = retake.Display, retake.RetakeOf
	}
	// The heap the shots churned goes back to the system afterwards: the
	// agent stays small between shots.
	defer freeAfterShots()
	shots, err := shootWith(a.cfg.capturer, pol.JPEGQuality, pol.Blur, only)
	if err != nil {
		a.mu.Lock()
		a.displayErr = err.Error()
		a.mu.Unlock()
		a.gap(now, "no screenshot: "+err.Error())
		return nil, fmt.Errorf("no screenshot: %w", err)
	}
	a.mu.Lock()
	a.displayErr = ""
	act := a.slotAct
	a.mu.Unlock()
	var ids []string
	var last error
	for _, s := range shots {
		if len(s.JPEG) > channel.MaxBlob || len(s.JPEG)+len(s.Thumbnail) > channel.MaxBlobTotal {
			last = fmt.Errorf("screenshot of display %d is %d bytes, more than the channel carries (%d)", s.Display, len(s.JPEG), channel.MaxBlob)
			a.gap(now, last.Error())
			continue
		}
		id := tracking.NewID(now)
		actCopy := act
		m, err := channel.NewMessage(channel.TypeCapture, tracking.Capture{
			ID: id, Session: session, Taken: now, Display: s.Display,
			X: s.Bounds.Min.X, Y: s.Bounds.Min.Y, Width: s.Bounds.Dx(), Height: s.Bounds.Dy(),
			Activity: &actCopy, Blurred: pol.Blur, RetakeOf: retakeOf,
		}, s.JPEG, s.Thumbnail)
		if err != nil {
			last = fmt.Errorf("encode capture: %w", err)
			a.gap(now, last.Error())
			continue
		}
		if err := a.spool.Put(id, m, false); err != nil {
			last = fmt.Errorf("spool full: screenshot of display %d dropped", s.Display)
			a.gap(now, last.Error())
			continue
		}
		a.mu.Lock()
		a.lastShot = now
		a.mu.Unlock()
		ids = append(ids, id)
		a.log.Info("screenshot spooled", "id", id, "display", s.Display, "bytes", len(s.JPEG), "retake_of", retakeOf)
	}
	a.kick()
	if len(ids) == 0 && last == nil && retake != nil {
		last = fmt.Errorf("no display %d to retake", retake.Display)
	}
	if len(ids) == 0 && last != nil {
		return nil, last
	}
	return ids, nil
}

// ---- channel ----

func (a *Agent) open() (io.ReadWriteCloser, error) {
	if a.cfg.Open != nil {
		return a.cfg.Open()
	}
	p := a.cfg.Port
	if p == "" {
		var err error
		if p, err = FindPort(); err != nil {
			return nil, err
		}
	}
	return os.OpenFile(p, os.O_RDWR, 0)
}

func (a *Agent) hello() channel.Hello {
	return channel.Hello{Version: channel.Version, Agent: a.cfg.Version, OS: runtime.GOOS, Capabilities: []string{channel.CapScreenshots, channel.CapActivity}}
}

// connLoop keeps a session with the host: open the port, wait for the
// host's sync, serve the host's requests and send the spool; after any
// failure, back off and start over.
func (a *Agent) connLoop(ctx context.Context) {
	b := backoff.New(time.Second, 30*time.Second)
	for ctx.Err() == nil {
		port, err := a.open()
		if err != nil {
			a.setPortErr(err.Error())
			a.log.Warn("no channel to the host", "error", err, "retry_in", b.Next())
			if !b.Wait(ctx) {
				return
			}
			continue
		}
		a.setPortErr("")
		b.Reset()
		err = a.session(ctx, port)
		port.Close()
		a.mu.Lock()
		a.connected = false
		a.mu.Unlock()
		if ctx.Err() == nil {
			a.log.Info("session with the host ended; waiting for a new sync", "error", err)
			time.Sleep(200 * time.Millisecond)
		}
	}
}

func (a *Agent) setPortErr(s string) {
	a.mu.Lock()
	a.portErr = s
	a.mu.Unlock()
}

func (a *Agent) session(ctx context.Context, port io.ReadWriteCloser) error {
	stop := context.AfterFunc(ctx, func() { port.Close() })
	defer stop()
	br, err := channel.GuestHandshake(port, port, a.hello())
	if err != nil {
		return fmt.Errorf("handshake: %w", err)
	}
	sess, err := channel.GuestSession(port, br, a.log.StandardWriter(&hclog.StandardLoggerOptions{InferLevels: true}))
	if err != nil {
		return err
	}
	defer sess.Close()
	a.mu.Lock()
	a.connected = true
	a.mu.Unlock()
	a.log.Info("connected to the host")
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		_ = channel.Serve(sctx, sess, a.handle)
		cancel()
	}()
	go func() {
		select {
		case <-sess.CloseChan():
			cancel()
		case <-sctx.Done():
		}
	}()
	a.sendLoop(sctx, sess)
	return sctx.Err()
}

// sendLoop delivers the spool, oldest first; an item is deleted only when
// the host acknowledged it.
func (a *Agent) sendLoop(ctx context.Context, sess *yamux.Session) {
	for ctx.Err() == nil {
		if !a.deliver(ctx, sess) {
			select {
			case <-ctx.Done():
			case <-time.After(3 * time.Second):
			}
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-a.wake:
		case <-time.After(2 * time.Second):
		}
	}
}

// deliver sends every spooled item; false when a delivery failed.
func (a *Agent) deliver(ctx context.Context, sess *yamux.Session) bool {
	ids, err := a.spool.List()
	if err != nil {
		a.log.Error("read spool", "error", err)
		return false
	}
	for _, id := range ids {
		if ctx.Err() != nil {
			return false
		}
		m, err := a.spool.Read(id)
		if err != nil {
			a.log.Error("spooled item is unreadable; dropping it", "id", id, "error", err)
			a.unspool(id)
			a.gap(a.cfg.Now(), "spooled item unreadable")
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		_, err = channel.Call(cctx, sess, m)
		cancel()
		switch {
		case err == nil:
			a.unspool(id)
			a.refusals.Reset()
		case errors.Is(err, channel.ErrRefused):
			// Over a quota, outside the session, an image the host will
			// not take: dropped, and the next send waits longer each time.
			a.log.Warn("the host refused a spooled item; dropping it and waiting before the next", "id", id, "error", err, "wait", a.refusals.Next())
			a.unspool(id)
			a.mu.Lock()
			a.refused++
			a.mu.Unlock()
			if !a.refusals.Wait(ctx) {
				return false
			}
		case errors.Is(err, channel.ErrInvalid):
			a.log.Error("the host refused a spooled item; dropping it", "id", id, "error", err)
			a.unspool(id)
		default:
			a.log.Warn("delivery failed; will retry", "id", id, "error", err)
			return false
		}
	}
	return true
}

// unspool deletes a delivered or refused item. One that cannot be deleted
// is sent again, which the host answers as a duplicate: logged, no more.
func (a *Agent) unspool(id string) {
	if err := a.spool.Remove(id); err != nil {
		a.log.Warn("cannot remove a spooled item; it will be sent again", "id", id, "error", err)
	}
}

// handle answers the host's requests.
func (a *Agent) handle(_ context.Context, req *channel.Message) (*channel.Message, error) {
	switch req.Type {
	case channel.TypePolicy:
		var p tracking.Policy
		if err := req.Decode(&p); err != nil {
			return nil, channel.Invalid(err)
		}
		if err := p.Validate(); err != nil {
			a.mu.Lock()
			a.policyErr = err.Error()
			a.mu.Unlock()
			a.log.Error("rejected a policy with out-of-range values; keeping the previous one", "error", err)
			return nil, channel.Invalid(fmt.Errorf("invalid policy: %w", err))
		}
		a.mu.Lock()
		a.st.Policy, a.policyErr = &p, ""
		a.mu.Unlock()
		a.spool.SetLimit(p.SpoolLimit)
		a.saveState()
		a.log.Info("policy applied", "slot_s", p.SlotSeconds, "shots_per_slot", p.ScreenshotsPerSlot, "blur", p.Blur)
		return nil, nil
	case channel.TypeTrack:
		var t tracking.State
		if err := req.Decode(&t); err != nil {
			return nil, channel.Invalid(err)
		}
		a.mu.Lock()
		was := a.st.Track
		a.st.Track = t
		a.mu.Unlock()
		a.saveState()
		if was.On != t.On || was.Session != t.Session {
			a.log.Info("tracking", "on", t.On, "session", t.Session)
		}
		return channel.NewMessage("status", a.Status())
	case channel.TypeStatus:
		return channel.NewMessage("status", a.Status())
	case channel.TypeFlush:
		return channel.NewMessage("status", a.flush())
	case channel.TypeShoot:
		var sh channel.Shoot
		if err := req.Decode(&sh); err != nil {
			return nil, channel.Invalid(err)
		}
		a.mu.Lock()
		pol, tr := a.st.Policy, a.st.Track
		a.mu.Unlock()
		if pol == nil || !tr.On {
			return nil, errors.New("not tracking: a retake is taken only while tracking")
		}
		ids, err := a.takeShots(a.cfg.Now(), tr.Session, *pol, &sh)
		if err != nil {
			return nil, err
		}
		return channel.NewMessage(channel.TypeShoot, channel.Shot{IDs: ids})
	}
	return nil, channel.Invalid(fmt.Errorf("invalid request: unknown type %q", req.Type))
}

// flush delivers the spool now (the host is about to suspend the VM) and
// returns the status once the spool is empty or channel.FlushWait passed.
func (a *Agent) flush() tracking.AgentStatus {
	deadline := time.Now().Add(channel.FlushWait)
	for {
		a.kick()
		if items, _ := a.spool.Usage(); items == 0 || !time.Now().Before(deadline) {
			st := a.Status()
			a.log.Info("spool flushed for a suspend", "left", st.SpoolItems)
			return st
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Status reports the agent's state.
func (a *Agent) Status() tracking.AgentStatus {
	items, size := a.spool.Usage()
	a.mu.Lock()
	defer a.mu.Unlock()
	st := tracking.AgentStatus{Version: a.cfg.Version, Tracking: a.st.Track.On, Session: a.st.Track.Session, LastShot: a.lastShot,
		SpoolItems: items, SpoolBytes: size, Display: a.cfg.capturer.Name(), DisplayError: a.displayErr, PolicyError: a.policyErr, Gaps: a.gaps, Refused: a.refused}
	return st
}

// LocalStatus is what `workspace-agent status` shows; the service writes it
// to status.json every few seconds.
type LocalStatus struct {
	tracking.AgentStatus
	Connected bool      `json:"connected"`
	PortError string    `json:"port_error,omitempty"`
	InputErr  string    `json:"input_error,omitempty"`
	Policy    bool      `json:"policy_received"`
	Written   time.Time `json:"written"`
}

// statusLoop writes status.json every two seconds. A failed write is
// logged once until a write works again: the agent goes on tracking, only
// `workspace-agent status` is stale meanwhile.
func (a *Agent) statusLoop(ctx context.Context) {
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	var lastErr string
	for {
		ls := LocalStatus{AgentStatus: a.Status(), Written: a.cfg.Now()}
		a.mu.Lock()
		ls.Connected, ls.PortError, ls.InputErr, ls.Policy = a.connected, a.portErr, a.inputErr, a.st.Policy != nil
		a.mu.Unlock()
		b, err := json.MarshalIndent(ls, "", "  ")
		if err == nil {
			err = os.WriteFile(filepath.Join(a.cfg.StateDir, "status.json"), b, 0o644)
		}
		switch {
		case err != nil && err.Error() != lastErr:
			a.log.Warn("write status.json; `workspace-agent status` shows an old status meanwhile", "error", err)
			lastErr = err.Error()
		case err == nil:
			lastErr = ""
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// ReadLocalStatus reads the running agent's status file.
func ReadLocalStatus(stateDir string) (LocalStatus, error) {
	var ls LocalStatus
	b, err := os.ReadFile(filepath.Join(stateDir, "status.json"))
	if err != nil {
		return ls, fmt.Errorf("no status from a running agent in %s: %w", stateDir, err)
	}
	return ls, json.Unmarshal(b, &ls)
}
