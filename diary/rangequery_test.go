package diary

import (
	"strings"
	"testing"
	"time"
)

// A view or an export reads what its range needs through the log's
// indexes: no part of its query scans a workspace's whole log (a view of
// one day once read every entry the diary ever held).
func TestRangeQueryUsesIndexes(t *testing.T) {
	f := newFixture(t)
	for _, light := range []bool{true, false} {
		query, args := rangeQuery("acme", day0, day0.Add(24*time.Hour), light)
		rows, err := f.s.db.Query("EXPLAIN QUERY PLAN "+query, args...)
		if err != nil {
			t.Fatal(err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, unused int
			var detail string
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rows.Close()
		searches := 0
		for _, step := range plan {
			if strings.HasPrefix(step, "SCAN") || strings.Contains(step, "USING INDEX sqlite_autoindex_log_1 (ws=?)") {
				t.Errorf("light=%v: the plan scans: %q\n%s", light, step, strings.Join(plan, "\n"))
			}
			if strings.HasPrefix(step, "SEARCH log USING INDEX log_") {
				searches++
			}
		}
		if searches != 4 {
			t.Errorf("light=%v: want 4 indexed searches of the log, got %d:\n%s", light, searches, strings.Join(plan, "\n"))
		}
	}
}
