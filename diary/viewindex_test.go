package diary

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand"
	"strings"
	"testing"
	"time"

	"github.com/workspace-sandbox/workspace/tracking"
)

// randomDiary fills acme with three days of random work around day0:
// sessions (with an odd seed, the last one still runs), activity minutes, idle and gap spans (some reaching over days,
// some starting weeks before), manual time, shots, and covers, deletes and
// a prune of some of them.
func randomDiary(t *testing.T, f *fixture, seed int64) {
	t.Helper()
	ctx := context.Background()
	r := rand.New(rand.NewSource(seed))
	f.small = true
	f.clk.Set(day0.Add(3 * 24 * time.Hour))
	reasons := []string{"paused", "suspended", "over the diary limit"}
	var recs []tracking.Record
	var shots []string
	n := 0
	id := func(kind string) string { n++; return fmt.Sprintf("%s-%d", kind, n) }
	for d := -1; d <= 1; d++ {
		start := day0.Add(time.Duration(d)*24*time.Hour + time.Duration(r.Intn(120))*time.Minute)
		// Sessions do not overlap, so each slot has at most one memo.
		session := id("session")
		recs = append(recs, tracking.Record{ID: session + "-start", Type: tracking.RecordSessionStart, Session: session, Time: start, Memo: "memo " + session})
		minutes := 60 + r.Intn(300)
		for m := 0; m < minutes; m++ {
			if r.Intn(4) == 0 {
				continue
			}
			a := tracking.Activity{Keys: r.Intn(50), Clicks: r.Intn(5), Moves: r.Intn(200), Scrolls: r.Intn(3), Active: r.Intn(61)}
			if r.Intn(5) == 0 {
				a = tracking.Activity{}
			}
			recs = append(recs, tracking.Record{ID: id("act"), Type: tracking.RecordActivity, Minute: start.Add(time.Duration(m) * time.Minute), Activity: &a})
		}
		for i := 0; i < 20; i++ {
			s := start.Add(time.Duration(r.Intn(minutes*60)) * time.Second)
			e := s.Add(time.Duration(1+r.Intn(3*3600)) * time.Second)
			if r.Intn(10) == 0 {
				e = s.Add(time.Duration(1+r.Intn(72)) * time.Hour) // reaches into later days
			}
			if r.Intn(10) == 0 {
				s = s.Add(-time.Duration(1+r.Intn(30*24)) * time.Hour) // starts weeks before
			}
			typ := tracking.RecordIdle
			if r.Intn(2) == 0 {
				typ = tracking.RecordGap
			}
			recs = append(recs, tracking.Record{ID: id("span"), Type: typ, Start: s, End: e, Reason: reasons[r.Intn(len(reasons))]})
		}
		if d < 1 || seed%2 == 0 { // with an odd seed, the last session still runs
			recs = append(recs, tracking.Record{ID: session + "-stop", Type: tracking.RecordSessionStop, Session: session, Time: start.Add(time.Duration(minutes) * time.Minute)})
		}
		for i := 0; i < 8; i++ {
			shots = append(shots, f.capture("acme", start.Add(time.Duration(r.Intn(minutes*60))*time.Second), int64(n+i)))
		}
		from := start.Add(time.Duration(r.Intn(minutes)) * time.Minute).Truncate(time.Minute)
		if _, err := f.s.AddManual(ctx, "acme", from, from.Add(time.Duration(1+r.Intn(90))*time.Minute), "manual "+session); err != nil {
			t.Fatal(err)
		}
	}
	r.Shuffle(len(recs), func(i, j int) { recs[i], recs[j] = recs[j], recs[i] })
	if _, err := f.s.AddRecords(ctx, "acme", recs); err != nil {
		t.Fatal(err)
	}
	for i, id := range shots {
		switch i % 4 {
		case 1:
			if err := f.s.Cover(ctx, id, []tracking.Rect{{X: 1, Y: 1, W: 4, H: 4}}); err != nil {
				t.Fatal(err)
			}
		case 2:
			if err := f.s.Delete(ctx, id); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := f.s.Prune(ctx, "acme", day0.Add(-12*time.Hour)); err != nil {
		t.Fatal(err)
	}
}

// viewRanges are ranges of randomDiary's days: single days, all of them,
// parts of a day, and a day before any work.
var viewRanges = [][2]time.Time{
	{day0.Add(-24 * time.Hour), day0},
	{day0, day0.Add(24 * time.Hour)},
	{day0.Add(24 * time.Hour), day0.Add(48 * time.Hour)},
	{day0.Add(-48 * time.Hour), day0.Add(72 * time.Hour)},
	{day0.Add(90 * time.Minute), day0.Add(3*time.Hour + 10*time.Minute)},
	{day0.Add(-3*24*time.Hour + 7*time.Second), day0.Add(-2*24*time.Hour - 3*time.Second)},
}

// logView is the view Aggregate makes of the log's own entries: what an
// export of the range carries, and what View showed before the view index.
func logView(t *testing.T, f *fixture, from, to time.Time) tracking.DiaryView {
	t.Helper()
	ctx := context.Background()
	entries, err := f.s.rangeEntries(ctx, "acme", from, to, false)
	if err != nil {
		t.Fatal(err)
	}
	wi, err := f.s.Workspace(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	v, err := Aggregate(ctx, entries, ViewParams{Workspace: "acme", Client: wi.Client, From: from, To: to, SlotSeconds: wi.SlotSeconds, Loc: time.UTC})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func sameView(t *testing.T, what string, got, want tracking.DiaryView) {
	t.Helper()
	g, _ := json.MarshalIndent(got, "", " ")
	w, _ := json.MarshalIndent(want, "", " ")
	if string(g) != string(w) {
		t.Fatalf("%s: the view differs from the log's:\ngot  %s\nwant %s", what, g, w)
	}
}

// A view through the view index is the view of the log's own entries, for
// random diaries and ranges: the same slots, marks, gaps (in order), idle
// seconds, memos and manual time.
func TestViewMatchesTheLog(t *testing.T) {
	for seed := int64(1); seed <= 4; seed++ {
		f := newFixture(t)
		randomDiary(t, f, seed)
		slots := 0
		for _, rg := range viewRanges {
			got, err := f.s.View(context.Background(), "acme", rg[0], rg[1], time.UTC)
			if err != nil {
				t.Fatal(err)
			}
			sameView(t, fmt.Sprintf("seed %d, %s to %s", seed, rg[0], rg[1]), got, logView(t, f, rg[0], rg[1]))
			slots += got.Totals.Slots
		}
		if slots == 0 {
			t.Fatalf("seed %d: no slot in any range: the diary is empty", seed)
		}
	}
}

// A diary made before the view index (or restored from a backup of one)
// gets the index rebuilt from its log when opened, once; an entry whose
// body does not decode is left out, and the diary still opens.
func TestViewIndexRebuiltFromTheLog(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	randomDiary(t, f, 7)
	want := make([]tracking.DiaryView, len(viewRanges))
	for i, rg := range viewRanges {
		want[i] = logView(t, f, rg[0], rg[1])
	}
	count := func(s *Store) (int, int) {
		var a, sp int
		if err := s.db.QueryRow(`SELECT (SELECT COUNT(*) FROM view_activity), (SELECT COUNT(*) FROM view_spans)`).Scan(&a, &sp); err != nil {
			t.Fatal(err)
		}
		return a, sp
	}
	var logA, logS, logSessions, sessions int
	if err := f.s.db.QueryRow(`SELECT (SELECT COUNT(*) FROM log WHERE type='activity'), (SELECT COUNT(*) FROM log WHERE type IN ('idle','gap','manual')),
		(SELECT COUNT(*) FROM log WHERE type='session_start'), (SELECT COUNT(*) FROM view_sessions WHERE start > 0 AND stop > start AND memo != '')`).Scan(&logA, &logS, &logSessions, &sessions); err != nil {
		t.Fatal(err)
	}
	if a, sp := count(f.s); a != logA || sp != logS || sessions != logSessions {
		t.Fatalf("appends indexed %d activity minutes, %d spans and %d sessions; the log holds %d, %d and %d", a, sp, sessions, logA, logS, logSessions)
	}

	// The diary as an older version left it: no index rows, version 0.
	for _, q := range []string{`DELETE FROM view_activity`, `DELETE FROM view_spans`, `DELETE FROM view_sessions`, `PRAGMA user_version = 0`} {
		if _, err := f.s.db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	reopen := func() *Store {
		f.s.Close()
		s, err := Open(ctx, f.dir+"/diary", Options{Now: f.clk.Now})
		if err != nil {
			t.Fatal(err)
		}
		s.Unlock(f.keys)
		f.s = s
		t.Cleanup(func() { s.Close() })
		return s
	}
	s := reopen()
	if a, sp := count(s); a != logA || sp != logS {
		t.Fatalf("rebuilt %d activity minutes and %d spans; the log holds %d and %d", a, sp, logA, logS)
	}
	for i, rg := range viewRanges {
		got, err := s.View(ctx, "acme", rg[0], rg[1], time.UTC)
		if err != nil {
			t.Fatal(err)
		}
		sameView(t, fmt.Sprintf("rebuilt, %s to %s", rg[0], rg[1]), got, want[i])
	}

	// Built once: a later open leaves the index as it is.
	if _, err := s.db.Exec(`DELETE FROM view_spans`); err != nil {
		t.Fatal(err)
	}
	s = reopen()
	if _, sp := count(s); sp != 0 {
		t.Fatalf("a second open rebuilt the index (%d spans)", sp)
	}

	// A body that does not decode is left out; the rest is rebuilt.
	if _, err := s.db.Exec(`UPDATE log SET body = CAST('{"id":' AS BLOB) WHERE idx = (SELECT MIN(idx) FROM log WHERE type='activity')`); err != nil {
		t.Fatal(err)
	}
	if _, err := s.db.Exec(`PRAGMA user_version = 0`); err != nil {
		t.Fatal(err)
	}
	s = reopen()
	if a, sp := count(s); a != logA-1 || sp != logS {
		t.Fatalf("with one bad body: rebuilt %d activity minutes and %d spans; want %d and %d", a, sp, logA-1, logS)
	}
}

// `diary check` compares the view index with the log: an index row altered
// outside the diary (a view would show hours the log does not hold) is
// named, the index is rebuilt from the log, and the next check passes.
func TestCheckFindsAnAlteredViewIndex(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	randomDiary(t, f, 3)
	if _, err := f.s.Check(ctx, "acme"); err != nil {
		t.Fatalf("check of an unaltered diary: %v", err)
	}
	rg := viewRanges[1]
	for _, tc := range []struct{ what, alter string }{
		{"activity minutes", `UPDATE view_activity SET active = 60, keys = keys + 1000 WHERE idx = (SELECT MIN(idx) FROM view_activity)`},
		{"idle, gap and manual spans", `UPDATE view_spans SET span_end = span_end + 86400 WHERE idx = (SELECT MAX(idx) FROM view_spans WHERE type = 'gap')`},
		{"idle, gap and manual spans", `DELETE FROM view_spans WHERE type = 'manual'`},
		{"sessions", `UPDATE view_sessions SET memo = 'forged'`},
	} {
		if _, err := f.s.db.Exec(tc.alter); err != nil {
			t.Fatal(err)
		}
		_, err := f.s.Check(ctx, "acme")
		if err == nil || !strings.Contains(err.Error(), "view index's "+tc.what) {
			t.Fatalf("%s: check of an altered view index: %v", tc.alter, err)
		}
		if _, err := f.s.Check(ctx, "acme"); err != nil {
			t.Fatalf("%s: check after the rebuild: %v", tc.alter, err)
		}
		got, err := f.s.View(ctx, "acme", rg[0], rg[1], time.UTC)
		if err != nil {
			t.Fatal(err)
		}
		sameView(t, "after the rebuild", got, logView(t, f, rg[0], rg[1]))
	}
}
