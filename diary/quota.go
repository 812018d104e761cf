package diary

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// What the daemon's quotas need to know of a workspace's diary: how many
// captures a slot already holds, and how many bytes of blobs the
// workspace wrote since a time (its day).

// CapturesIn counts the captures of ws taken in [from, to), deleted and
// shredded ones included (they were stored all the same).
func (s *Store) CapturesIn(ctx context.Context, ws string, from, to time.Time) (int, error) {
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM shots WHERE ws=? AND taken >= ? AND taken < ?`, ws, from.UnixMilli(), to.UnixMilli()).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count captures of %q: %w", ws, err)
	}
	return n, nil
}

// BlobBytesSince adds up the sizes of ws's blob files written since t.
func (s *Store) BlobBytesSince(ws string, t time.Time) (int64, error) {
	dir := filepath.Join(s.dir, "blobs", ws)
	files, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("list blobs of %q: %w", ws, err)
	}
	var n int64
	for _, f := range files {
		fi, err := f.Info()
		if err != nil || fi.ModTime().Before(t) {
			continue
		}
		n += fi.Size()
	}
	return n, nil
}

// HasRecord says whether ws already stored a record or capture of this id
// (a replay, which the store answers as a duplicate).
func (s *Store) HasRecord(ctx context.Context, ws, id string) (bool, error) {
	dup, err := s.seen(ctx, ws, id)
	if errors.Is(err, ErrConflict) {
		return false, nil
	}
	return dup, err
}

// EntriesIn counts the log entries of ws of the given types whose time
// lies in [from, to).
func (s *Store) EntriesIn(ctx context.Context, ws string, from, to time.Time, types ...string) (int, error) {
	var n int
	q := `SELECT COUNT(*) FROM log WHERE ws=? AND time >= ? AND time < ? AND type IN (?` + strings.Repeat(",?", max(len(types)-1, 0)) + `)`
	args := []any{ws, from.UnixMilli(), to.UnixMilli()}
	for _, t := range types {
		args = append(args, t)
	}
	if err := s.db.QueryRowContext(ctx, q, args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("count entries of %q: %w", ws, err)
	}
	return n, nil
}
