package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/yamux"

	"github.com/workspace-sandbox/workspace/api"
	"github.com/workspace-sandbox/workspace/channel"
	"github.com/workspace-sandbox/workspace/diary"
	"github.com/workspace-sandbox/workspace/profiles"
	"github.com/workspace-sandbox/workspace/tracking"
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
	// ended is the last tracking session this daemon closed, per
	// workspace: what the agent spooled before it learnt of the stop.
	ended map[string]window
	guard *ingestGuard
}

func newAgentHub(m *manager, d *diaryService, stateDir string, minFree uint64, log hclog.Logger) *agentHub {
	return &agentHub{m: m, diary: d, log: log, dir: filepath.Join(stateDir, "tracking"), resend: time.Second,
		versionRetry: 30 * time.Second, conns: map[string]*agentConn{}, ended: map[string]window{},
		guard: newIngestGuard(DefaultDecodeBudget, minFree)}
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
		// Nothing to supervise while libvirt does not answer; the next
		// tick tries again.
		if ctx.Err() == nil {
			h.log.Debug("list workspaces for their agents; trying again", "error", err)
		}
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
	ai.Refused, ai.LastRefusal = h.guard.of(name).counts()
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
func policyOf(p *profiles.Profile) tracking.Policy {
	pol := tracking.DefaultPolicy
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
	h.guard.of(name).setProfile(w.Settings)
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var errs []error
	if _, err := call(cctx, sess, channel.TypePolicy, policyOf(w.Settings)); err != nil {
		errs = append(errs, fmt.Errorf("policy: %w", err))
	}
	tr, err := h.trackState(name)
	if err == nil {
		_, err = call(cctx, sess, channel.TypeTrack, tr)
	}
	if err != nil {
		errs = append(errs, fmt.Errorf("tracking: %w", err))
	}
	return errors.Join(errs...)
}

// call sends the agent a request of type typ with body and waits for its
// answer.
func call(ctx context.Context, sess *yamux.Session, typ string, body any) (*channel.Message, error) {
	m, err := channel.NewMessage(typ, body)
	if err != nil {
		return nil, err
	}
	return channel.Call(ctx, sess, m)
}

// handle stores what the agent sends (guestingest.go). The workspace is
// the one this channel belongs to, never a field of the message. An error
// the agent must not retry is channel.Invalid; what the guard refuses is
// channel.Refused, answered after the workspace's refusal delay.
func (h *agentHub) handle(ctx context.Context, name string, req *channel.Message) (*channel.Message, error) {
	var (
		ack tracking.Ack
		err error
	)
	switch req.Type {
	case channel.TypeCapture:
		ack, err = h.ingestCapture(ctx, name, req)
	case channel.TypeRecords:
		ack, err = h.ingestRecords(ctx, name, req)
	default:
		return nil, channel.Invalid(fmt.Errorf("unknown request %q", req.Type))
	}
	if rf := (*refusal)(nil); errors.As(err, &rf) {
		return nil, h.refused(ctx, name, rf)
	}
	if errors.Is(err, diary.ErrInvalid) || errors.Is(err, diary.ErrConflict) {
		return nil, channel.Invalid(err)
	}
	if err != nil {
		return nil, err
	}
	return channel.NewMessage(channel.TypeAck, ack)
}
