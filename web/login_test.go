package web

import (
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestCookieNamedForThePort: cookies on 127.0.0.1 are shared by every port,
// so the session cookie carries this UI's port in its name; a page another
// local user serves on another port does not receive a cookie it knows.
func TestCookieNamedForThePort(t *testing.T) {
	s, _, c := newTestServer(t)
	_, port, _ := net.SplitHostPort(c.srv.Listener.Addr().String())
	ck := login(t, s, c)
	if ck.Name != "workspace_session_"+port {
		t.Fatalf("cookie %q does not name the port %s", ck.Name, port)
	}
	if ck.MaxAge > 0 || !ck.Expires.IsZero() {
		t.Errorf("the session cookie outlives the browser session: %+v", ck)
	}
	// The same session under the old, port-less name is not accepted.
	old := &http.Cookie{Name: "workspace_session", Value: ck.Value}
	if resp, _ := c.do("GET", "/", nil, old, ""); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("a cookie without the port: %d", resp.StatusCode)
	}
}

// TestHostAllowlist: a browser that a rebound DNS name sends to
// 127.0.0.1:PORT names that DNS name in Host; only 127.0.0.1:PORT and
// localhost:PORT are served, so the rebound page can neither log in nor
// read a page.
func TestHostAllowlist(t *testing.T) {
	s, _, c := newTestServer(t)
	_, port, _ := net.SplitHostPort(c.srv.Listener.Addr().String())
	ck := login(t, s, c)
	get := func(host, path string, cookie *http.Cookie) int {
		req, _ := http.NewRequest("GET", c.srv.URL+path, nil)
		req.Host = host
		if cookie != nil {
			req.AddCookie(cookie)
		}
		resp, err := c.hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, host := range []string{"127.0.0.1:" + port, "localhost:" + port, "LOCALHOST:" + port} {
		if code := get(host, "/", ck); code != http.StatusOK {
			t.Errorf("Host %s: %d", host, code)
		}
	}
	for _, host := range []string{"evil.example:" + port, "evil.example", "127.0.0.1", "127.0.0.1:1", "localhost", "127.0.0.2:" + port, "[::1]:" + port} {
		if code := get(host, "/", ck); code != http.StatusMisdirectedRequest {
			t.Errorf("Host %s: %d, want 421", host, code)
		}
		if code := get(host, "/login?token="+s.NewLogin(), nil); code != http.StatusMisdirectedRequest {
			t.Errorf("login with Host %s: %d, want 421", host, code)
		}
		if code := get(host, "/static/app.css", nil); code != http.StatusMisdirectedRequest {
			t.Errorf("asset with Host %s: %d, want 421", host, code)
		}
	}
	// Beyond loopback (with TLS), the names of the certificate are served.
	tlsSrv, err := New(&fakeBackend{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := tlsSrv.SetAddr("0.0.0.0:8443", "ws.example", "192.0.2.7"); err != nil {
		t.Fatal(err)
	}
	for host, want := range map[string]int{"ws.example:8443": http.StatusUnauthorized, "WS.example:8443": http.StatusUnauthorized, "192.0.2.7:8443": http.StatusUnauthorized,
		"evil.example:8443": http.StatusMisdirectedRequest, "ws.example:7420": http.StatusMisdirectedRequest, "127.0.0.1:8443": http.StatusMisdirectedRequest} {
		req, _ := http.NewRequest("GET", "https://"+host+"/", nil)
		rec := &recorder{h: http.Header{}}
		tlsSrv.Handler().ServeHTTP(rec, req)
		if rec.code != want {
			t.Errorf("TLS UI, Host %s: %d, want %d", host, rec.code, want)
		}
	}
	// Without an address the server serves nothing.
	bare, err := New(&fakeBackend{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("GET", "http://127.0.0.1:7420/login?token="+bare.NewLogin(), nil)
	rec := &recorder{h: http.Header{}}
	bare.Handler().ServeHTTP(rec, req)
	if rec.code != http.StatusMisdirectedRequest {
		t.Errorf("a server without SetAddr answered %d", rec.code)
	}
}

// TestAllowForwardPort: a loopback UI also serves the loopback names of a
// port that forwards to it from another machine (at most maxForwardPorts,
// the oldest dropped, never its own); a UI beyond loopback takes none.
func TestAllowForwardPort(t *testing.T) {
	s, err := New(&fakeBackend{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetAddr("127.0.0.1:7420"); err != nil {
		t.Fatal(err)
	}
	code := func(srv *Server, host string) int {
		req, _ := http.NewRequest("GET", "http://"+host+"/static/app.css", nil)
		rec := &recorder{h: http.Header{}}
		srv.Handler().ServeHTTP(rec, req)
		return rec.code
	}
	if c := code(s, "127.0.0.1:9000"); c != http.StatusMisdirectedRequest {
		t.Fatalf("an unnamed port: %d", c)
	}
	for _, bad := range []int{0, -1, 65536} {
		if err := s.AllowForwardPort(bad); err == nil {
			t.Errorf("port %d accepted", bad)
		}
	}
	for p := 9000; p < 9000+maxForwardPorts+1; p++ {
		if err := s.AllowForwardPort(p); err != nil {
			t.Fatal(err)
		}
	}
	for host, want := range map[string]int{"127.0.0.1:9001": 0, "localhost:9016": 0, "127.0.0.1:7420": 0, "localhost:7420": 0,
		"127.0.0.1:9000": http.StatusMisdirectedRequest, "evil.example:9001": http.StatusMisdirectedRequest} {
		if c := code(s, host); (want == 0 && c == http.StatusMisdirectedRequest) || (want != 0 && c != want) {
			t.Errorf("Host %s: %d", host, c)
		}
	}
	tlsSrv, err := New(&fakeBackend{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := tlsSrv.SetAddr("0.0.0.0:8443", "ws.example"); err != nil {
		t.Fatal(err)
	}
	if err := tlsSrv.AllowForwardPort(9000); err == nil || code(tlsSrv, "127.0.0.1:9000") != http.StatusMisdirectedRequest {
		t.Fatalf("a UI beyond loopback took a forward port: %v", err)
	}
}

type recorder struct {
	h    http.Header
	code int
}

func (r *recorder) Header() http.Header         { return r.h }
func (r *recorder) Write(b []byte) (int, error) { return len(b), nil }
func (r *recorder) WriteHeader(code int)        { r.code = code }

// TestLogout: a POST with the CSRF token ends the session on the server
// (the cookie is worthless afterwards) and clears it in the browser; a
// logout without the token changes nothing.
func TestLogout(t *testing.T) {
	s, _, c := newTestServer(t)
	ck := login(t, s, c)
	resp, body := c.do("GET", "/", nil, ck, "")
	if resp.StatusCode != 200 || !strings.Contains(body, `action="/logout"`) {
		t.Fatalf("no logout button: %d", resp.StatusCode)
	}
	if resp, _ := c.do("POST", "/logout", url.Values{}, ck, ""); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("logout without CSRF: %d", resp.StatusCode)
	}
	if resp, _ := c.do("GET", "/", nil, ck, ""); resp.StatusCode != 200 {
		t.Fatalf("a refused logout ended the session: %d", resp.StatusCode)
	}
	csrf := s.sessionsCSRF(ck.Value)
	resp, body = c.do("POST", "/logout", url.Values{"csrf": {csrf}}, ck, c.srv.URL)
	if resp.StatusCode != 200 || !strings.Contains(body, "Logged out") {
		t.Fatalf("logout: %d %s", resp.StatusCode, body)
	}
	cleared := false
	for _, k := range resp.Cookies() {
		if k.Name == ck.Name && k.MaxAge < 0 {
			cleared = true
		}
	}
	if !cleared {
		t.Errorf("logout did not clear the cookie: %v", resp.Header["Set-Cookie"])
	}
	if resp, _ := c.do("GET", "/", nil, ck, ""); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("the cookie still works after logout: %d", resp.StatusCode)
	}
}

func (s *Server) sessionsCSRF(sid string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sess := s.sessions[sid]; sess != nil {
		return sess.csrf
	}
	return ""
}

// TestSessionIdleExpiry (injected clock): a session used within the hour
// lives on; one left alone for an hour is gone, and so is every session
// after 12 hours however busy.
func TestSessionIdleExpiry(t *testing.T) {
	s, _, c := newTestServer(t)
	now := time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)
	s.now = func() time.Time { return now }
	ck := login(t, s, c)
	status := func() int {
		resp, _ := c.do("GET", "/", nil, ck, "")
		return resp.StatusCode
	}
	for i := 0; i < 5; i++ {
		now = now.Add(59 * time.Minute)
		if code := status(); code != 200 {
			t.Fatalf("used every 59 minutes, the session ended at step %d: %d", i, code)
		}
	}
	now = now.Add(time.Hour)
	if code := status(); code != http.StatusUnauthorized {
		t.Fatalf("after an idle hour: %d", code)
	}
	if len(s.sessions) != 0 {
		t.Errorf("the dead session is still kept")
	}
	ck = login(t, s, c)
	for i := 0; i < 12; i++ {
		now = now.Add(59 * time.Minute)
		if code := status(); code != 200 {
			t.Fatalf("a busy session ended after %d steps: %d", i, code)
		}
	}
	now = now.Add(20 * time.Minute)
	if code := status(); code != http.StatusUnauthorized {
		t.Fatalf("a busy session outlived 12 hours: %d", code)
	}
}

// TestPagesEscapeGuestStrings: memos, gap reasons and client names (from a
// profile or the guest) are shown with control and direction characters
// escaped, then HTML-escaped.
func TestPagesEscapeGuestStrings(t *testing.T) {
	s, fb, c := newTestServer(t)
	v := fb.view
	sl := &v.Days[0].Slots[0]
	sl.Memo = "fix\x1b[31m bug"
	sl.Gaps = []string{"display\u202egone <b>"}
	sl.Billable, sl.Reason = false, "no\nshot"
	v.Client = "Acme\x1b[2K"
	fb.view = v
	ck := login(t, s, c)
	resp, body := c.do("GET", "/w/acme?day=2026-11-20", nil, ck, "")
	if resp.StatusCode != 200 {
		t.Fatalf("day page: %d", resp.StatusCode)
	}
	if strings.ContainsAny(body, "\x1b\u202e") {
		t.Errorf("a control or direction character reached the page")
	}
	for _, want := range []string{`fix\x1b[31m bug`, `display\u{202e}gone &lt;b&gt;`, `not billed: no\nshot`, `Acme\x1b[2K`} {
		if !strings.Contains(body, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
}
