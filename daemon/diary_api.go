package daemon

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"filippo.io/age"

	"github.com/workspace-sandbox/workspace/api"
	"github.com/workspace-sandbox/workspace/diary"
	"github.com/workspace-sandbox/workspace/tracking"
)

// The diary's API: keys, the view of a range, review (cover, delete,
// reveal, manual time, prune), export, report, check, backup and restore.
// Ingestion is in ingest.go, retakes in tracking.go.

func (s *server) handleDiaryStatus(*http.Request) (any, error) { return s.diary.status() }

func (s *server) handleDiaryInit(r *http.Request, req api.InitRequest) (any, error) {
	st, done := s.diary.use()
	keys, err := diary.InitKeys(s.diary.keyDir, req.Passphrase)
	if err == nil {
		st.Unlock(keys)
	}
	done()
	if err != nil {
		return nil, fmt.Errorf("init: %w", err)
	}
	s.log.Info("diary identity created", "passphrase", req.Passphrase != "")
	s.diary.ensureAll(r.Context())
	return s.diary.status()
}

func (s *server) handleDiaryUnlock(r *http.Request, req api.UnlockRequest) (any, error) {
	keys, err := diary.LoadKeys(s.diary.keyDir, req.Passphrase)
	if err != nil {
		return nil, fmt.Errorf("unlock: %w", err)
	}
	st, done := s.diary.use()
	st.Unlock(keys)
	done()
	s.log.Info("diary unlocked")
	s.diary.ensureAll(r.Context())
	return s.diary.status()
}

func parseRange(r *http.Request) (time.Time, time.Time, *time.Location, error) {
	q := r.URL.Query()
	from, err := time.Parse(time.RFC3339, q.Get("from"))
	if err != nil {
		return time.Time{}, time.Time{}, nil, fmt.Errorf("%w: from=%q is not an RFC 3339 time", api.ErrInvalid, q.Get("from"))
	}
	to, err := time.Parse(time.RFC3339, q.Get("to"))
	if err != nil {
		return time.Time{}, time.Time{}, nil, fmt.Errorf("%w: to=%q is not an RFC 3339 time", api.ErrInvalid, q.Get("to"))
	}
	loc := time.Local
	if tz := q.Get("tz"); tz != "" && tz != "Local" {
		if loc, err = time.LoadLocation(tz); err != nil {
			return time.Time{}, time.Time{}, nil, fmt.Errorf("%w: tz=%q: %v", api.ErrInvalid, tz, err)
		}
	}
	return from, to, loc, nil
}

func (s *server) handleDiaryView(r *http.Request) (any, error) {
	from, to, loc, err := parseRange(r)
	if err != nil {
		return nil, err
	}
	st, done := s.diary.use()
	defer done()
	return st.View(r.Context(), r.PathValue("name"), from, to, loc)
}

func (s *server) handleManual(r *http.Request, req api.ManualRequest) (any, error) {
	st, done := s.diary.use()
	defer done()
	id, err := st.AddManual(r.Context(), r.PathValue("name"), req.From, req.To, req.Memo)
	if err != nil {
		return nil, err
	}
	return tracking.ManualEntry{ID: id, Start: req.From, End: req.To, Memo: req.Memo}, nil
}

// withStore streams what fn writes with the diary store held for the
// length of the response.
func (s *server) withStore(ctype string, fn func(st *diary.Store, out io.Writer) error) stream {
	return stream{ctype, func(out io.Writer) error {
		st, done := s.diary.use()
		defer done()
		return fn(st, out)
	}}
}

func (s *server) handleExport(r *http.Request, req api.ExportRequest) (any, error) {
	name := r.PathValue("name")
	// The witnesses are asked to cosign the latest checkpoint first, and
	// the export carries that checkpoint (or the latest, when the diary
	// has no witness or none answered in time).
	fctx, cancel := context.WithTimeout(r.Context(), exportWitnessWait)
	size := s.witness.flush(fctx, name, true)
	cancel()
	return s.withStore("application/octet-stream", func(st *diary.Store, out io.Writer) error {
		sum, err := exportFor(r.Context(), st, name, req, size, out)
		if err == nil {
			s.log.Info("diary exported", "workspace", name, "entries", sum.Entries, "shots", sum.Shots)
		}
		return err
	}), nil
}

func (s *server) handlePrune(r *http.Request, req api.PruneRequest) (any, error) {
	st, done := s.diary.use()
	defer done()
	n, err := st.Prune(r.Context(), r.PathValue("name"), req.Before)
	if err != nil {
		return nil, err
	}
	return api.PruneResult{Shredded: n}, nil
}

func (s *server) handleCheck(r *http.Request) (any, error) {
	name := r.PathValue("name")
	st, done := s.diary.use()
	defer done()
	res, err := st.Check(r.Context(), name)
	out := api.CheckResult{Workspace: name, Entries: res.Entries, Shots: res.Shots, OK: err == nil}
	switch {
	case errors.Is(err, diary.ErrNotFound), errors.Is(err, diary.ErrLocked), errors.Is(err, diary.ErrNotInitialized):
		return nil, err
	case err != nil:
		// A damaged diary is the answer, not a failure of the request.
		out.Problem = err.Error()
	}
	return out, nil
}

func (s *server) handleShotImage(r *http.Request) (any, error) {
	st, done := s.diary.use()
	defer done()
	b, _, err := st.ShotImage(r.Context(), r.PathValue("id"), r.URL.Query().Get("kind"))
	if err != nil {
		return nil, err
	}
	return blob{http.DetectContentType(b), b}, nil
}

func (s *server) handleCover(r *http.Request, req api.CoverRequest) (any, error) {
	st, done := s.diary.use()
	defer done()
	return noContent{}, st.Cover(r.Context(), r.PathValue("id"), req.Rects)
}

func (s *server) handleShotDelete(r *http.Request) (any, error) {
	st, done := s.diary.use()
	defer done()
	return noContent{}, st.Delete(r.Context(), r.PathValue("id"))
}

func (s *server) handleReveal(r *http.Request, req api.ExportRequest) (any, error) {
	return s.withStore("application/octet-stream", func(st *diary.Store, out io.Writer) error {
		return revealFor(r.Context(), st, r.PathValue("id"), req, out)
	}), nil
}

func (s *server) handleBackup(r *http.Request) (any, error) {
	pass := r.Header.Get(api.PassphraseHeader)
	return s.withStore("application/octet-stream", func(st *diary.Store, out io.Writer) error {
		n, err := st.Backup(r.Context(), s.diary.keyDir, pass, out)
		if err == nil {
			s.log.Info("backup written", "files", n)
		}
		return err
	}), nil
}

// handleRestore checks a backup completely into a staging directory, then
// swaps it in for the diary and keys (the old ones are kept aside). A
// restore over a diary that has workspaces needs force=true.
func (s *server) handleRestore(r *http.Request) (any, error) {
	d := s.diary
	force := r.URL.Query().Get("force") == "true"
	st, done := d.use()
	names, err := st.Workspaces(r.Context())
	done()
	if err != nil {
		return nil, err
	}
	if len(names) > 0 && !force {
		return nil, fmt.Errorf("%w: this daemon already has diaries (%d workspaces): restoring replaces them; use --force (the current ones are kept aside)", api.ErrConflict, len(names))
	}
	stage, err := diary.StageRestore(r.Body, r.Header.Get(api.PassphraseHeader), d.stateDir)
	if err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.store.Close(); err != nil {
		s.log.Warn("close diary before restore", "error", err)
	}
	replaced, err := diary.SwapRestore(stage, d.diaryDir, d.keyDir, d.now())
	if err != nil {
		if rerr := os.RemoveAll(stage); rerr != nil {
			s.log.Warn("remove the staged restore", "error", rerr)
		}
	}
	if oerr := d.open(r.Context()); oerr != nil {
		return nil, errors.Join(err, oerr)
	}
	if err != nil {
		return nil, err
	}
	s.log.Info("restored from backup", "replaced", replaced)
	names, err = d.store.Workspaces(r.Context())
	if err != nil {
		return nil, fmt.Errorf("restored, but listing its workspaces failed: %w", err)
	}
	return api.RestoreResult{Workspaces: names, Replaced: replaced}, nil
}

// handleReport writes the HTML report or CSV timesheet of a range, made the
// way the client makes them: an export is built, then verified with the
// freelancer's own identity (exports are encrypted to it too), so the
// report shows exactly what the client will see.
func (s *server) handleReport(r *http.Request, req api.ExportRequest) (any, error) {
	format := r.URL.Query().Get("format")
	if format != "html" && format != "csv" {
		return nil, fmt.Errorf("%w: format=%q: want html or csv", api.ErrInvalid, format)
	}
	st, done := s.diary.use()
	defer done()
	keys, err := st.Keys()
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if _, err := st.Export(r.Context(), r.PathValue("name"), req.From, req.To, req.Recipients, &buf); err != nil {
		return nil, err
	}
	v, err := diary.Verify(&buf, []age.Identity{keys.Identity()}, diary.VerifyOptions{Signer: keys.VerifierKey()})
	if err != nil {
		return nil, fmt.Errorf("verify the export for the report: %w", err)
	}
	if format == "csv" {
		return stream{"text/csv; charset=utf-8", func(out io.Writer) error { return diary.WriteCSV(out, v.View) }}, nil
	}
	return stream{"text/html; charset=utf-8", func(out io.Writer) error { return diary.WriteHTML(out, v) }}, nil
}
