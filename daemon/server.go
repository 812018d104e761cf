package daemon

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/hashicorp/go-hclog"

	"github.com/workspace-sandbox/workspace/api"
)

// maxJSONBody bounds every JSON request body.
const maxJSONBody = 1 << 20

// server maps the HTTP/JSON API onto the manager, the image store, the
// diary service and the agent hub.
type server struct {
	m       *manager
	images  *imageStore
	events  *broker
	diary   *diaryService
	agents  *agentHub
	witness *witnessQueue
	prov    *provisioner
	ui      *uiState
	log     hclog.Logger
	info    func() api.Info
}

// routes is the whole API. Endpoints answer through answer; the event
// stream and the display upgrade write their connection themselves.
func (s *server) routes() http.Handler {
	mux := http.NewServeMux()
	p := "/" + api.Version
	for _, e := range []struct {
		route string
		fn    endpoint
	}{
		{"GET /info", s.handleInfo},
		// workspaces.go
		{"GET /workspaces", s.handleList},
		{"POST /workspaces", withBody(s.handleCreate)},
		{"GET /workspaces/{name}", s.handleGet},
		{"DELETE /workspaces/{name}", s.handleDestroy},
		{"POST /workspaces/{name}/start", withBody(s.handleStart)},
		{"POST /workspaces/{name}/stop", withBody(s.handleStop)},
		{"POST /workspaces/{name}/restart", withBody(s.handleRestart)},
		{"POST /workspaces/{name}/suspend", s.handleSuspend},
		{"POST /workspaces/{name}/switch", withBody(s.handleSwitch)},
		// images.go
		{"GET /images", s.handleImages},
		{"POST /images", s.handleImport},
		{"DELETE /images/{name}", s.handleImageRemove},
		{"POST /images/gc", s.handleImageGC},
		// snapshots.go
		{"GET /workspaces/{name}/snapshots", s.handleSnapshots},
		{"POST /workspaces/{name}/snapshots", withBody(s.handleCreateSnapshot)},
		{"POST /workspaces/{name}/snapshots/{snap}/restore", s.handleRestoreSnapshot},
		{"DELETE /workspaces/{name}/snapshots/{snap}", s.handleDeleteSnapshot},
		// tracking.go
		{"POST /workspaces/{name}/track", withBody(s.handleTrack)},
		{"GET /workspaces/{name}/track", s.handleTrackStatus},
		// witness_queue.go
		{"GET /workspaces/{name}/witness", s.handleWitnessState},
		{"POST /shots/{id}/retake", s.handleRetake},
		// diary_api.go
		{"GET /diary", s.handleDiaryStatus},
		{"POST /diary/init", withBody(s.handleDiaryInit)},
		{"POST /diary/unlock", withBody(s.handleDiaryUnlock)},
		{"GET /workspaces/{name}/diary", s.handleDiaryView},
		{"POST /workspaces/{name}/diary/manual", withBody(s.handleManual)},
		{"POST /workspaces/{name}/diary/export", withBody(s.handleExport)},
		{"POST /workspaces/{name}/diary/prune", withBody(s.handlePrune)},
		{"POST /workspaces/{name}/diary/report", withBody(s.handleReport)},
		{"GET /workspaces/{name}/diary/check", s.handleCheck},
		{"GET /shots/{id}", s.handleShotImage},
		{"POST /shots/{id}/cover", withBody(s.handleCover)},
		{"POST /shots/{id}/delete", s.handleShotDelete},
		{"POST /shots/{id}/reveal", withBody(s.handleReveal)},
		{"POST /backup", s.handleBackup},
		{"POST /restore", s.handleRestore},
		// screen.go, ui.go
		{"GET /workspaces/{name}/screen", s.handleScreen},
		{"POST /ui/login", s.handleUILogin},
	} {
		method, path, _ := strings.Cut(e.route, " ")
		mux.HandleFunc(method+" "+p+path, s.answer(e.fn))
	}
	for route, fn := range s.testRoutes() { // ingest_testing.go: none but in a test build
		method, path, _ := strings.Cut(route, " ")
		mux.HandleFunc(method+" "+p+path, s.answer(fn))
	}
	mux.HandleFunc("GET "+p+"/events", s.handleEvents)                     // events.go
	mux.HandleFunc("GET "+p+"/workspaces/{name}/display", s.handleDisplay) // display.go
	mux.HandleFunc("GET "+p+"/ui/stream", s.handleUIStream)                // uistream.go
	mux.HandleFunc("GET "+p+"/workspaces/{name}/exec", s.handleExec)       // exec.go
	mux.HandleFunc("/", s.answer(func(r *http.Request) (any, error) {
		return nil, fmt.Errorf("%w: no API endpoint %s %s", api.ErrNotFound, r.Method, r.URL.Path)
	}))
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

// endpoint is an API handler: it returns the answer (a value sent as JSON
// with 200 OK, or one of created, noContent, stream and blob) or an error,
// and answer turns either into the HTTP response. No endpoint writes to the
// connection itself.
type endpoint func(r *http.Request) (any, error)

// created answers 201 Created with its value as JSON.
type created struct{ v any }

// noContent answers 204 No Content.
type noContent struct{}

// stream answers 200 OK with what write writes. An error before its first
// byte is still a JSON error; one after it can only be logged.
type stream struct {
	ctype string
	write func(io.Writer) error
}

// blob answers 200 OK with bytes of a content type, never cached.
type blob struct {
	ctype string
	b     []byte
}

// answer serves an endpoint: its error through writeError, its value by
// its type.
func (s *server) answer(e endpoint) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		v, err := e(r)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		switch v := v.(type) {
		case noContent:
			w.WriteHeader(http.StatusNoContent)
		case created:
			s.writeJSON(w, http.StatusCreated, v.v)
		case stream:
			lw := &lazyWriter{w: w, contentType: v.ctype}
			if err := v.write(lw); err != nil {
				if lw.started {
					s.log.Error("stream failed after it started", "path", r.URL.Path, "error", err)
					return
				}
				s.writeError(w, r, err)
			}
		case blob:
			w.Header().Set("Content-Type", v.ctype)
			w.Header().Set("Cache-Control", "no-store")
			if _, err := w.Write(v.b); err != nil {
				s.log.Debug("write response", "path", r.URL.Path, "error", err)
			}
		default:
			s.writeJSON(w, http.StatusOK, v)
		}
	}
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

func (s *server) writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		s.log.Debug("write response", "error", err)
	}
}

// writeError answers an error: its class (the API's, or the diary's or the
// driver's mapped onto the API's) picks the status and wire code.
func (s *server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	if code, _ := api.CodeFor(err); code == api.CodeInternal {
		err = classify(diaryErr(err))
	}
	code, status := api.CodeFor(err)
	if status >= 500 && status != http.StatusServiceUnavailable {
		s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "error", err)
	} else {
		s.log.Debug("request refused", "method", r.Method, "path", r.URL.Path, "error", err)
	}
	s.writeJSON(w, status, api.Error{Code: code, Message: err.Error()})
}

// decodeJSON decodes a request body (at most maxJSONBody) strictly into v;
// an empty body leaves v as it is.
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

// withBody is an endpoint that takes a JSON request body of type T.
func withBody[T any](fn func(r *http.Request, req T) (any, error)) endpoint {
	return func(r *http.Request) (any, error) {
		var req T
		if err := decodeJSON(r, &req); err != nil {
			return nil, err
		}
		return fn(r, req)
	}
}

func (s *server) handleInfo(r *http.Request) (any, error) { return s.info(), nil }
