package diary

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/workspace-sandbox/workspace/tracking"
)

// Every id the host writes must be one the diary stores: a host record the
// store refuses for its length is host time lost (a suspended gap once was).
func TestHostIDsAreValidRecordIDs(t *testing.T) {
	session := tracking.NewID(time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC))
	millis := strconv.FormatInt(time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC).UnixMilli(), 10)
	ids := map[string]string{
		"session start":  tracking.HostID("start", session),
		"session stop":   tracking.HostID("stop", session),
		"refused gap":    tracking.HostID("refused-capture", "253402300799"),
		"suspended gap":  tracking.HostID("suspended", session+"-"+millis),
		"long key":       tracking.HostID("suspended", strings.Repeat("k", 500)),
		"long other key": tracking.HostID("suspended", strings.Repeat("k", 499)+"j"),
	}
	seen := map[string]string{}
	for what, id := range ids {
		if err := checkID("record", id); err != nil {
			t.Errorf("%s: %v", what, err)
		}
		if !strings.HasPrefix(id, tracking.HostIDPrefix) {
			t.Errorf("%s: id %q lacks the host prefix", what, id)
		}
		if other, dup := seen[id]; dup {
			t.Errorf("%s and %s share id %q", what, other, id)
		}
		seen[id] = what
	}
	if a, b := tracking.HostID("suspended", session+"-1"), tracking.HostID("suspended", session+"-1"); a != b {
		t.Errorf("the same key gave two ids: %q, %q", a, b)
	}
	if got := tracking.HostID("stop", session); got != "host-stop-"+session {
		t.Errorf("a short key is kept as it is: got %q", got)
	}
}
