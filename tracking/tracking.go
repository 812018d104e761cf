// Package tracking holds the facts of time tracking that the guest agent,
// the host↔guest channel, the daemon, the diary and the API's clients all
// share: what a capture, an activity minute and a record are, the ids they
// carry, the tracking policy and its defaults, the slot arithmetic, and the
// diary's view of a range. It is defined once here and imported by all of
// them; it imports nothing of the project and nothing of the host, so the
// guest agent links it too.
package tracking

import "time"

// Activity is input counts (never which key) and the seconds with input.
// The diary stores it as it is (the "active" key is part of stored entries).
type Activity struct {
	Keys    int `json:"keys"`
	Clicks  int `json:"clicks"`
	Moves   int `json:"moves"`
	Scrolls int `json:"scrolls"`
	Active  int `json:"active"`
}

// Capture describes one screenshot; its JPEG original and thumbnail travel
// beside it (channel blobs 0 and 1, or multipart parts). The workspace is
// the one of the channel (or URL) it came on, never a field of its own.
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
	// Blurred says the guest blurred it (the profile's blur = true).
	Blurred bool `json:"blurred,omitempty"`
	// RetakeOf names the shot this one retakes (a shot the freelancer
	// asked to replace while its slot runs).
	RetakeOf string `json:"retake_of,omitempty"`
}

// Record kinds. The agent sends activity, idle and gap records; the daemon
// records session starts and stops.
const (
	RecordActivity     = "activity"
	RecordIdle         = "idle"
	RecordSessionStart = "session_start"
	RecordSessionStop  = "session_stop"
	RecordGap          = "gap"
)

// RecordKinds lists every record kind.
var RecordKinds = []string{RecordActivity, RecordIdle, RecordSessionStart, RecordSessionStop, RecordGap}

// Record is one non-capture diary record. Minute is the start of the minute
// an activity record counts; Start and End bound idle periods and gaps;
// Time is when a session started or stopped.
type Record struct {
	ID       string    `json:"id"`
	Type     string    `json:"type"`
	Session  string    `json:"session,omitempty"`
	Time     time.Time `json:"time,omitzero"`
	Minute   time.Time `json:"minute,omitzero"`
	Start    time.Time `json:"start,omitzero"`
	End      time.Time `json:"end,omitzero"`
	Memo     string    `json:"memo,omitempty"`
	Reason   string    `json:"reason,omitempty"`
	Activity *Activity `json:"activity,omitempty"`
}

// Ack answers an ingestion (a capture or a batch of records): everything
// it names is durably stored. Duplicates lists ids stored before (and not
// stored again).
type Ack struct {
	Stored     []string `json:"stored"`
	Duplicates []string `json:"duplicates,omitempty"`
	LogSize    int64    `json:"log_size"`
}

// State says whether a workspace tracks: on, with the session's id, memo
// and start. The daemon keeps it per workspace and pushes it to the agent,
// which keeps its copy across restarts.
type State struct {
	On      bool      `json:"on"`
	Session string    `json:"session,omitempty"`
	Memo    string    `json:"memo,omitempty"`
	Since   time.Time `json:"since,omitzero"`
}

// AgentStatus is what the agent says about itself.
type AgentStatus struct {
	Version      string    `json:"version,omitempty"`
	Tracking     bool      `json:"tracking"`
	Session      string    `json:"session,omitempty"`
	LastShot     time.Time `json:"last_shot,omitzero"`
	SpoolItems   int       `json:"spool_items"`
	SpoolBytes   int64     `json:"spool_bytes"`
	Display      string    `json:"display"`
	DisplayError string    `json:"display_error,omitempty"`
	PolicyError  string    `json:"policy_error,omitempty"`
	Gaps         int       `json:"gaps"`
	// Refused counts the spooled items the host refused (dropped, each
	// followed by a longer wait before the next send).
	Refused int `json:"refused,omitempty"`
}
