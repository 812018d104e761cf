package tracking

import "time"

// SlotStart returns the start (unix seconds) of the clock-aligned slot of
// slotSeconds that holds unix second t; times before 1970 round down too.
func SlotStart(t, slotSeconds int64) int64 {
	return t - ((t%slotSeconds)+slotSeconds)%slotSeconds
}

// SlotOf returns the start of the slot of length slot that holds t.
func SlotOf(t time.Time, slot time.Duration) time.Time {
	return time.Unix(SlotStart(t.Unix(), int64(slot/time.Second)), 0)
}
