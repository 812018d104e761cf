package diary

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/workspace-sandbox/workspace/tracking"
)

func (f *fixture) retake(ws, orig string, at time.Time, display int) (string, error) {
	f.t.Helper()
	id := tracking.NewID(at) + "-r"
	_, err := f.s.AddCapture(ctx, ws, tracking.Capture{ID: id, Session: "s1", Taken: at, Display: display, RetakeOf: orig}, screenJPEG(f.t, 320, 200, 99), nil)
	return id, err
}

func slotOf(t *testing.T, v tracking.DiaryView, start time.Time) tracking.Slot {
	t.Helper()
	for _, d := range v.Days {
		for _, s := range d.Slots {
			if s.Start.Equal(start) {
				return s
			}
		}
	}
	t.Fatalf("no slot at %s", start)
	return tracking.Slot{}
}

// A retake in the shot's own slot lets the freelancer delete the bad shot
// and keep the slot's pay; both stay in the log, and the client's verify
// bills the same.
func TestRetakeKeepsTheSlotBilled(t *testing.T) {
	f := newFixture(t)
	bad := f.workSlot("acme", day0, 1)                       // 09:03:17 in the 09:00 slot
	other := f.workSlot("acme", day0.Add(10*time.Minute), 2) // 09:13:17

	f.clk.Set(day0.Add(5 * time.Minute))
	tg, err := f.s.CheckRetake(ctx, bad)
	if err != nil || tg.Workspace != "acme" || tg.Display != 0 || !tg.SlotEnd.Equal(day0.Add(10*time.Minute)) {
		t.Fatalf("check retake: %+v %v", tg, err)
	}
	re, err := f.retake("acme", bad, day0.Add(5*time.Minute), 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.CheckRetake(ctx, bad); !errors.Is(err, ErrConflict) {
		t.Fatalf("a second retake: %v", err)
	}
	if _, err := f.retake("acme", bad, day0.Add(6*time.Minute), 0); !errors.Is(err, ErrInvalid) {
		t.Fatalf("a second retake capture: %v", err)
	}
	if err := f.s.Delete(ctx, bad); err != nil {
		t.Fatal(err)
	}
	if err := f.s.Delete(ctx, other); err != nil {
		t.Fatal(err)
	}
	v, err := f.s.View(ctx, "acme", day0, day0.Add(time.Hour), time.UTC)
	if err != nil {
		t.Fatal(err)
	}
	if s := slotOf(t, v, day0); !s.Billable || len(s.Shots) != 2 || s.Shots[1].ID != re || s.Shots[1].RetakeOf != bad {
		t.Fatalf("the retaken slot: %+v", s)
	}
	if s := slotOf(t, v, day0.Add(10*time.Minute)); s.Billable || s.Reason != "a screenshot was deleted" {
		t.Fatalf("the slot deleted without a retake: %+v", s)
	}
	ver, err := f.verify(f.export("acme", day0, day0.Add(time.Hour)))
	if err != nil {
		t.Fatal(err)
	}
	if ver.View.Totals.BillableSeconds != v.Totals.BillableSeconds || ver.View.Totals.BillableSeconds != 600 {
		t.Fatalf("billable: the client's verify %d s, the diary %d s, want 600", ver.View.Totals.BillableSeconds, v.Totals.BillableSeconds)
	}
	// The client's timesheet and report say which shot is a retake.
	var csvOut, html bytes.Buffer
	if err := WriteCSV(&csvOut, ver.View); err != nil || !strings.Contains(csvOut.String(), "is the retake of "+bad) {
		t.Fatalf("timesheet: %v\n%s", err, csvOut.String())
	}
	if err := WriteHTML(&html, ver); err != nil || !strings.Contains(html.String(), ">retake</span>") {
		t.Fatalf("report: %v", err)
	}
	// Deleting the retake too gives the slot up after all.
	if err := f.s.Delete(ctx, re); err != nil {
		t.Fatal(err)
	}
	v, _ = f.s.View(ctx, "acme", day0, day0.Add(time.Hour), time.UTC)
	if s := slotOf(t, v, day0); s.Billable {
		t.Fatalf("the slot with its retake deleted is billed: %+v", s)
	}
}

func TestRetakeRefusals(t *testing.T) {
	f := newFixture(t)
	shot := f.workSlot("acme", day0, 1)
	f.ensure("beta", 600)
	log0, _ := f.s.logSize(ctx, "acme")
	for _, tc := range []struct {
		name    string
		ws      string
		orig    string
		at      time.Duration
		display int
	}{
		{"after the slot", "acme", shot, 10 * time.Minute, 0},
		{"before the slot", "acme", shot, -time.Second, 0},
		{"another display", "acme", shot, 5 * time.Minute, 1},
		{"another workspace", "beta", shot, 5 * time.Minute, 0},
		{"an unknown shot", "acme", "01900000-0000-7000-8000-000000000000", 5 * time.Minute, 0},
	} {
		if _, err := f.retake(tc.ws, tc.orig, day0.Add(tc.at), tc.display); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
	if n, _ := f.s.logSize(ctx, "acme"); n != log0 {
		t.Fatalf("refused retakes changed the log: %d → %d entries", log0, n)
	}
	f.clk.Set(day0.Add(10 * time.Minute))
	if _, err := f.s.CheckRetake(ctx, shot); !errors.Is(err, ErrInvalid) {
		t.Fatalf("retake after the slot ended: %v", err)
	}
	f.clk.Set(day0.Add(5 * time.Minute))
	re, err := f.retake("acme", shot, day0.Add(5*time.Minute), 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.CheckRetake(ctx, re); !errors.Is(err, ErrInvalid) {
		t.Fatalf("a retake of a retake: %v", err)
	}
	if _, err := f.s.CheckRetake(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown shot: %v", err)
	}
	if _, err := f.s.Check(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
}
