package diary

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/workspace-sandbox/workspace/tracking"
)

// View returns a workspace's diary for [from, to), grouped by days of loc.
// It reads the range's captures, sessions and reviews from the log, and its
// activity minutes and spans from the view index (see viewindex.go).
func (s *Store) View(ctx context.Context, ws string, from, to time.Time, loc *time.Location) (tracking.DiaryView, error) {
	wi, err := s.Workspace(ctx, ws)
	if err != nil {
		return tracking.DiaryView{}, err
	}
	if err := checkRange(from, to); err != nil {
		return tracking.DiaryView{}, err
	}
	entries, err := s.rangeEntries(ctx, ws, from, to, true)
	if err != nil {
		return tracking.DiaryView{}, err
	}
	f, err := readFacts(entries)
	if err != nil {
		return tracking.DiaryView{}, err
	}
	if err := s.addIndexedFacts(ctx, ws, from, to, f); err != nil {
		return tracking.DiaryView{}, err
	}
	return aggregateFacts(ctx, f, ViewParams{Workspace: ws, Client: wi.Client, From: from, To: to, SlotSeconds: wi.SlotSeconds, Loc: loc})
}

// rangeEntries reads the entries an account of [from, to) needs, in log
// order: those in the range, spans that may reach into it, sessions,
// prunes, and reviews of its shots. An export needs them all with their
// headers; a view needs neither the activity minutes, spans and sessions
// (it reads them from the view index) nor the headers (see logColumns).
//
// Each part of the query is its own indexed search and the parts are
// disjoint, so the cost is the entries read, not the workspace's whole log
// (one WHERE with OR made SQLite scan all of it).
func (s *Store) rangeEntries(ctx context.Context, ws string, from, to time.Time, view bool) ([]Entry, error) {
	query, args := rangeQuery(ws, from, to, view)
	entries, err := queryLog(ctx, s.db, ws, view, query, args...)
	if err != nil {
		return nil, err
	}
	slices.SortFunc(entries, func(a, b Entry) int { return cmp.Compare(a.Index, b.Index) })
	out := entries[:0]
	for _, e := range entries {
		if e.Header.Type == TypePrune && !pruneTouches(e, from, to) {
			continue
		}
		out = append(out, e)
	}
	return out, nil
}

// spanReach is how long before a range a span may start and still be read
// for it.
const spanReach = 31 * 24 * time.Hour

// rangeQuery is rangeEntries' query: disjoint parts, each an indexed search
// (TestRangeQueryUsesIndexes pins that), in no particular order. For a
// view, the types the view index holds (activity, spans, sessions) are
// left out.
func rangeQuery(ws string, from, to time.Time, view bool) (string, []any) {
	f, t := from.UnixMilli(), to.UnixMilli()
	type part struct {
		where string
		args  []any
	}
	var parts []part
	outside := `type IN ('session_start','session_stop','prune')`
	if view {
		parts = append(parts, part{`type IN ('capture','cover','delete','prune') AND time >= ? AND time < ?`, []any{f, t}})
		outside = `type = 'prune'`
	} else {
		parts = append(parts,
			part{`time >= ? AND time < ?`, []any{f, t}},
			part{`type IN ('idle','gap','manual') AND time >= ? AND time < ?`, []any{f - spanReach.Milliseconds(), f}})
	}
	parts = append(parts,
		part{outside + ` AND NOT (time >= ? AND time < ?)`, []any{f, t}},
		part{`type IN ('cover','delete') AND NOT (time >= ? AND time < ?)
			AND ref IN (SELECT id FROM shots WHERE ws=? AND taken >= ? AND taken < ?)`, []any{f, t, ws, f, t}})
	selects := make([]string, len(parts))
	var args []any
	for i, p := range parts {
		selects[i] = `SELECT ` + logColumns(view) + ` FROM log WHERE ws=? AND ` + p.where
		args = append(append(args, ws), p.args...)
	}
	return strings.Join(selects, "\n\tUNION ALL "), args
}

func pruneTouches(e Entry, from, to time.Time) bool {
	var pb PruneBody
	// prune covers shots before its date: it touches the range when the
	// range starts before that date.
	return decodeBody(e.Body, &pb) == nil && pb.Before > from.Unix()
}

// shotInfo is a shot's index row.
type shotInfo struct {
	id, ws, state string
	idx, taken    int64
	secret        []byte
}

func (s *Store) shot(ctx context.Context, id string) (shotInfo, error) {
	si := shotInfo{id: id}
	err := s.db.QueryRowContext(ctx, `SELECT ws, idx, taken, secret, state FROM shots WHERE id=?`, id).Scan(&si.ws, &si.idx, &si.taken, &si.secret, &si.state)
	if errors.Is(err, sql.ErrNoRows) {
		return si, fmt.Errorf("%w: no shot %q (see `workspace diary NAME` for shot ids)", ErrNotFound, id)
	}
	if err != nil {
		return si, fmt.Errorf("shot %q: %w", id, err)
	}
	return si, nil
}

func (s *Store) shotSecret(ctx context.Context, si shotInfo) (shotSecret, error) {
	if si.secret == nil {
		return shotSecret{}, fmt.Errorf("%w: shot %s was %s: its images are shredded", ErrNotFound, si.id, si.state)
	}
	dk, err := s.dataKey(ctx, si.ws)
	if err != nil {
		return shotSecret{}, err
	}
	return s.openSecret(dk, si.id, si.secret)
}

// shotOriginal looks a shot up and opens its secret and its original.
func (s *Store) shotOriginal(ctx context.Context, id string) (shotInfo, shotSecret, []byte, error) {
	si, err := s.shot(ctx, id)
	if err != nil {
		return si, shotSecret{}, nil, err
	}
	sec, err := s.shotSecret(ctx, si)
	if err != nil {
		return si, sec, nil, err
	}
	orig, err := s.readBlob(si.ws, id, blobOriginal, sec.key)
	return si, sec, orig, err
}

// lastCover reads the newest cover entry of a shot.
func (s *Store) lastCover(ctx context.Context, si shotInfo) (CoverBody, error) {
	es, err := loadEntries(ctx, s.db, si.ws, `type = ? AND ref = ?`, TypeCover, si.id)
	if err != nil {
		return CoverBody{}, err
	}
	if len(es) == 0 {
		return CoverBody{}, fmt.Errorf("shot %s is marked covered but the log has no cover of it", si.id)
	}
	var c CoverBody
	if err := decodeBody(es[len(es)-1].Body, &c); err != nil {
		return CoverBody{}, fmt.Errorf("cover entry %d of shot %s: %w", es[len(es)-1].Index, si.id, err)
	}
	return c, nil
}

// captureBody reads the capture entry of a shot.
func (s *Store) captureBody(ctx context.Context, si shotInfo) (CaptureBody, error) {
	es, err := loadEntries(ctx, s.db, si.ws, `idx = ?`, si.idx)
	if err != nil || len(es) != 1 {
		return CaptureBody{}, fmt.Errorf("capture entry of shot %s: %v", si.id, err)
	}
	var c CaptureBody
	if err := decodeBody(es[0].Body, &c); err != nil {
		return CaptureBody{}, fmt.Errorf("capture entry of shot %s: %w", si.id, err)
	}
	return c, nil
}

// Image kinds ShotImage returns.
const (
	ImageCurrent   = "current"   // what an export shows: covered if covered
	ImageOriginal  = "original"  // the freelancer's own view
	ImageThumbnail = "thumbnail" // current thumbnail
)

// ShotImage decrypts a shot's image in memory.
func (s *Store) ShotImage(ctx context.Context, id, kind string) ([]byte, string, error) {
	si, err := s.shot(ctx, id)
	if err != nil {
		return nil, "", err
	}
	sec, err := s.shotSecret(ctx, si)
	if err != nil {
		return nil, "", err
	}
	var blob string
	switch kind {
	case ImageOriginal:
		blob = blobOriginal
	case ImageCurrent, "", ImageThumbnail:
		blob = blobOriginal
		if kind == ImageThumbnail {
			blob = blobThumb
		}
		if si.state == tracking.ShotCovered {
			c, err := s.lastCover(ctx, si)
			if err != nil {
				return nil, "", err
			}
			img, th := c.files()
			blob = img
			if kind == ImageThumbnail {
				blob = th
			}
		}
	default:
		return nil, "", fmt.Errorf("%w: image kind %q (want current, original or thumbnail)", ErrInvalid, kind)
	}
	b, err := s.readBlob(si.ws, id, blob, sec.key)
	return b, si.ws, err
}

// Cover blurs regions of a shot (all of it when rects is empty), adding
// them to the regions an earlier cover hid. The original stays sealed; the
// log gets a cover entry with the covered image's hash and the capture's
// commitment. It runs under the write lock from reading the shot's state
// on, so two covers at once cannot lose a region. Each cover's images are
// new files, named by their hash; the previous cover's are removed only
// after the new entry is committed.
func (s *Store) Cover(ctx context.Context, id string, rects []tracking.Rect) error {
	if _, err := s.Keys(); err != nil {
		return err
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	si, sec, orig, err := s.shotOriginal(ctx, id)
	if err != nil {
		return err
	}
	img, err := decodeImage(orig)
	if err != nil {
		return fmt.Errorf("cover shot %s: %w", id, err)
	}
	if err := checkRects(rects, img.Bounds().Size()); err != nil {
		return fmt.Errorf("cover shot %s: %w", id, err)
	}
	// A cover adds to the cover a shot already has: covering a second
	// region must never uncover the first.
	var prev []string // the previous cover's files
	if si.state == tracking.ShotCovered {
		pc, err := s.lastCover(ctx, si)
		if err != nil {
			return fmt.Errorf("cover shot %s: %w", id, err)
		}
		pimg, pth := pc.files()
		prev = []string{pimg, pth}
		if len(pc.Rects) == 0 || len(rects) == 0 {
			rects = nil // the whole shot
		} else {
			merged := make([]tracking.Rect, 0, len(pc.Rects)+len(rects))
			for _, r := range pc.Rects {
				merged = append(merged, tracking.Rect{X: r.X, Y: r.Y, W: r.W, H: r.H})
			}
			rects = append(merged, rects...)
		}
	}
	c, err := s.captureBody(ctx, si)
	if err != nil {
		return err
	}
	covered, err := encodeJPEG(coverImage(img, rects), 85)
	if err != nil {
		return err
	}
	cthumb, err := makeThumbnail(covered)
	if err != nil {
		return err
	}
	body := CoverBody{Shot: id, Rects: rects, Covered: sum256hex(covered), CoveredThumb: sum256hex(cthumb), Commit: c.Commit}
	cimg, cth := body.files()
	files := []string{cimg, cth}
	// Files of the same name as the previous cover's hold the same bytes
	// (same hash): they are neither removed on failure nor after success.
	fresh := func(names []string, other []string) []string {
		var out []string
		for _, n := range names {
			if !slices.Contains(other, n) {
				out = append(out, n)
			}
		}
		return out
	}
	if err := s.writeBlobs(si.ws, id, sec.key, map[string][]byte{files[0]: covered, files[1]: cthumb}); err != nil {
		s.removeBlobs(si.ws, id, fresh(files, prev)...)
		return fmt.Errorf("cover shot %s: %w", id, err)
	}
	_, err = s.commitAppend(ctx, si.ws, func(tx *sql.Tx) ([]pending, error) {
		if _, err := tx.ExecContext(ctx, `UPDATE shots SET state='covered' WHERE id=?`, id); err != nil {
			return nil, err
		}
		return []pending{{typ: TypeCover, ref: id, at: s.now(), body: body}}, nil
	})
	if err != nil {
		s.removeBlobs(si.ws, id, fresh(files, prev)...)
		return fmt.Errorf("cover shot %s: %w", id, err)
	}
	s.removeBlobs(si.ws, id, fresh(prev, files)...)
	s.log.Info("shot covered", "workspace", si.ws, "shot", id, "rects", len(rects))
	return nil
}

// Delete crypto-shreds a shot: its sealed key is erased (secure_delete and
// a WAL checkpoint), its blob files removed, and a tombstone logged. Its
// slot is no longer billable.
func (s *Store) Delete(ctx context.Context, id string) error {
	si, err := s.shot(ctx, id)
	if err != nil {
		return err
	}
	if si.secret == nil {
		return fmt.Errorf("%w: shot %s was already %s", ErrConflict, id, si.state)
	}
	if _, err := s.Keys(); err != nil {
		return err
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	_, err = s.commitAppend(ctx, si.ws, func(tx *sql.Tx) ([]pending, error) {
		if _, err := tx.ExecContext(ctx, `UPDATE shots SET secret=NULL, state='deleted' WHERE id=?`, id); err != nil {
			return nil, err
		}
		return []pending{{typ: TypeDelete, ref: id, at: s.now(), body: DeleteBody{Shot: id}}}, nil
	})
	if err != nil {
		return fmt.Errorf("delete shot %s: %w", id, err)
	}
	s.removeShotFiles(si.ws, map[string]bool{id: true})
	s.shredWAL(ctx)
	s.log.Info("shot deleted", "workspace", si.ws, "shot", id)
	return nil
}

// shredWAL checkpoints the WAL so erased keys do not linger in it.
func (s *Store) shredWAL(ctx context.Context) {
	if _, err := s.db.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		s.log.Warn("WAL checkpoint after shredding failed", "error", err)
	}
}

// Prune crypto-shreds every shot of ws taken before `before` (retention);
// one logged entry lists them.
func (s *Store) Prune(ctx context.Context, ws string, before time.Time) (int, error) {
	if _, err := s.Workspace(ctx, ws); err != nil {
		return 0, err
	}
	if _, err := s.Keys(); err != nil {
		return 0, err
	}
	if before.After(s.now()) {
		return 0, fmt.Errorf("%w: prune date %s is in the future", ErrInvalid, before.Format("2006-01-02"))
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	var ids []string
	_, err := s.commitAppend(ctx, ws, func(tx *sql.Tx) ([]pending, error) {
		rows, err := tx.QueryContext(ctx, `SELECT id FROM shots WHERE ws=? AND taken < ? AND secret IS NOT NULL ORDER BY taken`, ws, before.UnixMilli())
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return nil, err
			}
			ids = append(ids, id)
		}
		rows.Close()
		if len(ids) == 0 {
			return nil, nil
		}
		if _, err := tx.ExecContext(ctx, `UPDATE shots SET secret=NULL, state='pruned' WHERE ws=? AND taken < ? AND secret IS NOT NULL`, ws, before.UnixMilli()); err != nil {
			return nil, err
		}
		return []pending{{typ: TypePrune, at: s.now(), body: PruneBody{Before: before.Unix(), Shots: ids}}}, nil
	})
	if err != nil {
		return 0, fmt.Errorf("prune diary of %q: %w", ws, err)
	}
	gone := map[string]bool{}
	for _, id := range ids {
		gone[id] = true
	}
	s.removeShotFiles(ws, gone)
	if len(ids) > 0 {
		s.shredWAL(ctx)
		s.log.Info("diary pruned", "workspace", ws, "before", before, "shots", len(ids))
	}
	return len(ids), nil
}

// AddManual adds manual time, which is counted and always flagged.
func (s *Store) AddManual(ctx context.Context, ws string, from, to time.Time, memo string) (string, error) {
	if _, err := s.Workspace(ctx, ws); err != nil {
		return "", err
	}
	switch {
	case !to.After(from):
		return "", fmt.Errorf("%w: manual time must end after it starts", ErrInvalid)
	case to.Sub(from) > 24*time.Hour:
		return "", fmt.Errorf("%w: manual time of %s is longer than a day: add one entry per day", ErrInvalid, to.Sub(from))
	case to.After(s.now().Add(time.Minute)):
		return "", fmt.Errorf("%w: manual time cannot end in the future", ErrInvalid)
	case memo == "":
		return "", fmt.Errorf("%w: manual time needs a memo saying what was done", ErrInvalid)
	case len(memo) > maxMemo:
		return "", fmt.Errorf("%w: memo is longer than %d bytes", ErrInvalid, maxMemo)
	}
	if _, err := s.Keys(); err != nil {
		return "", err
	}
	id := tracking.NewID(s.now())
	s.wmu.Lock()
	defer s.wmu.Unlock()
	_, err := s.commitAppend(ctx, ws, func(*sql.Tx) ([]pending, error) {
		return []pending{{typ: TypeManual, ref: id, at: from, record: id, body: SpanBody{ID: id, Start: from.Unix(), End: to.Unix(), Memo: memo}}}, nil
	})
	if err != nil {
		return "", fmt.Errorf("add manual time to %q: %w", ws, err)
	}
	return id, nil
}

// checkShots checks every sealed image of ws against the log.
func (s *Store) checkShots(ctx context.Context, ws string, entries []Entry) (int, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, idx, taken, secret, state FROM shots WHERE ws=? ORDER BY idx`, ws)
	if err != nil {
		return 0, err
	}
	var shots []shotInfo
	for rows.Next() {
		si := shotInfo{ws: ws}
		if err := rows.Scan(&si.id, &si.idx, &si.taken, &si.secret, &si.state); err != nil {
			rows.Close()
			return 0, err
		}
		shots = append(shots, si)
	}
	rows.Close()
	lastCover := map[string]CoverBody{}
	coverAt := map[string][]Entry{} // every cover entry of a shot
	for _, e := range entries {
		if e.Header.Type == TypeCover {
			var c CoverBody
			if err := decodeBody(e.Body, &c); err != nil {
				return 0, &EntryError{Index: e.Index, What: describe(e.Header), Err: err}
			}
			lastCover[c.Shot] = c
			coverAt[c.Shot] = append(coverAt[c.Shot], e)
		}
	}
	for _, si := range shots {
		if si.idx < 0 || si.idx >= int64(len(entries)) || entries[si.idx].Header.Ref != si.id {
			return 0, fmt.Errorf("shot %s points at entry %d, which is not its capture", si.id, si.idx)
		}
		if si.secret == nil {
			continue
		}
		e := entries[si.idx]
		bad := func(err error) error { return &EntryError{Index: e.Index, What: describe(e.Header), Err: err} }
		var c CaptureBody
		if err := decodeBody(e.Body, &c); err != nil {
			return 0, bad(err)
		}
		for _, ce := range coverAt[si.id] {
			var cv CoverBody
			if decodeBody(ce.Body, &cv) == nil && cv.Commit != c.Commit {
				return 0, &EntryError{Index: ce.Index, What: describe(ce.Header), Err: fmt.Errorf("its commitment differs from the one capture entry %d made", e.Index)}
			}
		}
		sec, err := s.shotSecret(ctx, si)
		if err != nil {
			return 0, bad(err)
		}
		orig, err := s.readBlob(ws, si.id, blobOriginal, sec.key)
		if err != nil {
			return 0, bad(err)
		}
		if commitment("original", sec.salt, orig) != c.Commit {
			return 0, bad(errors.New("the screenshot does not match its commitment"))
		}
		thumb, err := s.readBlob(ws, si.id, blobThumb, sec.key)
		if err != nil {
			return 0, bad(err)
		}
		if commitment("thumbnail", sec.salt, thumb) != c.ThumbCommit {
			return 0, bad(errors.New("the thumbnail does not match its commitment"))
		}
		if si.state == tracking.ShotCovered {
			lc, ok := lastCover[si.id]
			if !ok {
				return 0, bad(errors.New("the shot is marked covered but the log has no cover of it"))
			}
			img, th := lc.files()
			cov, err := s.readBlob(ws, si.id, img, sec.key)
			if err != nil {
				return 0, bad(err)
			}
			if sum256hex(cov) != lc.Covered {
				return 0, bad(errors.New("the covered image does not match its cover entry"))
			}
			cth, err := s.readBlob(ws, si.id, th, sec.key)
			if err != nil {
				return 0, bad(err)
			}
			if sum256hex(cth) != lc.CoveredThumb {
				return 0, bad(errors.New("the covered thumbnail does not match its cover entry"))
			}
		}
	}
	return len(shots), nil
}
