package daemon

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"image/jpeg"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/yamux"

	"github.com/workspace-sandbox/workspace/api"
	"github.com/workspace-sandbox/workspace/channel"
	"github.com/workspace-sandbox/workspace/internal/thumbnail"
	"github.com/workspace-sandbox/workspace/tracking"
)

// fakeGuest stands in for QEMU's end of a workspace's virtio-serial port
// (a listening unix socket) and for the agent behind it.
type fakeGuest struct {
	t    *testing.T
	ln   net.Listener
	mu   sync.Mutex
	pol  *tracking.Policy
	trk  tracking.State
	sess *yamux.Session
	// version is the protocol version of its Hello (0: channel.Version).
	version int
	// picture is what it sends as a retake.
	picture []byte
	// refusePolicy makes it refuse every policy as an agent does one with
	// out-of-range values: an error answer, the previous policy kept.
	refusePolicy bool
}

func newFakeGuest(t *testing.T, sock string) *fakeGuest {
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return &fakeGuest{t: t, ln: ln, picture: testJPEG(t, 7)}
}

// testThumb is the thumbnail an agent sends with a JPEG.
func testThumb(t testing.TB, orig []byte) []byte {
	t.Helper()
	img, err := jpeg.Decode(bytes.NewReader(orig))
	if err != nil {
		t.Fatal(err)
	}
	th, err := thumbnail.Make(img)
	if err != nil {
		t.Fatal(err)
	}
	return th
}

// connect accepts the daemon's connection and runs the agent's handshake
// and session on it.
func (g *fakeGuest) connect(ctx context.Context) (net.Conn, error) {
	c, err := g.ln.Accept()
	if err != nil {
		return nil, err
	}
	g.mu.Lock()
	v := g.version
	g.mu.Unlock()
	if v == 0 {
		v = channel.Version
	}
	br, err := channel.GuestHandshake(c, c, channel.Hello{Version: v, Agent: fmt.Sprintf("fake-%d.0", v), OS: "linux"})
	if err != nil {
		c.Close()
		return nil, err
	}
	sess, err := channel.GuestSession(c, br, nil)
	if err != nil {
		return nil, err
	}
	go channel.Serve(ctx, sess, func(_ context.Context, req *channel.Message) (*channel.Message, error) {
		g.mu.Lock()
		defer g.mu.Unlock()
		switch req.Type {
		case channel.TypePolicy:
			var p tracking.Policy
			if err := req.Decode(&p); err != nil {
				return nil, err
			}
			if g.refusePolicy {
				return nil, errors.New("invalid policy: slot_seconds 300 is outside what this agent accepts")
			}
			g.pol = &p
		case channel.TypeTrack:
			req.Decode(&g.trk)
		case channel.TypeStatus:
			return channel.NewMessage("status", tracking.AgentStatus{Version: "fake-1.0", Tracking: g.trk.On, SpoolItems: 0})
		case channel.TypeShoot:
			var sh channel.Shoot
			if err := req.Decode(&sh); err != nil {
				return nil, err
			}
			// Like the agent: answer once the retake is "spooled", and
			// deliver it as any capture.
			id := sh.RetakeOf + "-retake"
			m, _ := channel.NewMessage(channel.TypeCapture, tracking.Capture{ID: id, Session: g.trk.Session, Taken: time.Now(),
				Display: sh.Display, Width: 160, Height: 100, RetakeOf: sh.RetakeOf}, g.picture, testThumb(g.t, g.picture))
			go channel.Call(ctx, sess, m)
			return channel.NewMessage(channel.TypeShoot, channel.Shot{IDs: []string{id}})
		}
		return nil, nil
	})
	g.mu.Lock()
	g.sess = sess
	g.mu.Unlock()
	return c, nil
}

func (g *fakeGuest) send(ctx context.Context, m *channel.Message) error {
	g.mu.Lock()
	s := g.sess
	g.mu.Unlock()
	_, err := channel.Call(ctx, s, m)
	return err
}

func agentWorkspace(t *testing.T, hv *fakeHV, c *api.Client, name string) *fakeGuest {
	t.Helper()
	ctx := context.Background()
	p := testProfile(t, `image = "test"
tracking {
  slot = "5m"
  screenshots_per_slot = 2
}`)
	if _, err := c.Create(ctx, api.CreateRequest{Name: name, Profile: p}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Start(ctx, name, api.StartRequest{}); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(t.TempDir(), "agent.sock")
	hv.mu.Lock()
	hv.domains[name].AgentSocket = sock
	hv.mu.Unlock()
	return newFakeGuest(t, sock)
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestAgentChannelIngestsAndIsolatesBadSessions(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	hv, c, _, logs := agentDaemon(t)
	good := agentWorkspace(t, hv, c, "good")
	bad := agentWorkspace(t, hv, c, "bad")
	if _, err := good.connect(ctx); err != nil {
		t.Fatal(err)
	}
	// The daemon pushed the profile's policy.
	waitUntil(t, "policy pushed", func() bool {
		good.mu.Lock()
		defer good.mu.Unlock()
		return good.pol != nil
	})
	if good.pol.SlotSeconds != 300 || good.pol.ScreenshotsPerSlot != 2 {
		t.Fatalf("policy %+v", good.pol)
	}
	w, err := c.Workspace(ctx, "good")
	if err != nil || w.Agent == nil || !w.Agent.Connected || w.Agent.Version != fmt.Sprintf("fake-%d.0", channel.Version) {
		t.Fatalf("status agent: %+v %v", w.Agent, err)
	}

	// Tracking reaches the agent and is answered with its status.
	if _, err := c.Track(ctx, "good", api.TrackRequest{On: true, Memo: "m"}); err != nil {
		t.Fatal(err)
	}
	ts, err := c.TrackStatus(ctx, "good")
	if err != nil || !ts.Tracking || ts.Guest == nil || !ts.Guest.Tracking {
		t.Fatalf("track status: %+v %v", ts, err)
	}

	// A capture over the channel lands in that workspace's diary.
	img := testJPEG(t, 9)
	capture := func(g *fakeGuest, id string) error {
		m, _ := channel.NewMessage(channel.TypeCapture, tracking.Capture{ID: id, Session: ts.Session, Taken: time.Now(), Width: 160, Height: 100}, img, testThumb(t, img))
		return g.send(ctx, m)
	}
	if err := capture(good, "cap-1"); err != nil {
		t.Fatal(err)
	}
	if err := capture(good, "cap-1"); err != nil { // a replay: stored once
		t.Fatal(err)
	}

	// The bad workspace's guest sends garbage, then an oversized frame.
	bc, err := bad.connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// (The daemon may close the session after the first; then the later
	// writes just fail, which is the point.)
	if st, err := bad.sess.OpenStream(); err == nil {
		st.Write([]byte("this is not a frame at all, just noise\x00\x01\x02"))
		st.Close()
	}
	if st2, err := bad.sess.OpenStream(); err == nil {
		binary.Write(st2, binary.BigEndian, uint32(1<<31))
	}
	// The host logs the frame error, at Warn, with the workspace's name.
	waitUntil(t, "a warning about the bad frame of workspace bad", func() bool {
		return hasLogLine(logs.String(), "[WARN]", "workspace=bad", "malformed or oversized frame", "frame over its size limit")
	})
	bc.Write(bytes.Repeat([]byte{0xde, 0xad}, 4096)) // raw garbage under yamux too
	// The daemon closes that session and resyncs: a fresh handshake works.
	bc2 := make(chan error, 1)
	go func() { _, err := bad.connect(ctx); bc2 <- err }()
	select {
	case err := <-bc2:
		if err != nil {
			t.Fatalf("resync after garbage: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the daemon did not resync the bad workspace")
	}
	if hasLogLine(logs.String(), "workspace=good", "malformed") {
		t.Fatalf("the good workspace was blamed:\n%s", logs.String())
	}

	// Meanwhile the good workspace is served as before.
	if err := capture(good, "cap-2"); err != nil {
		t.Fatal(err)
	}
	// A shot blurred inside the guest is recorded as such in the diary.
	bm, _ := channel.NewMessage(channel.TypeCapture, tracking.Capture{ID: "cap-blur", Session: ts.Session, Taken: time.Now(), Width: 160, Height: 100, Blurred: true}, img, testThumb(t, img))
	if err := good.send(ctx, bm); err != nil {
		t.Fatal(err)
	}
	// A capture is stored in the workspace of its channel, whatever it
	// says (its session is good's), once that workspace tracks.
	if _, err := c.Track(ctx, "bad", api.TrackRequest{On: true}); err != nil {
		t.Fatal(err)
	}
	if err := capture(bad, "cap-3"); err != nil {
		t.Fatal(err)
	}
	v, err := c.Diary(ctx, "good", time.Now().Add(-time.Hour), time.Now().Add(time.Hour), "UTC")
	if err != nil || v.Totals.Shots != 3 {
		t.Fatalf("good diary: %d shots, %v", v.Totals.Shots, err)
	}
	for _, d := range v.Days {
		for _, sl := range d.Slots {
			for _, sh := range sl.Shots {
				if sh.Blurred != (sh.ID == "cap-blur") {
					t.Errorf("shot %s: blurred %v", sh.ID, sh.Blurred)
				}
			}
		}
	}
	vb, err := c.Diary(ctx, "bad", time.Now().Add(-time.Hour), time.Now().Add(time.Hour), "UTC")
	if err != nil || vb.Totals.Shots != 1 {
		t.Fatalf("bad diary: %d shots, %v", vb.Totals.Shots, err)
	}
	// Records the agent may not send are refused as invalid (it drops them).
	m, _ := channel.NewMessage(channel.TypeRecords, channel.Records{Records: []tracking.Record{{ID: "x1", Type: "session_start"}}})
	if err := good.send(ctx, m); !errors.Is(err, channel.ErrInvalid) {
		t.Fatalf("session record from the guest: %v", err)
	}

	// Tracking cannot start on a stopped workspace; stop works.
	if _, err := c.Track(ctx, "good", api.TrackRequest{On: false}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Stop(ctx, "bad", api.StopRequest{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Track(ctx, "bad", api.TrackRequest{On: true}); !errors.Is(err, api.ErrConflict) || !strings.Contains(err.Error(), "start it first") {
		t.Fatalf("track on a stopped workspace: %v", err)
	}
}

// captureAgentLog sends the agent hub's log to a buffer (at Info and up)
// for the rest of the test; call it before any workspace has an agent.
func captureAgentLog(d *Daemon) *syncBuffer {
	var logs syncBuffer
	h := d.server.agents
	h.mu.Lock()
	h.log = hclog.New(&hclog.LoggerOptions{Name: "agents", Output: &logs, Level: hclog.Info})
	h.mu.Unlock()
	return &logs
}

// hasLogLine says whether one line of the log has all the parts.
func hasLogLine(log string, parts ...string) bool {
	for _, line := range strings.Split(log, "\n") {
		ok := true
		for _, p := range parts {
			ok = ok && strings.Contains(line, p)
		}
		if ok {
			return true
		}
	}
	return false
}

func agentDaemon(t *testing.T) (*fakeHV, *api.Client, *Daemon, *syncBuffer) {
	t.Helper()
	hv := newFakeHV()
	c, d := startDaemon(t, hv)
	d.server.agents.resend = 50 * time.Millisecond
	logs := captureAgentLog(d)
	if _, err := importBytes(t, c, "test", qcow2Bytes(1<<30, false, 4096)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Init(context.Background(), api.InitRequest{}); err != nil {
		t.Fatal(err)
	}
	return hv, c, d, logs
}

// An agent that refuses the pushed policy keeps its previous one and still
// learns whether to track.
func TestAgentRefusingThePolicyStillGetsTracking(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	hv, c, _, logs := agentDaemon(t)
	g := agentWorkspace(t, hv, c, "strict")
	if _, err := c.Track(ctx, "strict", api.TrackRequest{On: true, Memo: "m"}); err != nil {
		t.Fatal(err)
	}
	prev := &tracking.Policy{SlotSeconds: 600, ScreenshotsPerSlot: 1, IdleSeconds: 300, JPEGQuality: 75, SpoolLimit: 64 << 20}
	g.mu.Lock()
	g.pol, g.refusePolicy = prev, true
	g.mu.Unlock()
	if _, err := g.connect(ctx); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "tracking pushed after the refused policy", func() bool {
		g.mu.Lock()
		defer g.mu.Unlock()
		return g.trk.On && g.trk.Session != ""
	})
	g.mu.Lock()
	pol := g.pol
	g.mu.Unlock()
	if pol != prev {
		t.Fatalf("the agent's policy changed to %+v", pol)
	}
	waitUntil(t, "the refusal logged", func() bool {
		return hasLogLine(logs.String(), "[WARN]", "workspace=strict", "policy:", "invalid policy")
	})
}

// An agent of another protocol version is refused with a clear log line and
// a reason in the status, and synced again only after a growing wait; once
// the guest has a current agent it connects.
func TestAgentOfAnotherProtocolVersionIsRefused(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	hv, c, d, logs := agentDaemon(t)
	h := d.server.agents
	h.mu.Lock()
	h.versionRetry = 1500 * time.Millisecond
	h.mu.Unlock()
	g := agentWorkspace(t, hv, c, "future")
	g.mu.Lock()
	g.version = channel.Version + 1
	g.mu.Unlock()
	var tries []time.Time
	for i := 0; i < 3; i++ {
		_, err := g.connect(ctx)
		tries = append(tries, time.Now())
		if err == nil {
			t.Fatalf("the daemon completed a handshake with a protocol-%d agent", channel.Version+1)
		}
	}
	if d1, d2 := tries[1].Sub(tries[0]), tries[2].Sub(tries[1]); d1 < 1400*time.Millisecond || d2 < 2900*time.Millisecond {
		t.Fatalf("syncs with the refused agent %s and %s apart, want at least 1.5 s and then 3 s", d1, d2)
	}
	w, err := c.Workspace(ctx, "future")
	future := fmt.Sprintf("protocol %d", channel.Version+1)
	if err != nil || w.Agent == nil || w.Agent.Connected || !strings.Contains(w.Agent.Error, future) {
		t.Fatalf("status agent: %+v %v", w.Agent, err)
	}
	if !hasLogLine(logs.String(), "[ERROR]", "workspace=future", "unsupported protocol version", future, fmt.Sprintf("fake-%d.0", channel.Version+1)) {
		t.Fatalf("no clear log line about the protocol version:\n%s", logs.String())
	}
	// The guest gets a current agent.
	g.mu.Lock()
	g.version = 0
	g.mu.Unlock()
	if _, err := g.connect(ctx); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the current agent connected", func() bool {
		w, err := c.Workspace(ctx, "future")
		return err == nil && w.Agent != nil && w.Agent.Connected && w.Agent.Error == ""
	})
}

// The retake request: the daemon asks the shot's agent for a retake of the
// shot's display and answers once the retake is in the diary; refusals
// are clear and change nothing.
func TestRetakeThroughTheAgent(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	hv, c, _, _ := agentDaemon(t)
	g := agentWorkspace(t, hv, c, "acme")
	if _, err := g.connect(ctx); err != nil {
		t.Fatal(err)
	}
	// Keep clear of a slot boundary (5 min slots): the retake must land in
	// the shot's slot.
	if left := 5*time.Minute - time.Duration(time.Now().Unix()%300)*time.Second; left < 20*time.Second {
		time.Sleep(left + time.Second)
	}
	if _, err := c.Retake(ctx, "nope"); !errors.Is(err, api.ErrNotFound) {
		t.Fatalf("retake of an unknown shot: %v", err)
	}
	ts, err := c.Track(ctx, "acme", api.TrackRequest{On: true})
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "tracking pushed", func() bool { g.mu.Lock(); defer g.mu.Unlock(); return g.trk.On })
	m, _ := channel.NewMessage(channel.TypeCapture, tracking.Capture{ID: "cap-1", Session: ts.Session, Taken: time.Now(), Display: 0, Width: 160, Height: 100}, testJPEG(t, 3), testThumb(t, testJPEG(t, 3)))
	if err := g.send(ctx, m); err != nil {
		t.Fatal(err)
	}
	r, err := c.Retake(ctx, "cap-1")
	if err != nil || r.Pending || r.Workspace != "acme" || len(r.Retakes) != 1 || r.Retakes[0] != "cap-1-retake" {
		t.Fatalf("retake: %+v %v", r, err)
	}
	v, err := c.Diary(ctx, "acme", time.Now().Add(-time.Hour), time.Now().Add(time.Hour), "UTC")
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, d := range v.Days {
		for _, sl := range d.Slots {
			for _, sh := range sl.Shots {
				found = found || (sh.ID == "cap-1-retake" && sh.RetakeOf == "cap-1")
			}
		}
	}
	if !found {
		t.Fatalf("the retake is not in the diary: %+v", v.Days)
	}
	if _, err := c.Retake(ctx, "cap-1"); !errors.Is(err, api.ErrConflict) || !strings.Contains(err.Error(), "retaken already") {
		t.Fatalf("a second retake: %v", err)
	}
	if _, err := c.Track(ctx, "acme", api.TrackRequest{On: false}); err != nil {
		t.Fatal(err)
	}
	m, _ = channel.NewMessage(channel.TypeCapture, tracking.Capture{ID: "cap-2", Session: ts.Session, Taken: time.Now(), Width: 160, Height: 100}, testJPEG(t, 4), testThumb(t, testJPEG(t, 4)))
	if err := g.send(ctx, m); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Retake(ctx, "cap-2"); !errors.Is(err, api.ErrConflict) || !strings.Contains(err.Error(), "not tracking") {
		t.Fatalf("a retake while not tracking: %v", err)
	}
}
