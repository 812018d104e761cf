package diary

import (
	"context"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/workspace-sandbox/workspace/internal/atomicfile"
	"golang.org/x/mod/sumdb/tlog"
)

// querier is what a hash reader needs from a *sql.DB or *sql.Tx.
type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// hashReader reads stored tlog hashes of one workspace, with a cache.
type hashReader struct {
	ctx   context.Context
	q     querier
	ws    string
	cache map[int64]tlog.Hash
}

func newHashReader(ctx context.Context, q querier, ws string) *hashReader {
	return &hashReader{ctx: ctx, q: q, ws: ws, cache: map[int64]tlog.Hash{}}
}

func (r *hashReader) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, id := range indexes {
		if h, ok := r.cache[id]; ok {
			out[i] = h
			continue
		}
		var b []byte
		err := r.q.QueryRowContext(r.ctx, `SELECT hash FROM hashes WHERE ws=? AND id=?`, r.ws, id).Scan(&b)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, fmt.Errorf("log hash %d is missing", id)
		}
		if err != nil {
			return nil, err
		}
		if len(b) != tlog.HashSize {
			return nil, fmt.Errorf("log hash %d is damaged", id)
		}
		copy(out[i][:], b)
		r.cache[id] = out[i]
	}
	return out, nil
}

// loadAll fills the cache with every stored hash of the workspace (export
// and check read many proofs).
func (r *hashReader) loadAll() error {
	rows, err := r.q.QueryContext(r.ctx, `SELECT id, hash FROM hashes WHERE ws=?`, r.ws)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var b []byte
		if err := rows.Scan(&id, &b); err != nil {
			return err
		}
		if len(b) == tlog.HashSize {
			var h tlog.Hash
			copy(h[:], b)
			r.cache[id] = h
		}
	}
	return rows.Err()
}

// pending is an entry about to be appended.
type pending struct {
	typ, ref string
	at       time.Time
	body     any
	record   string // idempotency id (empty: none)
	shot     *shotRow
}

type shotRow struct {
	id     string
	taken  int64
	secret []byte
}

// execer runs a statement: a transaction, or its prepared statements.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// txStmts runs statements in tx, each prepared once: an append of many
// entries runs the same few statements for each, and SQLite's parser costs
// more than its insert.
type txStmts struct {
	tx    *sql.Tx
	stmts map[string]*sql.Stmt
}

func (t *txStmts) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	st := t.stmts[query]
	if st == nil {
		var err error
		if st, err = t.tx.PrepareContext(ctx, query); err != nil {
			return nil, err
		}
		if t.stmts == nil {
			t.stmts = map[string]*sql.Stmt{}
		}
		t.stmts[query] = st
	}
	return st.ExecContext(ctx, args...)
}

func (t *txStmts) close() {
	for _, st := range t.stmts {
		st.Close()
	}
}

// appendTx appends entries to ws's log inside tx, and stores a new signed
// checkpoint. It returns the new log size and the signed checkpoint.
func (s *Store) appendTx(ctx context.Context, tx *sql.Tx, ws string, items []pending) (int64, []byte, error) {
	keys, err := s.Keys()
	if err != nil {
		return 0, nil, err
	}
	var n int64
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(idx)+1, 0) FROM log WHERE ws=?`, ws).Scan(&n); err != nil {
		return 0, nil, fmt.Errorf("log size: %w", err)
	}
	r := newHashReader(ctx, tx, ws)
	logged := s.now()
	ex := &txStmts{tx: tx}
	defer ex.close()
	for _, it := range items {
		header, body, _, err := encodeEntry(ws, it.typ, it.ref, it.at, logged, it.body)
		if err != nil {
			return 0, nil, err
		}
		hs, err := tlog.StoredHashes(n, header, r)
		if err != nil {
			return 0, nil, fmt.Errorf("log hashes of entry %d: %w", n, err)
		}
		base := tlog.StoredHashIndex(0, n)
		for i, h := range hs {
			if _, err := ex.ExecContext(ctx, `INSERT INTO hashes(ws, id, hash) VALUES(?,?,?)`, ws, base+int64(i), h[:]); err != nil {
				return 0, nil, fmt.Errorf("store log hash: %w", err)
			}
			r.cache[base+int64(i)] = h
		}
		if _, err := ex.ExecContext(ctx, `INSERT INTO log(ws, idx, type, time, ref, header, body) VALUES(?,?,?,?,?,?,?)`,
			ws, n, it.typ, it.at.UnixMilli(), it.ref, header, body); err != nil {
			return 0, nil, fmt.Errorf("append entry %d: %w", n, err)
		}
		if err := indexEntry(ctx, ex, ws, n, it.typ, body); err != nil {
			return 0, nil, err
		}
		if it.record != "" {
			if _, err := ex.ExecContext(ctx, `INSERT INTO records(id, ws, idx) VALUES(?,?,?)`, it.record, ws, n); err != nil {
				return 0, nil, fmt.Errorf("record id %q: %w", it.record, err)
			}
		}
		if it.shot != nil {
			if _, err := ex.ExecContext(ctx, `INSERT INTO shots(id, ws, idx, taken, secret, state) VALUES(?,?,?,?,?,'ok')`,
				it.shot.id, ws, n, it.shot.taken, it.shot.secret); err != nil {
				return 0, nil, fmt.Errorf("shot %q: %w", it.shot.id, err)
			}
		}
		n++
	}
	root, err := tlog.TreeHash(n, r)
	if err != nil {
		return 0, nil, fmt.Errorf("log root: %w", err)
	}
	signed, err := signCheckpoint(keys, ws, n, root)
	if err != nil {
		return 0, nil, fmt.Errorf("sign checkpoint: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO checkpoints(ws, size, note) VALUES(?,?,?) ON CONFLICT(ws) DO UPDATE SET size=excluded.size, note=excluded.note`, ws, n, signed); err != nil {
		return 0, nil, fmt.Errorf("store checkpoint: %w", err)
	}
	return n, signed, nil
}

// commitAppend runs fn in a write transaction that ends with appending
// items; the commit is durable (WAL, synchronous=FULL) when it returns nil.
// The last signed checkpoint is also written beside the database, so a
// rolled-back database is noticed by Check.
func (s *Store) commitAppend(ctx context.Context, ws string, fn func(tx *sql.Tx) ([]pending, error)) (int64, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback()
	items, err := fn(tx)
	if err != nil {
		return 0, err
	}
	if len(items) == 0 {
		var n int64
		err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(idx)+1, 0) FROM log WHERE ws=?`, ws).Scan(&n)
		return n, err
	}
	n, signed, err := s.appendTx(ctx, tx, ws, items)
	if err != nil {
		return 0, err
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("commit: %w", err)
	}
	s.writeCheckpointFile(ws, signed)
	if s.onAppend != nil {
		s.onAppend(ws, n)
	}
	return n, nil
}

func (s *Store) checkpointPath(ws string) string {
	return filepath.Join(s.dir, "checkpoints", ws+".note")
}

// writeCheckpointFile replaces the checkpoint copy durably: a temp file
// written and fsynced, renamed over the copy, and the directory fsynced, so
// after a crash the copy is the old checkpoint or the new one, never a torn
// one. The database commit came first; a failure here is logged (Check
// then sees an older copy, which is not an error).
func (s *Store) writeCheckpointFile(ws string, signed []byte) {
	p := s.checkpointPath(ws)
	err := os.MkdirAll(filepath.Dir(p), 0o700)
	if err == nil {
		err = atomicfile.Write(p, signed, 0o600)
	}
	if err != nil {
		s.log.Warn("could not write checkpoint copy", "workspace", ws, "error", err)
	}
}

// loadEntries reads entries of ws with a WHERE clause on log columns.
func loadEntries(ctx context.Context, q querier, ws, where string, args ...any) ([]Entry, error) {
	return queryLog(ctx, q, ws, false, `SELECT `+logColumns(false)+` FROM log WHERE ws=? AND (`+where+`) ORDER BY idx`, append([]any{ws}, args...)...)
}

// logColumns are the columns queryLog reads an entry from: its index,
// header bytes and body; light, for a view, its index, type, time, ref and
// body from the log's columns (written with the header, in the same
// transaction) without the header bytes, which spares decoding a header
// per entry. What is exported or checked is read in full.
func logColumns(light bool) string {
	if light {
		return "idx, type, time, ref, body"
	}
	return "idx, header, body"
}

// queryLog runs query, which selects logColumns(light) from the log of ws,
// and returns its entries in the order it gives.
func queryLog(ctx context.Context, q querier, ws string, light bool, query string, args ...any) ([]Entry, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("read log of %q: %w", ws, err)
	}
	defer rows.Close()
	var out []Entry
	for rows.Next() {
		var e Entry
		if light {
			e.Header = Header{V: 1, WS: ws}
			if err := rows.Scan(&e.Index, &e.Header.Type, &e.Header.Time, &e.Header.Ref, &e.Body); err != nil {
				return nil, err
			}
			out = append(out, e)
			continue
		}
		if err := rows.Scan(&e.Index, &e.Raw, &e.Body); err != nil {
			return nil, err
		}
		h, err := parseHeader(e.Raw)
		if err != nil {
			return nil, fmt.Errorf("entry %d: %w", e.Index, err)
		}
		e.Header = h
		out = append(out, e)
	}
	return out, rows.Err()
}

// CheckResult is what Check found.
type CheckResult struct {
	Entries int64
	Shots   int
}

// EntryError names the first bad entry.
type EntryError struct {
	Index int64
	What  string // "capture 0193…" etc.
	Err   error
}

func (e *EntryError) Error() string {
	if e.What != "" {
		return fmt.Sprintf("entry %d (%s): %v", e.Index, e.What, e.Err)
	}
	return fmt.Sprintf("entry %d: %v", e.Index, e.Err)
}

func (e *EntryError) Unwrap() error { return e.Err }

func describe(h Header) string {
	if h.Ref != "" {
		return h.Type + " " + h.Ref
	}
	return h.Type
}

// Check verifies a workspace's stored diary end to end: every entry's body
// against its header, every header against the stored tree, the tree root
// against the signed checkpoint (in the database and the copy beside it),
// and every sealed screenshot against its commitment. It names the first
// bad entry.
func (s *Store) Check(ctx context.Context, ws string) (CheckResult, error) {
	if _, err := s.Workspace(ctx, ws); err != nil {
		return CheckResult{}, err
	}
	keys, err := s.Keys()
	if err != nil {
		return CheckResult{}, err
	}
	entries, err := loadEntries(ctx, s.db, ws, "1")
	if err != nil {
		return CheckResult{}, err
	}
	stored := newHashReader(ctx, s.db, ws)
	if err := stored.loadAll(); err != nil {
		return CheckResult{}, err
	}
	mem := memHashes{}
	for i, e := range entries {
		if e.Index != int64(i) {
			return CheckResult{}, &EntryError{Index: int64(i), Err: errors.New("missing from the log")}
		}
		if sum256hex(e.Body) != e.Header.Body {
			return CheckResult{}, &EntryError{Index: e.Index, What: describe(e.Header), Err: errors.New("body does not match its hash (altered)")}
		}
		hs, err := tlog.StoredHashes(e.Index, e.Raw, mem)
		if err != nil {
			return CheckResult{}, err
		}
		base := tlog.StoredHashIndex(0, e.Index)
		for j, h := range hs {
			mem[base+int64(j)] = h
			if got, ok := stored.cache[base+int64(j)]; !ok || got != h {
				return CheckResult{}, &EntryError{Index: e.Index, What: describe(e.Header), Err: errors.New("does not match the stored log tree (altered)")}
			}
		}
	}
	size := int64(len(entries))
	var signed []byte
	var cpSize int64
	err = s.db.QueryRowContext(ctx, `SELECT size, note FROM checkpoints WHERE ws=?`, ws).Scan(&cpSize, &signed)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return CheckResult{}, err
	}
	for _, src := range []struct {
		name string
		note []byte
	}{{"database", signed}, {"copy beside the database", readFileOrNil(s.checkpointPath(ws))}} {
		if src.note == nil {
			continue
		}
		cp, err := OpenCheckpoint(src.note, keys.VerifierKey(), ws)
		if err != nil {
			return CheckResult{}, fmt.Errorf("checkpoint (%s): %w", src.name, err)
		}
		if cp.Size > size {
			return CheckResult{}, &EntryError{Index: size, Err: fmt.Errorf("missing: the signed checkpoint (%s) covers %d entries, the log has %d (truncated or rolled back)", src.name, cp.Size, size)}
		}
		// Every append signs a new checkpoint in its own transaction, so
		// the database's covers the whole log; the copy beside it may lag
		// behind after a crash.
		if src.name == "database" && cp.Size < size {
			e := entries[cp.Size]
			return CheckResult{}, &EntryError{Index: e.Index, What: describe(e.Header), Err: fmt.Errorf("is not covered by the signed checkpoint of %d entries (added outside the diary)", cp.Size)}
		}
		root, err := tlog.TreeHash(cp.Size, mem)
		if err != nil {
			return CheckResult{}, err
		}
		if root != cp.Root {
			return CheckResult{}, fmt.Errorf("log root of %d entries does not match the signed checkpoint (%s)", cp.Size, src.name)
		}
	}
	if size > 0 && signed == nil {
		return CheckResult{}, errors.New("the log has entries but no signed checkpoint")
	}
	shots, err := s.checkShots(ctx, ws, entries)
	if err != nil {
		return CheckResult{Entries: size, Shots: shots}, err
	}
	return CheckResult{Entries: size, Shots: shots}, s.checkViewIndex(ctx, ws)
}

func readFileOrNil(p string) []byte {
	b, err := os.ReadFile(p)
	if err != nil {
		return nil
	}
	return b
}

// memHashes is an in-memory tlog hash store.
type memHashes map[int64]tlog.Hash

func (m memHashes) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, id := range indexes {
		h, ok := m[id]
		if !ok {
			return nil, fmt.Errorf("hash %d not known", id)
		}
		out[i] = h
	}
	return out, nil
}

// proofFor returns the inclusion proof of entry i in a tree of size n.
func proofFor(r tlog.HashReader, i, n int64) ([]string, error) {
	p, err := tlog.ProveRecord(n, i, r)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(p))
	for j, h := range p {
		out[j] = base64.StdEncoding.EncodeToString(h[:])
	}
	return out, nil
}

func parseProof(p []string) (tlog.RecordProof, error) {
	out := make(tlog.RecordProof, len(p))
	for j, s := range p {
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil || len(b) != tlog.HashSize {
			return nil, errors.New("malformed proof hash")
		}
		copy(out[j][:], b)
	}
	return out, nil
}
