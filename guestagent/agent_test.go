package guestagent

import (
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/yamux"

	"github.com/workspace-sandbox/workspace/channel"
	"github.com/workspace-sandbox/workspace/internal/backoff"
	"github.com/workspace-sandbox/workspace/tracking"
)

type fakeCapturer struct {
	mu   sync.Mutex
	err  error
	fill color.RGBA
}

func (f *fakeCapturer) Name() string { return "fake" }
func (f *fakeCapturer) Capture() ([]Shot, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	img := image.NewRGBA(image.Rect(0, 0, 64, 40))
	for i := 0; i < len(img.Pix); i += 4 {
		img.Pix[i], img.Pix[i+1], img.Pix[i+2], img.Pix[i+3] = f.fill.R, f.fill.G, f.fill.B, 255
	}
	return []Shot{{Display: 0, Bounds: img.Bounds(), Image: img}, {Display: 1, Bounds: image.Rect(64, 0, 128, 40), Image: img}}, nil
}

type fakeInput struct{ events chan InputKind }

func (f *fakeInput) Run(stop <-chan struct{}, ev func(InputKind)) error {
	for {
		select {
		case <-stop:
			return errors.New("stopped")
		case k := <-f.events:
			ev(k)
		}
	}
}

// fakeHost accepts the agent's connections over net.Pipe like the daemon
// does over the virtio port, and records what it stored.
type fakeHost struct {
	t       *testing.T
	mu      sync.Mutex
	conns   chan net.Conn
	stored  map[string]tracking.Capture
	records []tracking.Record
	refuse  bool
	// quota makes it refuse every delivery as over a quota.
	quota bool
	sess  *yamux.Session
}

func newFakeHost(t *testing.T) *fakeHost {
	return &fakeHost{t: t, conns: make(chan net.Conn, 4), stored: map[string]tracking.Capture{}}
}

func (h *fakeHost) open() (io.ReadWriteCloser, error) {
	a, b := net.Pipe()
	h.conns <- b
	return a, nil
}

// serve runs one host session on the next connection.
func (h *fakeHost) serve(ctx context.Context, pol tracking.Policy, tr tracking.State) (*yamux.Session, error) {
	var c net.Conn
	select {
	case c = <-h.conns:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	_, br, err := channel.HostHandshake(ctx, c, 50*time.Millisecond)
	if err != nil {
		return nil, err
	}
	sess, err := channel.HostSession(c, br, nil)
	if err != nil {
		return nil, err
	}
	go channel.Serve(ctx, sess, func(_ context.Context, req *channel.Message) (*channel.Message, error) {
		h.mu.Lock()
		defer h.mu.Unlock()
		if h.refuse {
			return nil, errors.New("unavailable: host busy")
		}
		if h.quota && req.Type != channel.TypeStatus {
			return nil, channel.Refused(errors.New("over the diary limit"))
		}
		switch req.Type {
		case channel.TypeCapture:
			var c tracking.Capture
			if err := req.Decode(&c); err != nil {
				return nil, err
			}
			if len(req.Blob(0)) == 0 || len(req.Blob(1)) == 0 {
				return nil, channel.Invalid(errors.New("no image"))
			}
			h.stored[c.ID] = c
		case channel.TypeRecords:
			var rs channel.Records
			if err := req.Decode(&rs); err != nil {
				return nil, err
			}
			h.records = append(h.records, rs.Records...)
		}
		return nil, nil
	})
	for _, m := range []struct {
		typ  string
		body any
	}{{channel.TypePolicy, pol}, {channel.TypeTrack, tr}} {
		msg, _ := channel.NewMessage(m.typ, m.body)
		if _, err := channel.Call(ctx, sess, msg); err != nil {
			return sess, err
		}
	}
	h.sess = sess
	return sess, nil
}

func (h *fakeHost) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.stored)
}

func testPolicy() tracking.Policy {
	return tracking.Policy{SlotSeconds: 10, ScreenshotsPerSlot: 2, IdleSeconds: 30, JPEGQuality: 80, SpoolLimit: 8 << 20}
}

func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestAgentTracksSpoolsAndDelivers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	host := newFakeHost(t)
	capt := &fakeCapturer{fill: color.RGBA{200, 30, 30, 255}}
	in := &fakeInput{events: make(chan InputKind, 100)}
	dir := t.TempDir()
	var logs syncBuffer
	a, err := New(Config{StateDir: dir, Version: "test", Open: host.open, Logger: hclog.New(&hclog.LoggerOptions{Output: &logs, Level: hclog.Info}), capturer: capt, input: in})
	if err != nil {
		t.Fatal(err)
	}
	actx, acancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { a.Run(actx); close(done) }()

	// A policy with out-of-range values is refused and changes nothing.
	sess, err := host.serve(ctx, testPolicy(), tracking.State{On: true, Session: "s1"})
	if err != nil {
		t.Fatal(err)
	}
	bad := testPolicy()
	bad.SlotSeconds = 1
	msg, _ := channel.NewMessage(channel.TypePolicy, bad)
	if _, err := channel.Call(ctx, sess, msg); err == nil {
		t.Fatal("out-of-range policy accepted")
	}
	if st := a.Status(); st.PolicyError == "" || !strings.Contains(st.PolicyError, "slot") {
		t.Fatalf("status does not show the refused policy: %q", st.PolicyError)
	}
	a.mu.Lock()
	kept := a.st.Policy
	a.mu.Unlock()
	if kept == nil || *kept != testPolicy() {
		t.Fatalf("the previous policy was not kept: %+v", kept)
	}
	if !strings.Contains(logs.String(), "[ERROR] rejected a policy with out-of-range values; keeping the previous one") {
		t.Fatalf("no log line about the refused policy:\n%s", logs.String())
	}
	for i := 0; i < 5; i++ {
		in.events <- InputKey
		in.events <- InputMove
	}
	// Two shots per 10 s slot, two displays each: 4 captures in one slot.
	waitFor(t, "captures delivered", 40*time.Second, func() bool { return host.count() >= 4 })
	host.mu.Lock()
	for _, c := range host.stored {
		if c.Session != "s1" || c.Width != 64 {
			t.Errorf("capture %+v", c)
		}
	}
	host.mu.Unlock()
	waitFor(t, "spool drained", 10*time.Second, func() bool { n, _ := a.spool.Usage(); return n == 0 })

	// The host goes away: captures stay in the spool, none is lost.
	host.mu.Lock()
	host.refuse = true
	host.mu.Unlock()
	sess.Close()
	before := host.count()
	waitFor(t, "captures spooled while the host is away", 40*time.Second, func() bool { n, _ := a.spool.Usage(); return n >= 2 })
	host.mu.Lock()
	host.refuse = false
	host.mu.Unlock()
	sess, err = host.serve(ctx, testPolicy(), tracking.State{On: true, Session: "s1"})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "spool delivered after reconnect", 30*time.Second, func() bool {
		n, _ := a.spool.Usage()
		return n == 0 && host.count() > before
	})

	// Before a suspend the host asks for a flush: the agent answers once
	// what it had spooled (while the host refused) is delivered.
	host.mu.Lock()
	host.refuse = true
	host.mu.Unlock()
	waitFor(t, "captures spooled while the host refuses", 40*time.Second, func() bool { n, _ := a.spool.Usage(); return n >= 1 })
	host.mu.Lock()
	host.refuse = false
	host.mu.Unlock()
	msg, _ = channel.NewMessage(channel.TypeFlush, nil)
	ans, err := channel.Call(ctx, sess, msg)
	var fl tracking.AgentStatus
	if err == nil {
		err = ans.Decode(&fl)
	}
	if err != nil || fl.SpoolItems != 0 {
		t.Fatalf("flush: %+v %v", fl, err)
	}

	// A display that fails is a gap, not a silent loss.
	capt.mu.Lock()
	capt.err = errors.New("no X display :0")
	capt.mu.Unlock()
	waitFor(t, "gap recorded", 30*time.Second, func() bool {
		host.mu.Lock()
		defer host.mu.Unlock()
		for _, r := range host.records {
			if r.Type == "gap" && r.Reason != "" {
				return true
			}
		}
		return false
	})
	acancel()
	<-done
	// Tracking state and policy survive a restart of the agent.
	a2, err := New(Config{StateDir: dir, Version: "test", Open: host.open, capturer: capt, input: in})
	if err != nil {
		t.Fatal(err)
	}
	if st := a2.Status(); !st.Tracking || st.Session != "s1" {
		t.Fatalf("state after restart: %+v", st)
	}
}

func TestSpoolLimitMakesGaps(t *testing.T) {
	sp, err := OpenSpool(t.TempDir(), 1000)
	if err != nil {
		t.Fatal(err)
	}
	big, _ := channel.NewMessage(channel.TypeCapture, tracking.Capture{ID: "x"}, make([]byte, 2000))
	if err := sp.Put("a", big, false); !errors.Is(err, ErrSpoolFull) {
		t.Fatalf("over the limit: %v", err)
	}
	gap, _ := channel.NewMessage(channel.TypeRecords, channel.Records{Records: []tracking.Record{{ID: "g", Type: "gap", Reason: "spool full"}}})
	for i := 0; i < 5; i++ {
		if err := sp.Put(tracking.NewID(time.Now())+string(rune('a'+i)), gap, true); err != nil {
			t.Fatalf("gap record %d refused: %v", i, err)
		}
	}
	ids, _ := sp.List()
	if len(ids) != 5 {
		t.Fatalf("ids %v", ids)
	}
	m, err := sp.Read(ids[0])
	if err != nil || m.Type != channel.TypeRecords {
		t.Fatalf("read back: %v", err)
	}
	sp2, _ := OpenSpool(sp.dir, 1000)
	if n, _ := sp2.Usage(); n != 5 {
		t.Fatalf("reopened spool has %d items", n)
	}
}

func TestBlurDestroysDetail(t *testing.T) {
	img := image.NewRGBA(image.Rect(0, 0, 160, 96))
	for y := 0; y < 96; y++ {
		for x := 0; x < 160; x++ {
			v := uint8(255)
			if (x+y)%2 == 0 {
				v = 0
			}
			img.SetRGBA(x, y, color.RGBA{v, v, v, 255})
		}
	}
	b := blurPixels(img)
	for y := 0; y < 96; y++ {
		for x := 1; x < 160; x++ {
			d := int(b.Pix[y*b.Stride+4*x+b.R]) - int(b.Pix[y*b.Stride+4*(x-1)+b.R])
			if d > 2 || d < -2 {
				t.Fatalf("edge left at %d,%d", x, y)
			}
		}
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Items the host refuses (channel.CodeRefused) are dropped, counted, and
// each refusal doubles the wait before the agent sends the next.
func TestRefusedItemsAreDroppedWithDoublingWaits(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	host := newFakeHost(t)
	host.quota = true
	a, err := New(Config{StateDir: t.TempDir(), Version: "test", Open: host.open, capturer: &fakeCapturer{}, input: &fakeInput{events: make(chan InputKind)}})
	if err != nil {
		t.Fatal(err)
	}
	a.refusals = backoff.New(time.Millisecond, 8*time.Millisecond)
	for i := range 4 {
		a.gap(time.Now(), fmt.Sprintf("gap %d", i))
	}
	actx, acancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { a.Run(actx); close(done) }()
	if _, err := host.serve(ctx, testPolicy(), tracking.State{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the refused items dropped", 20*time.Second, func() bool { return a.Status().Refused == 4 })
	acancel()
	<-done
	if n, _ := a.spool.Usage(); n != 0 {
		t.Fatalf("%d refused items still spooled", n)
	}
	if next := a.refusals.Next(); next != 8*time.Millisecond {
		t.Fatalf("the wait after 4 refusals is %v, want it doubled to the most (8ms)", next)
	}
}
