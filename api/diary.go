package api

import "time"

// DiaryStatus says whether the freelancer's keys exist and are unlocked.
type DiaryStatus struct {
	Initialized bool   `json:"initialized"`
	Protected   bool   `json:"passphrase_protected"`
	Locked      bool   `json:"locked"`
	Recipient   string `json:"recipient,omitempty"`
	Signer      string `json:"signer,omitempty"`
}

// InitRequest creates the freelancer's identity; a non-empty Passphrase
// protects it (the daemon then starts locked and needs an unlock).
type InitRequest struct {
	Passphrase string `json:"passphrase,omitempty"`
}

// UnlockRequest unlocks a passphrase-protected identity in the daemon.
type UnlockRequest struct {
	Passphrase string `json:"passphrase"`
}

// CaptureMeta describes one screenshot sent to the ingestion API; the JPEG
// original and thumbnail follow it in the same multipart body. The workspace
// is the one in the URL (later: the channel the capture came on).
type CaptureMeta struct {
	ID        string    `json:"id"`
	Session   string    `json:"session,omitempty"`
	Taken     time.Time `json:"taken"`
	Display   int       `json:"display"`
	X         int       `json:"x"`
	Y         int       `json:"y"`
	Width     int       `json:"width"`
	Height    int       `json:"height"`
	Activity  *Activity `json:"activity,omitempty"`
	Retake    string    `json:"retake_of,omitempty"`
	Blurred   bool      `json:"blurred,omitempty"` // blurred inside the guest (the profile's blur = true)
	OrigSize  int64     `json:"original_size"`
	ThumbSize int64     `json:"thumbnail_size"`
}

// Activity is input counts (never which key) and active seconds.
type Activity struct {
	Keys    int `json:"keys"`
	Clicks  int `json:"clicks"`
	Moves   int `json:"moves"`
	Scrolls int `json:"scrolls"`
	Active  int `json:"active_seconds"`
}

// Record types accepted by the ingestion API besides captures.
const (
	RecordActivity     = "activity"
	RecordIdle         = "idle"
	RecordSessionStart = "session_start"
	RecordSessionStop  = "session_stop"
	RecordGap          = "gap"
)

// Record is one non-capture diary record from the agent (or a test). Minute
// is the start of the minute an activity record counts; Start/End bound idle
// periods and gaps; Time is when a session started or stopped.
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

// Ack is the answer to an ingestion call: the records are durably stored.
// Duplicates lists ids that were already stored (and were not stored again).
type Ack struct {
	Stored     []string `json:"stored"`
	Duplicates []string `json:"duplicates,omitempty"`
	LogSize    int64    `json:"log_size"`
}

// Rect is a rectangle on a screenshot in pixels.
type Rect struct {
	X int `json:"x"`
	Y int `json:"y"`
	W int `json:"w"`
	H int `json:"h"`
}

// Retake is the answer to a retake request: the shot, its workspace, and
// the new shot(s) the agent took. Pending means the agent spooled them but
// they had not reached the diary when the daemon stopped waiting.
type Retake struct {
	Shot      string   `json:"shot"`
	Workspace string   `json:"workspace"`
	Retakes   []string `json:"retakes"`
	Pending   bool     `json:"pending,omitempty"`
}

// CoverRequest covers regions of a shot (the whole shot when Rects is empty).
type CoverRequest struct {
	Rects []Rect `json:"rects,omitempty"`
}

// ManualRequest adds manual time to a workspace's diary.
type ManualRequest struct {
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
	Memo string    `json:"memo"`
}

// PruneRequest crypto-shreds every shot taken before Before.
type PruneRequest struct {
	Before time.Time `json:"before"`
}

// PruneResult says what prune shredded.
type PruneResult struct {
	Shredded int `json:"shredded"`
}

// ExportRequest asks for a signed, encrypted export of a range. Recipients
// are added to the client's recipient from the profile. With Passphrase the
// export is encrypted with it alone (age scrypt), for a client without an
// age key; Recipients must then be empty.
type ExportRequest struct {
	From       time.Time `json:"from"`
	To         time.Time `json:"to"`
	Recipients []string  `json:"recipients,omitempty"`
	Passphrase string    `json:"passphrase,omitempty"`
}

// CheckResult is the outcome of checking a workspace's stored diary.
type CheckResult struct {
	Workspace string `json:"workspace"`
	Entries   int64  `json:"entries"`
	Shots     int    `json:"shots"`
	OK        bool   `json:"ok"`
	Problem   string `json:"problem,omitempty"`
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
}

// Shot is one screenshot in a slot.
type Shot struct {
	ID      string    `json:"id"`
	Taken   time.Time `json:"taken"`
	Display int       `json:"display"`
	Width   int       `json:"width"`
	Height  int       `json:"height"`
	State   string    `json:"state"`
	Retake  string    `json:"retake_of,omitempty"`
	Blurred bool      `json:"blurred,omitempty"` // blurred in the guest
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
}

// PassphraseHeader carries a backup passphrase to the daemon (never in a
// URL, which could end up in a log).
const PassphraseHeader = "Workspace-Passphrase"

// RestoreResult says what a restore put in place and what it moved aside.
type RestoreResult struct {
	Workspaces []string `json:"workspaces"`
	Replaced   []string `json:"replaced,omitempty"`
}

// AgentInfo is the state of a workspace's guest agent channel.
type AgentInfo struct {
	Connected bool      `json:"connected"`
	Version   string    `json:"version,omitempty"`
	LastSeen  time.Time `json:"last_seen,omitzero"`
	// Error says why the daemon does not talk to the agent, when it
	// refused it (an unsupported protocol version).
	Error string `json:"error,omitempty"`
}

// TrackRequest turns tracking on (with a memo) or off.
type TrackRequest struct {
	On   bool   `json:"on"`
	Memo string `json:"memo,omitempty"`
}

// TrackStatus is a workspace's tracking state; Guest is the agent's own
// report when it is connected.
type TrackStatus struct {
	Workspace string       `json:"workspace"`
	Tracking  bool         `json:"tracking"`
	Session   string       `json:"session,omitempty"`
	Memo      string       `json:"memo,omitempty"`
	Since     time.Time    `json:"since,omitzero"`
	Agent     AgentInfo    `json:"agent"`
	Guest     *GuestStatus `json:"guest,omitempty"`
}

// GuestStatus is what the agent says about itself.
type GuestStatus struct {
	Tracking     bool      `json:"tracking"`
	Session      string    `json:"session,omitempty"`
	LastShot     time.Time `json:"last_shot,omitzero"`
	SpoolItems   int       `json:"spool_items"`
	SpoolBytes   int64     `json:"spool_bytes"`
	Display      string    `json:"display"`
	DisplayError string    `json:"display_error,omitempty"`
	PolicyError  string    `json:"policy_error,omitempty"`
	Gaps         int       `json:"gaps"`
}

// UILogin is a one-time login link to the web UI.
type UILogin struct {
	URL  string `json:"url"`
	Base string `json:"base"`
}
