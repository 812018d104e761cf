package diary

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/workspace-sandbox/workspace/witness"
)

// What the store keeps of witnessing: the signed checkpoints it submitted
// or exported (a witness's cosignature is over one of them), every
// cosignature received (the first one covering an entry is its witness
// time), and the checkpoints exported (a later export proves it extends
// each of them).
const witnessSchema = `
CREATE TABLE IF NOT EXISTS signed_checkpoints(ws TEXT NOT NULL, size INTEGER NOT NULL, note BLOB NOT NULL, PRIMARY KEY(ws, size));
CREATE TABLE IF NOT EXISTS cosignatures(
	ws TEXT NOT NULL, size INTEGER NOT NULL, witness TEXT NOT NULL,
	line TEXT NOT NULL, time INTEGER NOT NULL,
	PRIMARY KEY(ws, witness, size));
CREATE TABLE IF NOT EXISTS exports(ws TEXT NOT NULL, size INTEGER NOT NULL, created INTEGER NOT NULL, PRIMARY KEY(ws, size));
`

// Tip is the latest signed checkpoint of a workspace's log.
type Tip struct {
	Origin string
	Size   int64
	Note   []byte
}

// LogID returns the origin and the log verifier key of ws's log: what a
// witness registers (`workspace witness add-log`).
func (s *Store) LogID(ws string) (origin, vkey string, err error) {
	keys, err := s.Keys()
	if err != nil {
		return "", "", err
	}
	if origin, err = LogOrigin(keys.VerifierKey(), ws); err != nil {
		return "", "", err
	}
	vkey, err = LogKey(keys.VerifierKey(), ws)
	return origin, vkey, err
}

// Tip returns ws's latest signed checkpoint, re-signed in the witnessable
// format first when the diary still holds one of the format before
// witnessing, and kept among the signed checkpoints (a witness's
// cosignature is over it).
func (s *Store) Tip(ctx context.Context, ws string) (Tip, error) {
	keys, err := s.Keys()
	if err != nil {
		return Tip{}, err
	}
	var size int64
	var signed []byte
	err = s.db.QueryRowContext(ctx, `SELECT size, note FROM checkpoints WHERE ws=?`, ws).Scan(&size, &signed)
	if errors.Is(err, sql.ErrNoRows) {
		return Tip{}, fmt.Errorf("%w: the diary of %q has no entries yet", ErrNotFound, ws)
	}
	if err != nil {
		return Tip{}, fmt.Errorf("checkpoint of %q: %w", ws, err)
	}
	cp, err := OpenCheckpoint(signed, keys.VerifierKey(), ws)
	if err != nil {
		return Tip{}, fmt.Errorf("checkpoint of %q: %w", ws, err)
	}
	if cp.Legacy() {
		if signed, err = s.resign(ctx, keys, ws, cp); err != nil {
			return Tip{}, err
		}
	}
	if _, err := s.db.ExecContext(ctx, `INSERT INTO signed_checkpoints(ws, size, note) VALUES(?,?,?) ON CONFLICT DO NOTHING`, ws, cp.Size, signed); err != nil {
		return Tip{}, fmt.Errorf("keep checkpoint of %q: %w", ws, err)
	}
	origin, _ := LogOrigin(keys.VerifierKey(), ws)
	return Tip{Origin: origin, Size: cp.Size, Note: signed}, nil
}

// resign replaces a legacy latest checkpoint by the same tree signed in the
// witnessable format, unless an append replaced it meanwhile.
func (s *Store) resign(ctx context.Context, keys *Keys, ws string, cp Checkpoint) ([]byte, error) {
	signed, err := signCheckpoint(keys, ws, cp.Size, cp.Root)
	if err != nil {
		return nil, fmt.Errorf("re-sign the checkpoint of %q: %w", ws, err)
	}
	res, err := s.db.ExecContext(ctx, `UPDATE checkpoints SET note=? WHERE ws=? AND size=?`, signed, ws, cp.Size)
	if err != nil {
		return nil, fmt.Errorf("re-sign the checkpoint of %q: %w", ws, err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return nil, fmt.Errorf("%w: the log of %q grew while its checkpoint was re-signed; try again", ErrConflict, ws)
	}
	s.writeCheckpointFile(ws, signed)
	s.log.Info("checkpoint re-signed in the witnessable format", "workspace", ws, "size", cp.Size)
	return signed, nil
}

// ConsistencyProof proves that ws's log at size from is a prefix of the
// log at size to (empty when from is 0 or equal to to).
func (s *Store) ConsistencyProof(ctx context.Context, ws string, from, to int64) (tlog.TreeProof, error) {
	if from < 0 || from > to {
		return nil, fmt.Errorf("%w: no consistency proof from size %d to %d", ErrInvalid, from, to)
	}
	if from == 0 || from == to {
		return nil, nil
	}
	p, err := tlog.ProveTree(to, from, newHashReader(ctx, s.db, ws))
	if err != nil {
		return nil, fmt.Errorf("consistency proof of %q from %d to %d: %w", ws, from, to, err)
	}
	return p, nil
}

// signedCheckpoint returns a kept signed checkpoint of ws's log.
func (s *Store) signedCheckpoint(ctx context.Context, q querier, ws string, size int64) ([]byte, error) {
	var signed []byte
	err := q.QueryRowContext(ctx, `SELECT note FROM signed_checkpoints WHERE ws=? AND size=?`, ws, size).Scan(&signed)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: no signed checkpoint of size %d of %q", ErrNotFound, size, ws)
	}
	return signed, err
}

// AddCosignature keeps a witness's cosignature line of ws's checkpoint of
// the given size, after checking it against the witness's key. The first
// cosignature of a size is kept (the earliest witness time).
func (s *Store) AddCosignature(ctx context.Context, ws string, size int64, witnessKey, line string) (time.Time, error) {
	v, err := witness.NewVerifier(witnessKey)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	signed, err := s.signedCheckpoint(ctx, s.db, ws, size)
	if err != nil {
		return time.Time{}, err
	}
	text, _, err := witness.SplitNote(signed)
	if err != nil {
		return time.Time{}, err
	}
	at, err := witness.CosignatureTime(text, line, v)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if _, err := s.db.ExecContext(ctx, `INSERT INTO cosignatures(ws, size, witness, line, time) VALUES(?,?,?,?,?) ON CONFLICT DO NOTHING`,
		ws, size, v.String(), line, at.Unix()); err != nil {
		return time.Time{}, fmt.Errorf("keep cosignature of %q: %w", ws, err)
	}
	return at, nil
}

// WitnessProgress is what ws's log has from one witness: the largest size
// it cosigned and that cosignature's time (0 and zero when none).
func (s *Store) WitnessProgress(ctx context.Context, ws, witnessKey string) (int64, time.Time, error) {
	var size, at int64
	err := s.db.QueryRowContext(ctx, `SELECT size, time FROM cosignatures WHERE ws=? AND witness=? ORDER BY size DESC LIMIT 1`, ws, strings.TrimSpace(witnessKey)).Scan(&size, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, time.Time{}, nil
	}
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("witness progress of %q: %w", ws, err)
	}
	return size, time.Unix(at, 0), nil
}

// Logged returns when entry idx of ws's log was appended (the daemon's
// clock): for a witness, how long entries have waited.
func (s *Store) Logged(ctx context.Context, ws string, idx int64) (time.Time, error) {
	var raw []byte
	if err := s.db.QueryRowContext(ctx, `SELECT header FROM log WHERE ws=? AND idx=?`, ws, idx).Scan(&raw); err != nil {
		return time.Time{}, fmt.Errorf("entry %d of %q: %w", idx, ws, err)
	}
	h, err := parseHeader(raw)
	if err != nil {
		return time.Time{}, err
	}
	return time.UnixMilli(h.Logged), nil
}

// rememberExport records that an export of ws carried the checkpoint of
// size: every later export proves that it extends it.
func (s *Store) rememberExport(ctx context.Context, ws string, size int64) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO exports(ws, size, created) VALUES(?,?,?) ON CONFLICT DO NOTHING`, ws, size, s.now().Unix())
	return err
}
