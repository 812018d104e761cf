package api

import (
	"time"

	"github.com/workspace-sandbox/workspace/tracking"
)

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
	Rects []tracking.Rect `json:"rects,omitempty"`
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
	// Refused counts the captures and records of the guest the daemon
	// refused since it started (over a quota, outside the tracking
	// session, an image it would not decode); LastRefusal says why the
	// last one was.
	Refused     int64  `json:"refused,omitempty"`
	LastRefusal string `json:"last_refusal,omitempty"`
}

// TrackRequest turns tracking on (with a memo) or off.
type TrackRequest struct {
	On   bool   `json:"on"`
	Memo string `json:"memo,omitempty"`
}

// TrackStatus is a workspace's tracking state; Guest is the agent's own
// report when it is connected.
type TrackStatus struct {
	Workspace string                `json:"workspace"`
	Tracking  bool                  `json:"tracking"`
	Session   string                `json:"session,omitempty"`
	Memo      string                `json:"memo,omitempty"`
	Since     time.Time             `json:"since,omitzero"`
	Agent     AgentInfo             `json:"agent"`
	Guest     *tracking.AgentStatus `json:"guest,omitempty"`
	// Witness is the log's witnessing (when the profile names witnesses).
	Witness *WitnessState `json:"witness,omitempty"`
}

// UILogin is a one-time login link to the web UI.
type UILogin struct {
	URL  string `json:"url"`
	Base string `json:"base"`
}
