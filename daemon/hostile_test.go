package daemon

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/workspace-sandbox/workspace/api"
	"github.com/workspace-sandbox/workspace/channel"
	"github.com/workspace-sandbox/workspace/internal/hostileagent"
	"github.com/workspace-sandbox/workspace/internal/thumbnail"
	"github.com/workspace-sandbox/workspace/tracking"
)

// The attacks of a hostile guest on the daemon, each over the channel as
// a compromised agent would make them (docs/threat-model.md).

// hostileWorkspace starts a tracking workspace "evil" whose fake guest is
// connected, with refusal delays short enough for a test.
func hostileWorkspace(t *testing.T) (*api.Client, *Daemon, *fakeGuest, api.TrackStatus, *syncBuffer) {
	t.Helper()
	ctx := context.Background()
	hv, c, d, logs := agentDaemon(t)
	d.server.agents.guard.firstDelay, d.server.agents.guard.mostDelay = time.Millisecond, 8*time.Millisecond
	g := agentWorkspace(t, hv, c, "evil")
	if _, err := g.connect(ctx); err != nil {
		t.Fatal(err)
	}
	ts, err := c.Track(ctx, "evil", api.TrackRequest{On: true})
	if err != nil {
		t.Fatal(err)
	}
	return c, d, g, ts, logs
}

func captureMsg(t testing.TB, id string, taken time.Time, orig, thumb []byte, w, h int) *channel.Message {
	t.Helper()
	m, err := channel.NewMessage(channel.TypeCapture, tracking.Capture{ID: id, Taken: taken, Width: w, Height: h}, orig, thumb)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// withSize makes a decode bomb of a real JPEG: its frame declares w×h.
func withSize(t testing.TB, b []byte, w, h int) []byte {
	t.Helper()
	out := append([]byte{}, b...)
	i := bytes.Index(out, []byte{0xff, 0xc0})
	if i < 0 {
		t.Fatal("no SOF0 marker")
	}
	out[i+5], out[i+6], out[i+7], out[i+8] = byte(h>>8), byte(h), byte(w>>8), byte(w)
	return out
}

// shotsOf counts the shots of ws in the diary around now.
func shotsOf(t *testing.T, c *api.Client, ws string) int {
	t.Helper()
	v, err := c.Diary(context.Background(), ws, time.Now().Add(-time.Hour), time.Now().Add(time.Hour), "UTC")
	if err != nil {
		t.Fatal(err)
	}
	return v.Totals.Shots
}

// Decode bombs (a small JPEG that declares a huge picture, 8 at a time as
// a session may send them) are refused without the heap growing past 256
// MiB, and nothing of them is stored.
func TestGuestDecodeBombsAreRefusedInBoundedMemory(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, d, g, _, logs := hostileWorkspace(t)
	good := testJPEG(t, 1)
	thumb := testThumb(t, good)
	bombs := []struct {
		w, h int
	}{{16384, 16384}, {8192, 8192}, {8192, 4000}, {4000, 4000}, {3000, 3000}}
	runtime.GC() // what earlier tests left is not this test's
	var peak atomic.Uint64
	stop := make(chan struct{})
	var sampler sync.WaitGroup
	sampler.Add(1)
	go func() {
		defer sampler.Done()
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapAlloc > peak.Load() {
				peak.Store(ms.HeapAlloc)
			}
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	now := time.Now()
	for round := range 3 {
		for i, b := range bombs {
			for k := range 2 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					id := fmt.Sprintf("bomb-%d-%d-%d", round, i, k)
					// With a thumbnail of the right size, so the bomb reaches the decode.
					tw, th := thumbnail.Size(b.w, b.h)
					errs <- g.send(ctx, captureMsg(t, id, now, withSize(t, good, b.w, b.h), withSize(t, thumb, tw, th), b.w, b.h))
				}()
			}
		}
		wg.Wait()
	}
	close(stop)
	sampler.Wait()
	close(errs)
	reasons := map[string]bool{}
	for err := range errs {
		if !errors.Is(err, channel.ErrRefused) {
			t.Fatalf("a decode bomb was not refused: %v", err)
		}
		_, r, _ := strings.Cut(err.Error(), ": ")
		reasons[r] = true
	}
	t.Logf("refused: %v", reasons)
	if p := peak.Load(); p > 256<<20 {
		t.Fatalf("the heap reached %d MiB while refusing decode bombs", p>>20)
	}
	t.Logf("heap peak %d MiB", peak.Load()>>20)
	if n := shotsOf(t, c, "evil"); n != 0 {
		t.Fatalf("%d shots stored", n)
	}
	st, done := d.server.diary.use()
	files, _ := os.ReadDir(filepath.Join(st.Dir(), "blobs", "evil"))
	done()
	if len(files) != 0 {
		t.Fatalf("refused captures left files behind: %v", files)
	}
	if !hasLogLine(logs.String(), "[WARN]", "workspace=evil", "refused what the guest sent", "kind=image") {
		t.Fatalf("no warning naming the workspace:\n%s", logs.String())
	}
	w, err := c.Workspace(ctx, "evil")
	if err != nil || w.Agent == nil || w.Agent.Refused != int64(3*2*len(bombs)) || w.Agent.LastRefusal == "" {
		t.Fatalf("agent status: %+v %v", w.Agent, err)
	}
}

// Junk and trailing bytes, captures without a thumbnail or with one of the
// wrong size are refused; past screenshots_per_slot × displays + one retake
// a slot takes no more; the refusal delay doubles and is noted once per
// slot as a gap.
func TestGuestJunkAndSlotQuota(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, d, g, _, _ := hostileWorkspace(t)
	good := testJPEG(t, 1)
	thumb := testThumb(t, good)
	now := time.Now()
	for name, m := range map[string]*channel.Message{
		"junk":           captureMsg(t, "junk", now, []byte("MZ\x90\x00 not a picture"), thumb, 160, 100),
		"trailing bytes": captureMsg(t, "trail", now, append(append([]byte{}, good...), "payload"...), thumb, 160, 100),
		"no thumbnail":   captureMsg(t, "nothumb", now, good, nil, 160, 100),
		"wrong thumb":    captureMsg(t, "badthumb", now, good, withSize(t, thumb, 150, 100), 160, 100),
		"wrong geometry": captureMsg(t, "geom", now, good, thumb, 1600, 1000),
		"host id":        captureMsg(t, tracking.HostID("x", "1"), now, good, thumb, 160, 100),
		"future":         captureMsg(t, "future", now.Add(time.Hour), good, thumb, 160, 100),
		"past":           captureMsg(t, "past", now.Add(-24*time.Hour), good, thumb, 160, 100),
	} {
		if err := g.send(ctx, m); !errors.Is(err, channel.ErrRefused) {
			t.Errorf("%s: %v", name, err)
		}
	}
	gd := d.server.agents.guard.of("evil")
	gd.mu.Lock()
	delay := gd.delay
	gd.mu.Unlock()
	if delay != 8*time.Millisecond {
		t.Errorf("the refusal delay is %v after 8 refusals, want the most (8ms)", delay)
	}
	// The profile takes 2 shots a slot on its one display, and a retake.
	for i := range 3 {
		if err := g.send(ctx, captureMsg(t, fmt.Sprintf("ok-%d", i), now, good, thumb, 160, 100)); err != nil {
			t.Fatalf("capture %d: %v", i, err)
		}
	}
	err := g.send(ctx, captureMsg(t, "one-too-many", now, good, thumb, 160, 100))
	if !errors.Is(err, channel.ErrRefused) || !strings.Contains(err.Error(), "already holds 3 captures") {
		t.Fatalf("the 4th capture of a slot: %v", err)
	}
	// A replay of a stored capture is a duplicate, not a refusal.
	if err := g.send(ctx, captureMsg(t, "ok-0", now, good, thumb, 160, 100)); err != nil {
		t.Fatalf("replay: %v", err)
	}
	if n := shotsOf(t, c, "evil"); n != 3 {
		t.Fatalf("%d shots stored, want 3", n)
	}
	v, err := c.Diary(ctx, "evil", now.Add(-time.Hour), now.Add(time.Hour), "UTC")
	if err != nil {
		t.Fatal(err)
	}
	var gaps []string
	for _, day := range v.Days {
		for _, sl := range day.Slots {
			gaps = append(gaps, sl.Gaps...)
		}
	}
	joined := strings.Join(gaps, "\n")
	if !strings.Contains(joined, "captures refused: ") || !strings.Contains(joined, "refused what the guest sent: ") {
		t.Fatalf("no gap says what was refused: %q", gaps)
	}
	if len(gaps) > 8 {
		t.Fatalf("a gap per refusal rather than per kind and slot: %q", gaps)
	}
}

// Records: a call of spans ending in year 9999 is refused (2,000: as many as
// a frame holds; 10,000 do not fit one, which closes the session), so are
// times before the session, records in the host's namespace, and
// all while not tracking. A guest gap named like the host's session stop
// cannot suppress it: the host's stop is logged.
func TestGuestRecordsBoundedAndHostRecordsSeparate(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, d, g, ts, _ := hostileWorkspace(t)
	now := time.Now()
	send := func(recs ...tracking.Record) error {
		m, err := channel.NewMessage(channel.TypeRecords, channel.Records{Records: recs})
		if err != nil {
			t.Fatal(err)
		}
		return g.send(ctx, m)
	}
	far := time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)
	many := make([]tracking.Record, 2000)
	for i := range many {
		many[i] = tracking.Record{ID: fmt.Sprintf("idle-%d", i), Type: tracking.RecordIdle, Start: now, End: far}
	}
	if err := send(many...); !errors.Is(err, channel.ErrRefused) {
		t.Fatalf("2,000 spans to year 9999: %v", err)
	}
	for name, r := range map[string]tracking.Record{
		"before the session": {ID: "early", Type: tracking.RecordGap, Start: now.Add(-time.Hour), End: now},
		"future minute":      {ID: "fut", Type: tracking.RecordActivity, Minute: now.Add(time.Hour).Truncate(time.Minute), Activity: &tracking.Activity{Keys: 1}},
		"host stop id":       {ID: tracking.HostID("stop", ts.Session), Type: tracking.RecordGap, Start: now, End: now.Add(time.Second)},
	} {
		if err := send(r); !errors.Is(err, channel.ErrRefused) {
			t.Errorf("%s: %v", name, err)
		}
	}
	// What the old namespace let a guest pre-empt is now just its own id.
	if err := send(tracking.Record{ID: "stop-" + ts.Session, Type: tracking.RecordGap, Start: now, End: now.Add(time.Second), Reason: "pre-empt"}); err != nil {
		t.Fatal(err)
	}
	if err := send(tracking.Record{ID: "ok-min", Type: tracking.RecordActivity, Minute: now.Truncate(time.Minute), Activity: &tracking.Activity{Keys: 3, Active: 2}}); err != nil {
		t.Fatalf("an honest activity minute: %v", err)
	}
	if _, err := c.Track(ctx, "evil", api.TrackRequest{On: false}); err != nil {
		t.Fatal(err)
	}
	st, done := d.server.diary.use()
	logged, err := st.HasRecord(ctx, "evil", tracking.HostID("stop", ts.Session))
	done()
	if err != nil || !logged {
		t.Fatalf("the host's session stop is not logged: %v %v", logged, err)
	}
	// Late delivery of the closed session still works; a new span after
	// it does not.
	if err := send(tracking.Record{ID: "late", Type: tracking.RecordIdle, Start: now, End: now.Add(time.Second)}); err != nil {
		t.Fatalf("late record of the closed session: %v", err)
	}
	if err := send(tracking.Record{ID: "after", Type: tracking.RecordIdle, Start: time.Now().Add(time.Hour), End: time.Now().Add(2 * time.Hour)}); !errors.Is(err, channel.ErrRefused) {
		t.Fatalf("a span after the session: %v", err)
	}
}

// Past the daily diary budget or below the host's free-space floor, the
// guest's captures are refused, and one gap (not one per refusal) says so.
func TestGuestDiaryLimitAndDiskFloor(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, d, g, _, _ := hostileWorkspace(t)
	good := testJPEG(t, 1)
	thumb := testThumb(t, good)
	now := time.Now()
	gd := d.server.agents.guard.of("evil")
	if err := gd.overBudget(now, 0, func(time.Time) (int64, error) { return 0, nil }); err != nil {
		t.Fatal(err)
	}
	gd.mu.Lock()
	gd.dayBytes = gd.diaryLimit - 100
	gd.mu.Unlock()
	for i := range 3 {
		err := g.send(ctx, captureMsg(t, fmt.Sprintf("over-%d", i), now, good, thumb, 160, 100))
		if !errors.Is(err, channel.ErrRefused) || !strings.Contains(err.Error(), "diary_limit is 1GiB a day") {
			t.Fatalf("over the diary limit: %v", err)
		}
	}
	gd.mu.Lock()
	gd.dayBytes = 0
	gd.mu.Unlock()
	guard := d.server.agents.guard
	guard.free = func(string) (uint64, error) { return 100 << 20, nil }
	for i := range 3 {
		err := g.send(ctx, captureMsg(t, fmt.Sprintf("full-%d", i), now, good, thumb, 160, 100))
		if !errors.Is(err, channel.ErrRefused) || !strings.Contains(err.Error(), "below the daemon's floor of 1GiB") {
			t.Fatalf("disk nearly full: %v", err)
		}
	}
	guard.free = freeBytes
	if err := g.send(ctx, captureMsg(t, "fine", now, good, thumb, 160, 100)); err != nil {
		t.Fatal(err)
	}
	v, err := c.Diary(ctx, "evil", now.Add(-time.Hour), now.Add(time.Hour), "UTC")
	if err != nil {
		t.Fatal(err)
	}
	limit, disk := 0, 0
	for _, day := range v.Days {
		for _, sl := range day.Slots {
			for _, gp := range sl.Gaps {
				if strings.HasPrefix(gp, "over the diary limit") {
					limit++
				}
				if strings.HasPrefix(gp, "host disk nearly full") {
					disk++
				}
			}
		}
	}
	if limit != 1 || disk != 1 || v.Totals.Shots != 1 {
		t.Fatalf("%d diary-limit gaps, %d disk gaps, %d shots; want 1, 1, 1", limit, disk, v.Totals.Shots)
	}
}

// The hostile agent of the end-to-end test, against the daemon in process
// for 5 seconds: everything it sends is refused but what the rules allow
// (at most the slot's quota of captures), the daemon keeps answering, and
// the workspace's diary says what was refused.
func TestHostileAgentFlood(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	hv, c, d, logs := agentDaemon(t)
	d.server.agents.guard.firstDelay, d.server.agents.guard.mostDelay = time.Millisecond, 50*time.Millisecond
	g := agentWorkspace(t, hv, c, "evil")
	if _, err := c.Track(ctx, "evil", api.TrackRequest{On: true}); err != nil {
		t.Fatal(err)
	}
	conn, err := g.ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var out syncBuffer
	fl := &hostileagent.Flood{Workers: 8, For: 5 * time.Second, Log: &out}
	fctx, fcancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- fl.Run(fctx, conn) }()
	waitUntil(t, "the flood's end", func() bool { return strings.Contains(out.String(), "WORKSPACE-HOSTILE-DONE") })
	fcancel()
	<-done
	n := fl.Counts()
	t.Logf("hostile agent: %s", n)
	if n.Refused.Load() == 0 || n.Stored.Load() > 3+int64(n.Sent.Load()/9+1) {
		t.Fatalf("hostile agent: %s", n)
	}
	v, err := c.Diary(ctx, "evil", time.Now().Add(-time.Hour), time.Now().Add(time.Hour), "UTC")
	if err != nil {
		t.Fatal(err)
	}
	gaps := 0
	for _, day := range v.Days {
		for _, sl := range day.Slots {
			if len(sl.Shots) > 3 {
				t.Errorf("slot %s holds %d shots", sl.Start, len(sl.Shots))
			}
			gaps += len(sl.Gaps)
		}
	}
	if gaps == 0 {
		t.Fatal("no gap says what was refused")
	}
	if !hasLogLine(logs.String(), "workspace=evil", "refused what the guest sent") || strings.Contains(logs.String(), "\x1b[31m") {
		t.Fatalf("log:\n%s", logs.String())
	}
}

// Records inside the session but past a slot's share are refused: a guest
// cannot make a view read thousands of spans in one slot.
func TestGuestRecordsPerSlotQuota(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, _, g, _, _ := hostileWorkspace(t)
	now := time.Now()
	send := func(recs ...tracking.Record) error {
		m, err := channel.NewMessage(channel.TypeRecords, channel.Records{Records: recs})
		if err != nil {
			t.Fatal(err)
		}
		return g.send(ctx, m)
	}
	// The profile's 5-minute slots take 5+16 spans.
	var spans []tracking.Record
	for i := range 40 {
		spans = append(spans, tracking.Record{ID: fmt.Sprintf("g%d", i), Type: tracking.RecordGap, Start: now, End: now.Add(time.Second), Reason: "x"})
	}
	if err := send(spans...); !errors.Is(err, channel.ErrRefused) || !strings.Contains(err.Error(), "a slot takes at most 21") {
		t.Fatalf("40 gaps in a slot: %v", err)
	}
	if err := send(spans[:5]...); err != nil {
		t.Fatalf("5 gaps: %v", err)
	}
	if err := send(spans[:5]...); err != nil {
		t.Fatalf("their replay: %v", err)
	}
}
