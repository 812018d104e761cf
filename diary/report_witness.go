package diary

import (
	"fmt"
	"strconv"
	"time"

	"github.com/workspace-sandbox/workspace/tracking"
)

// Witness columns of a CSV timesheet verified with pinned witnesses.
var witnessCSVHeader = []string{"witness", "witness_delay_seconds"}

func witnessCSV(w *tracking.SlotWitness) []string {
	switch {
	case w == nil:
		return []string{"", ""}
	case w.Late:
		return []string{"witnessed late (" + Delay(w.DelaySeconds) + " after capture)", strconv.Itoa(w.DelaySeconds)}
	}
	return []string{"witnessed on time", strconv.Itoa(w.DelaySeconds)}
}

func witnessTotalsText(t *tracking.WitnessTotals) string {
	return fmt.Sprintf("billable witnessed on time %s; not witnessed on time %s (%d slots witnessed late, and manual time)", Hours(t.OnTimeSeconds), Hours(t.OtherSeconds), t.LateSlots)
}

// Delay formats a number of seconds as "42s", "3m 05s", "2h 10m" or
// "3d 4h".
func Delay(secs int) string {
	d := time.Duration(secs) * time.Second
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", secs)
	case d < time.Hour:
		return fmt.Sprintf("%dm %02ds", int(d.Minutes()), secs%60)
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh %02dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd %dh", int(d.Hours())/24, int(d.Hours())%24)
}
