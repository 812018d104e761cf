package daemon

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/yamux"

	"github.com/workspace-sandbox/workspace/api"
	"github.com/workspace-sandbox/workspace/channel"
)

// fakeGuest stands in for QEMU's end of a workspace's virtio-serial port
// (a listening unix socket) and for the agent behind it.
type fakeGuest struct {
	t    *testing.T
	ln   net.Listener
	mu   sync.Mutex
	pol  *channel.Policy
	trk  channel.Track
	sess *yamux.Session
}

func newFakeGuest(t *testing.T, sock string) *fakeGuest {
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return &fakeGuest{t: t, ln: ln}
}

// connect accepts the daemon's connection and runs the agent's handshake
// and session on it.
func (g *fakeGuest) connect(ctx context.Context) (net.Conn, error) {
	c, err := g.ln.Accept()
	if err != nil {
		return nil, err
	}
	br, err := channel.GuestHandshake(c, c, channel.Hello{Version: channel.Version, Agent: "fake-1.0", OS: "linux"})
	if err != nil {
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
			var p channel.Policy
			if err := req.Decode(&p); err != nil {
				return nil, err
			}
			g.pol = &p
		case channel.TypeTrack:
			req.Decode(&g.trk)
		case channel.TypeStatus:
			return channel.NewMessage("status", channel.Status{Version: "fake-1.0", Tracking: g.trk.On, SpoolItems: 0})
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
	hv := newFakeHV()
	c, d := startDaemon(t, hv)
	d.server.agents.resend = 50 * time.Millisecond
	if _, err := importBytes(t, c, "test", qcow2Bytes(1<<30, false, 4096)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Init(ctx, api.InitRequest{}); err != nil {
		t.Fatal(err)
	}
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
	if err != nil || w.Agent == nil || !w.Agent.Connected || w.Agent.Version != "fake-1.0" {
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
		m, _ := channel.NewMessage(channel.TypeCapture, channel.Capture{ID: id, Session: ts.Session, Taken: time.Now(), Width: 160, Height: 100}, img, nil)
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

	// Meanwhile the good workspace is served as before.
	if err := capture(good, "cap-2"); err != nil {
		t.Fatal(err)
	}
	// A capture is stored in the workspace of its channel, whatever it says.
	if err := capture(bad, "cap-3"); err != nil {
		t.Fatal(err)
	}
	v, err := c.Diary(ctx, "good", time.Now().Add(-time.Hour), time.Now().Add(time.Hour), "UTC")
	if err != nil || v.Totals.Shots != 2 {
		t.Fatalf("good diary: %d shots, %v", v.Totals.Shots, err)
	}
	vb, err := c.Diary(ctx, "bad", time.Now().Add(-time.Hour), time.Now().Add(time.Hour), "UTC")
	if err != nil || vb.Totals.Shots != 1 {
		t.Fatalf("bad diary: %d shots, %v", vb.Totals.Shots, err)
	}
	// Records the agent may not send are refused as invalid (it drops them).
	m, _ := channel.NewMessage(channel.TypeRecords, channel.Records{Records: []channel.Record{{ID: "x1", Type: "session_start"}}})
	var rerr *channel.ErrRemote
	if err := good.send(ctx, m); !errors.As(err, &rerr) || !strings.HasPrefix(rerr.Msg, "invalid") {
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
