package tracking

import "time"

// The diary's view of a range, as the diary computes it and the API, the
// CLI, the web UI and the client's report show it.

// Rect is a rectangle on a screenshot in pixels (a covered region).
type Rect struct {
	X int `json:"x"`
	Y int `json:"y"`
	W int `json:"w"`
	H int `json:"h"`
}

// Shot states in a diary view.
const (
	ShotOK      = "ok"
	ShotCovered = "covered"
	ShotDeleted = "deleted"
	ShotPruned  = "pruned"
)

// DiaryView is a workspace's diary over a range: days of slots with totals.
type DiaryView struct {
	Workspace   string        `json:"workspace"`
	Client      string        `json:"client,omitempty"`
	From        time.Time     `json:"from"`
	To          time.Time     `json:"to"`
	SlotSeconds int           `json:"slot_seconds"`
	Days        []DiaryDay    `json:"days"`
	Manual      []ManualEntry `json:"manual,omitempty"`
	Totals      DiaryTotals   `json:"totals"`
}

// DiaryDay is one local calendar day of slots.
type DiaryDay struct {
	Date   string      `json:"date"`
	Slots  []Slot      `json:"slots"`
	Totals DiaryTotals `json:"totals"`
}

// Slot is one clock-aligned tracking segment.
type Slot struct {
	Start           time.Time `json:"start"`
	End             time.Time `json:"end"`
	Memo            string    `json:"memo,omitempty"`
	Shots           []Shot    `json:"shots"`
	Activity        Activity  `json:"activity"`
	Minutes         int       `json:"activity_minutes"` // minutes with an activity record
	ActivityPercent int       `json:"activity_percent"`
	IdleSeconds     int       `json:"idle_seconds,omitempty"`
	Billable        bool      `json:"billable"`
	Reason          string    `json:"reason,omitempty"`
	Gaps            []string  `json:"gaps,omitempty"`
	// Witness is set by a verify with pinned witness keys.
	Witness *SlotWitness `json:"witness,omitempty"`
}

// Shot is one screenshot in a slot.
type Shot struct {
	ID       string    `json:"id"`
	Taken    time.Time `json:"taken"`
	Display  int       `json:"display"`
	Width    int       `json:"width"`
	Height   int       `json:"height"`
	State    string    `json:"state"`
	RetakeOf string    `json:"retake_of,omitempty"`
	Blurred  bool      `json:"blurred,omitempty"` // blurred in the guest
}

// ManualEntry is manual time: counted, and always flagged as manual.
type ManualEntry struct {
	ID    string    `json:"id"`
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	Memo  string    `json:"memo"`
}

// DiaryTotals sums a range. Durations are in seconds.
type DiaryTotals struct {
	TrackedSeconds  int `json:"tracked_seconds"`
	BillableSeconds int `json:"billable_seconds"`
	ManualSeconds   int `json:"manual_seconds"`
	ActivityPercent int `json:"activity_percent"`
	Slots           int `json:"slots"`
	BillableSlots   int `json:"billable_slots"`
	Shots           int `json:"shots"`
	Covered         int `json:"covered"`
	Deleted         int `json:"deleted"`
	IdleSeconds     int `json:"idle_seconds"`
	// Witness is set by a verify with pinned witness keys.
	Witness *WitnessTotals `json:"witness,omitempty"`
}
