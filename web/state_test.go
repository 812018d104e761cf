package web

import (
	"strings"
	"testing"
	"time"

	"github.com/workspace-sandbox/workspace/tracking"
)

// TestTrackingButtonFollowsState: a running workspace offers the one
// tracking action that applies, never both.
func TestTrackingButtonFollowsState(t *testing.T) {
	s, fb, c := newTestServer(t)
	ck := login(t, s, c)
	for _, tc := range []struct {
		idle       bool
		show, hide string
	}{
		{false, "Stop tracking", "Start tracking"},
		{true, "Start tracking", "Stop tracking"},
	} {
		fb.mu.Lock()
		fb.idle = tc.idle
		fb.mu.Unlock()
		_, body := c.do("GET", "/", nil, ck, "")
		if !strings.Contains(body, tc.show) || strings.Contains(body, tc.hide) {
			t.Errorf("tracking %v: want %q and not %q:\n%s", !tc.idle, tc.show, tc.hide, body)
		}
		if memo := strings.Contains(body, `<input name="memo"`); memo != tc.idle {
			t.Errorf("tracking %v: memo field shown %v", !tc.idle, memo)
		}
	}
}

func TestSlotSpan(t *testing.T) {
	at := func(h, m, s int) time.Time { return time.Date(2026, 11, 20, h, m, s, 0, time.Local) }
	for _, tc := range []struct {
		start, end time.Time
		want       string
	}{
		{at(3, 10, 0), at(3, 20, 0), "03:10–03:20"},
		{at(3, 12, 0), at(3, 12, 30), "03:12:00–03:12:30"},
		{at(3, 12, 30), at(3, 13, 0), "03:12:30–03:13:00"},
		{at(3, 59, 0), at(4, 0, 0), "03:59–04:00"},
	} {
		if got := slotSpan(tc.start, tc.end); got != tc.want {
			t.Errorf("slotSpan(%s, %s) = %q, want %q", tc.start.Format("15:04:05"), tc.end.Format("15:04:05"), got, tc.want)
		}
	}
}

// TestShortSlotsShowSeconds: a day of 30-second slots is labelled with
// seconds, so its slots can be told apart.
func TestShortSlotsShowSeconds(t *testing.T) {
	s, fb, c := newTestServer(t)
	ck := login(t, s, c)
	day := time.Date(2026, 11, 20, 0, 0, 0, 0, time.Local)
	v := tracking.DiaryView{SlotSeconds: 30, Days: []tracking.DiaryDay{{Date: "2026-11-20"}}}
	for i := 0; i < 2; i++ {
		st := day.Add(3*time.Hour + 12*time.Minute + time.Duration(i)*30*time.Second)
		v.Days[0].Slots = append(v.Days[0].Slots, tracking.Slot{Start: st, End: st.Add(30 * time.Second), Billable: true})
	}
	fb.mu.Lock()
	fb.view = v
	fb.mu.Unlock()
	_, body := c.do("GET", "/w/acme?day=2026-11-20", nil, ck, "")
	for _, want := range []string{"03:12:00–03:12:30", "03:12:30–03:13:00"} {
		if !strings.Contains(body, want) {
			t.Errorf("the day page lacks the slot label %q", want)
		}
	}
}
