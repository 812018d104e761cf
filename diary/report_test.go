package diary

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/workspace-sandbox/workspace/tracking"
)

// Slots shorter than a minute are labelled with seconds in both reports,
// or two slots of one minute would read the same.
func TestReportsLabelShortSlotsWithSeconds(t *testing.T) {
	t0 := time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)
	day := tracking.DiaryDay{Date: "2026-11-20"}
	for i := 0; i < 2; i++ {
		s := t0.Add(time.Duration(i) * 30 * time.Second)
		day.Slots = append(day.Slots, tracking.Slot{Start: s, End: s.Add(30 * time.Second), Billable: true})
	}
	v := &Verified{Workspace: "acme", From: t0, To: t0.Add(time.Hour),
		View: tracking.DiaryView{Workspace: "acme", From: t0, To: t0.Add(time.Hour), SlotSeconds: 30, Days: []tracking.DiaryDay{day}}}
	var html, csvb bytes.Buffer
	if err := WriteHTML(&html, v); err != nil {
		t.Fatal(err)
	}
	if err := WriteCSV(&csvb, v.View); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"09:00:00–09:00:30", "09:00:30–09:01:00"} {
		if !strings.Contains(html.String(), want) {
			t.Errorf("HTML report lacks the slot label %q", want)
		}
	}
	for _, want := range []string{"2026-11-20,09:00:00,09:00:30,tracked", "2026-11-20,09:00:30,09:01:00,tracked"} {
		if !strings.Contains(csvb.String(), want) {
			t.Errorf("CSV report lacks the row start %q:\n%s", want, csvb.String())
		}
	}
}
