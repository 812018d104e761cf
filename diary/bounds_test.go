package diary

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/workspace-sandbox/workspace/tracking"
)

// A guest (or a forged export) that stores spans ending in year 9999 or
// near the end of time costs a view or a verify only the slots of the
// asked range: 10,000 such records stored in one call, and a day view and
// a verify still answer (a step per slot of those spans would take hours,
// and overflow near the end of time: the test would never end).
func TestAggregateCostsTheRangeNotTheStoredSpans(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.workSlot("acme", day0, 1)
	far := time.Date(9999, 12, 30, 0, 0, 0, 0, time.UTC)
	recs := make([]tracking.Record, 0, 10000)
	for i := range 10000 {
		typ, end := tracking.RecordIdle, far
		if i%2 == 1 {
			typ, end = tracking.RecordGap, time.Unix(math.MaxInt64-62135596800-1, 0) // the latest time.Time holds
		}
		recs = append(recs, tracking.Record{ID: fmt.Sprintf("span-%d", i), Type: typ, Start: day0.Add(time.Minute), End: end, Reason: "r"})
	}
	if _, err := f.s.AddRecords(ctx, "acme", recs); err != nil {
		t.Fatal(err)
	}
	v, err := f.s.View(ctx, "acme", day0, day0.Add(time.Hour), time.UTC)
	if err != nil {
		t.Fatal(err)
	}
	if v.Totals.Slots != 6 || v.Totals.Shots != 1 {
		t.Fatalf("view: %d slots, %d shots; want the hour's 6 and 1", v.Totals.Slots, v.Totals.Shots)
	}
	// A cancelled context stops it.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := f.s.View(cctx, "acme", day0, day0.Add(24*time.Hour), time.UTC); !errors.Is(err, context.Canceled) {
		t.Fatalf("view with a cancelled context: %v", err)
	}
	// A range beyond year 9999 is refused, not stepped through.
	if _, err := Aggregate(ctx, nil, ViewParams{From: day0, To: time.Unix(math.MaxInt64-1, 0)}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("a range to the end of time: %v", err)
	}
	exp := f.export("acme", day0, day0.Add(time.Hour))
	if _, err := f.verify(exp); err != nil {
		t.Fatalf("verify of an export holding the long spans: %v", err)
	}
}

// The client's verify refuses an export whose (signed) range ends near
// the end of time, and entries whose times lie outside the export's
// range, even when the freelancer's key signed the statement.
func TestVerifyRefusesTimesOutsideTheRange(t *testing.T) {
	f := newFixture(t)
	f.workSlot("acme", day0, 1)
	exp := f.export("acme", day0, day0.Add(time.Hour))
	for name, c := range map[string]struct {
		mutate func(d *exportData)
		want   string
	}{
		"end near max time":        {func(d *exportData) { d.m.To = time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC) }, "outside years 1970-9999"},
		"entries before the range": {func(d *exportData) { d.m.From = day0.Add(30 * time.Minute) }, "outside the export's range"},
	} {
		forged := f.reseal(exp, func(d *exportData) {
			c.mutate(d)
			var err error
			if d.m.Statement, err = signStatement(&d.m, f.keys.Signer()); err != nil {
				t.Fatal(err)
			}
		})
		if _, err := f.verify(forged); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v", name, err)
		}
	}
}
