package diary

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"
)

// The view index holds what a view needs of the log's activity minutes and
// spans (idle, gap, manual), in columns and clustered by time: most of a
// day's entries are of those kinds, and a view then reads them as a few
// integers each, with no JSON to decode and no second lookup per row. It
// also holds each tracking session's span and memo, found by when it
// stopped, so a view reads the sessions that may overlap its range, not
// every session of the diary's history.
//
// It is derived from the log and is not evidence: each entry's row is
// written from the entry's body bytes in the transaction that appends it,
// and a diary without the index (made before it existed, or restored from
// such a backup) has it rebuilt from the log when opened. Exports, checks
// and the client's verify read the log itself.
const viewIndexSchema = `
CREATE TABLE IF NOT EXISTS view_activity(
	ws TEXT NOT NULL, minute INTEGER NOT NULL, idx INTEGER NOT NULL,
	keys INTEGER NOT NULL, clicks INTEGER NOT NULL, moves INTEGER NOT NULL,
	scrolls INTEGER NOT NULL, active INTEGER NOT NULL,
	PRIMARY KEY(ws, minute, idx)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS view_spans(
	ws TEXT NOT NULL, type TEXT NOT NULL, span_start INTEGER NOT NULL, idx INTEGER NOT NULL,
	span_end INTEGER NOT NULL, id TEXT NOT NULL, reason TEXT NOT NULL, memo TEXT NOT NULL,
	PRIMARY KEY(ws, type, span_start, idx)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS view_sessions(
	ws TEXT NOT NULL, id TEXT NOT NULL,
	start INTEGER NOT NULL DEFAULT 0, stop INTEGER NOT NULL DEFAULT 9223372036854775807, memo TEXT NOT NULL DEFAULT '',
	PRIMARY KEY(ws, id)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS view_sessions_stop ON view_sessions(ws, stop);
`

// viewIndexVersion is the diary database's user_version once the view
// index is complete; a lower one makes Open rebuild it.
const viewIndexVersion = 1

// errBadBody is an entry whose body does not decode as its type's.
var errBadBody = errors.New("body does not decode")

// indexEntry writes the view index row of the entry at idx, when its type
// has one, from the body bytes the log holds.
func indexEntry(ctx context.Context, tx execer, ws string, idx int64, typ string, body []byte) error {
	switch typ {
	case TypeActivity:
		var a ActivityBody
		if err := decodeBody(body, &a); err != nil {
			return fmt.Errorf("index entry %d (%s): %w: %w", idx, typ, errBadBody, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO view_activity(ws, minute, idx, keys, clicks, moves, scrolls, active) VALUES(?,?,?,?,?,?,?,?)`,
			ws, a.Minute, idx, a.Keys, a.Clicks, a.Moves, a.Scrolls, a.Active); err != nil {
			return fmt.Errorf("index entry %d (%s): %w", idx, typ, err)
		}
	case TypeIdle, TypeGap, TypeManual:
		var sp SpanBody
		if err := decodeBody(body, &sp); err != nil {
			return fmt.Errorf("index entry %d (%s): %w: %w", idx, typ, errBadBody, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO view_spans(ws, type, span_start, idx, span_end, id, reason, memo) VALUES(?,?,?,?,?,?,?,?)`,
			ws, typ, sp.Start, idx, sp.End, sp.ID, sp.Reason, sp.Memo); err != nil {
			return fmt.Errorf("index entry %d (%s): %w", idx, typ, err)
		}
	case TypeSessionStart, TypeSessionStop:
		// As readFacts: the last start of a session sets its start and
		// memo, the last stop its stop.
		var ss SessionBody
		if err := decodeBody(body, &ss); err != nil {
			return fmt.Errorf("index entry %d (%s): %w: %w", idx, typ, errBadBody, err)
		}
		q := `INSERT INTO view_sessions(ws, id, start, memo) VALUES(?,?,?,?) ON CONFLICT(ws, id) DO UPDATE SET start=excluded.start, memo=excluded.memo`
		args := []any{ws, ss.ID, ss.Time, ss.Memo}
		if typ == TypeSessionStop {
			q = `INSERT INTO view_sessions(ws, id, stop) VALUES(?,?,?) ON CONFLICT(ws, id) DO UPDATE SET stop=excluded.stop`
			args = args[:3]
		}
		if _, err := tx.ExecContext(ctx, q, args...); err != nil {
			return fmt.Errorf("index entry %d (%s): %w", idx, typ, err)
		}
	}
	return nil
}

// ensureViewIndex rebuilds the view index from the log unless the database
// says it is complete, in one transaction: a crash leaves the old state,
// and the next Open starts again.
func (s *Store) ensureViewIndex(ctx context.Context) error {
	var version int
	if err := s.db.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&version); err != nil {
		return fmt.Errorf("read diary version: %w", err)
	}
	if version >= viewIndexVersion {
		return nil
	}
	return s.rebuildViewIndex(ctx)
}

// rebuildViewIndex replaces the view index with one derived from the log,
// and marks it complete.
func (s *Store) rebuildViewIndex(ctx context.Context) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("rebuild view index: %w", err)
	}
	defer tx.Rollback()
	entries, err := s.indexLog(ctx, tx, "")
	if err != nil {
		return fmt.Errorf("rebuild view index: %w", err)
	}
	if _, err := tx.ExecContext(ctx, fmt.Sprintf(`PRAGMA user_version = %d`, viewIndexVersion)); err != nil {
		return fmt.Errorf("rebuild view index: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("rebuild view index: %w", err)
	}
	if entries > 0 {
		s.log.Info("rebuilt the diary's view index from its log", "entries", entries)
	}
	return nil
}

// viewTables are the view index's tables, with what each holds.
var viewTables = []struct{ table, holds string }{
	{"view_activity", "activity minutes"},
	{"view_spans", "idle, gap and manual spans"},
	{"view_sessions", "sessions"},
}

// indexLog deletes the view index rows of ws (of every workspace when ws
// is "") inside tx and writes them again from the log, a batch of entries
// at a time, in log order; it returns how many entries it indexed. An
// entry whose body does not decode (which `workspace diary check`
// reports) is left out with a warning, so the rest of the diary stays
// viewable.
func (s *Store) indexLog(ctx context.Context, tx *sql.Tx, ws string) (int, error) {
	for _, t := range viewTables {
		del, args := `DELETE FROM `+t.table, []any{}
		if ws != "" {
			del, args = del+` WHERE ws = ?`, []any{ws}
		}
		if _, err := tx.ExecContext(ctx, del, args...); err != nil {
			return 0, err
		}
	}
	query := `SELECT ws, idx, type, body FROM log WHERE (ws, idx) > (?, ?)`
	if ws != "" {
		query = `SELECT ws, idx, type, body FROM log WHERE ws = ? AND idx > ?`
	}
	query += ` AND type IN ('activity','idle','gap','manual','session_start','session_stop') ORDER BY ws, idx LIMIT 2000`
	type row struct {
		ws   string
		idx  int64
		typ  string
		body []byte
	}
	ex := &txStmts{tx: tx}
	defer ex.close()
	entries, after, afterIdx := 0, ws, int64(-1)
	for {
		// A batch at a time, read before it is written.
		var batch []row
		err := queryRows(ctx, tx, query, []any{after, afterIdx}, func(rows *sql.Rows) error {
			var r row
			err := rows.Scan(&r.ws, &r.idx, &r.typ, &r.body)
			batch = append(batch, r)
			return err
		})
		if err != nil {
			return entries, err
		}
		if len(batch) == 0 {
			return entries, nil
		}
		for _, r := range batch {
			err := indexEntry(ctx, ex, r.ws, r.idx, r.typ, r.body)
			if errors.Is(err, errBadBody) {
				s.log.Warn("entry left out of the view index (run `workspace diary check`)", "workspace", r.ws, "error", err)
				continue
			}
			if err != nil {
				return entries, err
			}
			entries++
		}
		after, afterIdx = batch[len(batch)-1].ws, batch[len(batch)-1].idx
	}
}

// ceilSeconds is the first whole second at or after t: an entry time in
// whole seconds u lies at or after t exactly when u >= ceilSeconds(t).
func ceilSeconds(t time.Time) int64 {
	ms := t.UnixMilli()
	return ms/1000 + min(1, max(0, ms%1000))
}

// The view index's queries: a workspace's rows of a time range, each a
// search of the primary key (TestViewIndexQueriesSearch pins that). Each
// kind of span is read with only the columns a view uses of it: idle spans,
// which only add up, not even in log order.
const (
	viewActivityQuery = `SELECT minute, keys, clicks, moves, scrolls, active FROM view_activity
		WHERE ws=? AND minute >= ? AND minute < ?`
	viewIdleQuery = `SELECT span_start, span_end FROM view_spans
		WHERE ws=? AND type='idle' AND span_start >= ? AND span_start < ?`
	viewGapsQuery = `SELECT idx, span_start, span_end, reason FROM view_spans
		WHERE ws=? AND type='gap' AND span_start >= ? AND span_start < ?`
	viewManualQuery = `SELECT idx, span_start, span_end, id, memo FROM view_spans
		WHERE ws=? AND type='manual' AND span_start >= ? AND span_start < ?`
	// Sessions stopped after the range started (a running one's stop is
	// math.MaxInt64), that started before it ends.
	viewSessionsQuery = `SELECT id, start, stop, memo FROM view_sessions WHERE ws=? AND stop > ? AND start < ?`
)

// addIndexedFacts adds the view index's activity minutes, spans and
// sessions of [from, to) to f: for a range of whole seconds (every view's),
// the same ones with the same values that rangeQuery's entries give
// readFacts (spans from spanReach before the range on), gaps and manual
// time in log order; of the sessions, those that may overlap the range.
func (s *Store) addIndexedFacts(ctx context.Context, ws string, from, to time.Time, f *facts) error {
	lo, hi, spanLo := ceilSeconds(from), ceilSeconds(to), ceilSeconds(from.Add(-spanReach))
	err := queryRows(ctx, s.db, viewActivityQuery, []any{ws, lo, hi}, func(rows *sql.Rows) error {
		var a ActivityBody
		if err := rows.Scan(&a.Minute, &a.Keys, &a.Clicks, &a.Moves, &a.Scrolls, &a.Active); err != nil {
			return err
		}
		f.activity = append(f.activity, a)
		return nil
	})
	if err != nil {
		return fmt.Errorf("read activity of %q: %w", ws, err)
	}
	err = queryRows(ctx, s.db, viewIdleQuery, []any{ws, spanLo, hi}, func(rows *sql.Rows) error {
		var sp SpanBody
		if err := rows.Scan(&sp.Start, &sp.End); err != nil {
			return err
		}
		f.idle = append(f.idle, sp)
		return nil
	})
	if err != nil {
		return fmt.Errorf("read idle time of %q: %w", ws, err)
	}
	type span struct {
		idx  int64
		body SpanBody
	}
	var gaps, manual []span
	reasons := map[string]string{} // one string per reason, not per row
	err = queryRows(ctx, s.db, viewGapsQuery, []any{ws, spanLo, hi}, func(rows *sql.Rows) error {
		var sp span
		var reason sql.RawBytes
		if err := rows.Scan(&sp.idx, &sp.body.Start, &sp.body.End, &reason); err != nil {
			return err
		}
		r, ok := reasons[string(reason)]
		if !ok {
			r = string(reason)
			reasons[r] = r
		}
		sp.body.Reason = r
		gaps = append(gaps, sp)
		return nil
	})
	if err != nil {
		return fmt.Errorf("read gaps of %q: %w", ws, err)
	}
	err = queryRows(ctx, s.db, viewManualQuery, []any{ws, spanLo, hi}, func(rows *sql.Rows) error {
		var sp span
		if err := rows.Scan(&sp.idx, &sp.body.Start, &sp.body.End, &sp.body.ID, &sp.body.Memo); err != nil {
			return err
		}
		manual = append(manual, sp)
		return nil
	})
	if err != nil {
		return fmt.Errorf("read manual time of %q: %w", ws, err)
	}
	err = queryRows(ctx, s.db, viewSessionsQuery, []any{ws, from.Unix(), hi}, func(rows *sql.Rows) error {
		var id string
		var ss session
		if err := rows.Scan(&id, &ss.start, &ss.stop, &ss.memo); err != nil {
			return err
		}
		if ss.stop == math.MaxInt64 {
			ss.stop = 0 // running
		}
		f.sessions[id] = &ss
		return nil
	})
	if err != nil {
		return fmt.Errorf("read sessions of %q: %w", ws, err)
	}
	byIndex := func(a, b span) int { return cmp.Compare(a.idx, b.idx) }
	slices.SortFunc(gaps, byIndex)
	slices.SortFunc(manual, byIndex)
	for _, sp := range gaps {
		f.gaps = append(f.gaps, sp.body)
	}
	for _, sp := range manual {
		f.manual = append(f.manual, sp.body)
	}
	return nil
}

// queryRows runs query and calls row for each of its rows.
func queryRows(ctx context.Context, q querier, query string, args []any, row func(*sql.Rows) error) error {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := row(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// checkViewIndex indexes ws's log again, under the write lock (no append
// in between), and compares the result with the rows the index held. When
// they are the same nothing changes; when they differ, the index keeps the
// new rows and the error says what differed: views had shown figures the
// log (and any export) does not hold.
func (s *Store) checkViewIndex(ctx context.Context, ws string) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("check view index: %w", err)
	}
	// Rolled back, the temporary tables go too.
	defer tx.Rollback()
	for _, t := range viewTables {
		if _, err := tx.ExecContext(ctx, `CREATE TEMP TABLE kept_`+t.table+` AS SELECT * FROM `+t.table+` WHERE ws = ?`, ws); err != nil {
			return fmt.Errorf("check view index: %w", err)
		}
	}
	if _, err := s.indexLog(ctx, tx, ws); err != nil {
		return fmt.Errorf("check view index: %w", err)
	}
	differs := ""
	for _, t := range viewTables {
		var diff bool
		err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT * FROM kept_`+t.table+` EXCEPT SELECT * FROM `+t.table+` WHERE ws = ?)
			OR EXISTS (SELECT * FROM `+t.table+` WHERE ws = ? EXCEPT SELECT * FROM kept_`+t.table+`)`, ws, ws).Scan(&diff)
		if err != nil {
			return fmt.Errorf("check view index: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `DROP TABLE temp.kept_`+t.table); err != nil {
			return fmt.Errorf("check view index: %w", err)
		}
		if diff && differs == "" {
			differs = t.holds
		}
	}
	if differs == "" {
		return nil
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("the view index's %s differ from the log, and rebuilding it failed: %w", differs, err)
	}
	return fmt.Errorf("the view index's %s differed from the log (altered outside the diary): views showed figures the log does not hold; it is now rebuilt from the log", differs)
}
