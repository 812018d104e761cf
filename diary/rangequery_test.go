package diary

import (
	"strings"
	"testing"
	"time"
)

// queryPlan is SQLite's plan of query, a step a line.
func queryPlan(t *testing.T, f *fixture, query string, args ...any) []string {
	t.Helper()
	rows, err := f.s.db.Query("EXPLAIN QUERY PLAN "+query, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	return plan
}

// A view or an export reads what its range needs through the log's
// indexes: no part of its query scans a workspace's whole log (a view of
// one day once read every entry the diary ever held).
func TestRangeQueryUsesIndexes(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct {
		view     bool
		searches int
	}{{view: true, searches: 3}, {view: false, searches: 4}} {
		query, args := rangeQuery("acme", day0, day0.Add(24*time.Hour), tc.view)
		plan := queryPlan(t, f, query, args...)
		searches := 0
		for _, step := range plan {
			if strings.HasPrefix(step, "SCAN") || strings.Contains(step, "USING INDEX sqlite_autoindex_log_1 (ws=?)") {
				t.Errorf("view=%v: the plan scans: %q\n%s", tc.view, step, strings.Join(plan, "\n"))
			}
			if strings.HasPrefix(step, "SEARCH log USING INDEX log_") {
				searches++
			}
		}
		if searches != tc.searches {
			t.Errorf("view=%v: want %d indexed searches of the log, got %d:\n%s", tc.view, tc.searches, searches, strings.Join(plan, "\n"))
		}
	}
}

// A view reads the view index by ranges of (ws, time): its primary keys,
// and sessions by when they stopped. Never a scan.
func TestViewIndexQueriesSearch(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct {
		query, search string
		args          []any
	}{
		{viewActivityQuery, "SEARCH view_activity USING PRIMARY KEY (ws=? AND minute>? AND minute<?)", []any{"acme", 0, 1}},
		{viewIdleQuery, "SEARCH view_spans USING PRIMARY KEY (ws=? AND type=? AND span_start>? AND span_start<?)", []any{"acme", 0, 1}},
		{viewGapsQuery, "SEARCH view_spans USING PRIMARY KEY (ws=? AND type=? AND span_start>? AND span_start<?)", []any{"acme", 0, 1}},
		{viewManualQuery, "SEARCH view_spans USING PRIMARY KEY (ws=? AND type=? AND span_start>? AND span_start<?)", []any{"acme", 0, 1}},
		{viewSessionsQuery, "SEARCH view_sessions USING INDEX view_sessions_stop (ws=? AND stop>?)", []any{"acme", 0, 1}},
	} {
		plan := strings.Join(queryPlan(t, f, tc.query, tc.args...), "\n")
		if !strings.Contains(plan, tc.search) || strings.Contains(plan, "SCAN") || strings.Contains(plan, "(ws=?)") {
			t.Errorf("want %q and no scan, got:\n%s", tc.search, plan)
		}
	}
}
