package web

import (
	"net/http"
	"net/url"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/workspace-sandbox/workspace/api"
	"github.com/workspace-sandbox/workspace/tracking"
)

func TestParseRects(t *testing.T) {
	r := func(x, y, w, h int) tracking.Rect { return tracking.Rect{X: x, Y: y, W: w, H: h} }
	for _, tc := range []struct {
		in   []string
		want []tracking.Rect
		err  string
	}{
		{in: nil},
		{in: []string{"", "  "}},
		{in: []string{"10,20,30,40"}, want: []tracking.Rect{r(10, 20, 30, 40)}},
		{in: []string{" 10, 20 ,30,40 ; 50,60,70,80; "}, want: []tracking.Rect{r(10, 20, 30, 40), r(50, 60, 70, 80)}},
		{in: []string{"1,2,3,4\n5,6,7,8"}, want: []tracking.Rect{r(1, 2, 3, 4), r(5, 6, 7, 8)}},
		{in: []string{"1,2,3,4", "5,6,7,8; 9,10,11,12"}, want: []tracking.Rect{r(1, 2, 3, 4), r(5, 6, 7, 8), r(9, 10, 11, 12)}},
		{in: []string{"1,2,3,4; 5,6,7"}, err: `region 2 ("5,6,7") is not x,y,w,h: it has 3 numbers`},
		{in: []string{"1,2,3,4 5,6,7,8"}, err: `region 1 ("1,2,3,4 5,6,7,8")`},
		{in: []string{"1,2,3,4", "10,20,x,40"}, err: `region 2 ("10,20,x,40"): "x" is not a whole number`},
		{in: []string{"10,-20,30,40"}, err: "region 1 (\"10,-20,30,40\"): x and y cannot be negative"},
		{in: []string{"10,20,0,40"}, err: "width and height must be more than 0"},
		{in: []string{strings.Repeat("1,1,1,1;", maxRects+1)}, err: "more than 100 regions"},
	} {
		got, err := parseRects(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("parseRects(%q): error %v, want one with %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("parseRects(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	if got, err := parseRects([]string{strings.Repeat("1,1,1,1;", maxRects)}); err != nil || len(got) != maxRects {
		t.Errorf("%d regions: %d, %v", maxRects, len(got), err)
	}
}

// TestCoverSeveralRegions posts the cover form as the page does after two
// drags (one field, "x,y,w,h; x,y,w,h") and as a script may (the field
// repeated): both regions reach the daemon in one cover.
func TestCoverSeveralRegions(t *testing.T) {
	s, fb, c := newTestServer(t)
	ck := login(t, s, c)
	csrf := s.sessions[ck.Value].csrf
	post := func(f url.Values) (*http.Response, string) {
		f.Set("csrf", csrf)
		f.Set("w", "acme")
		f.Set("day", "2026-11-20")
		return c.do("POST", "/shot/shot-1/cover", f, ck, c.srv.URL)
	}
	two := []tracking.Rect{{X: 10, Y: 20, W: 300, H: 40}, {X: 400, Y: 500, W: 60, H: 70}}
	for _, f := range []url.Values{
		{"rect": {"10,20,300,40; 400,500,60,70"}},
		{"rect": {"10,20,300,40", "400,500,60,70"}},
	} {
		fb.covers = nil
		resp, body := post(f)
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("cover %v: %d\n%s", f["rect"], resp.StatusCode, body)
		}
		if loc := resp.Header.Get("Location"); loc != "/shot/shot-1?day=2026-11-20&w=acme" {
			t.Errorf("cover redirects to %q", loc)
		}
		if len(fb.covers) != 1 || !reflect.DeepEqual(fb.covers[0].Rects, two) {
			t.Fatalf("cover %v reached the daemon as %+v", f["rect"], fb.covers)
		}
	}

	// Bad input: a clear 400 that names the region, and nothing covered.
	fb.covers = nil
	for rect, want := range map[string]string{
		"10,20,300,40; 400,500,x,70": `region 2 (&#34;400,500,x,70&#34;): &#34;x&#34; is not a whole number`,
		"10,20,300":                  "is not x,y,w,h",
		"":                           "no region given",
		" ; ":                        "no region given",
	} {
		resp, body := post(url.Values{"rect": {rect}})
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, want) || !strings.Contains(body, "Nothing was covered") {
			t.Errorf("cover %q: %d, want 400 with %q\n%s", rect, resp.StatusCode, want, body)
		}
	}
	if len(fb.covers) != 0 {
		t.Fatalf("refused covers reached the daemon: %+v", fb.covers)
	}

	// The whole shot only when asked for by its own button.
	if resp, _ := post(url.Values{"rect": {""}, "whole": {"yes"}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("whole cover: %d", resp.StatusCode)
	}
	if len(fb.covers) != 1 || len(fb.covers[0].Rects) != 0 {
		t.Fatalf("whole cover reached the daemon as %+v", fb.covers)
	}

	// The page has the list field, the Clear button and both cover buttons.
	_, body := c.do("GET", "/shot/shot-1?w=acme&day=2026-11-20", nil, ck, "")
	for _, want := range []string{`<label for="rect">`, `id="rect"`, `type="reset" id="clear"`, `id="cover"`, `name="whole" value="yes"`, `id="marks"`} {
		if !strings.Contains(body, want) {
			t.Errorf("shot page lacks %s", want)
		}
	}
}

// TestWorkspaceActions posts each button of the workspaces page and checks
// that the daemon was asked to do exactly that, and nothing else when the
// request is refused.
func TestWorkspaceActions(t *testing.T) {
	s, fb, c := newTestServer(t)
	ck := login(t, s, c)
	csrf := s.sessions[ck.Value].csrf
	for _, tc := range []struct {
		action string
		form   url.Values
		call   string
	}{
		{"start", nil, "start acme"},
		{"stop", nil, "stop acme"},
		{"switch", nil, "switch acme"},
		{"track-start", url.Values{"memo": {"checkout bug"}}, "track acme"},
		{"track-stop", nil, "track acme"},
	} {
		fb.calls, fb.tracks = nil, nil
		f := url.Values{"csrf": {csrf}}
		for k, v := range tc.form {
			f[k] = v
		}
		resp, body := c.do("POST", "/w/acme/"+tc.action, f, ck, c.srv.URL)
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
			t.Fatalf("%s: %d %q\n%s", tc.action, resp.StatusCode, resp.Header.Get("Location"), body)
		}
		if got := fb.recorded(); len(got) != 1 || got[0] != tc.call {
			t.Fatalf("%s made the calls %q, want %q", tc.action, got, tc.call)
		}
		switch tc.action {
		case "track-start":
			if len(fb.tracks) != 1 || fb.tracks[0] != (api.TrackRequest{On: true, Memo: "checkout bug"}) {
				t.Fatalf("track-start asked for %+v", fb.tracks)
			}
		case "track-stop":
			if len(fb.tracks) != 1 || fb.tracks[0].On {
				t.Fatalf("track-stop asked for %+v", fb.tracks)
			}
		}
	}

	fb.calls = nil
	for _, tc := range []struct {
		path   string
		form   url.Values
		origin string
		cookie *http.Cookie
		want   int
	}{
		{"/w/acme/reboot", url.Values{"csrf": {csrf}}, c.srv.URL, ck, http.StatusNotFound},
		{"/w/nope/start", url.Values{"csrf": {csrf}}, c.srv.URL, ck, http.StatusNotFound},
		{"/w/acme/start", url.Values{}, c.srv.URL, ck, http.StatusForbidden},
		{"/w/acme/stop", url.Values{"csrf": {"stale"}}, "", ck, http.StatusForbidden},
		{"/w/acme/track-start", url.Values{"csrf": {csrf}, "memo": {"x"}}, "http://evil.example", ck, http.StatusForbidden},
		{"/w/acme/track-stop", url.Values{"csrf": {csrf}}, "", nil, http.StatusUnauthorized},
	} {
		resp, body := c.do("POST", tc.path, tc.form, tc.cookie, tc.origin)
		if resp.StatusCode != tc.want || !strings.Contains(body, "Back to the workspaces") {
			t.Errorf("POST %s: %d, want %d (an error page)", tc.path, resp.StatusCode, tc.want)
		}
	}
	if got := fb.recorded(); len(got) != 0 {
		t.Fatalf("refused workspace actions reached the daemon: %q", got)
	}
}

// TestMemoFieldIsVisible: only the memo's label text is visually hidden,
// never the field itself (it must be seen, and so must its focus).
func TestMemoFieldIsVisible(t *testing.T) {
	s, fb, c := newTestServer(t)
	fb.idle = true // the memo goes with "Start tracking"
	ck := login(t, s, c)
	_, body := c.do("GET", "/", nil, ck, "")
	if !strings.Contains(body, `<input name="memo"`) {
		t.Fatal("the workspaces page has no memo field for a running workspace")
	}
	hidden := strings.Count(body, `class="sr"`)
	textOnly := len(regexp.MustCompile(`class="sr"[^>]*>[^<]*</`).FindAllString(body, -1))
	if hidden == 0 || hidden != textOnly {
		t.Fatalf("%d visually hidden elements, %d of them text only: a hidden element holds a control", hidden, textOnly)
	}
	if !regexp.MustCompile(`<label><span class="sr">Memo</span>\s*<input name="memo"`).MatchString(body) {
		t.Fatal("the memo field has no label")
	}
}

func TestWeekView(t *testing.T) {
	s, fb, c := newTestServer(t)
	ck := login(t, s, c)
	mon := time.Date(2026, 11, 16, 0, 0, 0, 0, time.UTC)
	a, b := daySlots(mon, 6), daySlots(mon.AddDate(0, 0, 2), 3)
	a.Days[0].Totals = tracking.DiaryTotals{BillableSeconds: 3600, ActivityPercent: 40}
	b.Days[0].Totals = tracking.DiaryTotals{BillableSeconds: 1800, ActivityPercent: 55}
	fb.view = tracking.DiaryView{Days: []tracking.DiaryDay{a.Days[0], b.Days[0]}, SlotSeconds: 600,
		Totals: tracking.DiaryTotals{BillableSeconds: 5400, TrackedSeconds: 6000, ActivityPercent: 45, Shots: 9, Covered: 2, Deleted: 1}}
	resp, body := c.do("GET", "/w/acme?week=2026-11-18", nil, ck, "") // a Wednesday
	if resp.StatusCode != 200 {
		t.Fatalf("week page: %d\n%s", resp.StatusCode, body)
	}
	if got := fb.diaries[len(fb.diaries)-1]; !got[0].Equal(mon) || !got[1].Equal(mon.AddDate(0, 0, 7)) {
		t.Fatalf("the week page asked for %v to %v, want Monday to Monday", got[0], got[1])
	}
	for _, want := range []string{
		"<strong>week of 2026-11-16</strong>",
		"Billable <strong>1h 30m</strong> of 1h 40m tracked · activity 45% · 9 screenshots, 2 covered, 1 deleted",
		"<h2>2026-11-16 · 1h 00m billable · activity 40%</h2>",
		"<h2>2026-11-18 · 0h 30m billable · activity 55%</h2>",
		`href="/w/acme?week=2026-11-09"`, `href="/w/acme?week=2026-11-23"`, `href="/w/acme?day=2026-11-16">day view`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("week page lacks %q", want)
		}
	}
	if n := strings.Count(body, `class="slot`); n != 9 {
		t.Errorf("week page shows %d slots, want 9", n)
	}
	if resp, _ := c.do("GET", "/w/acme?week=someday", nil, ck, ""); resp.StatusCode != 400 {
		t.Errorf("bad week: %d", resp.StatusCode)
	}
}

func TestDeleteNeedsConfirmation(t *testing.T) {
	s, fb, c := newTestServer(t)
	ck := login(t, s, c)
	f := url.Values{"csrf": {s.sessions[ck.Value].csrf}, "w": {"acme"}, "day": {"2026-11-20"}}
	for _, confirm := range []string{"", "no"} {
		if confirm != "" {
			f.Set("confirm", confirm)
		}
		resp, body := c.do("POST", "/shot/shot-1/delete", f, ck, c.srv.URL)
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "confirmation") {
			t.Fatalf("delete with confirm=%q: %d", confirm, resp.StatusCode)
		}
	}
	if got := fb.recorded(); len(got) != 0 {
		t.Fatalf("an unconfirmed delete reached the daemon: %q", got)
	}
	f.Set("confirm", "yes")
	resp, _ := c.do("POST", "/shot/shot-1/delete", f, ck, c.srv.URL)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/w/acme?day=2026-11-20" {
		t.Fatalf("confirmed delete: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if got := fb.recorded(); len(got) != 1 || got[0] != "delete shot-1" {
		t.Fatalf("confirmed delete made the calls %q", got)
	}
}

func TestLivePageAndScreen(t *testing.T) {
	s, _, c := newTestServer(t)
	ck := login(t, s, c)
	resp, body := c.do("GET", "/w/acme/live", nil, ck, "")
	if resp.StatusCode != 200 || !strings.Contains(body, `id="live"`) || !strings.Contains(body, `data-src="/w/acme/screen.png"`) {
		t.Fatalf("live page: %d\n%s", resp.StatusCode, body)
	}
	resp, body = c.do("GET", "/w/acme/screen.png", nil, ck, "")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/png" || resp.Header.Get("Cache-Control") != "no-store" || body != string(secretScreen) {
		t.Fatalf("screen: %d %q %q", resp.StatusCode, resp.Header.Get("Content-Type"), resp.Header.Get("Cache-Control"))
	}
	for _, p := range []string{"/w/nope/live", "/w/nope/screen.png"} {
		resp, body := c.do("GET", p, nil, ck, "")
		if resp.StatusCode != 404 || !strings.Contains(body, "Back to the workspaces") || !strings.Contains(body, "nope") || strings.Contains(body, "SECRET") {
			t.Errorf("GET %s: %d, want a 404 page", p, resp.StatusCode)
		}
	}
}

func TestExportPage(t *testing.T) {
	s, _, c := newTestServer(t)
	ck := login(t, s, c)
	resp, body := c.do("GET", "/w/acme/export", nil, ck, "")
	if resp.StatusCode != 200 || !strings.Contains(body, `action="/w/acme/export"`) {
		t.Fatalf("export page: %d", resp.StatusCode)
	}
	resp, body = c.do("GET", "/w/nope/export", nil, ck, "")
	if resp.StatusCode != 404 || !strings.Contains(body, "Back to the workspaces") || strings.Contains(body, `action="/w/nope/export"`) {
		t.Fatalf("export page of an unknown workspace: %d\n%s", resp.StatusCode, body)
	}
}

// TestNoInlineStyleOrScript: the Content-Security-Policy allows styles and
// scripts only from our own files, so a browser ignores inline ones; no
// page may rely on them (an activity bar once did, and showed every slot
// full).
func TestNoInlineStyleOrScript(t *testing.T) {
	s, _, c := newTestServer(t)
	ck := login(t, s, c)
	inlineScript := regexp.MustCompile(`<script(\s[^>]*)?>[^<]`)
	for _, p := range []string{"/", "/w/acme?day=2026-11-20", "/w/acme?week=2026-11-20", "/shot/shot-1?w=acme&day=2026-11-20",
		"/w/acme/export", "/w/acme/live", "/w/nope"} {
		_, body := c.do("GET", p, nil, ck, "")
		if strings.Contains(body, "style=") || strings.Contains(body, "<style") || inlineScript.MatchString(body) || strings.Contains(body, " onclick=") {
			t.Errorf("GET %s has an inline style or script", p)
		}
	}
	// The activity bar's length is an SVG attribute, which CSP allows.
	_, body := c.do("GET", "/w/acme?day=2026-11-20", nil, ck, "")
	if !strings.Contains(body, `aria-label="activity 13%"><rect width="13%"`) {
		t.Error("the second slot's activity bar is not 13% long")
	}
}

// TestSuspendedRow: a suspended workspace shows its saved state's size and
// offers Resume and the one Switch button.
func TestSuspendedRow(t *testing.T) {
	s, fb, c := newTestServer(t)
	ck := login(t, s, c)
	fb.suspended = true
	_, body := c.do("GET", "/", nil, ck, "")
	for _, want := range []string{`<span class="state suspended">suspended</span> <small>(300 MiB saved)</small>`, `>Resume VM</button>`, `action="/w/acme/switch"`, `>Switch here</button>`} {
		if !strings.Contains(body, want) {
			t.Errorf("workspaces page lacks %s:\n%s", want, body)
		}
	}
}
