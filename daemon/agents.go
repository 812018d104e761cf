package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/yamux"

	"github.com/workspace-sandbox/workspace/api"
	"github.com/workspace-sandbox/workspace/channel"
	"github.com/workspace-sandbox/workspace/diary"
	"github.com/workspace-sandbox/workspace/profiles"
)

// agentConn is the daemon's side of one workspace's agent channel.
type agentConn struct {
	mu        sync.Mutex
	connected bool
	hello     channel.Hello
	lastSeen  time.Time
	sess      *yamux.Session
	cancel    context.CancelFunc
	// refused says why the daemon does not talk to this agent (an
	// unsupported protocol version), while it waits to try again.
	refused string
}

// agentHub keeps one channel loop per running workspace: it dials the
// agent socket (QEMU's end of the virtio-serial port), resyncs, serves the
// agent's captures and records into the diary, pushes policy and tracking,
// and starts over after any failure.
type agentHub struct {
	m      *manager
	diary  *diaryService
	log    hclog.Logger
	dir    string // STATE/tracking
	resend time.Duration
	// versionRetry is the first wait before syncing again with an agent of
	// an unsupported protocol version; it doubles up to maxVersionRetry.
	versionRetry time.Duration

	mu    sync.Mutex
	conns map[string]*agentConn
}

func newAgentHub(m *manager, d *diaryService, stateDir string, log hclog.Logger) *agentHub {
	return &agentHub{m: m, diary: d, log: log, dir: filepath.Join(stateDir, "tracking"), resend: time.Second,
		versionRetry: 30 * time.Second, conns: map[string]*agentConn{}}
}

// run supervises the loops until ctx ends.
func (h *agentHub) run(ctx context.Context) {
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	for {
		h.supervise(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (h *agentHub) supervise(ctx context.Context) {
	infos, err := h.m.hv.List(ctx)
	if err != nil {
		return
	}
	for _, info := range infos {
		name := toAPI(info).Name
		if string(info.State) != api.StateRunning || info.AgentSocket == "" {
			continue
		}
		h.mu.Lock()
		_, ok := h.conns[name]
		if !ok {
			lctx, cancel := context.WithCancel(ctx)
			c := &agentConn{cancel: cancel}
			h.conns[name] = c
			go h.loop(lctx, name, info.AgentSocket, c)
		}
		h.mu.Unlock()
	}
}

// info returns the agent's connection state of a workspace.
func (h *agentHub) info(name string) *api.AgentInfo {
	h.mu.Lock()
	c := h.conns[name]
	h.mu.Unlock()
	if c == nil {
		return &api.AgentInfo{}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	ai := &api.AgentInfo{Connected: c.connected, LastSeen: c.lastSeen}
	if c.connected || !c.lastSeen.IsZero() {
		ai.Version = c.hello.Agent
	}
	if !c.connected {
		ai.Error = c.refused
	}
	return ai
}

func (h *agentHub) session(name string) *yamux.Session {
	h.mu.Lock()
	c := h.conns[name]
	h.mu.Unlock()
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.connected {
		return nil
	}
	return c.sess
}

// maxVersionRetry bounds the wait between syncs with an agent of an
// unsupported protocol version.
const maxVersionRetry = 5 * time.Minute

// loop keeps the channel of one workspace while it runs.
func (h *agentHub) loop(ctx context.Context, name, sock string, c *agentConn) {
	log := h.log.With("workspace", name)
	defer func() {
		h.mu.Lock()
		delete(h.conns, name)
		h.mu.Unlock()
	}()
	versionRetry := h.versionRetry
	for ctx.Err() == nil {
		conn, err := net.DialTimeout("unix", sock, 2*time.Second)
		if err != nil {
			if w, gerr := h.m.get(ctx, name); gerr != nil || w.State != api.StateRunning {
				return // the supervisor starts a new loop when it runs again
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
			continue
		}
		err = h.serveConn(ctx, name, conn, c, log)
		conn.Close()
		c.mu.Lock()
		c.connected, c.sess = false, nil
		c.mu.Unlock()
		if ctx.Err() != nil {
			return
		}
		wait := 500 * time.Millisecond
		switch {
		case errors.Is(err, channel.ErrUnsupportedVersion):
			// serveConn logged it and set the reason in the status.
			wait, versionRetry = versionRetry, min(2*versionRetry, maxVersionRetry)
		case errors.Is(err, channel.ErrBadRequest), errors.Is(err, channel.ErrMalformed), errors.Is(err, channel.ErrTooLarge):
			log.Warn("the agent sent a malformed or oversized frame; its session is closed, resyncing", "error", err)
			versionRetry = h.versionRetry
		default:
			log.Info("agent channel closed; resyncing", "error", err)
			versionRetry = h.versionRetry
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

func (h *agentHub) serveConn(ctx context.Context, name string, conn net.Conn, c *agentConn, log hclog.Logger) error {
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(cctx, func() { conn.Close() })
	defer stop()
	hello, br, err := channel.HostHandshake(cctx, conn, h.resend)
	if errors.Is(err, channel.ErrUnsupportedVersion) {
		c.mu.Lock()
		c.refused = fmt.Sprintf("agent %.64q refused: handshake: %v; install an agent of this daemon's version in the guest", hello.Agent, err)
		c.mu.Unlock()
		log.Error("agent refused: unsupported protocol version; install an agent of this daemon's version in the guest",
			"agent", fmt.Sprintf("%.64s", hello.Agent), "error", err)
	}
	if err != nil {
		return fmt.Errorf("handshake: %w", err)
	}
	sess, err := channel.HostSession(conn, br, log.StandardWriter(&hclog.StandardLoggerOptions{InferLevels: true}))
	if err != nil {
		return err
	}
	defer sess.Close()
	c.mu.Lock()
	c.connected, c.hello, c.sess, c.lastSeen, c.refused = true, hello, sess, time.Now(), ""
	c.mu.Unlock()
	log.Info("agent connected", "agent", hello.Agent, "os", hello.OS, "capabilities", hello.Capabilities)
	// Serve's error says why the session ended: a malformed or oversized
	// request from the guest is returned here and logged by loop.
	serr := make(chan error, 1)
	go func() {
		serr <- channel.Serve(cctx, sess, func(ctx context.Context, req *channel.Message) (*channel.Message, error) {
			c.mu.Lock()
			c.lastSeen = time.Now()
			c.mu.Unlock()
			return h.handle(ctx, name, req)
		})
		sess.Close()
	}()
	if err := h.push(cctx, name, sess); err != nil {
		log.Warn("push policy and tracking", "error", err)
	}
	t := time.NewTicker(channel.Heartbeat)
	defer t.Stop()
	for {
		select {
		case <-cctx.Done():
			return cctx.Err()
		case err := <-serr:
			return fmt.Errorf("session closed: %w", err)
		case <-sess.CloseChan():
			select {
			case err := <-serr:
				return fmt.Errorf("session closed: %w", err)
			case <-time.After(time.Second):
			}
			return errors.New("session closed")
		case <-t.C:
			if _, err := sess.Ping(); err != nil {
				return fmt.Errorf("heartbeat: %w", err)
			}
			c.mu.Lock()
			c.lastSeen = time.Now()
			c.mu.Unlock()
		}
	}
}

// policyOf turns a profile's tracking block into the channel's policy.
func policyOf(p *profiles.Profile) channel.Policy {
	pol := channel.Policy{SlotSeconds: 600, ScreenshotsPerSlot: 1, IdleSeconds: 300, JPEGQuality: 75, SpoolLimit: 512 << 20}
	if p == nil {
		return pol
	}
	t := p.Tracking
	if t.Slot > 0 {
		pol.SlotSeconds = int(time.Duration(t.Slot) / time.Second)
	}
	pol.ScreenshotsPerSlot = t.ScreenshotsPerSlot
	if t.IdleTimeout > 0 {
		pol.IdleSeconds = int(time.Duration(t.IdleTimeout) / time.Second)
	}
	pol.Blur = t.Blur
	if t.JPEGQuality > 0 {
		pol.JPEGQuality = t.JPEGQuality
	}
	if t.SpoolLimit > 0 {
		pol.SpoolLimit = int64(t.SpoolLimit)
	}
	return pol
}

// push sends the profile's policy and the tracking state to the agent. An
// agent that refuses the policy keeps its previous one and still gets the
// tracking state; both failures are returned.
func (h *agentHub) push(ctx context.Context, name string, sess *yamux.Session) error {
	w, err := h.m.get(ctx, name)
	if err != nil {
		return err
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var errs []error
	pm, err := channel.NewMessage(channel.TypePolicy, policyOf(w.Settings))
	if err == nil {
		_, err = channel.Call(cctx, sess, pm)
	}
	if err != nil {
		errs = append(errs, fmt.Errorf("policy: %w", err))
	}
	tr := h.tracking(name)
	tm, err := channel.NewMessage(channel.TypeTrack, channel.Track{On: tr.On, Session: tr.Session, Memo: tr.Memo, Since: tr.Since})
	if err == nil {
		_, err = channel.Call(cctx, sess, tm)
	}
	if err != nil {
		errs = append(errs, fmt.Errorf("tracking: %w", err))
	}
	return errors.Join(errs...)
}

// handle stores what the agent sends. The workspace is the one this
// channel belongs to, never a field of the message.
func (h *agentHub) handle(ctx context.Context, name string, req *channel.Message) (*channel.Message, error) {
	st, done := h.diary.use()
	defer done()
	if err := h.diary.ensureFromLibvirt(ctx, st, name); err != nil {
		return nil, agentErr(err)
	}
	switch req.Type {
	case channel.TypeCapture:
		var c channel.Capture
		if err := req.Decode(&c); err != nil {
			return nil, fmt.Errorf("invalid: %w", err)
		}
		meta := api.CaptureMeta{ID: c.ID, Session: c.Session, Taken: c.Taken, Display: c.Display, X: c.X, Y: c.Y, Width: c.Width, Height: c.Height, Blurred: c.Blurred, Retake: c.RetakeOf}
		if a := c.Activity; a != nil {
			meta.Activity = &api.Activity{Keys: a.Keys, Clicks: a.Clicks, Moves: a.Moves, Scrolls: a.Scrolls, Active: a.Active}
		}
		res, err := st.AddCapture(ctx, name, meta, req.Blob(0), req.Blob(1))
		if err != nil {
			return nil, agentErr(err)
		}
		ack := channel.Ack{Stored: 1}
		if res.Duplicate {
			ack = channel.Ack{Duplicates: 1}
		}
		return channel.NewMessage("ack", ack)
	case channel.TypeRecords:
		var rs channel.Records
		if err := req.Decode(&rs); err != nil {
			return nil, fmt.Errorf("invalid: %w", err)
		}
		recs := make([]api.Record, 0, len(rs.Records))
		for _, r := range rs.Records {
			ar := api.Record{ID: r.ID, Type: r.Type, Minute: r.Minute, Start: r.Start, End: r.End, Reason: r.Reason}
			if a := r.Activity; a != nil {
				ar.Activity = &api.Activity{Keys: a.Keys, Clicks: a.Clicks, Moves: a.Moves, Scrolls: a.Scrolls, Active: a.Active}
			}
			if r.Type != api.RecordActivity && r.Type != api.RecordIdle && r.Type != api.RecordGap {
				return nil, fmt.Errorf("invalid: record type %q is not the agent's to send", r.Type)
			}
			recs = append(recs, ar)
		}
		ack, err := st.AddRecords(ctx, name, recs)
		if err != nil {
			return nil, agentErr(err)
		}
		return channel.NewMessage("ack", channel.Ack{Stored: len(ack.Stored), Duplicates: len(ack.Duplicates)})
	}
	return nil, fmt.Errorf("invalid: unknown request %q", req.Type)
}

// agentErr tells the agent whether to drop (invalid) or retry.
func agentErr(err error) error {
	if errors.Is(err, diary.ErrInvalid) || errors.Is(err, diary.ErrConflict) {
		return fmt.Errorf("invalid: %w", err)
	}
	return fmt.Errorf("unavailable: %w", err)
}

// ---- tracking ----

// trackState is the daemon's record of whether a workspace tracks.
type trackState struct {
	On      bool      `json:"on"`
	Session string    `json:"session,omitempty"`
	Memo    string    `json:"memo,omitempty"`
	Since   time.Time `json:"since,omitzero"`
}

func (h *agentHub) tracking(name string) trackState {
	var ts trackState
	if b, err := os.ReadFile(filepath.Join(h.dir, name+".json")); err == nil {
		_ = json.Unmarshal(b, &ts)
	}
	return ts
}

func (h *agentHub) setTracking(name string, ts trackState) error {
	if err := os.MkdirAll(h.dir, 0o700); err != nil {
		return err
	}
	b, _ := json.Marshal(ts)
	return os.WriteFile(filepath.Join(h.dir, name+".json"), b, 0o600)
}

// track turns tracking on or off: recorded in the diary as a session start
// or stop, kept across daemon restarts, and pushed to the agent (now when
// it is connected, else when it connects).
func (h *agentHub) track(ctx context.Context, name string, req api.TrackRequest) (api.TrackStatus, error) {
	w, err := h.m.get(ctx, name)
	if err != nil {
		return api.TrackStatus{}, err
	}
	cur := h.tracking(name)
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
			return api.TrackStatus{}, fmt.Errorf("track %q: %w", name, diaryErr(err))
		}
		next := trackState{On: true, Session: diary.NewID(now), Memo: req.Memo, Since: now}
		if _, err := st.AddRecords(ctx, name, []api.Record{{ID: "start-" + next.Session, Type: api.RecordSessionStart, Session: next.Session, Time: now, Memo: req.Memo}}); err != nil {
			return api.TrackStatus{}, fmt.Errorf("track %q: %w", name, diaryErr(err))
		}
		cur = next
	} else {
		if !cur.On {
			return api.TrackStatus{}, fmt.Errorf("%w: workspace %q is not tracking", api.ErrConflict, name)
		}
		if _, err := st.AddRecords(ctx, name, []api.Record{{ID: "stop-" + cur.Session, Type: api.RecordSessionStop, Session: cur.Session, Time: now}}); err != nil {
			return api.TrackStatus{}, fmt.Errorf("track %q: %w", name, diaryErr(err))
		}
		cur = trackState{}
	}
	if err := h.setTracking(name, cur); err != nil {
		return api.TrackStatus{}, fmt.Errorf("track %q: %w", name, err)
	}
	if sess := h.session(name); sess != nil {
		m, _ := channel.NewMessage(channel.TypeTrack, channel.Track{On: cur.On, Session: cur.Session, Memo: cur.Memo, Since: cur.Since})
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		if _, err := channel.Call(cctx, sess, m); err != nil {
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
	ts := h.tracking(name)
	out := api.TrackStatus{Workspace: name, Tracking: ts.On, Session: ts.Session, Memo: ts.Memo, Since: ts.Since, Agent: *h.info(name)}
	if sess := h.session(name); sess != nil {
		m, _ := channel.NewMessage(channel.TypeStatus, nil)
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if ans, err := channel.Call(cctx, sess, m); err == nil {
			var gs channel.Status
			if ans.Decode(&gs) == nil {
				out.Guest = &api.GuestStatus{Tracking: gs.Tracking, Session: gs.Session, LastShot: gs.LastShot, SpoolItems: gs.SpoolItems,
					SpoolBytes: gs.SpoolBytes, Display: gs.Display, DisplayError: gs.DisplayErr, PolicyError: gs.PolicyError, Gaps: gs.Gaps}
			}
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
		return api.Retake{}, fmt.Errorf("retake shot %s: %w", id, diaryErr(err))
	}
	name := t.Workspace
	if !h.tracking(name).On {
		return api.Retake{}, fmt.Errorf("%w: retake shot %s: workspace %q is not tracking, and its agent takes a retake only while tracking", api.ErrConflict, id, name)
	}
	sess := h.session(name)
	if sess == nil {
		return api.Retake{}, fmt.Errorf("%w: retake shot %s: the agent of workspace %q is not connected", api.ErrConflict, id, name)
	}
	m, err := channel.NewMessage(channel.TypeShoot, channel.Shoot{RetakeOf: id, Display: t.Display})
	if err != nil {
		return api.Retake{}, err
	}
	cctx, cancel := context.WithTimeout(ctx, retakeWait)
	defer cancel()
	ans, err := channel.Call(cctx, sess, m)
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
