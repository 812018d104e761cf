package diary

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
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
