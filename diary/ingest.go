package diary

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"image"
	_ "image/jpeg" // decode JPEG captures
	_ "image/png"  // and PNG ones
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/workspace-sandbox/workspace/internal/atomicfile"
	"github.com/workspace-sandbox/workspace/tracking"
)

// Blob kinds of a shot, each a sealed file blobs/WS/ID.KIND.
const (
	blobOriginal     = "orig"
	blobThumb        = "thumb"
	blobCovered      = "cover"
	blobCoveredThumb = "cover-thumb"
)

var blobNames = map[string]string{blobOriginal: "original", blobThumb: "thumbnail", blobCovered: "covered image", blobCoveredThumb: "covered thumbnail"}

// coverBlob is the file kind of one cover's image: "cover.HASH" or
// "cover-thumb.HASH", HASH the first 16 hex digits of the image's SHA-256
// as its cover entry logs it. Every cover gets files of its own, so a new
// cover never overwrites the one the last cover entry names: a crash
// before its commit leaves the old cover intact and the new files orphans.
func coverBlob(kind, sum string) string {
	if len(sum) > 16 {
		sum = sum[:16]
	}
	return kind + "." + sum
}

// files are the blob kinds of the cover's image and thumbnail.
func (c CoverBody) files() (image, thumb string) {
	return coverBlob(blobCovered, c.Covered), coverBlob(blobCoveredThumb, c.CoveredThumb)
}

// blobName is the readable name of a blob kind, cover hashes aside.
func blobName(kind string) string {
	k, _, _ := strings.Cut(kind, ".")
	return blobNames[k]
}

// Limits of what the ingestion API accepts.
const (
	MaxImageBytes = 32 << 20
	maxRecords    = 10000
	maxMemo       = 1000
)

func (s *Store) blobPath(ws, id, kind string) string {
	return filepath.Join(s.dir, "blobs", ws, id+"."+kind)
}

// shotSecret is a shot's blob key and commitment salt.
type shotSecret struct {
	key, salt []byte
}

func (s *Store) sealSecret(dk []byte, id string, sec shotSecret) ([]byte, error) {
	return seal(dk, append(append([]byte{}, sec.key...), sec.salt...), "shot:"+id)
}

func (s *Store) openSecret(dk []byte, id string, sealed []byte) (shotSecret, error) {
	b, err := open(dk, sealed, "shot:"+id)
	if err != nil || len(b) != 64 {
		return shotSecret{}, fmt.Errorf("shot %s: key: %v", id, err)
	}
	return shotSecret{key: b[:32], salt: b[32:]}, nil
}

// writeBlobs seals and writes blobs durably (file and directory fsync).
func (s *Store) writeBlobs(ws, id string, key []byte, blobs map[string][]byte) error {
	dir := filepath.Join(s.dir, "blobs", ws)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	files := make(map[string][]byte, len(blobs))
	for kind, plain := range blobs {
		sealed, err := seal(key, plain, id+"/"+kind)
		if err != nil {
			return err
		}
		files[filepath.Base(s.blobPath(ws, id, kind))] = sealed
	}
	if err := atomicfile.WriteAll(dir, files, 0o600); err != nil {
		return fmt.Errorf("write blobs of %s: %w", id, err)
	}
	return nil
}

func (s *Store) readBlob(ws, id, kind string, key []byte) ([]byte, error) {
	sealed, err := os.ReadFile(s.blobPath(ws, id, kind))
	if err != nil {
		return nil, fmt.Errorf("read %s of shot %s: %w", blobName(kind), id, err)
	}
	plain, err := open(key, sealed, id+"/"+kind)
	if err != nil {
		return nil, fmt.Errorf("%s of shot %s: %w", blobName(kind), id, err)
	}
	return plain, nil
}

func (s *Store) removeBlobs(ws, id string, kinds ...string) {
	for _, k := range kinds {
		if err := os.Remove(s.blobPath(ws, id, k)); err != nil && !errors.Is(err, os.ErrNotExist) {
			s.log.Warn("could not remove blob", "workspace", ws, "shot", id, "kind", k, "error", err)
		}
	}
}

// removeShotFiles removes every blob file of the given shots of ws:
// originals, thumbnails and all their covers.
func (s *Store) removeShotFiles(ws string, ids map[string]bool) {
	dir := filepath.Join(s.dir, "blobs", ws)
	files, err := os.ReadDir(dir)
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			s.log.Warn("could not list blobs", "workspace", ws, "error", err)
		}
		return
	}
	for _, f := range files {
		if id, _, _ := strings.Cut(f.Name(), "."); ids[id] {
			if err := os.Remove(filepath.Join(dir, f.Name())); err != nil && !errors.Is(err, os.ErrNotExist) {
				s.log.Warn("could not remove blob", "workspace", ws, "file", f.Name(), "error", err)
			}
		}
	}
}

// checkImage decodes an image's header and returns its size.
func checkImage(what string, b []byte) (image.Point, error) {
	if len(b) == 0 {
		return image.Point{}, fmt.Errorf("%w: %s is empty", ErrInvalid, what)
	}
	if len(b) > MaxImageBytes {
		return image.Point{}, fmt.Errorf("%w: %s is %d bytes (limit %d)", ErrInvalid, what, len(b), MaxImageBytes)
	}
	cfg, format, err := image.DecodeConfig(bytes.NewReader(b))
	if err != nil {
		return image.Point{}, fmt.Errorf("%w: %s is not a JPEG or PNG image: %v", ErrInvalid, what, err)
	}
	if format != "jpeg" && format != "png" {
		return image.Point{}, fmt.Errorf("%w: %s is %s, want JPEG or PNG", ErrInvalid, what, format)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 || cfg.Width > 16384 || cfg.Height > 16384 {
		return image.Point{}, fmt.Errorf("%w: %s is %dx%d", ErrInvalid, what, cfg.Width, cfg.Height)
	}
	return image.Pt(cfg.Width, cfg.Height), nil
}

// AddCapture stores a screenshot: sealed blobs written and fsynced, then the
// index row and the log entry in one durable transaction. It returns only
// after the commit; a capture id seen before is not stored again (the ack
// lists it as a duplicate).
func (s *Store) AddCapture(ctx context.Context, ws string, m tracking.Capture, orig, thumb []byte) (tracking.Ack, error) {
	if err := checkID("capture", m.ID); err != nil {
		return tracking.Ack{}, err
	}
	if m.Taken.IsZero() {
		return tracking.Ack{}, fmt.Errorf("%w: capture %s: taken time is missing", ErrInvalid, m.ID)
	}
	if m.RetakeOf != "" {
		if err := checkID("retaken capture", m.RetakeOf); err != nil {
			return tracking.Ack{}, err
		}
	}
	size, err := checkImage("capture "+m.ID+" original", orig)
	if err != nil {
		return tracking.Ack{}, err
	}
	if m.Width == 0 && m.Height == 0 {
		m.Width, m.Height = size.X, size.Y
	}
	if m.Width != size.X || m.Height != size.Y {
		return tracking.Ack{}, fmt.Errorf("%w: capture %s: geometry says %dx%d, the image is %dx%d", ErrInvalid, m.ID, m.Width, m.Height, size.X, size.Y)
	}
	if len(thumb) == 0 {
		if thumb, err = makeThumbnail(orig); err != nil {
			return tracking.Ack{}, fmt.Errorf("%w: capture %s: %v", ErrInvalid, m.ID, err)
		}
	} else if _, err := checkImage("capture "+m.ID+" thumbnail", thumb); err != nil {
		return tracking.Ack{}, err
	}
	wi, err := s.Workspace(ctx, ws)
	if err != nil {
		return tracking.Ack{}, err
	}
	dk, err := s.dataKey(ctx, ws)
	if err != nil {
		return tracking.Ack{}, err
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if dup, err := s.seen(ctx, ws, m.ID); err != nil || dup {
		if err != nil {
			return tracking.Ack{}, err
		}
		n, err := s.logSize(ctx, ws)
		return tracking.Ack{Duplicates: []string{m.ID}, LogSize: n}, err
	}
	if m.RetakeOf != "" {
		if err := s.checkRetakeCapture(ctx, ws, m); err != nil {
			return tracking.Ack{}, err
		}
	}
	key, err := newDataKey()
	if err != nil {
		return tracking.Ack{}, err
	}
	salt, err := newDataKey()
	if err != nil {
		return tracking.Ack{}, err
	}
	secret, err := s.sealSecret(dk, m.ID, shotSecret{key: key, salt: salt})
	if err != nil {
		return tracking.Ack{}, err
	}
	if err := s.writeBlobs(ws, m.ID, key, map[string][]byte{blobOriginal: orig, blobThumb: thumb}); err != nil {
		s.removeBlobs(ws, m.ID, blobOriginal, blobThumb)
		return tracking.Ack{}, fmt.Errorf("capture %s: %w", m.ID, err)
	}
	body := CaptureBody{
		ID: m.ID, Session: m.Session, Taken: m.Taken.UnixMilli(),
		Slot: tracking.SlotStart(m.Taken.Unix(), int64(wi.SlotSeconds)), SlotSeconds: wi.SlotSeconds,
		Display: m.Display, X: m.X, Y: m.Y, W: m.Width, H: m.Height,
		Commit: commitment("original", salt, orig), ThumbCommit: commitment("thumbnail", salt, thumb),
		Activity: m.Activity, RetakeOf: m.RetakeOf, Blurred: m.Blurred,
	}
	n, err := s.commitAppend(ctx, ws, func(tx *sql.Tx) ([]pending, error) {
		if m.RetakeOf != "" {
			if _, err := tx.ExecContext(ctx, `INSERT INTO retakes(orig, ws, shot) VALUES(?,?,?)`, m.RetakeOf, ws, m.ID); err != nil {
				return nil, fmt.Errorf("retake of %s: %w", m.RetakeOf, err)
			}
		}
		return []pending{{typ: TypeCapture, ref: m.ID, at: m.Taken, body: body, record: m.ID,
			shot: &shotRow{id: m.ID, taken: m.Taken.UnixMilli(), secret: secret}}}, nil
	})
	if err != nil {
		s.removeBlobs(ws, m.ID, blobOriginal, blobThumb)
		return tracking.Ack{}, fmt.Errorf("store capture %s: %w", m.ID, err)
	}
	return tracking.Ack{Stored: []string{m.ID}, LogSize: n}, nil
}

// seen says whether a record id is already stored for ws; the same id for
// another workspace is a conflict.
func (s *Store) seen(ctx context.Context, ws, id string) (bool, error) {
	var owner string
	err := s.db.QueryRowContext(ctx, `SELECT ws FROM records WHERE id=?`, id).Scan(&owner)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if owner != ws {
		return false, fmt.Errorf("%w: record id %s belongs to another workspace", ErrConflict, id)
	}
	return true, nil
}

func (s *Store) logSize(ctx context.Context, ws string) (int64, error) {
	var n int64
	err := s.db.QueryRowContext(ctx, `SELECT COALESCE(MAX(idx)+1, 0) FROM log WHERE ws=?`, ws).Scan(&n)
	return n, err
}

// AddRecords stores activity, idle, session and gap records in one durable
// transaction; ids already stored are reported as duplicates.
func (s *Store) AddRecords(ctx context.Context, ws string, recs []tracking.Record) (tracking.Ack, error) {
	if len(recs) > maxRecords {
		return tracking.Ack{}, fmt.Errorf("%w: %d records in one call (limit %d)", ErrInvalid, len(recs), maxRecords)
	}
	items := make([]pending, 0, len(recs))
	ids := map[string]bool{}
	for i, r := range recs {
		it, err := recordEntry(r)
		if err != nil {
			return tracking.Ack{}, fmt.Errorf("%w: record %d: %v", ErrInvalid, i, err)
		}
		if ids[r.ID] {
			return tracking.Ack{}, fmt.Errorf("%w: record %d: id %s appears twice", ErrInvalid, i, r.ID)
		}
		ids[r.ID] = true
		items = append(items, it)
	}
	if _, err := s.Workspace(ctx, ws); err != nil {
		return tracking.Ack{}, err
	}
	if _, err := s.Keys(); err != nil {
		return tracking.Ack{}, err
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	var ack tracking.Ack
	n, err := s.commitAppend(ctx, ws, func(*sql.Tx) ([]pending, error) {
		var fresh []pending
		for _, it := range items {
			dup, err := s.seen(ctx, ws, it.record)
			if err != nil {
				return nil, err
			}
			if dup {
				ack.Duplicates = append(ack.Duplicates, it.record)
				continue
			}
			ack.Stored = append(ack.Stored, it.record)
			fresh = append(fresh, it)
		}
		return fresh, nil
	})
	if err != nil {
		return tracking.Ack{}, fmt.Errorf("store records: %w", err)
	}
	ack.LogSize = n
	return ack, nil
}

func recordEntry(r tracking.Record) (pending, error) {
	if err := checkID("record", r.ID); err != nil {
		return pending{}, err
	}
	if len(r.Memo) > maxMemo || len(r.Reason) > maxMemo {
		return pending{}, fmt.Errorf("memo or reason longer than %d bytes", maxMemo)
	}
	span := func() (SpanBody, error) {
		if r.Start.IsZero() || r.End.IsZero() || !r.End.After(r.Start) {
			return SpanBody{}, fmt.Errorf("%s %s: needs start before end", r.Type, r.ID)
		}
		return SpanBody{ID: r.ID, Start: r.Start.Unix(), End: r.End.Unix(), Reason: r.Reason}, nil
	}
	it := pending{typ: r.Type, ref: r.ID, record: r.ID}
	switch r.Type {
	case tracking.RecordActivity:
		if r.Minute.IsZero() || r.Activity == nil {
			return pending{}, fmt.Errorf("activity %s: needs minute and activity", r.ID)
		}
		a := *r.Activity
		if a.Keys < 0 || a.Clicks < 0 || a.Moves < 0 || a.Scrolls < 0 || a.Active < 0 || a.Active > 60 {
			return pending{}, fmt.Errorf("activity %s: counts must be >= 0 and active seconds 0-60", r.ID)
		}
		m := r.Minute.Truncate(time.Minute)
		it.at, it.body = m, ActivityBody{ID: r.ID, Minute: m.Unix(), Activity: a}
	case tracking.RecordIdle, tracking.RecordGap:
		b, err := span()
		if err != nil {
			return pending{}, err
		}
		it.at, it.body = r.Start, b
	case tracking.RecordSessionStart, tracking.RecordSessionStop:
		if r.Time.IsZero() || r.Session == "" {
			return pending{}, fmt.Errorf("%s %s: needs time and session", r.Type, r.ID)
		}
		if err := checkID("session", r.Session); err != nil {
			return pending{}, err
		}
		it.at, it.body = r.Time, SessionBody{ID: r.Session, Time: r.Time.Unix(), Memo: r.Memo}
	default:
		return pending{}, fmt.Errorf("unknown record type %q (want %s)", r.Type, strings.Join(tracking.RecordKinds, ", "))
	}
	return it, nil
}

// sweepOrphans removes blob files that no committed entry accounts for:
// blobs of a capture whose commit a crash prevented (never acknowledged),
// of a shredded shot, and cover files other than the ones the shot's last
// cover entry names (a cover whose commit a crash prevented).
func (s *Store) sweepOrphans(ctx context.Context) error {
	root := filepath.Join(s.dir, "blobs")
	wsDirs, err := os.ReadDir(root)
	if err != nil {
		return err
	}
	for _, wd := range wsDirs {
		ws := wd.Name()
		files, err := os.ReadDir(filepath.Join(root, ws))
		if err != nil {
			s.log.Warn("cannot list blobs; their orphans stay until the next start", "workspace", ws, "error", err)
			continue
		}
		covers := map[string]map[string]bool{} // shot → its current cover files
		for _, f := range files {
			name := f.Name()
			p := filepath.Join(root, ws, name)
			if strings.HasSuffix(name, ".tmp") {
				s.removeOrphan(p)
				continue
			}
			id, kind, _ := strings.Cut(name, ".")
			si := shotInfo{id: id, ws: ws}
			err := s.db.QueryRowContext(ctx, `SELECT idx, secret, state FROM shots WHERE id=? AND ws=?`, id, ws).Scan(&si.idx, &si.secret, &si.state)
			if errors.Is(err, sql.ErrNoRows) || (err == nil && si.secret == nil) {
				s.log.Info("removing orphan blob", "file", filepath.Join(ws, name))
				s.removeOrphan(p)
				continue
			}
			if err != nil {
				s.log.Warn("cannot tell whether a blob is an orphan; keeping it", "file", filepath.Join(ws, name), "error", err)
				continue
			}
			if kind == blobOriginal || kind == blobThumb {
				continue
			}
			cur, ok := covers[id]
			if !ok {
				cur = map[string]bool{}
				if si.state == tracking.ShotCovered {
					c, err := s.lastCover(ctx, si)
					if err != nil {
						s.log.Warn("cannot tell the current cover of a shot; keeping its files", "workspace", ws, "shot", id, "error", err)
						continue
					}
					img, th := c.files()
					cur[img], cur[th] = true, true
				}
				covers[id] = cur
			}
			if !cur[kind] {
				s.log.Info("removing orphan cover blob", "file", filepath.Join(ws, name))
				s.removeOrphan(p)
			}
		}
	}
	return nil
}

// removeOrphan removes a file no entry accounts for; one that cannot be
// removed is logged and tried again at the next start.
func (s *Store) removeOrphan(p string) {
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		s.log.Warn("could not remove orphan blob", "file", p, "error", err)
	}
}
