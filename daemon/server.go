package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/workspace-sandbox/workspace/api"
)

// maxJSONBody bounds every JSON request body.
const maxJSONBody = 1 << 20

// server maps the HTTP/JSON API onto the manager and image store.
type server struct {
	m      *manager
	images *imageStore
	events *broker
	diary  *diaryService
	agents *agentHub
	ui     *uiState
	log    hclog.Logger
	info   func() api.Info
}

func (s *server) routes() http.Handler {
	mux := http.NewServeMux()
	p := "/" + api.Version
	mux.HandleFunc("GET "+p+"/info", s.handleInfo)
	mux.HandleFunc("GET "+p+"/workspaces", s.handleList)
	mux.HandleFunc("POST "+p+"/workspaces", s.handleCreate)
	mux.HandleFunc("GET "+p+"/workspaces/{name}", s.handleGet)
	mux.HandleFunc("DELETE "+p+"/workspaces/{name}", s.handleDestroy)
	mux.HandleFunc("POST "+p+"/workspaces/{name}/start", s.handleStart)
	mux.HandleFunc("POST "+p+"/workspaces/{name}/stop", s.handleStop)
	mux.HandleFunc("POST "+p+"/workspaces/{name}/restart", s.handleRestart)
	mux.HandleFunc("GET "+p+"/images", s.handleImages)
	mux.HandleFunc("POST "+p+"/images", s.handleImport)
	mux.HandleFunc("DELETE "+p+"/images/{name}", s.handleImageRemove)
	mux.HandleFunc("POST "+p+"/images/gc", s.handleImageGC)
	mux.HandleFunc("GET "+p+"/events", s.handleEvents)
	s.diaryRoutes(mux)
	s.snapshotRoutes(mux)
	mux.HandleFunc("POST "+p+"/workspaces/{name}/track", s.handleTrack)
	mux.HandleFunc("GET "+p+"/workspaces/{name}/track", s.handleTrackStatus)
	mux.HandleFunc("GET "+p+"/workspaces/{name}/screen", s.handleScreen)
	mux.HandleFunc("GET "+p+"/workspaces/{name}/display", s.handleDisplay)
	mux.HandleFunc("POST "+p+"/ui/login", s.handleUILogin)
	mux.HandleFunc("GET "+p+"/ui/stream", s.handleUIStream)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, r, fmt.Errorf("%w: no API endpoint %s %s", api.ErrNotFound, r.Method, r.URL.Path))
	})
	return s.authorize(mux)
}

// authorize lets a request through only when the peer on the unix socket is
// root, the daemon's own user, or a member of the workspace group.
func (s *server) authorize(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if pc, ok := r.Context().Value(peerKey{}).(peerCred); ok && !pc.allowed {
			s.log.Warn("refused peer", "uid", pc.uid, "pid", pc.pid)
			s.writeError(w, r, fmt.Errorf("%w: uid %d is not allowed to use this daemon: join the %q group", api.ErrForbidden, pc.uid, socketGroup))
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (s *server) writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		s.log.Debug("write response", "error", err)
	}
}

func (s *server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	code, status := api.CodeFor(err)
	if status >= 500 && status != http.StatusServiceUnavailable {
		s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "error", err)
	} else {
		s.log.Debug("request refused", "method", r.Method, "path", r.URL.Path, "error", err)
	}
	s.writeJSON(w, status, api.Error{Code: code, Message: err.Error()})
}

func decodeJSON(r *http.Request, v any) error {
	if r.Body == nil {
		return nil
	}
	dec := json.NewDecoder(io.LimitReader(r.Body, maxJSONBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: decode request body: %v", api.ErrInvalid, err)
	}
	return nil
}

func (s *server) handleInfo(w http.ResponseWriter, r *http.Request) {
	s.writeJSON(w, http.StatusOK, s.info())
}

func (s *server) handleList(w http.ResponseWriter, r *http.Request) {
	out, err := s.m.list(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	for i := range out {
		out[i].Agent = s.agents.info(out[i].Name)
	}
	s.writeJSON(w, http.StatusOK, out)
}

func (s *server) handleGet(w http.ResponseWriter, r *http.Request) {
	out, err := s.m.get(r.Context(), r.PathValue("name"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out.Agent = s.agents.info(out.Name)
	s.writeJSON(w, http.StatusOK, out)
}

func (s *server) handleTrack(w http.ResponseWriter, r *http.Request) {
	var req api.TrackRequest
	if err := decodeJSON(r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	out, err := s.agents.track(r.Context(), r.PathValue("name"), req)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, http.StatusOK, out)
}

func (s *server) handleTrackStatus(w http.ResponseWriter, r *http.Request) {
	out, err := s.agents.status(r.Context(), r.PathValue("name"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, http.StatusOK, out)
}

func (s *server) handleCreate(w http.ResponseWriter, r *http.Request) {
	var req api.CreateRequest
	if err := decodeJSON(r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	out, err := s.m.create(r.Context(), req)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	// The diary is made now when the keys are unlocked, else at unlock or
	// at the first capture.
	st, done := s.diary.use()
	if err := s.diary.ensure(r.Context(), st, req.Name, req.Profile); err != nil {
		s.log.Warn("diary not prepared yet", "workspace", req.Name, "error", err)
	}
	done()
	s.writeJSON(w, http.StatusCreated, out)
}

func (s *server) handleStart(w http.ResponseWriter, r *http.Request) {
	var req api.StartRequest
	if err := decodeJSON(r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	out, err := s.m.start(r.Context(), r.PathValue("name"), req)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, http.StatusOK, out)
}

func (s *server) handleStop(w http.ResponseWriter, r *http.Request) {
	var req api.StopRequest
	if err := decodeJSON(r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	out, err := s.m.stop(r.Context(), r.PathValue("name"), req)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, http.StatusOK, out)
}

func (s *server) handleRestart(w http.ResponseWriter, r *http.Request) {
	var req api.StopRequest
	if err := decodeJSON(r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	out, err := s.m.restart(r.Context(), r.PathValue("name"), req)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, http.StatusOK, out)
}

func (s *server) handleDestroy(w http.ResponseWriter, r *http.Request) {
	if err := s.m.destroy(r.Context(), r.PathValue("name")); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *server) handleImages(w http.ResponseWriter, r *http.Request) {
	imgs, err := s.images.list()
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	for i := range imgs {
		// Usage is best effort: the list still answers while libvirt is away.
		if users, err := s.m.usersOf(r.Context(), imgs[i].Name); err == nil {
			imgs[i].UsedBy = users
		}
	}
	s.writeJSON(w, http.StatusOK, imgs)
}

func (s *server) handleImport(w http.ResponseWriter, r *http.Request) {
	mr, err := r.MultipartReader()
	if err != nil {
		s.writeError(w, r, fmt.Errorf("%w: image upload must be multipart: %v", api.ErrInvalid, err))
		return
	}
	img, err := s.images.importImage(r.Context(), mr)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, http.StatusCreated, img)
}

func (s *server) handleImageRemove(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if err := api.ValidateImageName(name); err != nil {
		s.writeError(w, r, err)
		return
	}
	s.m.bases.Lock()
	defer s.m.bases.Unlock()
	users, err := s.m.usersOf(r.Context(), name)
	if err != nil {
		s.writeError(w, r, fmt.Errorf("remove image %q: cannot tell which workspaces use it: %w", name, err))
		return
	}
	if err := s.images.remove(r.Context(), name, users); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// handleEvents streams lifecycle events as JSON lines until the client goes.
func (s *server) handleEvents(w http.ResponseWriter, r *http.Request) {
	flusher, ok := w.(http.Flusher)
	if !ok {
		s.writeError(w, r, errors.New("streaming is not supported by this connection"))
		return
	}
	ch, cancel := s.events.subscribe()
	defer cancel()
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	flusher.Flush()
	enc := json.NewEncoder(w)
	keepalive := time.NewTicker(30 * time.Second)
	defer keepalive.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case ev, ok := <-ch:
			if !ok {
				return
			}
			if err := enc.Encode(ev); err != nil {
				return
			}
			flusher.Flush()
		case <-keepalive.C:
			flusher.Flush()
		}
	}
}

// broker fans lifecycle events out to every subscriber.
type broker struct {
	log  hclog.Logger
	subs chan func(map[chan api.Event]struct{})
	done chan struct{}
}

func newBroker(log hclog.Logger) *broker {
	return &broker{log: log, subs: make(chan func(map[chan api.Event]struct{})), done: make(chan struct{})}
}

// run delivers events from in until ctx ends. A subscriber too slow to keep
// a 64-event buffer loses events (logged) rather than stalling the daemon.
func (b *broker) run(ctx context.Context, in <-chan api.Event) {
	set := map[chan api.Event]struct{}{}
	defer func() {
		for ch := range set {
			close(ch)
		}
		close(b.done)
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case f := <-b.subs:
			f(set)
		case ev, ok := <-in:
			if !ok {
				in = nil
				continue
			}
			for ch := range set {
				select {
				case ch <- ev:
				default:
					b.log.Warn("event subscriber too slow, dropped event", "workspace", ev.Workspace, "type", ev.Type)
				}
			}
		}
	}
}

func (b *broker) subscribe() (<-chan api.Event, func()) {
	ch := make(chan api.Event, 64)
	select {
	case b.subs <- func(set map[chan api.Event]struct{}) { set[ch] = struct{}{} }:
	case <-b.done:
		close(ch)
		return ch, func() {}
	}
	return ch, func() {
		select {
		case b.subs <- func(set map[chan api.Event]struct{}) {
			if _, ok := set[ch]; ok {
				delete(set, ch)
				close(ch)
			}
		}:
		case <-b.done:
		}
	}
}

// handleImageGC removes every image no workspace uses (vagrant-libvirt
// users waited years for this); with dry_run=true it only says which.
func (s *server) handleImageGC(w http.ResponseWriter, r *http.Request) {
	dry := r.URL.Query().Get("dry_run") == "true"
	s.m.bases.Lock()
	defer s.m.bases.Unlock()
	imgs, err := s.images.list()
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := api.GCResult{DryRun: dry}
	for _, img := range imgs {
		users, err := s.m.usersOf(r.Context(), img.Name)
		if err != nil {
			s.writeError(w, r, fmt.Errorf("image gc: cannot tell which workspaces use %q: %w", img.Name, err))
			return
		}
		if len(users) > 0 {
			out.Kept = append(out.Kept, img.Name)
			continue
		}
		if !dry {
			if err := s.images.remove(r.Context(), img.Name, nil); err != nil {
				s.writeError(w, r, fmt.Errorf("image gc: %w", err))
				return
			}
		}
		out.Removed = append(out.Removed, img.Name)
		out.Bytes += img.Size
	}
	s.writeJSON(w, http.StatusOK, out)
}
