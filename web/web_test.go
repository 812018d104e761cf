package web

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/workspace-sandbox/workspace/api"
	"github.com/workspace-sandbox/workspace/profiles"
	"github.com/workspace-sandbox/workspace/tracking"
)

// fakeBackend is the daemon as the pages see it.
type fakeBackend struct {
	mu      sync.Mutex
	covers  []api.CoverRequest
	view    tracking.DiaryView
	calls   []string // workspace actions and deletes, as "start acme"
	tracks  []api.TrackRequest
	diaries [][2]time.Time // the ranges the diary was asked for
	idle    bool           // not tracking (TrackStatus)
	// suspended shows acme suspended, with a saved state.
	suspended bool
}

func (f *fakeBackend) record(call string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, call)
}

func (f *fakeBackend) recorded() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

// known refuses every workspace but acme, as the daemon does.
func known(name string) error {
	if name != "acme" {
		return fmt.Errorf("%w: no workspace named %q", api.ErrNotFound, name)
	}
	return nil
}

var secretShot = []byte("\xff\xd8\xff\xe0 SECRET SCREENSHOT BYTES")

func (f *fakeBackend) Workspaces(context.Context) ([]api.Workspace, error) {
	if f.suspended {
		return []api.Workspace{{Name: "acme", State: "suspended", Saved: &api.SavedState{Bytes: 300 << 20}}}, nil
	}
	return []api.Workspace{{Name: "acme", State: "running"}}, nil
}
func (f *fakeBackend) Workspace(_ context.Context, name string) (api.Workspace, error) {
	if name != "acme" {
		return api.Workspace{}, fmt.Errorf("%w: no workspace named %q", api.ErrNotFound, name)
	}
	if f.suspended {
		return api.Workspace{Name: "acme", State: "suspended", Saved: &api.SavedState{Bytes: 300 << 20}}, nil
	}
	return api.Workspace{Name: "acme", State: "running", Agent: &api.AgentInfo{Connected: true},
		Settings: &profiles.Profile{Client: &profiles.Client{Name: "ACME Corp"}},
		Witness: &api.WitnessState{Origin: "workspace-diary/0011223344556677/acme", Size: 40, Witnesses: []api.WitnessStatus{
			{Name: "client", CosignedSize: 40, CosignedAt: time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)},
			{Name: "team", CosignedSize: 12, CosignedAt: time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC), Pending: 28,
				QueuedSince: time.Date(2026, 11, 20, 9, 1, 0, 0, time.UTC), LastError: "witness <b>down</b>: connection refused"},
		}}}, nil
}
func (f *fakeBackend) Diary(_ context.Context, name string, from, to time.Time, tz string) (tracking.DiaryView, error) {
	if name != "acme" {
		return tracking.DiaryView{}, fmt.Errorf("%w: no diary for workspace %q", api.ErrNotFound, name)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.diaries = append(f.diaries, [2]time.Time{from, to})
	v := f.view
	v.Workspace, v.From, v.To = name, from, to
	return v, nil
}
func (f *fakeBackend) ShotImage(_ context.Context, id, kind string) ([]byte, error) {
	if id != "shot-1" {
		return nil, fmt.Errorf("%w: no shot %q", api.ErrNotFound, id)
	}
	return secretShot, nil
}
func (f *fakeBackend) Cover(_ context.Context, id string, req api.CoverRequest) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.covers = append(f.covers, req)
	return nil
}
func (f *fakeBackend) Retake(_ context.Context, id string) (api.Retake, error) {
	if id != "shot-1" {
		return api.Retake{}, fmt.Errorf("%w: no shot %q", api.ErrNotFound, id)
	}
	f.record("retake " + id)
	return api.Retake{Shot: id, Workspace: "acme", Retakes: []string{id + "-r"}}, nil
}
func (f *fakeBackend) DeleteShot(_ context.Context, id string) error {
	f.record("delete " + id)
	return nil
}
func (f *fakeBackend) Export(_ context.Context, name string, _ api.ExportRequest, w io.Writer) error {
	f.record("export " + name)
	_, err := w.Write([]byte("age-encryption.org/v1\n..."))
	return err
}
func (f *fakeBackend) Start(_ context.Context, name string, _ api.StartRequest) (api.Workspace, error) {
	if err := known(name); err != nil {
		return api.Workspace{}, err
	}
	f.record("start " + name)
	return api.Workspace{}, nil
}
func (f *fakeBackend) Stop(_ context.Context, name string, _ api.StopRequest) (api.Workspace, error) {
	if err := known(name); err != nil {
		return api.Workspace{}, err
	}
	f.record("stop " + name)
	return api.Workspace{}, nil
}
func (f *fakeBackend) Switch(_ context.Context, name string, _ api.StartRequest) (api.SwitchResult, error) {
	if err := known(name); err != nil {
		return api.SwitchResult{}, err
	}
	f.record("switch " + name)
	return api.SwitchResult{}, nil
}
func (f *fakeBackend) Track(_ context.Context, name string, req api.TrackRequest) (api.TrackStatus, error) {
	if err := known(name); err != nil {
		return api.TrackStatus{}, err
	}
	f.record("track " + name)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tracks = append(f.tracks, req)
	return api.TrackStatus{}, nil
}

// secretScreen stands for a live screen: PNG's signature, then a marker.
var secretScreen = append([]byte("\x89PNG\r\n\x1a\n"), "SECRET LIVE SCREEN"...)

func (f *fakeBackend) Screen(_ context.Context, name string) ([]byte, error) {
	if err := known(name); err != nil {
		return nil, err
	}
	return secretScreen, nil
}
func (f *fakeBackend) TrackStatus(context.Context, string) (api.TrackStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return api.TrackStatus{Tracking: !f.idle}, nil
}
func (f *fakeBackend) Reveal(_ context.Context, id string, _ []string, w io.Writer) error {
	_, err := w.Write([]byte("age-encryption.org/v1\nreveal of " + id))
	return err
}
func (f *fakeBackend) Report(_ context.Context, name, format string, _ api.ExportRequest, w io.Writer) error {
	_, err := w.Write([]byte("report " + format + " of " + name))
	return err
}

// daySlots makes a day of n 10-minute slots with a shot each.
func daySlots(day time.Time, n int) tracking.DiaryView {
	d := tracking.DiaryDay{Date: day.Format("2006-01-02")}
	for i := 0; i < n; i++ {
		st := day.Add(time.Duration(i) * 10 * time.Minute)
		d.Slots = append(d.Slots, tracking.Slot{Start: st, End: st.Add(10 * time.Minute), Billable: i%7 != 0, Reason: "no activity",
			ActivityPercent: (i * 13) % 100, Memo: "checkout rewrite",
			Shots: []tracking.Shot{{ID: fmt.Sprintf("shot-%d", i+1), Taken: st.Add(3 * time.Minute), Width: 1920, Height: 1080, State: "ok"}}})
	}
	return tracking.DiaryView{Days: []tracking.DiaryDay{d}, SlotSeconds: 600, Totals: tracking.DiaryTotals{Slots: n, BillableSeconds: n * 600}}
}

type client struct {
	t   *testing.T
	srv *httptest.Server
	hc  *http.Client
}

func newTestServer(t *testing.T) (*Server, *fakeBackend, *client) {
	t.Helper()
	fb := &fakeBackend{view: daySlots(time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC), 3)}
	s, err := New(fb, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.loc = time.UTC
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	if err := s.SetAddr(srv.Listener.Addr().String()); err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return s, fb, &client{t: t, srv: srv, hc: hc}
}

func (c *client) do(method, path string, form url.Values, cookie *http.Cookie, origin string) (*http.Response, string) {
	c.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, _ := http.NewRequest(method, c.srv.URL+path, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if cookie != nil {
		req.AddCookie(cookie)
	}
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}

func login(t *testing.T, s *Server, c *client) *http.Cookie {
	t.Helper()
	resp, _ := c.do("GET", "/login?token="+s.NewLogin(), nil, nil, "")
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("login: %d", resp.StatusCode)
	}
	for _, ck := range resp.Cookies() {
		if ck.Name == s.CookieName() {
			if !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode {
				t.Fatalf("session cookie is not HttpOnly+SameSite=Strict: %+v", ck)
			}
			return ck
		}
	}
	t.Fatal("no session cookie")
	return nil
}

func TestNothingWithoutALogin(t *testing.T) {
	s, _, c := newTestServer(t)
	for _, p := range []string{"/", "/w/acme", "/shot/shot-1/image", "/shot/shot-1/image?kind=thumbnail", "/w/acme/screen.png", "/w/acme/export"} {
		resp, body := c.do("GET", p, nil, nil, "")
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("GET %s without a session: %d", p, resp.StatusCode)
		}
		if strings.Contains(body, "SECRET") {
			t.Errorf("GET %s without a session leaked a shot", p)
		}
	}
	bogus := &http.Cookie{Name: s.CookieName(), Value: "made-up"}
	if resp, body := c.do("GET", "/shot/shot-1/image", nil, bogus, ""); resp.StatusCode != 401 || strings.Contains(body, "SECRET") {
		t.Errorf("made-up session: %d", resp.StatusCode)
	}
	// A login token works once.
	tok := s.NewLogin()
	if resp, _ := c.do("GET", "/login?token="+tok, nil, nil, ""); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("login: %d", resp.StatusCode)
	}
	if resp, _ := c.do("GET", "/login?token="+tok, nil, nil, ""); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("second use of a login token: %d", resp.StatusCode)
	}
	if resp, _ := c.do("GET", "/login?token=nope", nil, nil, ""); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("bad token: %d", resp.StatusCode)
	}
}

func TestPagesAndCSRF(t *testing.T) {
	s, fb, c := newTestServer(t)
	ck := login(t, s, c)
	resp, body := c.do("GET", "/", nil, ck, "")
	if resp.StatusCode != 200 || !strings.Contains(body, "acme") {
		t.Fatalf("workspaces page: %d", resp.StatusCode)
	}
	resp, body = c.do("GET", "/w/acme?day=2026-11-20", nil, ck, "")
	if resp.StatusCode != 200 || !strings.Contains(body, "/shot/shot-1/image?kind=thumbnail") || !strings.Contains(body, "checkout rewrite") {
		t.Fatalf("day page: %d\n%s", resp.StatusCode, body)
	}
	if resp.Header.Get("Cache-Control") != "no-store" || !strings.Contains(resp.Header.Get("Content-Security-Policy"), "default-src 'self'") {
		t.Errorf("headers: %v", resp.Header)
	}
	resp, body = c.do("GET", "/shot/shot-1/image", nil, ck, "")
	if resp.StatusCode != 200 || body != string(secretShot) || resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("shot image: %d %q", resp.StatusCode, resp.Header.Get("Cache-Control"))
	}
	// Bad input: unknown workspace and shot, bad and out-of-range dates.
	for path, want := range map[string]int{"/w/nope": 404, "/shot/nope?w=acme&day=2026-11-20": 404, "/w/acme?day=yesterday-ish": 400,
		"/w/acme?day=1800-01-01": 400, "/no/such/page": 404} {
		resp, body := c.do("GET", path, nil, ck, "")
		if resp.StatusCode != want || strings.Contains(body, "goroutine") || !strings.Contains(body, "Back to the workspaces") {
			t.Errorf("GET %s: %d (want %d)", path, resp.StatusCode, want)
		}
	}
	// Every state-changing request needs the CSRF token and our origin.
	sess := s.sessions[ck.Value]
	form := url.Values{"rect": {"10,20,300,40"}, "w": {"acme"}, "day": {"2026-11-20"}}
	if resp, _ := c.do("POST", "/shot/shot-1/cover", form, ck, ""); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("POST without CSRF token: %d", resp.StatusCode)
	}
	form.Set("csrf", sess.csrf)
	if resp, _ := c.do("POST", "/shot/shot-1/cover", form, ck, "http://evil.example"); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("POST from another origin: %d", resp.StatusCode)
	}
	if resp, _ := c.do("POST", "/shot/shot-1/cover", form, nil, ""); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("POST without a session: %d", resp.StatusCode)
	}
	if len(fb.covers) != 0 {
		t.Fatal("a refused request changed something")
	}
	if resp, _ := c.do("POST", "/shot/shot-1/cover", form, ck, c.srv.URL); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("POST with token and origin: %d", resp.StatusCode)
	}
	if len(fb.covers) != 1 || fb.covers[0].Rects[0] != (tracking.Rect{X: 10, Y: 20, W: 300, H: 40}) {
		t.Fatalf("covers %+v", fb.covers)
	}
	form.Set("rect", "10,20,x,40")
	if resp, _ := c.do("POST", "/shot/shot-1/cover", form, ck, ""); resp.StatusCode != 400 {
		t.Fatalf("bad rectangle: %d", resp.StatusCode)
	}
	// Export downloads a file.
	resp, body = c.do("POST", "/w/acme/export", url.Values{"csrf": {sess.csrf}, "from": {"2026-11-16"}, "to": {"2026-11-20"}}, ck, "")
	if resp.StatusCode != 200 || !strings.HasPrefix(body, "age-encryption.org") || !strings.Contains(resp.Header.Get("Content-Disposition"), "acme-20261116-20261120.diary") {
		t.Fatalf("export: %d %v", resp.StatusCode, resp.Header)
	}
	// A date out of range is refused and nothing is exported.
	calls := len(fb.calls)
	for _, bad := range [][2]string{{"1800-01-01", "2026-11-20"}, {"2026-11-16", "9999-12-31"}} {
		resp, body = c.do("POST", "/w/acme/export", url.Values{"csrf": {sess.csrf}, "from": {bad[0]}, "to": {bad[1]}}, ck, "")
		if resp.StatusCode != 400 || !strings.Contains(body, "out of range") || len(fb.calls) != calls {
			t.Fatalf("export %v: %d, calls %v, %q", bad, resp.StatusCode, fb.calls, body)
		}
	}
	for _, kind := range []string{"html", "csv"} {
		resp, body = c.do("POST", "/w/acme/export", url.Values{"csrf": {sess.csrf}, "from": {"2026-11-16"}, "to": {"2026-11-20"}, "kind": {kind}}, ck, "")
		if resp.StatusCode != 200 || body != "report "+kind+" of acme" || !strings.Contains(resp.Header.Get("Content-Disposition"), "."+kind) {
			t.Fatalf("%s report: %d %q", kind, resp.StatusCode, body)
		}
	}
	resp, body = c.do("POST", "/shot/shot-1/reveal", url.Values{"csrf": {sess.csrf}}, ck, "")
	if resp.StatusCode != 200 || !strings.Contains(body, "reveal of shot-1") {
		t.Fatalf("reveal: %d %q", resp.StatusCode, body)
	}
	if _, body = c.do("GET", "/", nil, ck, ""); !strings.Contains(body, "<td>on</td>") {
		t.Fatal("the workspaces page does not show tracking")
	}
}

// TestAssetsAreSmallAndLocal keeps the page's own assets under 100 KB and
// free of any external reference.
func TestAssetsAreSmallAndLocal(t *testing.T) {
	total := 0
	fs.WalkDir(assets, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, _ := fs.ReadFile(assets, p)
		total += len(b)
		for _, bad := range []string{"http://", "https://", "//cdn", "@import"} {
			if bytes.Contains(b, []byte(bad)) {
				t.Errorf("%s refers to %q", p, bad)
			}
		}
		return nil
	})
	if total > 100<<10 {
		t.Fatalf("assets are %d bytes (limit 100 KB)", total)
	}
	t.Logf("assets: %d bytes", total)
}

// BenchmarkDayPage renders a day of 144 ten-minute slots server-side.
func BenchmarkDayPage(b *testing.B) {
	fb := &fakeBackend{view: daySlots(time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC), 144)}
	s, err := New(fb, nil)
	if err != nil {
		b.Fatal(err)
	}
	s.loc = time.UTC
	if err := s.SetAddr("127.0.0.1:7420"); err != nil {
		b.Fatal(err)
	}
	sess := &session{csrf: "x", expires: time.Now().Add(time.Hour), lastSeen: time.Now()}
	s.sessions["sid"] = sess
	h := s.Handler()
	var size int
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		req := httptest.NewRequest("GET", "http://127.0.0.1:7420/w/acme?day=2026-11-20", nil)
		req.AddCookie(&http.Cookie{Name: s.CookieName(), Value: "sid"})
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != 200 {
			b.Fatal(rec.Code)
		}
		size = rec.Body.Len()
	}
	b.ReportMetric(float64(size), "html-bytes")
}

// The day's grid shows each slot's marks: idle time, covered and deleted
// shots, gaps with their reason, and why a slot is not billed; the
// workspaces page shows the client, the agent and today's hours.
func TestSlotMarksAndWorkspaceColumns(t *testing.T) {
	s, fb, c := newTestServer(t)
	ck := login(t, s, c)
	day := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	v := daySlots(day, 3)
	sl := v.Days[0].Slots
	sl[0].Billable, sl[0].IdleSeconds = true, 240
	sl[0].Shots[0].State = tracking.ShotCovered
	sl[1].Billable, sl[1].Reason = false, "a screenshot was deleted"
	sl[1].Shots[0].State = tracking.ShotDeleted
	sl[2].Billable, sl[2].Reason, sl[2].Shots = false, "no screenshot", []tracking.Shot{}
	sl[2].Gaps = []string{"no screenshot: no X display"}
	v.Totals.BillableSeconds = 600
	fb.mu.Lock()
	fb.view = v
	fb.mu.Unlock()

	_, body := c.do("GET", "/w/acme?day=2026-11-20", nil, ck, "")
	grid := body[strings.Index(body, `class="grid"`):]
	slots := strings.Split(grid, `<div class="slot`)[1:]
	if len(slots) != 3 {
		t.Fatalf("%d slots in the grid:\n%s", len(slots), grid)
	}
	for i, want := range [][]string{
		{"idle 240s", `badge covered`, `/shot/shot-1/image?kind=thumbnail`, "billable"},
		{" unbilled", `badge deleted`, "not billed: a screenshot was deleted"},
		{" unbilled", "no screenshot</div>", "gap: no screenshot: no X display", "not billed: no screenshot"},
	} {
		for _, w := range want {
			if !strings.Contains(slots[i], w) {
				t.Errorf("slot %d lacks %q:\n%s", i, w, slots[i])
			}
		}
	}
	if strings.Contains(slots[1], "/shot/shot-2/image") {
		t.Error("a deleted shot's thumbnail is linked")
	}

	_, body = c.do("GET", "/", nil, ck, "")
	for _, w := range []string{"<td>ACME Corp</td>", "<td>connected</td>", "<td>on</td>", "<td>0h 10m</td>",
		"witness client: cosigned 40 entries", "witness team: cosigned 12 entries", "28 queued since", "last try failed: witness &lt;b&gt;down&lt;/b&gt;"} {
		if !strings.Contains(body, w) {
			t.Errorf("the workspaces page lacks %q", w)
		}
	}
	// The diary page shows the witnesses too.
	if _, body = c.do("GET", "/w/acme?day=2026-11-20", nil, ck, ""); !strings.Contains(body, "28 queued since") {
		t.Error("the diary page does not show the witnesses")
	}
}

func TestRetakeButton(t *testing.T) {
	s, fb, c := newTestServer(t)
	ck := login(t, s, c)
	_, body := c.do("GET", "/shot/shot-1?w=acme&day=2026-11-20", nil, ck, "")
	if !strings.Contains(body, `action="/shot/shot-1/retake"`) {
		t.Fatal("the shot page has no retake button")
	}
	s.mu.Lock()
	sess := s.sessions[ck.Value]
	s.mu.Unlock()
	form := url.Values{"csrf": {sess.csrf}, "w": {"acme"}, "day": {"2026-11-20"}}
	if resp, _ := c.do("POST", "/shot/shot-1/retake", url.Values{"w": {"acme"}}, ck, ""); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("retake without the CSRF token: %d", resp.StatusCode)
	}
	resp, _ := c.do("POST", "/shot/shot-1/retake", form, ck, "")
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/w/acme?day=2026-11-20" {
		t.Fatalf("retake: %d %v", resp.StatusCode, resp.Header)
	}
	if resp, _ := c.do("POST", "/shot/shot-9/retake", form, ck, ""); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("retake of an unknown shot: %d", resp.StatusCode)
	}
	fb.mu.Lock()
	defer fb.mu.Unlock()
	if len(fb.calls) != 1 || fb.calls[0] != "retake shot-1" {
		t.Fatalf("calls %v", fb.calls)
	}
}
