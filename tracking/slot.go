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

// ClockLayout is the time layout that labels a span from start to end:
// "15:04", or "15:04:05" when minutes alone would not tell apart the slots
// of a view (slots shorter than a minute, or bounds off the minute).
func ClockLayout(start, end time.Time) string {
	if end.Sub(start) < time.Minute || start.Second() != 0 || end.Second() != 0 {
		return "15:04:05"
	}
	return "15:04"
}
