package diary

import (
	"context"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/workspace-sandbox/workspace/tracking"
)

func TestNextShotState(t *testing.T) {
	const ok, cov, del, pru = tracking.ShotOK, tracking.ShotCovered, tracking.ShotDeleted, tracking.ShotPruned
	for _, c := range []struct {
		cur, typ, want string
	}{
		{"", TypeCapture, ok},
		{cov, TypeCapture, cov}, // a cover logged first stays
		{ok, TypeCover, cov},
		{cov, TypeCover, cov},
		{del, TypeCover, del},
		{pru, TypeCover, pru},
		{ok, TypeDelete, del},
		{cov, TypeDelete, del},
		{pru, TypeDelete, del},
		{ok, TypePrune, pru},
		{cov, TypePrune, pru},
		{del, TypePrune, del}, // a deleted shot stays deleted (it unbills)
		{ok, TypeActivity, ok},
	} {
		if got := nextShotState(c.cur, c.typ); got != c.want {
			t.Errorf("%q after %s = %q, want %q", c.cur, c.typ, got, c.want)
		}
	}
}

func TestRetakenShots(t *testing.T) {
	const slot = 600
	ms := func(s int64) int64 { return s * 1000 }
	for _, c := range []struct {
		name     string
		captures []CaptureBody
		state    map[string]string
		want     map[string]bool
	}{
		{"live retake in the same slot", []CaptureBody{{ID: "a", Taken: ms(10)}, {ID: "b", Taken: ms(20), RetakeOf: "a"}},
			map[string]string{"a": tracking.ShotDeleted, "b": tracking.ShotOK}, map[string]bool{"a": true}},
		{"covered retake counts", []CaptureBody{{ID: "a", Taken: ms(10)}, {ID: "b", Taken: ms(20), RetakeOf: "a"}},
			map[string]string{"a": tracking.ShotDeleted, "b": tracking.ShotCovered}, map[string]bool{"a": true}},
		{"deleted retake does not", []CaptureBody{{ID: "a", Taken: ms(10)}, {ID: "b", Taken: ms(20), RetakeOf: "a"}},
			map[string]string{"a": tracking.ShotDeleted, "b": tracking.ShotDeleted}, map[string]bool{}},
		{"pruned retake does not", []CaptureBody{{ID: "a", Taken: ms(10)}, {ID: "b", Taken: ms(20), RetakeOf: "a"}},
			map[string]string{"a": tracking.ShotDeleted, "b": tracking.ShotPruned}, map[string]bool{}},
		{"retake in the next slot does not", []CaptureBody{{ID: "a", Taken: ms(10)}, {ID: "b", Taken: ms(slot + 1), RetakeOf: "a"}},
			map[string]string{"a": tracking.ShotDeleted, "b": tracking.ShotOK}, map[string]bool{}},
		{"retake of a shot not in the entries", []CaptureBody{{ID: "b", Taken: ms(20), RetakeOf: "a"}},
			map[string]string{"b": tracking.ShotOK}, map[string]bool{}},
	} {
		if got := retakenShots(c.captures, c.state, slot); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}

func TestShotEffect(t *testing.T) {
	for _, c := range []struct {
		state         string
		retaken       bool
		deletes, live bool
	}{
		{tracking.ShotOK, false, false, true},
		{tracking.ShotCovered, false, false, true},
		{tracking.ShotPruned, false, false, true}, // rule 6: pruned keeps the slot billed
		{tracking.ShotDeleted, false, true, false},
		{tracking.ShotDeleted, true, false, false}, // its retake stands in
	} {
		if d, l := shotEffect(c.state, c.retaken); d != c.deletes || l != c.live {
			t.Errorf("%s (retaken %v): deletes %v live %v, want %v %v", c.state, c.retaken, d, l, c.deletes, c.live)
		}
	}
}

func TestIsActive(t *testing.T) {
	for _, c := range []struct {
		a    tracking.Activity
		want bool
	}{
		{tracking.Activity{}, false},
		{tracking.Activity{Active: 1}, true},
		{tracking.Activity{Keys: 1}, true},
		{tracking.Activity{Clicks: 1}, true},
		{tracking.Activity{Moves: 1}, true},
		{tracking.Activity{Scrolls: 1}, true},
	} {
		if got := isActive(c.a); got != c.want {
			t.Errorf("%+v: %v, want %v", c.a, got, c.want)
		}
	}
}

func TestBillable(t *testing.T) {
	for _, c := range []struct {
		deleted, live, active bool
		want                  bool
		reason                string
	}{
		{false, true, true, true, ""},
		{true, true, true, false, "a screenshot was deleted"}, // rule 2 wins over everything
		{true, false, false, false, "a screenshot was deleted"},
		{false, false, true, false, "no screenshot"},
		{false, true, false, false, "no activity"},
		{false, false, false, false, "no screenshot"},
	} {
		if b, r := billable(c.deleted, c.live, c.active); b != c.want || r != c.reason {
			t.Errorf("deleted %v live %v active %v: %v %q, want %v %q", c.deleted, c.live, c.active, b, r, c.want, c.reason)
		}
	}
}

func TestActivityPercent(t *testing.T) {
	for _, c := range []struct{ active, seconds, want int }{
		{300, 600, 50},
		{0, 600, 0},
		{700, 600, 100}, // at most 100
		{599, 600, 99},  // rounded down
		{10, 0, 0},      // no slots
	} {
		if got := activityPercent(c.active, c.seconds); got != c.want {
			t.Errorf("activityPercent(%d, %d) = %d, want %d", c.active, c.seconds, got, c.want)
		}
	}
}

func TestAddSlotAndManual(t *testing.T) {
	for _, c := range []struct {
		name string
		slot tracking.Slot
		want tracking.DiaryTotals
	}{
		{"billable: its whole length", tracking.Slot{Billable: true, IdleSeconds: 30, Shots: []tracking.Shot{{State: tracking.ShotOK}, {State: tracking.ShotCovered}}},
			tracking.DiaryTotals{Slots: 1, TrackedSeconds: 600, BillableSlots: 1, BillableSeconds: 600, IdleSeconds: 30, Shots: 2, Covered: 1}},
		{"not billable: tracked only", tracking.Slot{Shots: []tracking.Shot{{State: tracking.ShotDeleted}, {State: tracking.ShotPruned}}},
			tracking.DiaryTotals{Slots: 1, TrackedSeconds: 600, Shots: 2, Deleted: 1}},
	} {
		var got tracking.DiaryTotals
		addSlot(&got, c.slot, 600)
		if got != c.want {
			t.Errorf("%s: %+v, want %+v", c.name, got, c.want)
		}
	}
	var tot tracking.DiaryTotals
	addManual(&tot, 3600)
	if tot != (tracking.DiaryTotals{ManualSeconds: 3600, BillableSeconds: 3600}) {
		t.Errorf("manual: %+v", tot)
	}
}

func TestManualSeconds(t *testing.T) {
	at := func(s int64) time.Time { return time.Unix(s, 0) }
	for _, c := range []struct {
		start, end, from, to int64
		want                 int
	}{
		{100, 200, 0, 1000, 100},
		{100, 200, 150, 1000, 50}, // clipped to the range
		{100, 200, 0, 120, 20},
	} {
		if got := manualSeconds(tracking.ManualEntry{Start: at(c.start), End: at(c.end)}, c.from, c.to); got != c.want {
			t.Errorf("%d-%d in %d-%d: %d, want %d", c.start, c.end, c.from, c.to, got, c.want)
		}
	}
}

func TestOverlapAndGapSlots(t *testing.T) {
	for _, c := range []struct {
		sp          SpanBody
		start, want int64
	}{
		{SpanBody{Start: 100, End: 200}, 0, 100},
		{SpanBody{Start: 500, End: 700}, 0, 100},
		{SpanBody{Start: 500, End: 700}, 600, 100},
	} {
		if got := overlap(c.sp, c.start, 600); int64(got) != c.want {
			t.Errorf("overlap %+v at %d: %d, want %d", c.sp, c.start, got, c.want)
		}
	}
	for _, c := range []struct {
		sp   SpanBody
		want []int64
	}{
		{SpanBody{Start: 10, End: 20}, []int64{0}},
		{SpanBody{Start: 10, End: 10}, []int64{0}}, // no length: its start's slot
		{SpanBody{Start: 500, End: 1300}, []int64{0, 600, 1200}},
		{SpanBody{Start: 500, End: 1200}, []int64{0, 600}}, // the end is exclusive
	} {
		var got []int64
		for first, end := gapSlots(c.sp, 600); first < end; first += 600 {
			got = append(got, first)
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("gapSlots %+v: %v, want %v", c.sp, got, c.want)
		}
	}
}

func TestSlotMemo(t *testing.T) {
	for _, c := range []struct {
		name string
		s    session
		t    int64
		want string
	}{
		{"overlapping", session{start: 100, stop: 700, memo: "m"}, 600, "m"},
		{"running", session{start: 100, memo: "m"}, 6000, "m"},
		{"stopped before", session{start: 100, stop: 500, memo: "m"}, 600, ""},
		{"starts after", session{start: 1300, memo: "m"}, 600, ""},
		{"no memo", session{start: 100}, 0, ""},
	} {
		if got := slotMemo(map[string]*session{"s": &c.s}, c.t, 600); got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}

// placeGaps visits each slot once per reason; what it lists must be what
// stepping through every slot of every gap lists, in the same order.
func TestPlaceGapsMatchesEverySlotStepped(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	from := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	p := ViewParams{From: from, To: from.Add(24 * time.Hour), SlotSeconds: 600, Loc: time.UTC}
	for round := range 300 {
		var gaps []SpanBody
		for range 1 + rng.IntN(40) {
			start := from.Unix() - 3600 + rng.Int64N(26*3600)
			end := start + rng.Int64N(3*3600) - 60 // some without length, some ending first
			gaps = append(gaps, SpanBody{Start: start, End: end, Reason: string(rune('a' + rng.IntN(4)))})
		}
		g := newSlotGrid(context.Background(), p)
		g.placeGaps(gaps)
		want := map[int64][]string{}
		seen := map[int64]map[string]bool{}
		for _, sp := range gaps {
			for t0, end := gapSlots(sp, 600); t0 < end; t0 += 600 {
				if t0 < g.from || t0 >= g.to || seen[t0][sp.Reason] {
					continue
				}
				if seen[t0] == nil {
					seen[t0] = map[string]bool{}
				}
				seen[t0][sp.Reason] = true
				want[t0] = append(want[t0], sp.Reason)
			}
		}
		got := map[int64][]string{}
		for t0, s := range g.slots {
			got[t0] = s.slot.Gaps
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("round %d, gaps %+v:\ngot  %v\nwant %v", round, gaps, got, want)
		}
	}
}
