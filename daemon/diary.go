package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"filippo.io/age"
	"github.com/hashicorp/go-hclog"

	"github.com/workspace-sandbox/workspace/api"
	"github.com/workspace-sandbox/workspace/diary"
	"github.com/workspace-sandbox/workspace/profiles"
)

// diaryService owns the diary store and the freelancer's keys in the daemon.
// Handlers hold the read side of mu while they use the store; restore takes
// the write side to swap it.
type diaryService struct {
	mu       sync.RWMutex
	store    *diary.Store
	stateDir string
	keyDir   string
	diaryDir string
	m        *manager
	log      hclog.Logger
	now      func() time.Time
}

func newDiaryService(ctx context.Context, stateDir string, m *manager, log hclog.Logger) (*diaryService, error) {
	d := &diaryService{stateDir: stateDir, keyDir: filepath.Join(stateDir, "keys"), diaryDir: filepath.Join(stateDir, "diary"), m: m, log: log, now: time.Now}
	if err := d.open(ctx); err != nil {
		return nil, err
	}
	return d, nil
}

// open opens the store and unlocks it when the identity has no passphrase.
func (d *diaryService) open(ctx context.Context) error {
	st, err := diary.Open(ctx, d.diaryDir, diary.Options{Logger: d.log})
	if err != nil {
		return err
	}
	d.store = st
	switch keys, err := diary.LoadKeys(d.keyDir, ""); {
	case err == nil:
		st.Unlock(keys)
	case errors.Is(err, diary.ErrLocked):
		st.SetLockReason(err)
		d.log.Warn("the diary identity is passphrase-protected: run `workspace unlock` to record screenshots")
	case errors.Is(err, diary.ErrNotInitialized):
		st.SetLockReason(err)
		d.log.Warn("no diary identity yet: run `workspace init`")
	default:
		return err
	}
	return nil
}

func (d *diaryService) close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.store.Close()
}

// use returns the store for the length of one request.
func (d *diaryService) use() (*diary.Store, func()) {
	d.mu.RLock()
	return d.store, d.mu.RUnlock
}

// diaryErr maps diary error classes onto API classes.
func diaryErr(err error) error {
	if err == nil {
		return nil
	}
	var ee *diary.EntryError
	switch {
	case errors.Is(err, diary.ErrNotFound):
		return &classified{api.ErrNotFound, err}
	case errors.Is(err, diary.ErrInvalid), errors.Is(err, diary.ErrBadBackup):
		return &classified{api.ErrInvalid, err}
	case errors.Is(err, diary.ErrConflict), errors.Is(err, diary.ErrInitialized), errors.As(err, &ee):
		return &classified{api.ErrConflict, err}
	case errors.Is(err, diary.ErrLocked), errors.Is(err, diary.ErrNotInitialized):
		return &classified{api.ErrUnavailable, err}
	case errors.Is(err, diary.ErrBadPassphrase):
		return &classified{api.ErrForbidden, err}
	}
	return err
}

// ensure creates or refreshes the diary of a workspace from its profile.
func (d *diaryService) ensure(ctx context.Context, st *diary.Store, name string, p *profiles.Profile) error {
	o := diary.WorkspaceOptions{}
	if p != nil {
		o.SlotSeconds = int(time.Duration(p.Tracking.Slot) / time.Second)
		if p.Client != nil {
			o.Client, o.Recipient = p.Client.Name, p.Client.Recipient
		}
	}
	return st.EnsureWorkspace(ctx, name, o)
}

// ensureFromLibvirt makes sure a defined workspace has a diary; a name only
// the diary knows (the VM was destroyed) keeps its diary as it is.
func (d *diaryService) ensureFromLibvirt(ctx context.Context, st *diary.Store, name string) error {
	if _, err := st.Workspace(ctx, name); err == nil {
		return nil
	}
	w, err := d.m.get(ctx, name)
	if err != nil {
		return err
	}
	return d.ensure(ctx, st, name, w.Settings)
}

// ensureAll gives every defined workspace a diary (after unlock or start).
func (d *diaryService) ensureAll(ctx context.Context) {
	st, done := d.use()
	defer done()
	if _, err := st.Keys(); err != nil {
		return
	}
	ws, err := d.m.list(ctx)
	if err != nil {
		d.log.Warn("list workspaces for their diaries", "error", err)
		return
	}
	for _, w := range ws {
		full, err := d.m.get(ctx, w.Name) // list leaves the profile out
		if err == nil {
			err = d.ensure(ctx, st, w.Name, full.Settings)
		}
		if err != nil {
			d.log.Warn("prepare diary", "workspace", w.Name, "error", err)
		}
	}
}

func (d *diaryService) status() (api.DiaryStatus, error) {
	info, err := diary.ReadKeyInfo(d.keyDir)
	if err != nil {
		return api.DiaryStatus{}, err
	}
	st, done := d.use()
	defer done()
	_, lerr := st.Keys()
	return api.DiaryStatus{Initialized: info.Initialized, Protected: info.Protected, Locked: info.Initialized && lerr != nil, Recipient: info.Recipient, Signer: info.Verifier}, nil
}

func (s *server) diaryRoutes(mux *http.ServeMux) {
	p := "/" + api.Version
	mux.HandleFunc("GET "+p+"/diary", s.handleDiaryStatus)
	mux.HandleFunc("POST "+p+"/diary/init", s.handleDiaryInit)
	mux.HandleFunc("POST "+p+"/diary/unlock", s.handleDiaryUnlock)
	mux.HandleFunc("POST "+p+"/workspaces/{name}/captures", s.handleCapture)
	mux.HandleFunc("POST "+p+"/workspaces/{name}/records", s.handleRecords)
	mux.HandleFunc("GET "+p+"/workspaces/{name}/diary", s.handleDiaryView)
	mux.HandleFunc("POST "+p+"/workspaces/{name}/diary/manual", s.handleManual)
	mux.HandleFunc("POST "+p+"/workspaces/{name}/diary/export", s.handleExport)
	mux.HandleFunc("POST "+p+"/workspaces/{name}/diary/prune", s.handlePrune)
	mux.HandleFunc("POST "+p+"/workspaces/{name}/diary/report", s.handleReport)
	mux.HandleFunc("GET "+p+"/workspaces/{name}/diary/check", s.handleCheck)
	mux.HandleFunc("GET "+p+"/shots/{id}", s.handleShotImage)
	mux.HandleFunc("POST "+p+"/shots/{id}/cover", s.handleCover)
	mux.HandleFunc("POST "+p+"/shots/{id}/delete", s.handleShotDelete)
	mux.HandleFunc("POST "+p+"/shots/{id}/retake", s.handleRetake)
	mux.HandleFunc("POST "+p+"/shots/{id}/reveal", s.handleReveal)
	mux.HandleFunc("POST "+p+"/backup", s.handleBackup)
	mux.HandleFunc("POST "+p+"/restore", s.handleRestore)
}

func (s *server) handleDiaryStatus(w http.ResponseWriter, r *http.Request) {
	st, err := s.diary.status()
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, http.StatusOK, st)
}

func (s *server) handleDiaryInit(w http.ResponseWriter, r *http.Request) {
	var req api.InitRequest
	if err := decodeJSON(r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	st, done := s.diary.use()
	keys, err := diary.InitKeys(s.diary.keyDir, req.Passphrase)
	if err == nil {
		st.Unlock(keys)
	}
	done()
	if err != nil {
		s.writeError(w, r, fmt.Errorf("init: %w", diaryErr(err)))
		return
	}
	s.log.Info("diary identity created", "passphrase", req.Passphrase != "")
	s.diary.ensureAll(r.Context())
	s.handleDiaryStatus(w, r)
}

func (s *server) handleDiaryUnlock(w http.ResponseWriter, r *http.Request) {
	var req api.UnlockRequest
	if err := decodeJSON(r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	keys, err := diary.LoadKeys(s.diary.keyDir, req.Passphrase)
	if err != nil {
		s.writeError(w, r, fmt.Errorf("unlock: %w", diaryErr(err)))
		return
	}
	st, done := s.diary.use()
	st.Unlock(keys)
	done()
	s.log.Info("diary unlocked")
	s.diary.ensureAll(r.Context())
	s.handleDiaryStatus(w, r)
}

// handleCapture is the ingestion endpoint for one screenshot: a multipart
// body of meta (JSON), original and thumbnail. It answers only after the
// capture is durably committed.
func (s *server) handleCapture(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	meta, orig, thumb, err := readCaptureParts(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	st, done := s.diary.use()
	defer done()
	if err := s.diary.ensureFromLibvirt(r.Context(), st, name); err != nil {
		s.writeError(w, r, fmt.Errorf("capture for %q: %w", name, diaryErr(err)))
		return
	}
	res, err := st.AddCapture(r.Context(), name, meta, orig, thumb)
	if err != nil {
		s.writeError(w, r, fmt.Errorf("capture for %q: %w", name, diaryErr(err)))
		return
	}
	ack := api.Ack{LogSize: res.LogSize}
	if res.Duplicate {
		ack.Duplicates = []string{meta.ID}
	} else {
		ack.Stored = []string{meta.ID}
	}
	s.writeJSON(w, http.StatusOK, ack)
}

func readCaptureParts(r *http.Request) (api.CaptureMeta, []byte, []byte, error) {
	var meta api.CaptureMeta
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/form-data" {
		return meta, nil, nil, fmt.Errorf("%w: a capture is a multipart/form-data body (meta, original, thumbnail)", api.ErrInvalid)
	}
	mr := multipart.NewReader(io.LimitReader(r.Body, 3*diary.MaxImageBytes), params["boundary"])
	var orig, thumb []byte
	for i := 0; ; i++ {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil || i > 3 {
			return meta, nil, nil, fmt.Errorf("%w: capture body: %v", api.ErrInvalid, err)
		}
		b, err := io.ReadAll(io.LimitReader(part, diary.MaxImageBytes+1))
		if err != nil {
			return meta, nil, nil, fmt.Errorf("%w: capture part %q: %v", api.ErrInvalid, part.FormName(), err)
		}
		switch part.FormName() {
		case "meta":
			dec := json.NewDecoder(bytes.NewReader(b))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&meta); err != nil {
				return meta, nil, nil, fmt.Errorf("%w: capture meta: %v", api.ErrInvalid, err)
			}
		case "original":
			orig = b
		case "thumbnail":
			thumb = b
		default:
			return meta, nil, nil, fmt.Errorf("%w: unknown capture part %q", api.ErrInvalid, part.FormName())
		}
	}
	if meta.ID == "" || orig == nil {
		return meta, nil, nil, fmt.Errorf("%w: a capture needs a meta part with an id and an original part", api.ErrInvalid)
	}
	return meta, orig, thumb, nil
}

func (s *server) handleRecords(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	var recs []api.Record
	dec := json.NewDecoder(io.LimitReader(r.Body, 16<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&recs); err != nil {
		s.writeError(w, r, fmt.Errorf("%w: records: %v", api.ErrInvalid, err))
		return
	}
	st, done := s.diary.use()
	defer done()
	if err := s.diary.ensureFromLibvirt(r.Context(), st, name); err != nil {
		s.writeError(w, r, fmt.Errorf("records for %q: %w", name, diaryErr(err)))
		return
	}
	ack, err := st.AddRecords(r.Context(), name, recs)
	if err != nil {
		s.writeError(w, r, fmt.Errorf("records for %q: %w", name, diaryErr(err)))
		return
	}
	s.writeJSON(w, http.StatusOK, ack)
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

func (s *server) handleDiaryView(w http.ResponseWriter, r *http.Request) {
	from, to, loc, err := parseRange(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	st, done := s.diary.use()
	defer done()
	v, err := st.View(r.Context(), r.PathValue("name"), from, to, loc)
	if err != nil {
		s.writeError(w, r, diaryErr(err))
		return
	}
	s.writeJSON(w, http.StatusOK, v)
}

func (s *server) handleManual(w http.ResponseWriter, r *http.Request) {
	var req api.ManualRequest
	if err := decodeJSON(r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	st, done := s.diary.use()
	defer done()
	id, err := st.AddManual(r.Context(), r.PathValue("name"), req.From, req.To, req.Memo)
	if err != nil {
		s.writeError(w, r, diaryErr(err))
		return
	}
	s.writeJSON(w, http.StatusOK, api.ManualEntry{ID: id, Start: req.From, End: req.To, Memo: req.Memo})
}

// lazyWriter sends the response header at the first byte, so an error
// found before any output still becomes a JSON error.
type lazyWriter struct {
	w           http.ResponseWriter
	contentType string
	started     bool
}

func (l *lazyWriter) Write(p []byte) (int, error) {
	if !l.started {
		l.started = true
		l.w.Header().Set("Content-Type", l.contentType)
		l.w.Header().Set("Cache-Control", "no-store")
		l.w.WriteHeader(http.StatusOK)
	}
	return l.w.Write(p)
}

func (s *server) streamOrError(w http.ResponseWriter, r *http.Request, ctype string, fn func(io.Writer) error) {
	lw := &lazyWriter{w: w, contentType: ctype}
	if err := fn(lw); err != nil {
		if lw.started {
			s.log.Error("stream failed after it started", "path", r.URL.Path, "error", err)
			return
		}
		s.writeError(w, r, diaryErr(err))
	}
}

func (s *server) handleExport(w http.ResponseWriter, r *http.Request) {
	var req api.ExportRequest
	if err := decodeJSON(r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	st, done := s.diary.use()
	defer done()
	name := r.PathValue("name")
	s.streamOrError(w, r, "application/octet-stream", func(out io.Writer) error {
		sum, err := exportFor(r.Context(), st, name, req, out)
		if err == nil {
			s.log.Info("diary exported", "workspace", name, "entries", sum.Entries, "shots", sum.Shots)
		}
		return err
	})
}

func (s *server) handlePrune(w http.ResponseWriter, r *http.Request) {
	var req api.PruneRequest
	if err := decodeJSON(r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	st, done := s.diary.use()
	defer done()
	n, err := st.Prune(r.Context(), r.PathValue("name"), req.Before)
	if err != nil {
		s.writeError(w, r, diaryErr(err))
		return
	}
	s.writeJSON(w, http.StatusOK, api.PruneResult{Shredded: n})
}

func (s *server) handleCheck(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	st, done := s.diary.use()
	defer done()
	res, err := st.Check(r.Context(), name)
	out := api.CheckResult{Workspace: name, Entries: res.Entries, Shots: res.Shots, OK: err == nil}
	switch {
	case errors.Is(err, diary.ErrNotFound), errors.Is(err, diary.ErrLocked), errors.Is(err, diary.ErrNotInitialized):
		s.writeError(w, r, diaryErr(err))
		return
	case err != nil:
		// A damaged diary is the answer, not a failure of the request.
		out.Problem = err.Error()
	}
	s.writeJSON(w, http.StatusOK, out)
}

func (s *server) handleShotImage(w http.ResponseWriter, r *http.Request) {
	st, done := s.diary.use()
	defer done()
	b, _, err := st.ShotImage(r.Context(), r.PathValue("id"), r.URL.Query().Get("kind"))
	if err != nil {
		s.writeError(w, r, diaryErr(err))
		return
	}
	w.Header().Set("Content-Type", http.DetectContentType(b))
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(b)
}

func (s *server) handleCover(w http.ResponseWriter, r *http.Request) {
	var req api.CoverRequest
	if err := decodeJSON(r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	st, done := s.diary.use()
	defer done()
	if err := st.Cover(r.Context(), r.PathValue("id"), req.Rects); err != nil {
		s.writeError(w, r, diaryErr(err))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *server) handleShotDelete(w http.ResponseWriter, r *http.Request) {
	st, done := s.diary.use()
	defer done()
	if err := st.Delete(r.Context(), r.PathValue("id")); err != nil {
		s.writeError(w, r, diaryErr(err))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *server) handleRetake(w http.ResponseWriter, r *http.Request) {
	out, err := s.agents.retake(r.Context(), r.PathValue("id"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, http.StatusOK, out)
}

func (s *server) handleReveal(w http.ResponseWriter, r *http.Request) {
	var req api.ExportRequest
	if err := decodeJSON(r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	st, done := s.diary.use()
	defer done()
	s.streamOrError(w, r, "application/octet-stream", func(out io.Writer) error {
		return revealFor(r.Context(), st, r.PathValue("id"), req, out)
	})
}

func (s *server) handleBackup(w http.ResponseWriter, r *http.Request) {
	pass := r.Header.Get(api.PassphraseHeader)
	st, done := s.diary.use()
	defer done()
	s.streamOrError(w, r, "application/octet-stream", func(out io.Writer) error {
		n, err := st.Backup(r.Context(), s.diary.keyDir, pass, out)
		if err == nil {
			s.log.Info("backup written", "files", n)
		}
		return err
	})
}

// handleRestore checks a backup completely into a staging directory, then
// swaps it in for the diary and keys (the old ones are kept aside). A
// restore over a diary that has workspaces needs force=true.
func (s *server) handleRestore(w http.ResponseWriter, r *http.Request) {
	d := s.diary
	force := r.URL.Query().Get("force") == "true"
	st, done := d.use()
	names, err := st.Workspaces(r.Context())
	done()
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if len(names) > 0 && !force {
		s.writeError(w, r, fmt.Errorf("%w: this daemon already has diaries (%d workspaces): restoring replaces them; use --force (the current ones are kept aside)", api.ErrConflict, len(names)))
		return
	}
	stage, err := diary.StageRestore(r.Body, r.Header.Get(api.PassphraseHeader), d.stateDir)
	if err != nil {
		s.writeError(w, r, fmt.Errorf("restore: %w", diaryErr(err)))
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.store.Close(); err != nil {
		s.log.Warn("close diary before restore", "error", err)
	}
	replaced, err := diary.SwapRestore(stage, d.diaryDir, d.keyDir, d.now())
	if err != nil {
		os.RemoveAll(stage)
	}
	if oerr := d.open(r.Context()); oerr != nil {
		s.writeError(w, r, errors.Join(err, oerr))
		return
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.log.Info("restored from backup", "replaced", replaced)
	st = d.store
	names, _ = st.Workspaces(r.Context())
	s.writeJSON(w, http.StatusOK, api.RestoreResult{Workspaces: names, Replaced: replaced})
}

// handleReport writes the HTML report or CSV timesheet of a range, made the
// way the client makes them: an export is built, then verified with the
// freelancer's own identity (exports are encrypted to it too), so the
// report shows exactly what the client will see.
func (s *server) handleReport(w http.ResponseWriter, r *http.Request) {
	var req api.ExportRequest
	if err := decodeJSON(r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	format := r.URL.Query().Get("format")
	if format != "html" && format != "csv" {
		s.writeError(w, r, fmt.Errorf("%w: format=%q: want html or csv", api.ErrInvalid, format))
		return
	}
	st, done := s.diary.use()
	defer done()
	keys, err := st.Keys()
	if err != nil {
		s.writeError(w, r, diaryErr(err))
		return
	}
	var buf bytes.Buffer
	if _, err := st.Export(r.Context(), r.PathValue("name"), req.From, req.To, req.Recipients, &buf); err != nil {
		s.writeError(w, r, diaryErr(err))
		return
	}
	v, err := diary.Verify(&buf, []age.Identity{keys.Identity()}, diary.VerifyOptions{Signer: keys.VerifierKey()})
	if err != nil {
		s.writeError(w, r, fmt.Errorf("verify the export for the report: %w", err))
		return
	}
	ctype := "text/html; charset=utf-8"
	if format == "csv" {
		ctype = "text/csv; charset=utf-8"
	}
	s.streamOrError(w, r, ctype, func(out io.Writer) error {
		if format == "csv" {
			return diary.WriteCSV(out, v.View)
		}
		return diary.WriteHTML(out, v)
	})
}
