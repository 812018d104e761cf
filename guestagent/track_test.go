package guestagent

import (
	"bytes"
	"image"
	"image/color"
	"image/jpeg"
	"math/rand"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/workspace-sandbox/workspace/channel"
	"github.com/workspace-sandbox/workspace/tracking"
)

// clock is a settable clock for the agent.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// offlineAgent is an agent that is not running: the test drives its
// tracking steps by hand with its own clock, and reads its spool.
func offlineAgent(t *testing.T, capt capturer) (*Agent, *clock) {
	t.Helper()
	clk := &clock{t: time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)}
	if capt == nil {
		capt = &fakeCapturer{}
	}
	a, err := New(Config{StateDir: t.TempDir(), Now: clk.Now, capturer: capt, input: &fakeInput{}})
	if err != nil {
		t.Fatal(err)
	}
	return a, clk
}

// spooled returns what the spool holds: records and captures (with their
// messages), oldest first.
func spooled(t *testing.T, a *Agent) (recs []tracking.Record, caps []tracking.Capture, msgs []*channel.Message) {
	t.Helper()
	ids, err := a.spool.List()
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		m, err := a.spool.Read(id)
		if err != nil {
			t.Fatal(err)
		}
		switch m.Type {
		case channel.TypeRecords:
			var r channel.Records
			if err := m.Decode(&r); err != nil {
				t.Fatal(err)
			}
			recs = append(recs, r.Records...)
		case channel.TypeCapture:
			var c tracking.Capture
			if err := m.Decode(&c); err != nil {
				t.Fatal(err)
			}
			caps = append(caps, c)
			msgs = append(msgs, m)
		}
	}
	return recs, caps, msgs
}

// A minute's record counts each kind of input and the seconds with any.
func TestActivityMinuteCountsKindsAndActiveSeconds(t *testing.T) {
	a, clk := offlineAgent(t, nil)
	minute := clk.Now()
	at := func(d time.Duration, kinds ...InputKind) {
		clk.Set(minute.Add(d))
		for _, k := range kinds {
			a.onInput(k)
		}
	}
	at(100*time.Millisecond, InputKey, InputKey, InputMove) // second 0
	at(900*time.Millisecond, InputKey)                      // still second 0
	at(2*time.Second, InputClick, InputMove, InputMove)     // second 2
	at(30*time.Second, InputScroll)                         // second 30
	at(59*time.Second, InputKey)                            // second 59
	a.closeMinute(minute, true)

	recs, _, _ := spooled(t, a)
	if len(recs) != 1 || recs[0].Type != "activity" || !recs[0].Minute.Equal(minute) || recs[0].Activity == nil {
		t.Fatalf("records %+v", recs)
	}
	want := tracking.Activity{Keys: 4, Clicks: 1, Moves: 3, Scrolls: 1, Active: 4}
	if *recs[0].Activity != want {
		t.Fatalf("activity %+v, want %+v", *recs[0].Activity, want)
	}
	// The next minute starts from zero; a minute closed without keeping
	// (tracking off) writes nothing.
	clk.Set(minute.Add(time.Minute + time.Second))
	a.onInput(InputKey)
	a.closeMinute(minute.Add(time.Minute), false)
	if recs, _, _ := spooled(t, a); len(recs) != 1 {
		t.Fatalf("a dropped minute was spooled: %+v", recs)
	}
	a.closeMinute(minute.Add(2*time.Minute), true)
	recs, _, _ = spooled(t, a)
	if len(recs) != 2 || *recs[1].Activity != (tracking.Activity{}) {
		t.Fatalf("the minute after a reset: %+v", recs)
	}
}

// No input for idle_timeout starts an idle period at the last input; the
// next input ends it, and it is spooled as one record.
func TestIdlePeriodFromLastInputToNextInput(t *testing.T) {
	a, clk := offlineAgent(t, nil)
	t0 := clk.Now()
	timeout := 5 * time.Minute
	clk.Set(t0.Add(10 * time.Second))
	a.onInput(InputMove)
	lastInput := clk.Now()

	a.checkIdle(t0.Add(4*time.Minute), timeout) // not yet
	a.checkIdle(lastInput.Add(timeout), timeout)
	if !isIdle(a) {
		t.Fatal("not idle after the timeout")
	}
	if recs, _, _ := spooled(t, a); len(recs) != 0 {
		t.Fatalf("an idle period spooled before it ended: %+v", recs)
	}
	back := lastInput.Add(17 * time.Minute)
	clk.Set(back)
	a.onInput(InputKey)
	a.checkIdle(back, timeout)
	recs, _, _ := spooled(t, a)
	if len(recs) != 1 || recs[0].Type != "idle" || !recs[0].Start.Equal(lastInput) || !recs[0].End.Equal(back) {
		t.Fatalf("idle records %+v, want one from %s to %s", recs, lastInput, back)
	}
	if isIdle(a) {
		t.Fatal("still idle after input")
	}
	// Tracking stopping during an idle period closes it at that moment.
	a.checkIdle(back.Add(timeout), timeout)
	stop := back.Add(timeout + time.Minute)
	clk.Set(stop) // spool ids are by time: the records come back in order
	a.closeIdle(stop)
	recs, _, _ = spooled(t, a)
	if len(recs) != 2 || !recs[1].Start.Equal(back) || !recs[1].End.Equal(stop) {
		t.Fatalf("idle closed at stop: %+v", recs)
	}
}

func isIdle(a *Agent) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.idle
}

// busyCapturer shows a fine checkerboard: detail a blur must destroy.
type busyCapturer struct{}

func (busyCapturer) Name() string { return "busy" }
func (busyCapturer) Capture() ([]Shot, error) {
	img := image.NewRGBA(image.Rect(0, 0, 320, 200))
	for y := 0; y < 200; y++ {
		for x := 0; x < 320; x++ {
			v := uint8(0)
			if (x/2+y/2)%2 == 0 {
				v = 255
			}
			img.SetRGBA(x, y, color.RGBA{v, v, v, 255})
		}
	}
	return []Shot{{Display: 0, Bounds: img.Bounds(), Image: img}}, nil
}

// edgeEnergy is the mean absolute difference of horizontal neighbours.
func edgeEnergy(t *testing.T, jpg []byte) float64 {
	t.Helper()
	img, err := jpeg.Decode(bytes.NewReader(jpg))
	if err != nil {
		t.Fatal(err)
	}
	b := img.Bounds()
	var sum, n float64
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X + 1; x < b.Max.X; x++ {
			p, _, _, _ := img.At(x, y).RGBA()
			q, _, _, _ := img.At(x-1, y).RGBA()
			d := float64(p>>8) - float64(q>>8)
			if d < 0 {
				d = -d
			}
			sum += d
			n++
		}
	}
	return sum / n
}

// With blur = true the shot is blurred before it is spooled (it never
// leaves the guest sharp) and says so; without, it keeps its detail.
func TestBlurPolicyBlursInTheGuest(t *testing.T) {
	a, clk := offlineAgent(t, busyCapturer{})
	pol := tracking.Policy{SlotSeconds: 600, ScreenshotsPerSlot: 1, IdleSeconds: 300, JPEGQuality: 90, SpoolLimit: 8 << 20}
	a.takeShots(clk.Now(), "s1", pol, nil)
	pol.Blur = true
	a.takeShots(clk.Now().Add(time.Second), "s1", pol, nil)
	_, caps, msgs := spooled(t, a)
	if len(caps) != 2 {
		t.Fatalf("%d captures spooled", len(caps))
	}
	sharp, blurred := edgeEnergy(t, msgs[0].Blob(0)), edgeEnergy(t, msgs[1].Blob(0))
	if caps[0].Blurred || !caps[1].Blurred {
		t.Fatalf("blurred flags %v, %v", caps[0].Blurred, caps[1].Blurred)
	}
	if sharp < 50 || blurred > 5 {
		t.Fatalf("edge energy: sharp shot %.1f, blurred shot %.1f", sharp, blurred)
	}
	if th := edgeEnergy(t, msgs[1].Blob(1)); th > 5 {
		t.Fatalf("the blurred shot's thumbnail has edges: %.1f", th)
	}
}

// A host that never acknowledges: the spool fills to its limit, then each
// dropped shot is a gap record, never a silent loss.
func TestFullSpoolDropsShotsWithGapRecords(t *testing.T) {
	a, clk := offlineAgent(t, busyCapturer{})
	pol := tracking.Policy{SlotSeconds: 600, ScreenshotsPerSlot: 1, IdleSeconds: 300, JPEGQuality: 90, SpoolLimit: 1 << 20}
	a.spool.SetLimit(pol.SpoolLimit)
	for i := range 200 {
		a.takeShots(clk.Now().Add(time.Duration(i)*time.Second), "s1", pol, nil)
	}
	recs, caps, _ := spooled(t, a)
	_, used := a.spool.Usage()
	var gaps int
	for _, r := range recs {
		if r.Type == "gap" && r.Reason == "spool full: screenshot of display 0 dropped" {
			gaps++
		}
	}
	if len(caps)+gaps != 200 || gaps == 0 || len(caps) == 0 {
		t.Fatalf("%d shots spooled and %d gap records for 200 moments", len(caps), gaps)
	}
	if used > pol.SpoolLimit+gapReserve {
		t.Fatalf("spool uses %d bytes, limit %d (+%d for gaps)", used, pol.SpoolLimit, gapReserve)
	}
	if st := a.Status(); st.Gaps != gaps {
		t.Fatalf("status counts %d gaps, the spool holds %d", st.Gaps, gaps)
	}
}

// The host's shoot request takes a retake now, of the retaken shot's
// display only, marked as its retake; only while tracking.
func TestShootTakesARetake(t *testing.T) {
	a, _ := offlineAgent(t, &fakeCapturer{fill: color.RGBA{10, 200, 10, 255}})
	ctx := t.Context()
	shoot := func(sh channel.Shoot) (*channel.Message, error) {
		m, _ := channel.NewMessage(channel.TypeShoot, sh)
		return a.handle(ctx, m)
	}
	if _, err := shoot(channel.Shoot{RetakeOf: "old", Display: 1}); err == nil || !strings.Contains(err.Error(), "not tracking") {
		t.Fatalf("a retake while not tracking: %v", err)
	}
	pol := testPolicy()
	a.mu.Lock()
	a.st.Policy, a.st.Track = &pol, tracking.State{On: true, Session: "s1"}
	a.mu.Unlock()
	ans, err := shoot(channel.Shoot{RetakeOf: "old", Display: 1})
	if err != nil {
		t.Fatal(err)
	}
	var res channel.Shot
	if err := ans.Decode(&res); err != nil || len(res.IDs) != 1 {
		t.Fatalf("answer %+v %v", res, err)
	}
	_, caps, _ := spooled(t, a)
	if len(caps) != 1 || caps[0].ID != res.IDs[0] || caps[0].RetakeOf != "old" || caps[0].Display != 1 || caps[0].Session != "s1" {
		t.Fatalf("spooled %+v", caps)
	}
	if _, err := shoot(channel.Shoot{RetakeOf: "old", Display: 5}); err == nil || !strings.Contains(err.Error(), "no display 5") {
		t.Fatalf("a retake of a display that is not there: %v", err)
	}
}

// A slot's moments fall in what is left of it, never in its last seconds
// (the loop ticks once a second: a moment reached after the slot's end
// would be taken in the next slot), and in order.
func TestSlotMomentsStayInsideTheSlot(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	s := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		now  time.Time
		slot time.Duration
		n    int
	}{
		{s, 30 * time.Second, 3},
		{s.Add(20 * time.Second), 30 * time.Second, 2},
		{s, 10 * time.Second, 10},
		{s.Add(9 * time.Minute), 10 * time.Minute, 1},
	} {
		for range 2000 {
			ms := slotMoments(s, tc.now, tc.slot, tc.n, rng)
			if len(ms) != tc.n {
				t.Fatalf("%d moments, want %d", len(ms), tc.n)
			}
			for i, m := range ms {
				if m.Before(tc.now) || !m.Before(s.Add(tc.slot-momentMargin)) || (i > 0 && m.Before(ms[i-1])) {
					t.Fatalf("moment %s (slot %s+%s, now %s): %v", m, s, tc.slot, tc.now, ms)
				}
			}
		}
	}
	// Starting within the margin of the slot's end: no moment this slot.
	if ms := slotMoments(s, s.Add(29*time.Second), 30*time.Second, 1, rng); len(ms) != 0 {
		t.Fatalf("moments in the last seconds: %v", ms)
	}
}
