// Package web is the work diary in the browser: server-rendered pages on a
// loopback address, behind a one-time login token that becomes an HttpOnly,
// SameSite=Strict session cookie named for the UI's port (cookies on one
// host are shared by all its ports), expiring after an idle hour; only
// requests naming this UI's own host and port are served (against DNS
// rebinding); every change is a POST with a CSRF token and a checked Origin. Pages call the daemon through the same JSON API as
// the CLI. Assets are embedded; the pages make no external request.
package web

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/workspace-sandbox/workspace/api"
	"github.com/workspace-sandbox/workspace/tracking"
)

//go:embed templates/*.html static/*
var assets embed.FS

// Backend is what the pages need from the daemon; *api.Client is one.
type Backend interface {
	Workspaces(ctx context.Context) ([]api.Workspace, error)
	Workspace(ctx context.Context, name string) (api.Workspace, error)
	Diary(ctx context.Context, name string, from, to time.Time, tz string) (tracking.DiaryView, error)
	ShotImage(ctx context.Context, id, kind string) ([]byte, error)
	Cover(ctx context.Context, id string, req api.CoverRequest) error
	DeleteShot(ctx context.Context, id string) error
	Retake(ctx context.Context, id string) (api.Retake, error)
	Export(ctx context.Context, name string, req api.ExportRequest, w io.Writer) error
	Start(ctx context.Context, name string, req api.StartRequest) (api.Workspace, error)
	Stop(ctx context.Context, name string, req api.StopRequest) (api.Workspace, error)
	Switch(ctx context.Context, name string, req api.StartRequest) (api.SwitchResult, error)
	Track(ctx context.Context, name string, req api.TrackRequest) (api.TrackStatus, error)
	TrackStatus(ctx context.Context, name string) (api.TrackStatus, error)
	Reveal(ctx context.Context, id string, recipients []string, w io.Writer) error
	Report(ctx context.Context, name, format string, req api.ExportRequest, w io.Writer) error
	Screen(ctx context.Context, name string) ([]byte, error)
}

var _ Backend = (*api.Client)(nil)

const (
	cookiePrefix = "workspace_session_"
	loginTTL     = 5 * time.Minute
	sessionTTL   = 12 * time.Hour // at most, however busy
	idleTTL      = time.Hour      // a session unused this long is gone
	maxFormBytes = 64 << 10
)

type session struct {
	csrf     string
	expires  time.Time
	lastSeen time.Time
}

// Server serves the web UI.
type Server struct {
	b        Backend
	log      hclog.Logger
	tmpl     *template.Template
	now      func() time.Time
	loc      *time.Location
	mu       sync.Mutex
	logins   map[string]time.Time // one-time login tokens → expiry
	sessions map[string]*session
	// cookie is the session cookie's name, hosts the Host headers served;
	// both come from the listening address (SetAddr).
	cookie string
	hosts  map[string]bool
	// port is the UI's own port; loopback says it listens on loopback;
	// forwards are the ports AllowForwardPort added, oldest first.
	port     string
	loopback bool
	forwards []string
}

// New makes a web UI server over b.
func New(b Backend, log hclog.Logger) (*Server, error) {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	t, err := template.New("").Funcs(funcs).ParseFS(assets, "templates/*.html")
	if err != nil {
		return nil, fmt.Errorf("web templates: %w", err)
	}
	return &Server{b: b, log: log, tmpl: t, now: time.Now, loc: time.Local, logins: map[string]time.Time{}, sessions: map[string]*session{}}, nil
}

func randToken() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// SetAddr tells the server the address it listens on ("127.0.0.1:7420"),
// before it serves: the session cookie is named for its port, and only
// requests whose Host is 127.0.0.1:PORT, localhost:PORT, the address itself
// or one of names (with the port: the names a TLS certificate holds) are
// served. A page of another site that a rebound DNS name points at
// 127.0.0.1 sends its own name as Host and gets nothing.
func (s *Server) SetAddr(addr string, names ...string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || port == "" || port == "0" {
		return fmt.Errorf("web UI address %q: need host:port", addr)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cookie = cookiePrefix + port
	s.hosts = map[string]bool{net.JoinHostPort(host, port): true}
	for _, n := range names {
		s.hosts[strings.ToLower(net.JoinHostPort(n, port))] = true
	}
	s.port, s.loopback, s.forwards = port, false, nil
	if ip := net.ParseIP(host); host == "localhost" || (ip != nil && ip.IsLoopback()) {
		s.hosts["127.0.0.1:"+port], s.hosts["localhost:"+port] = true, true
		s.loopback = true
	}
	return nil
}

// maxForwardPorts bounds the loopback ports AllowForwardPort adds.
const maxForwardPorts = 16

// AllowForwardPort also serves Host 127.0.0.1:PORT and localhost:PORT for
// a loopback port that forwards to this UI from another machine
// (`workspace ui` over SSH, when the UI's own port number is taken
// there). Only a loopback UI takes it: the names stay loopback literals,
// which no rebound DNS name can send. At most maxForwardPorts are kept,
// the oldest dropped first.
func (s *Server) AllowForwardPort(port int) error {
	if port < 1 || port > 65535 {
		return fmt.Errorf("forward port %d is not a TCP port", port)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.loopback {
		return errors.New("the web UI is not on loopback: a forward reaches it by its own names")
	}
	p := strconv.Itoa(port)
	if s.hosts["127.0.0.1:"+p] {
		return nil
	}
	if len(s.forwards) == maxForwardPorts {
		old := s.forwards[0]
		s.forwards = s.forwards[1:]
		if old != s.port {
			delete(s.hosts, "127.0.0.1:"+old)
			delete(s.hosts, "localhost:"+old)
		}
	}
	s.forwards = append(s.forwards, p)
	s.hosts["127.0.0.1:"+p], s.hosts["localhost:"+p] = true, true
	return nil
}

// CookieName is the session cookie's name ("workspace_session_7420").
func (s *Server) CookieName() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cookie
}

// NewLogin returns a one-time login token, valid for a few minutes.
func (s *Server) NewLogin() string {
	tok := randToken()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.logins[tok] = s.now().Add(loginTTL)
	for k, exp := range s.logins {
		if s.now().After(exp) {
			delete(s.logins, k)
		}
	}
	return tok
}

// Handler returns the UI's routes.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /login", s.handleLogin)
	mux.HandleFunc("POST /logout", s.auth(s.doLogout))
	mux.Handle("GET /static/", http.FileServerFS(assets))
	mux.HandleFunc("GET /{$}", s.auth(s.pageWorkspaces))
	mux.HandleFunc("GET /w/{name}", s.auth(s.pageDiary))
	mux.HandleFunc("GET /w/{name}/live", s.auth(s.pageLive))
	mux.HandleFunc("GET /w/{name}/screen.png", s.auth(s.screen))
	mux.HandleFunc("GET /w/{name}/export", s.auth(s.pageExport))
	mux.HandleFunc("POST /w/{name}/export", s.auth(s.doExport))
	mux.HandleFunc("POST /w/{name}/{action}", s.auth(s.doWorkspace))
	mux.HandleFunc("GET /shot/{id}", s.auth(s.pageShot))
	mux.HandleFunc("GET /shot/{id}/image", s.auth(s.shotImage))
	mux.HandleFunc("POST /shot/{id}/cover", s.auth(s.doCover))
	mux.HandleFunc("POST /shot/{id}/delete", s.auth(s.doDelete))
	mux.HandleFunc("POST /shot/{id}/retake", s.auth(s.doRetake))
	mux.HandleFunc("POST /shot/{id}/reveal", s.auth(s.doReveal))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.fail(w, r, http.StatusNotFound, "There is no page "+r.URL.Path+".")
	})
	return securityHeaders(s.checkHost(mux))
}

// checkHost serves only requests addressed to this UI by its own names.
func (s *Server) checkHost(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		ok := s.hosts[strings.ToLower(r.Host)]
		s.mu.Unlock()
		if !ok {
			s.log.Warn("refused a request for another host", "host", r.Host, "path", r.URL.Path)
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.WriteHeader(http.StatusMisdirectedRequest)
			fmt.Fprintln(w, "This is the workspace web UI; open it as http://127.0.0.1:PORT or http://localhost:PORT (run `workspace ui`).")
			return
		}
		next.ServeHTTP(w, r)
	})
}

func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; form-action 'self'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin") // "no-referrer" makes browsers send Origin: null
		h.Set("X-Frame-Options", "DENY")
		next.ServeHTTP(w, r)
	})
}

// handleLogin trades a one-time token for a session cookie.
func (s *Server) handleLogin(w http.ResponseWriter, r *http.Request) {
	tok := r.URL.Query().Get("token")
	s.mu.Lock()
	exp, ok := s.logins[tok]
	if ok {
		delete(s.logins, tok) // one time only
	}
	valid := ok && s.now().Before(exp)
	var sid string
	if valid {
		sid = randToken()
		now := s.now()
		s.sessions[sid] = &session{csrf: randToken(), expires: now.Add(sessionTTL), lastSeen: now}
		s.sweepLocked(now)
	}
	name := s.cookie
	s.mu.Unlock()
	if !valid {
		s.fail(w, r, http.StatusUnauthorized, "This login link is not valid (it works once and for five minutes). Run `workspace ui` for a new one.")
		return
	}
	// No Max-Age: the cookie goes with the browser session; the server
	// forgets the session after an idle hour or 12 hours anyway.
	http.SetCookie(w, &http.Cookie{Name: name, Value: sid, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// sweepLocked forgets sessions that expired; s.mu is held.
func (s *Server) sweepLocked(now time.Time) {
	for k, sess := range s.sessions {
		if sess.dead(now) {
			delete(s.sessions, k)
		}
	}
}

func (sess *session) dead(now time.Time) bool {
	return !now.Before(sess.expires) || now.Sub(sess.lastSeen) >= idleTTL
}

// doLogout ends the session: the server forgets it and the browser's
// cookie is cleared.
func (s *Server) doLogout(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	if c, err := r.Cookie(s.cookie); err == nil {
		delete(s.sessions, c.Value)
	}
	name := s.cookie
	s.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: name, Value: "", Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil, MaxAge: -1})
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if err := s.tmpl.ExecuteTemplate(w, "error.html", map[string]any{"Title": "Logged out", "Status": http.StatusOK, "Message": "Logged out. Run `workspace ui` to log in again."}); err != nil {
		s.log.Error("render", "page", "logout", "error", err)
	}
}

type ctxKey struct{}

// auth lets a request through only with a live session; a POST also needs
// the session's CSRF token and, when the browser sends one, our Origin.
func (s *Server) auth(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		c, err := r.Cookie(s.cookie)
		var sess *session
		if err == nil {
			now := s.now()
			sess = s.sessions[c.Value]
			if sess != nil && sess.dead(now) {
				delete(s.sessions, c.Value)
				sess = nil
			}
			if sess != nil {
				sess.lastSeen = now
			}
		}
		s.mu.Unlock()
		if sess == nil {
			s.fail(w, r, http.StatusUnauthorized, "Not logged in (or the session ended after an idle hour): run `workspace ui` and open the link it prints.")
			return
		}
		if r.Method == http.MethodPost {
			if o := r.Header.Get("Origin"); o != "" && !sameOrigin(o, r) {
				s.fail(w, r, http.StatusForbidden, "Refused: this request came from another site ("+o+").")
				return
			}
			r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
			tok := r.Header.Get("X-CSRF-Token")
			if tok == "" {
				tok = r.PostFormValue("csrf")
			}
			if subtle.ConstantTimeCompare([]byte(tok), []byte(sess.csrf)) != 1 {
				s.fail(w, r, http.StatusForbidden, "Refused: the form's security token is missing or stale. Reload the page and try again.")
				return
			}
		}
		next(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, sess)))
	}
}

func sameOrigin(origin string, r *http.Request) bool {
	u, err := url.Parse(origin)
	return err == nil && u.Host == r.Host && (u.Scheme == "http" || u.Scheme == "https")
}

func csrfOf(r *http.Request) string {
	if s, ok := r.Context().Value(ctxKey{}).(*session); ok {
		return s.csrf
	}
	return ""
}

// render executes a page template with common fields.
func (s *Server) render(w http.ResponseWriter, r *http.Request, name string, data map[string]any) {
	data["CSRF"] = csrfOf(r)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if err := s.tmpl.ExecuteTemplate(w, name, data); err != nil {
		s.log.Error("render", "page", name, "error", err)
	}
}

// fail shows an error page (never a stack trace).
func (s *Server) fail(w http.ResponseWriter, r *http.Request, status int, msg string) {
	w.WriteHeader(status)
	s.render(w, r, "error.html", map[string]any{"Title": http.StatusText(status), "Status": status, "Message": msg})
}

// failErr maps an API error to a page.
func (s *Server) failErr(w http.ResponseWriter, r *http.Request, err error) {
	status := http.StatusInternalServerError
	switch {
	case errors.Is(err, api.ErrNotFound):
		status = http.StatusNotFound
	case errors.Is(err, api.ErrInvalid):
		status = http.StatusBadRequest
	case errors.Is(err, api.ErrConflict), errors.Is(err, api.ErrExists):
		status = http.StatusConflict
	case errors.Is(err, api.ErrUnavailable), errors.Is(err, api.ErrDaemonNotRunning):
		status = http.StatusServiceUnavailable
	}
	if status == http.StatusInternalServerError {
		s.log.Error("page failed", "path", r.URL.Path, "error", err)
	}
	s.fail(w, r, status, strings.TrimSpace(err.Error()))
}
