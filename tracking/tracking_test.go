package tracking

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestSlotStart(t *testing.T) {
	for _, c := range []struct{ t, slot, want int64 }{
		{0, 600, 0},
		{599, 600, 0},
		{600, 600, 600},
		{1234, 600, 1200},
		{-1, 600, -600}, // before 1970 rounds down too
		{-600, 600, -600},
		{59, 60, 0},
	} {
		if got := SlotStart(c.t, c.slot); got != c.want {
			t.Errorf("SlotStart(%d, %d) = %d, want %d", c.t, c.slot, got, c.want)
		}
	}
	at := time.Date(2026, 11, 16, 9, 17, 42, 5, time.UTC)
	if got, want := SlotOf(at, 10*time.Minute), time.Date(2026, 11, 16, 9, 10, 0, 0, time.UTC); !got.Equal(want) {
		t.Errorf("SlotOf = %v, want %v", got, want)
	}
}

func TestNewID(t *testing.T) {
	uuid7 := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	t0 := time.UnixMilli(1_700_000_000_000)
	a, b := NewID(t0), NewID(t0.Add(time.Millisecond))
	if !uuid7.MatchString(a) || !uuid7.MatchString(b) {
		t.Fatalf("not UUIDv7: %s %s", a, b)
	}
	if a >= b {
		t.Fatalf("ids do not sort by time: %s >= %s", a, b)
	}
	if NewID(t0) == a {
		t.Fatal("two ids of the same millisecond are equal")
	}
}

func TestPolicyValidate(t *testing.T) {
	if err := DefaultPolicy.Validate(); err != nil {
		t.Fatalf("the default policy is refused: %v", err)
	}
	bad := DefaultPolicy
	bad.SlotSeconds, bad.JPEGQuality = 1, 0
	err := bad.Validate()
	if err == nil || !strings.Contains(err.Error(), "slot_seconds 1") || !strings.Contains(err.Error(), "jpeg_quality 0") {
		t.Fatalf("%v", err)
	}
}

// TestStoredFormats pins the JSON of what the diary stores and the agent
// and daemon keep on disk: renaming a key breaks stored entries.
func TestStoredFormats(t *testing.T) {
	for _, c := range []struct {
		v    any
		want string
	}{
		{Activity{Keys: 1, Clicks: 2, Moves: 3, Scrolls: 4, Active: 5}, `{"keys":1,"clicks":2,"moves":3,"scrolls":4,"active":5}`},
		{Rect{X: 1, Y: 2, W: 3, H: 4}, `{"x":1,"y":2,"w":3,"h":4}`},
		{State{On: true, Session: "s", Memo: "m", Since: time.Unix(0, 0).UTC()}, `{"on":true,"session":"s","memo":"m","since":"1970-01-01T00:00:00Z"}`},
		{State{}, `{"on":false}`},
	} {
		b, err := json.Marshal(c.v)
		if err != nil || string(b) != c.want {
			t.Errorf("%T: %s %v, want %s", c.v, b, err, c.want)
		}
	}
}

func TestClockLayout(t *testing.T) {
	at := func(h, m, s int) time.Time { return time.Date(2026, 11, 20, h, m, s, 0, time.UTC) }
	for _, tc := range []struct {
		start, end time.Time
		want       string
	}{
		{at(9, 0, 0), at(9, 10, 0), "15:04"},
		{at(9, 0, 0), at(9, 0, 30), "15:04:05"},   // 30 s slots
		{at(9, 0, 30), at(9, 1, 0), "15:04:05"},   // off the minute
		{at(9, 0, 0), at(9, 1, 0), "15:04"},       // one-minute slots
		{at(9, 10, 0), at(9, 10, 45), "15:04:05"}, // a partial slot
	} {
		if got := ClockLayout(tc.start, tc.end); got != tc.want {
			t.Errorf("ClockLayout(%s, %s) = %q, want %q", tc.start.Format(time.TimeOnly), tc.end.Format(time.TimeOnly), got, tc.want)
		}
	}
}
