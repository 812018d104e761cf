package channel

import (
	"errors"
	"fmt"
	"time"
)

// Request types. Guest → host: TypeCapture, TypeRecords. Host → guest:
// TypePolicy, TypeTrack, TypeStatus, TypeShoot.
const (
	TypeCapture = "capture"
	TypeRecords = "records"
	TypePolicy  = "policy"
	TypeTrack   = "track"
	TypeStatus  = "status"
	TypeShoot   = "shoot"
)

// Capabilities an agent may announce in its Hello.
const (
	CapScreenshots = "screenshots"
	CapActivity    = "activity"
)

// Policy is the profile's tracking policy, pushed on every connect.
type Policy struct {
	SlotSeconds        int   `json:"slot_seconds"`
	ScreenshotsPerSlot int   `json:"screenshots_per_slot"`
	IdleSeconds        int   `json:"idle_seconds"`
	Blur               bool  `json:"blur"`
	JPEGQuality        int   `json:"jpeg_quality"`
	SpoolLimit         int64 `json:"spool_limit"`
}

// Validate refuses values an agent must not apply (an old or broken daemon).
func (p Policy) Validate() error {
	var errs []error
	if p.SlotSeconds < 10 || p.SlotSeconds > 3600 {
		errs = append(errs, fmt.Errorf("slot_seconds %d is outside 10..3600", p.SlotSeconds))
	}
	if p.ScreenshotsPerSlot < 0 || p.ScreenshotsPerSlot > 10 {
		errs = append(errs, fmt.Errorf("screenshots_per_slot %d is outside 0..10", p.ScreenshotsPerSlot))
	}
	if p.IdleSeconds < 30 || p.IdleSeconds > 86400 {
		errs = append(errs, fmt.Errorf("idle_seconds %d is outside 30..86400", p.IdleSeconds))
	}
	if p.JPEGQuality < 10 || p.JPEGQuality > 100 {
		errs = append(errs, fmt.Errorf("jpeg_quality %d is outside 10..100", p.JPEGQuality))
	}
	if p.SpoolLimit < 1<<20 || p.SpoolLimit > 64<<30 {
		errs = append(errs, fmt.Errorf("spool_limit %d is outside 1MiB..64GiB", p.SpoolLimit))
	}
	return errors.Join(errs...)
}

// Track turns tracking on or off; On with a session id and memo.
type Track struct {
	On      bool      `json:"on"`
	Session string    `json:"session,omitempty"`
	Memo    string    `json:"memo,omitempty"`
	Since   time.Time `json:"since,omitzero"`
}

// Activity is input counts (never which key) and active seconds.
type Activity struct {
	Keys    int `json:"keys"`
	Clicks  int `json:"clicks"`
	Moves   int `json:"moves"`
	Scrolls int `json:"scrolls"`
	Active  int `json:"active_seconds"`
}

// Capture describes one screenshot; blobs: 0 the JPEG, 1 its thumbnail.
type Capture struct {
	ID       string    `json:"id"`
	Session  string    `json:"session,omitempty"`
	Taken    time.Time `json:"taken"`
	Display  int       `json:"display"`
	X        int       `json:"x"`
	Y        int       `json:"y"`
	Width    int       `json:"width"`
	Height   int       `json:"height"`
	Activity *Activity `json:"activity,omitempty"`
	Blurred  bool      `json:"blurred,omitempty"`
	// RetakeOf names the shot this one retakes (a shot the freelancer
	// asked to replace; see Shoot).
	RetakeOf string `json:"retake_of,omitempty"`
}

// Shoot asks the agent for screenshots now, as a retake of RetakeOf (of
// its display); the answer is a Shot with the new captures' ids, sent once
// they are spooled.
type Shoot struct {
	RetakeOf string `json:"retake_of"`
	Display  int    `json:"display"`
}

// Shot answers a Shoot.
type Shot struct {
	IDs []string `json:"ids"`
}

// Record is an activity minute, an idle period or a gap.
type Record struct {
	ID       string    `json:"id"`
	Type     string    `json:"type"` // activity | idle | gap
	Minute   time.Time `json:"minute,omitzero"`
	Start    time.Time `json:"start,omitzero"`
	End      time.Time `json:"end,omitzero"`
	Reason   string    `json:"reason,omitempty"`
	Activity *Activity `json:"activity,omitempty"`
}

// Records is a batch of records.
type Records struct {
	Records []Record `json:"records"`
}

// Ack is the host's answer to a capture or records: durably stored.
type Ack struct {
	Stored     int `json:"stored"`
	Duplicates int `json:"duplicates"`
}

// Status is what the agent tells about itself.
type Status struct {
	Version     string    `json:"version"`
	Tracking    bool      `json:"tracking"`
	Session     string    `json:"session,omitempty"`
	LastShot    time.Time `json:"last_shot,omitzero"`
	SpoolItems  int       `json:"spool_items"`
	SpoolBytes  int64     `json:"spool_bytes"`
	Display     string    `json:"display"`
	DisplayErr  string    `json:"display_error,omitempty"`
	PolicyError string    `json:"policy_error,omitempty"`
	Gaps        int       `json:"gaps"`
}
