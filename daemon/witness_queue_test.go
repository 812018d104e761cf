package daemon

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/workspace-sandbox/workspace/api"
	"github.com/workspace-sandbox/workspace/diary"
	"github.com/workspace-sandbox/workspace/tracking"
	"github.com/workspace-sandbox/workspace/witness"
)

// liveWitness is a real witness (the witness package's server on SQLite)
// on a fixed loopback address, which a test can take down and bring back.
type liveWitness struct {
	t    *testing.T
	srv  *witness.Server
	addr string
	vkey string
	hs   *http.Server
}

func startLiveWitness(t *testing.T) *liveWitness {
	t.Helper()
	skey, vkey, err := witness.GenerateKey("witness.example/client")
	if err != nil {
		t.Fatal(err)
	}
	signer, _ := witness.NewSigner(skey)
	srv, err := witness.OpenServer(context.Background(), filepath.Join(t.TempDir(), "w.db"), signer, nil)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	w := &liveWitness{t: t, srv: srv, addr: l.Addr().String(), vkey: vkey}
	w.serve(l)
	t.Cleanup(func() { w.stop(); srv.Close() })
	return w
}

func (w *liveWitness) serve(l net.Listener) {
	w.hs = &http.Server{Handler: w.srv}
	go w.hs.Serve(l)
}

func (w *liveWitness) stop() {
	if w.hs != nil {
		w.hs.Close()
		w.hs = nil
	}
}

func (w *liveWitness) start() {
	w.t.Helper()
	l, err := net.Listen("tcp", w.addr)
	if err != nil {
		w.t.Fatal(err)
	}
	w.serve(l)
}

// TestWitnessQueueOutage: the daemon submits its checkpoints to the
// profile's witness; while the witness is down tracking goes on, entries
// queue (status says since when and why) and are retried with back-off;
// when it returns the queue drains. The export, verified with the
// witness's key pinned, marks late only the slot of the outage.
func TestWitnessQueueOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for three 30 s slots")
	}
	ctx := context.Background()
	w := startLiveWitness(t)
	c, d := startDaemonWith(t, newFakeHV(), func(cfg *Config) { cfg.WitnessInterval = 300 * time.Millisecond })
	d.server.witness.minBackoff, d.server.witness.maxBackoff = 300*time.Millisecond, time.Second
	if _, err := importBytes(t, c, "test", qcow2Bytes(1<<30, false, 4096)); err != nil {
		t.Fatal(err)
	}
	client, _ := age.GenerateX25519Identity()
	p := testProfile(t, `image = "test"
tracking {
  slot = "30s"
}
client {
  name      = "ACME"
  recipient = "`+client.Recipient().String()+`"
}
witness "client" {
  url = "http://`+w.addr+`"
  key = "`+w.vkey+`"
}`)
	if _, err := c.Create(ctx, api.CreateRequest{Name: "acme", ProfilePath: "/p.hcl", Profile: p}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Init(ctx, api.InitRequest{}); err != nil {
		t.Fatal(err)
	}
	ws, err := c.Workspace(ctx, "acme")
	if err != nil || ws.Witness == nil || ws.Witness.Origin == "" || len(ws.Witness.Witnesses) != 1 {
		t.Fatalf("status: %+v %v", ws.Witness, err)
	}
	// The client registers the log with its witness.
	if err := w.srv.AddLog(ctx, ws.Witness.Origin, ws.Witness.LogKey); err != nil {
		t.Fatal(err)
	}
	state := func() api.WitnessState {
		ws, err := c.Workspace(ctx, "acme")
		if err != nil || ws.Witness == nil {
			t.Fatalf("status: %v", err)
		}
		return *ws.Witness
	}
	n := 0
	capture := func() {
		n++
		if _, err := addCapture(ctx, d, "acme", tracking.Capture{ID: "shot-" + string(rune('a'+n)), Taken: time.Now(), Session: "s1"}, testJPEG(t, uint8(n)), nil); err != nil {
			t.Fatal(err)
		}
	}
	drained := func(within time.Duration) api.WitnessState {
		deadline := time.Now().Add(within)
		for {
			st := state()
			if st.Size > 0 && st.Witnesses[0].CosignedSize == st.Size && st.Witnesses[0].QueuedSince.IsZero() {
				return st
			}
			if time.Now().After(deadline) {
				t.Fatalf("the queue did not drain in %s: %+v", within, st)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	nextSlot := func() time.Time {
		s := time.Now().Truncate(30 * time.Second).Add(30 * time.Second)
		time.Sleep(time.Until(s) + 500*time.Millisecond)
		return s
	}

	slotA := time.Now().Truncate(30 * time.Second)
	if time.Until(slotA.Add(30*time.Second)) < 3*time.Second {
		slotA = nextSlot()
	}
	capture()
	drained(5 * time.Second)

	w.stop()
	slotB := nextSlot()
	capture()
	time.Sleep(2 * time.Second)
	st := state()
	if ww := st.Witnesses[0]; ww.CosignedSize >= st.Size || ww.QueuedSince.IsZero() || ww.LastError == "" || ww.Pending == 0 {
		t.Fatalf("while the witness is down: %+v", ww)
	}
	t.Logf("witness down: %d entries queued since %s: %s", st.Witnesses[0].Pending, st.Witnesses[0].QueuedSince.Format(time.TimeOnly), st.Witnesses[0].LastError)
	time.Sleep(10 * time.Second)
	w.start()
	drained(10 * time.Second)

	slotC := nextSlot()
	capture()
	drained(5 * time.Second)

	var buf bytes.Buffer
	if err := c.Export(ctx, "acme", api.ExportRequest{From: slotA.Add(-time.Minute), To: slotC.Add(time.Minute)}, &buf); err != nil {
		t.Fatal(err)
	}
	v, err := diary.Verify(&buf, []age.Identity{client}, diary.VerifyOptions{Witnesses: []string{w.vkey}, MaxDelay: 8 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	marks := map[int64]*tracking.SlotWitness{}
	for _, day := range v.View.Days {
		for _, s := range day.Slots {
			marks[s.Start.Unix()] = s.Witness
		}
	}
	for _, c := range []struct {
		name string
		slot time.Time
		late bool
	}{{"before the outage", slotA, false}, {"during the outage", slotB, true}, {"after it", slotC, false}} {
		m := marks[c.slot.Unix()]
		if m == nil || m.Late != c.late {
			t.Errorf("slot %s (%s): %+v, want late=%v", c.slot.Format(time.TimeOnly), c.name, m, c.late)
		}
	}
	if len(marks) != 3 || v.View.Totals.Witness.LateSlots != 1 {
		t.Errorf("marks %v totals %+v", marks, v.View.Totals.Witness)
	}

	// A witness that refuses (here: a log it does not know) is a lasting
	// error in the status, not a crash of the queue.
	if _, err := c.Create(ctx, api.CreateRequest{Name: "other", ProfilePath: "/p.hcl", Profile: p}); err != nil {
		t.Fatal(err)
	}
	if _, err := addCapture(ctx, d, "other", tracking.Capture{ID: "other-1", Taken: time.Now(), Session: "s1"}, testJPEG(t, 9), nil); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		ow, err := c.Workspace(ctx, "other")
		if err == nil && ow.Witness != nil && ow.Witness.Witnesses[0].LastError != "" {
			if !errors.Is(err, nil) || !bytes.Contains([]byte(ow.Witness.Witnesses[0].LastError), []byte("does not know this log")) {
				t.Fatalf("unknown log: %+v", ow.Witness.Witnesses[0])
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no error for a log the witness does not know: %+v", ow.Witness)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestWitnessQueueBatchesAndFlushes: with a long interval, the first entry
// is submitted at once and the next ones wait (at most one submission per
// interval); stopping tracking and exporting submit at once, and the
// export carries the checkpoint just cosigned.
func TestWitnessQueueBatchesAndFlushes(t *testing.T) {
	ctx := context.Background()
	w := startLiveWitness(t)
	c, d := startDaemonWith(t, newFakeHV(), func(cfg *Config) { cfg.WitnessInterval = time.Hour })
	if _, err := importBytes(t, c, "test", qcow2Bytes(1<<30, false, 4096)); err != nil {
		t.Fatal(err)
	}
	client, _ := age.GenerateX25519Identity()
	p := testProfile(t, `image = "test"
client {
  name      = "ACME"
  recipient = "`+client.Recipient().String()+`"
}
witness "client" {
  url = "http://`+w.addr+`"
  key = "`+w.vkey+`"
}`)
	if _, err := c.Create(ctx, api.CreateRequest{Name: "acme", ProfilePath: "/p.hcl", Profile: p}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Init(ctx, api.InitRequest{}); err != nil {
		t.Fatal(err)
	}
	st, _ := c.WitnessState(ctx, "acme")
	if err := w.srv.AddLog(ctx, st.Origin, st.LogKey); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Start(ctx, "acme", api.StartRequest{}); err != nil {
		t.Fatal(err)
	}
	cosigned := func() (int64, int64) {
		st, err := c.WitnessState(ctx, "acme")
		if err != nil || len(st.Witnesses) != 1 {
			t.Fatalf("witness state: %+v %v", st, err)
		}
		return st.Witnesses[0].CosignedSize, st.Size
	}
	waitCosigned := func(what string) {
		deadline := time.Now().Add(5 * time.Second)
		for {
			if n, size := cosigned(); n == size && n > 0 {
				return
			}
			if time.Now().After(deadline) {
				n, size := cosigned()
				t.Fatalf("%s: cosigned %d of %d", what, n, size)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	if _, err := c.Track(ctx, "acme", api.TrackRequest{On: true, Memo: "m"}); err != nil {
		t.Fatal(err)
	}
	waitCosigned("the first entry")
	if _, err := addCapture(ctx, d, "acme", tracking.Capture{ID: "c1", Taken: time.Now(), Session: "s1"}, testJPEG(t, 1), nil); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	if n, size := cosigned(); n == size {
		t.Fatalf("a second submission within the interval: cosigned %d of %d", n, size)
	}
	if _, err := c.Track(ctx, "acme", api.TrackRequest{On: false}); err != nil {
		t.Fatal(err)
	}
	waitCosigned("after track stop")
	if _, err := addCapture(ctx, d, "acme", tracking.Capture{ID: "c2", Taken: time.Now(), Session: "s1"}, testJPEG(t, 2), nil); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := c.Export(ctx, "acme", api.ExportRequest{From: time.Now().Add(-time.Hour), To: time.Now().Add(time.Hour)}, &buf); err != nil {
		t.Fatal(err)
	}
	if n, size := cosigned(); n != size {
		t.Fatalf("the export did not submit first: cosigned %d of %d", n, size)
	}
	if _, err := diary.Verify(&buf, []age.Identity{client}, diary.VerifyOptions{Witnesses: []string{w.vkey}}); err != nil {
		t.Fatalf("the export's checkpoint is not the cosigned one: %v", err)
	}
}
