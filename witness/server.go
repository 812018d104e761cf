package witness

import (
	"context"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"filippo.io/torchwood"
	"github.com/hashicorp/go-hclog"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
	_ "modernc.org/sqlite" // the SQLite driver
)

const serverSchema = `
CREATE TABLE IF NOT EXISTS logs(
	origin TEXT PRIMARY KEY,
	size INTEGER NOT NULL,
	root BLOB NOT NULL,
	updated INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS log_keys(origin TEXT NOT NULL REFERENCES logs(origin), key TEXT NOT NULL, PRIMARY KEY(origin, key));
CREATE TABLE IF NOT EXISTS refusals(
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	time INTEGER NOT NULL, origin TEXT NOT NULL, status INTEGER NOT NULL, reason TEXT NOT NULL, request BLOB NOT NULL);
`

// keptRefusals is how many refused requests a server keeps (as evidence:
// a log that asks for an inconsistent tree to be cosigned misbehaves).
const keptRefusals = 1000

// Server is a witness: for every log it knows (an origin and the log's
// verifier keys), it keeps the latest cosigned size and root in SQLite and
// cosigns a new checkpoint only when its signature verifies and a
// consistency proof shows it extends that tree. It never cosigns a smaller
// or an inconsistent tree, and says why it refused.
type Server struct {
	db     *sql.DB
	signer *torchwood.CosignatureSigner
	log    hclog.Logger
	mu     sync.Mutex // one check-and-update at a time
}

// OpenServer opens (creating when needed) the witness database at path.
// signer may be nil for managing logs without serving.
func OpenServer(ctx context.Context, path string, signer *torchwood.CosignatureSigner, log hclog.Logger) (*Server, error) {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	q := url.Values{}
	for _, p := range []string{"journal_mode(WAL)", "synchronous(FULL)", "busy_timeout(10000)", "foreign_keys(ON)"} {
		q.Add("_pragma", p)
	}
	q.Set("_txlock", "immediate")
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("witness database %s: %w", path, err)
	}
	// The database is the witness's memory: readable by its owner only
	// (SQLite gives its journal files the same mode).
	f, err := os.OpenFile(abs, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("witness database %s: %w", path, err)
	}
	f.Close()
	db, err := sql.Open("sqlite", "file:"+abs+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("witness database %s: %w", path, err)
	}
	if _, err := db.ExecContext(ctx, serverSchema); err != nil {
		db.Close()
		return nil, fmt.Errorf("witness database %s: %w", path, err)
	}
	return &Server{db: db, signer: signer, log: log}, nil
}

// Close closes the database.
func (s *Server) Close() error { return s.db.Close() }

// VerifierKey is the witness's cosignature/v1 verifier key.
func (s *Server) VerifierKey() string { return s.signer.Verifier().String() }

// LogState is what a witness knows of one log.
type LogState struct {
	Origin  string    `json:"origin"`
	Size    int64     `json:"size"`
	Root    string    `json:"root"` // base64
	Updated time.Time `json:"updated,omitzero"`
	Keys    []string  `json:"keys"`
	Refused int       `json:"refused"` // refused requests kept for it
}

// AddLog makes a log known: its origin (the first line of its checkpoints)
// and a verifier key of its signer. A log starts at size 0; adding another
// key to a known log keeps its state.
func (s *Server) AddLog(ctx context.Context, origin, vkey string) error {
	if origin == "" || strings.ContainsAny(origin, "\n") || len(origin) > 1024 {
		return fmt.Errorf("origin %q: one non-empty line", origin)
	}
	v, err := note.NewVerifier(strings.TrimSpace(vkey))
	if err != nil {
		return fmt.Errorf("log key %q: %w", vkey, err)
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	empty := tlog.Hash{} // the root of size 0 is not used: size 0 needs no proof
	if _, err := tx.ExecContext(ctx, `INSERT INTO logs(origin, size, root, updated) VALUES(?,0,?,0) ON CONFLICT(origin) DO NOTHING`, origin, empty[:]); err != nil {
		return fmt.Errorf("add log %q: %w", origin, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO log_keys(origin, key) VALUES(?,?) ON CONFLICT DO NOTHING`, origin, strings.TrimSpace(vkey)); err != nil {
		return fmt.Errorf("add key of %q: %w", origin, err)
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	s.log.Info("log added", "origin", origin, "key_name", v.Name())
	return nil
}

// Logs lists the known logs.
func (s *Server) Logs(ctx context.Context) ([]LogState, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT origin, size, root, updated, (SELECT COUNT(*) FROM refusals r WHERE r.origin=logs.origin) FROM logs ORDER BY origin`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []LogState
	for rows.Next() {
		var ls LogState
		var root []byte
		var upd int64
		if err := rows.Scan(&ls.Origin, &ls.Size, &root, &upd, &ls.Refused); err != nil {
			return nil, err
		}
		ls.Root = base64.StdEncoding.EncodeToString(root)
		if upd > 0 {
			ls.Updated = time.Unix(upd, 0)
		}
		out = append(out, ls)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for i := range out {
		if out[i].Keys, err = s.keys(ctx, s.db, out[i].Origin); err != nil {
			return nil, err
		}
	}
	return out, nil
}

type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func (s *Server) keys(ctx context.Context, q querier, origin string) ([]string, error) {
	rows, err := q.QueryContext(ctx, `SELECT key FROM log_keys WHERE origin=? ORDER BY key`, origin)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	return out, rows.Err()
}

// refusal is a request the witness answers with an error status.
type refusal struct {
	status int
	known  int64 // for 409 with a size
	reason string
}

func (r *refusal) Error() string { return r.reason }

func refuse(status int, format string, a ...any) *refusal {
	return &refusal{status: status, reason: fmt.Sprintf(format, a...)}
}

// ServeHTTP serves POST /add-checkpoint (c2sp.org/tlog-witness) and, at /,
// a plain-text page with the witness's key and its logs.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == "/add-checkpoint" && r.Method == http.MethodPost:
		s.serveAddCheckpoint(w, r)
	case r.URL.Path == "/add-checkpoint":
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "add-checkpoint takes a POST", http.StatusMethodNotAllowed)
	case r.URL.Path == "/" && (r.Method == http.MethodGet || r.Method == http.MethodHead):
		s.serveIndex(w, r)
	default:
		http.NotFound(w, r)
	}
}

func (s *Server) serveIndex(w http.ResponseWriter, r *http.Request) {
	logs, err := s.Logs(r.Context())
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintf(w, "workspace witness\n\n%s\n\nlogs:\n", s.VerifierKey())
	for _, l := range logs {
		fmt.Fprintf(w, "%s size %d root %s\n", l.Origin, l.Size, l.Root)
	}
}

func (s *Server) serveAddCheckpoint(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxRequest+1))
	if err != nil {
		http.Error(w, "read request: "+err.Error(), http.StatusBadRequest)
		return
	}
	cosig, origin, err := s.addCheckpoint(r.Context(), body)
	var rf *refusal
	if errors.As(err, &rf) {
		s.log.Warn("refused a checkpoint", "origin", origin, "status", rf.status, "reason", rf.reason)
		if rf.status == http.StatusConflict && rf.known >= 0 {
			w.Header().Set("Content-Type", ContentTypeSize)
			w.WriteHeader(http.StatusConflict)
			fmt.Fprintf(w, "%d\n", rf.known)
			return
		}
		http.Error(w, rf.reason, rf.status)
		return
	}
	if err != nil {
		s.log.Error("add-checkpoint failed", "origin", origin, "error", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write(cosig)
}

// addCheckpoint checks a request and, when it passes, records the new tree
// and returns the cosignature line(s). Checking the old size and storing
// the new tree happen in one transaction under one lock, so two racing
// requests cannot roll the log back.
func (s *Server) addCheckpoint(ctx context.Context, body []byte) ([]byte, string, error) {
	req, err := ParseAddCheckpoint(body)
	if err != nil {
		return nil, "", refuse(http.StatusBadRequest, "malformed request: %v", err)
	}
	origin, _, _ := strings.Cut(string(req.Checkpoint), "\n")
	s.mu.Lock()
	defer s.mu.Unlock()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, origin, err
	}
	defer tx.Rollback()
	var known int64
	var rootB []byte
	err = tx.QueryRowContext(ctx, `SELECT size, root FROM logs WHERE origin=?`, origin).Scan(&known, &rootB)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, origin, refuse(http.StatusNotFound, "unknown log %q: this witness cosigns only logs added with `workspace witness add-log`", origin)
	}
	if err != nil {
		return nil, origin, err
	}
	keys, err := s.keys(ctx, tx, origin)
	if err != nil {
		return nil, origin, err
	}
	var vs []note.Verifier
	for _, k := range keys {
		v, err := note.NewVerifier(k)
		if err != nil {
			return nil, origin, fmt.Errorf("stored key %q of %q: %w", k, origin, err)
		}
		vs = append(vs, v)
	}
	n, err := note.Open(req.Checkpoint, note.VerifierList(vs...))
	if err != nil {
		return nil, origin, s.record(ctx, tx, origin, body, refuse(http.StatusForbidden, "the checkpoint's signature does not verify with a key of log %q: %v", origin, err))
	}
	cp, err := torchwood.ParseCheckpoint(n.Text)
	if err != nil {
		return nil, origin, refuse(http.StatusBadRequest, "malformed checkpoint: %v", err)
	}
	var root tlog.Hash
	copy(root[:], rootB)
	switch {
	case req.OldSize > cp.N:
		return nil, origin, s.record(ctx, tx, origin, body, refuse(http.StatusBadRequest, "old size %d is larger than the checkpoint's size %d", req.OldSize, cp.N))
	case req.OldSize != known:
		rf := refuse(http.StatusConflict, "the latest cosigned size of %q is %d, not %d", origin, known, req.OldSize)
		rf.known = known
		return nil, origin, rf
	case cp.N < known:
		// Unreachable (old == known and old <= size), kept as the rule.
		return nil, origin, s.record(ctx, tx, origin, body, refuse(http.StatusConflict, "size %d is smaller than the cosigned size %d: a witness never goes back", cp.N, known))
	case cp.N == known && known > 0 && cp.Hash != root:
		rf := refuse(http.StatusConflict, "size %d has another root than the one cosigned before: the log forked", cp.N)
		rf.known = -1
		return nil, origin, s.record(ctx, tx, origin, body, rf)
	case known > 0 && cp.N > known:
		if err := tlog.CheckTree(req.Proof, cp.N, cp.Hash, known, root); err != nil {
			return nil, origin, s.record(ctx, tx, origin, body, refuse(http.StatusUnprocessableEntity, "the consistency proof from size %d to %d does not verify: this tree does not extend the one cosigned before", known, cp.N))
		}
	}
	if _, err := tx.ExecContext(ctx, `UPDATE logs SET size=?, root=?, updated=? WHERE origin=? AND size=?`, cp.N, cp.Hash[:], time.Now().Unix(), origin, known); err != nil {
		return nil, origin, err
	}
	if err := tx.Commit(); err != nil {
		return nil, origin, err
	}
	signed, err := note.Sign(&note.Note{Text: n.Text}, s.signer)
	if err != nil {
		return nil, origin, err
	}
	_, sigs, err := SplitNote(signed)
	if err != nil || len(sigs) == 0 {
		return nil, origin, fmt.Errorf("cosign: %v", err)
	}
	// note.Sign keeps no other signatures: the last line is ours.
	s.log.Debug("cosigned", "origin", origin, "size", cp.N)
	return []byte(sigs[len(sigs)-1]), origin, nil
}

// record keeps a refused request of a known log as evidence, and returns rf.
func (s *Server) record(ctx context.Context, tx *sql.Tx, origin string, body []byte, rf *refusal) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO refusals(time, origin, status, reason, request) VALUES(?,?,?,?,?)`, time.Now().Unix(), origin, rf.status, rf.reason, body)
	if err == nil {
		_, err = tx.ExecContext(ctx, `DELETE FROM refusals WHERE id <= (SELECT MAX(id) FROM refusals) - ?`, keptRefusals)
	}
	if err == nil {
		err = tx.Commit()
	}
	if err != nil {
		s.log.Warn("could not keep a refused request", "origin", origin, "error", err)
	}
	return rf
}
