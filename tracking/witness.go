package tracking

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
