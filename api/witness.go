package api

import "time"

// SlotWitness says when a slot's entries were first cosigned by the
// client's witnesses (an export verified with pinned witness keys): the
// largest delay between a capture (or a minute of activity) and the
// first cosigned checkpoint covering it. Late is a delay over the
// verifier's --max-delay: the slot is "witnessed late".
type SlotWitness struct {
	FirstWitnessed time.Time `json:"first_witnessed"`
	DelaySeconds   int       `json:"delay_seconds"`
	Late           bool      `json:"late"`
}

// WitnessTotals splits billable time by witnessing: billable slots whose
// entries were all witnessed within the maximum delay, and the rest
// (slots witnessed late, and manual time, which is never witnessed live).
type WitnessTotals struct {
	OnTimeSeconds int `json:"billable_witnessed_on_time_seconds"`
	OtherSeconds  int `json:"billable_other_seconds"`
	LateSlots     int `json:"late_slots"`
}

// WitnessState is a workspace log's witnessing, as the daemon sees it: the
// log's origin and key (a witness registers them), its size, and each
// witness of the profile.
type WitnessState struct {
	Origin    string          `json:"origin"`
	LogKey    string          `json:"log_key"`
	Size      int64           `json:"size"`
	Witnesses []WitnessStatus `json:"witnesses"`
}

// WitnessStatus is one witness of a workspace: the latest size it cosigned
// and when, since when entries wait for it (zero when none wait), and why
// the last attempt failed.
type WitnessStatus struct {
	Name         string    `json:"name"`
	URL          string    `json:"url"`
	Key          string    `json:"key"`
	CosignedSize int64     `json:"cosigned_size"`
	CosignedAt   time.Time `json:"cosigned_at,omitzero"`
	QueuedSince  time.Time `json:"queued_since,omitzero"`
	Pending      int64     `json:"pending_entries"`
	LastError    string    `json:"last_error,omitempty"`
	NextAttempt  time.Time `json:"next_attempt,omitzero"`
}
