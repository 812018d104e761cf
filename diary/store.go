// Package diary owns the work diary: the encrypted, tamper-evident store of
// screenshots and activity on the freelancer's machine, its review actions
// (cover, reveal, delete, manual time, prune), and the signed, encrypted
// export the client verifies offline.
package diary

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	_ "modernc.org/sqlite" // the SQLite driver
)

// Errors callers map to their own classes.
var (
	ErrNotFound = errors.New("not found")
	ErrInvalid  = errors.New("invalid")
	ErrConflict = errors.New("conflict")
)

const schema = `
CREATE TABLE IF NOT EXISTS workspaces(
	name TEXT PRIMARY KEY,
	client TEXT NOT NULL DEFAULT '',
	recipient TEXT NOT NULL DEFAULT '',
	slot_seconds INTEGER NOT NULL,
	wrapped_key BLOB NOT NULL,
	created INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS log(
	ws TEXT NOT NULL, idx INTEGER NOT NULL,
	type TEXT NOT NULL, time INTEGER NOT NULL, ref TEXT NOT NULL,
	header BLOB NOT NULL, body BLOB NOT NULL,
	PRIMARY KEY(ws, idx));
CREATE INDEX IF NOT EXISTS log_time ON log(ws, time);
CREATE INDEX IF NOT EXISTS log_ref ON log(ws, ref);
CREATE INDEX IF NOT EXISTS log_type ON log(ws, type, time);
CREATE TABLE IF NOT EXISTS hashes(ws TEXT NOT NULL, id INTEGER NOT NULL, hash BLOB NOT NULL, PRIMARY KEY(ws, id));
CREATE TABLE IF NOT EXISTS checkpoints(ws TEXT PRIMARY KEY, size INTEGER NOT NULL, note BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS records(id TEXT PRIMARY KEY, ws TEXT NOT NULL, idx INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS shots(
	id TEXT PRIMARY KEY, ws TEXT NOT NULL, idx INTEGER NOT NULL, taken INTEGER NOT NULL,
	secret BLOB, state TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS shots_taken ON shots(ws, taken);
CREATE TABLE IF NOT EXISTS retakes(orig TEXT PRIMARY KEY, ws TEXT NOT NULL, shot TEXT NOT NULL);
`

// Store is the diary of every workspace: a SQLite index (WAL, synchronous
// FULL) and sealed blob files beside it.
type Store struct {
	dir  string
	db   *sql.DB
	log  hclog.Logger
	now  func() time.Time
	wmu  sync.Mutex // one writer at a time
	kmu  sync.RWMutex
	keys *Keys
	why  error             // why keys is nil: ErrLocked or ErrNotInitialized
	dks  map[string][]byte // unwrapped workspace data keys

	onAppend func(ws string, size int64)
}

// Options configure Open.
type Options struct {
	Logger hclog.Logger
	// Now is the clock (tests inject one); time.Now by default.
	Now func() time.Time
	// OnAppend, when set, is told of every durable append (the workspace
	// and its log's new size): the daemon's witness queue listens.
	OnAppend func(ws string, size int64)
}

// Open opens (creating when needed) the diary in dir.
func Open(ctx context.Context, dir string, opts Options) (*Store, error) {
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if err := os.MkdirAll(filepath.Join(dir, "blobs"), 0o700); err != nil {
		return nil, fmt.Errorf("open diary: %w", err)
	}
	q := url.Values{}
	for _, p := range []string{"journal_mode(WAL)", "synchronous(FULL)", "busy_timeout(10000)", "secure_delete(ON)", "foreign_keys(ON)"} {
		q.Add("_pragma", p)
	}
	q.Set("_txlock", "immediate")
	dsn := "file:" + filepath.Join(dir, "diary.db") + "?" + q.Encode()
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open diary database: %w", err)
	}
	if _, err := db.ExecContext(ctx, schema+witnessSchema+viewIndexSchema); err != nil {
		db.Close()
		return nil, fmt.Errorf("open diary database: %w", err)
	}
	s := &Store{dir: dir, db: db, log: opts.Logger, now: opts.Now, why: ErrLocked, dks: map[string][]byte{}, onAppend: opts.OnAppend}
	if err := s.ensureViewIndex(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open diary database: %w", err)
	}
	if err := s.sweepOrphans(ctx); err != nil {
		s.log.Warn("could not sweep orphan blobs", "error", err)
	}
	return s, nil
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// Dir is the diary directory.
func (s *Store) Dir() string { return s.dir }

// Unlock gives the store the freelancer's keys.
func (s *Store) Unlock(k *Keys) {
	s.kmu.Lock()
	defer s.kmu.Unlock()
	s.keys = k
	s.dks = map[string][]byte{}
}

// SetLockReason says why the store has no keys yet (ErrLocked or
// ErrNotInitialized); writes fail with it until Unlock.
func (s *Store) SetLockReason(err error) {
	s.kmu.Lock()
	defer s.kmu.Unlock()
	s.why = err
}

// Keys returns the unlocked keys, or why there are none.
func (s *Store) Keys() (*Keys, error) {
	s.kmu.RLock()
	defer s.kmu.RUnlock()
	if s.keys == nil {
		return nil, s.why
	}
	return s.keys, nil
}

// WorkspaceOptions describe a workspace's diary.
type WorkspaceOptions struct {
	Client      string
	Recipient   string
	SlotSeconds int
}

// WorkspaceInfo is a workspace's diary record.
type WorkspaceInfo struct {
	Name string
	WorkspaceOptions
	Created time.Time
}

// EnsureWorkspace creates the diary of a workspace (with a new data key
// wrapped to the identity) or updates its client, recipient and slot.
func (s *Store) EnsureWorkspace(ctx context.Context, ws string, o WorkspaceOptions) error {
	if o.SlotSeconds <= 0 {
		o.SlotSeconds = int(DefaultSlot / time.Second)
	}
	keys, err := s.Keys()
	if err != nil {
		return fmt.Errorf("diary of %q: %w", ws, err)
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	res, err := s.db.ExecContext(ctx, `UPDATE workspaces SET client=?, recipient=?, slot_seconds=? WHERE name=?`, o.Client, o.Recipient, o.SlotSeconds, ws)
	if err != nil {
		return fmt.Errorf("diary of %q: %w", ws, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("diary of %q: %w", ws, err)
	}
	if n > 0 {
		return nil
	}
	dk, err := newDataKey()
	if err != nil {
		return err
	}
	wrapped, err := ageEncrypt(dk, keys.Recipient())
	if err != nil {
		return fmt.Errorf("diary of %q: wrap data key: %w", ws, err)
	}
	if _, err := s.db.ExecContext(ctx, `INSERT INTO workspaces(name, client, recipient, slot_seconds, wrapped_key, created) VALUES(?,?,?,?,?,?)`,
		ws, o.Client, o.Recipient, o.SlotSeconds, wrapped, s.now().Unix()); err != nil {
		return fmt.Errorf("diary of %q: %w", ws, err)
	}
	s.log.Info("diary created", "workspace", ws)
	return nil
}

// Workspace returns a workspace's diary record.
func (s *Store) Workspace(ctx context.Context, ws string) (WorkspaceInfo, error) {
	var wi WorkspaceInfo
	var created int64
	err := s.db.QueryRowContext(ctx, `SELECT name, client, recipient, slot_seconds, created FROM workspaces WHERE name=?`, ws).
		Scan(&wi.Name, &wi.Client, &wi.Recipient, &wi.SlotSeconds, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return wi, fmt.Errorf("%w: no diary for workspace %q", ErrNotFound, ws)
	}
	if err != nil {
		return wi, fmt.Errorf("diary of %q: %w", ws, err)
	}
	wi.Created = time.Unix(created, 0)
	return wi, nil
}

// Workspaces lists the workspaces that have a diary.
func (s *Store) Workspaces(ctx context.Context) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT name FROM workspaces ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list diaries: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, rows.Err()
}

// dataKey unwraps (once) the data key of ws.
func (s *Store) dataKey(ctx context.Context, ws string) ([]byte, error) {
	keys, err := s.Keys()
	if err != nil {
		return nil, err
	}
	s.kmu.RLock()
	dk := s.dks[ws]
	s.kmu.RUnlock()
	if dk != nil {
		return dk, nil
	}
	var wrapped []byte
	err = s.db.QueryRowContext(ctx, `SELECT wrapped_key FROM workspaces WHERE name=?`, ws).Scan(&wrapped)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: no diary for workspace %q", ErrNotFound, ws)
	}
	if err != nil {
		return nil, err
	}
	dk, err = ageDecrypt(wrapped, keys.Identity())
	if err != nil {
		return nil, fmt.Errorf("unwrap data key of %q: %w", ws, err)
	}
	s.kmu.Lock()
	s.dks[ws] = dk
	s.kmu.Unlock()
	return dk, nil
}

var idRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$`)

func checkID(what, id string) error {
	if !idRE.MatchString(id) {
		return fmt.Errorf("%w: %s id %q: use 1-64 letters, digits, '-' or '_'", ErrInvalid, what, id)
	}
	return nil
}
