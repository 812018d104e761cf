package web

import (
	"bytes"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/workspace-sandbox/workspace/api"
	"github.com/workspace-sandbox/workspace/internal/safetext"
	"github.com/workspace-sandbox/workspace/tracking"
)

var funcs = template.FuncMap{
	// term shows a string from a guest or a profile (memos, gap reasons,
	// client names) with control and direction characters escaped, before
	// the template's HTML escaping.
	"term": safetext.Term,
	"hours": func(secs int) string {
		d := time.Duration(secs) * time.Second
		return fmt.Sprintf("%dh %02dm", int(d.Hours()), int(d.Minutes())%60)
	},
	"hm": func(t time.Time) string { return t.Local().Format("15:04") },
	// span labels a slot: with seconds when slots are shorter than a
	// minute (or do not start on one), else hours and minutes.
	"span": slotSpan,
	"ts":   func(t time.Time) string { return t.Local().Format("2006-01-02 15:04:05") },
	"day":  func(t time.Time) string { return t.Local().Format("2006-01-02") },
	"pct":  func(n int) string { return strconv.Itoa(n) + "%" },
	// mib shows a byte count in MiB (saved states, host memory).
	"mib": func(n any) string {
		var b uint64
		switch v := n.(type) {
		case int64:
			b = uint64(max(v, 0))
		case uint64:
			b = v
		}
		return strconv.FormatUint((b+1<<19)>>20, 10) + " MiB"
	},
	// thumbH is a thumbnail's height at 320 pixels wide.
	"thumbH": func(sh tracking.Shot) int {
		if sh.Width <= 0 {
			return 200
		}
		return 320 * sh.Height / sh.Width
	},
}

func (s *Server) pageWorkspaces(w http.ResponseWriter, r *http.Request) {
	ws, err := s.b.Workspaces(r.Context())
	if err != nil {
		s.failErr(w, r, err)
		return
	}
	type row struct {
		api.Workspace
		Client   string
		Today    int
		Tracking bool
	}
	now := s.now().In(s.loc)
	from := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, s.loc)
	var rows []row
	for _, x := range ws {
		rw := row{Workspace: x}
		if full, err := s.b.Workspace(r.Context(), x.Name); err == nil {
			rw.Workspace = full
			if full.Settings != nil && full.Settings.Client != nil {
				rw.Client = full.Settings.Client.Name
			}
		}
		if v, err := s.b.Diary(r.Context(), x.Name, from, from.AddDate(0, 0, 1), s.loc.String()); err == nil {
			rw.Today = v.Totals.BillableSeconds
		}
		if ts, err := s.b.TrackStatus(r.Context(), x.Name); err == nil {
			rw.Tracking = ts.Tracking
		}
		rows = append(rows, rw)
	}
	s.render(w, r, "workspaces.html", map[string]any{"Title": "Workspaces", "Rows": rows, "Today": from})
}

// parseDay reads ?day= or ?week= (YYYY-MM-DD) into a range; today by default.
func (s *Server) parseRange(r *http.Request) (from, to time.Time, week bool, err error) {
	now := s.now().In(s.loc)
	today := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, s.loc)
	q := r.URL.Query()
	d := today
	if v := q.Get("week"); v != "" {
		week = true
		if d, err = time.ParseInLocation("2006-01-02", v, s.loc); err != nil {
			return from, to, week, fmt.Errorf("%q is not a date (YYYY-MM-DD)", v)
		}
		d = d.AddDate(0, 0, -((int(d.Weekday()) + 6) % 7))
		from, to = d, d.AddDate(0, 0, 7)
	} else {
		if v := q.Get("day"); v != "" {
			if d, err = time.ParseInLocation("2006-01-02", v, s.loc); err != nil {
				return from, to, week, fmt.Errorf("%q is not a date (YYYY-MM-DD)", v)
			}
		}
		from, to = d, d.AddDate(0, 0, 1)
	}
	if err := s.checkDate(from); err != nil {
		return from, to, week, err
	}
	return from, to, week, nil
}

// checkDate refuses a date before 2000 or more than a year ahead: a typo,
// not a day with a diary.
func (s *Server) checkDate(d time.Time) error {
	now := s.now().In(s.loc)
	today := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, s.loc)
	if d.Year() < 2000 || d.After(today.AddDate(1, 0, 0)) {
		return fmt.Errorf("%s is out of range (from 2000 to a year from today)", d.Format("2006-01-02"))
	}
	return nil
}

func (s *Server) pageDiary(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	from, to, week, err := s.parseRange(r)
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, err.Error())
		return
	}
	v, err := s.b.Diary(r.Context(), name, from, to, s.loc.String())
	if err != nil {
		s.failErr(w, r, err)
		return
	}
	span := 1
	if week {
		span = 7
	}
	var wit *api.WitnessState
	if ws, err := s.b.Workspace(r.Context(), name); err == nil {
		wit = ws.Witness
	}
	s.render(w, r, "diary.html", map[string]any{
		"Title": name + " · " + from.Format("2006-01-02"), "Name": name, "View": v, "Week": week, "Witness": wit,
		"From": from, "Prev": from.AddDate(0, 0, -span).Format("2006-01-02"), "Next": from.AddDate(0, 0, span).Format("2006-01-02"),
		"Day": from.Format("2006-01-02"),
	})
}

func (s *Server) pageShot(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	ws, shot, err := s.findShot(r, id)
	if err != nil {
		s.failErr(w, r, err)
		return
	}
	s.render(w, r, "shot.html", map[string]any{"Title": "Screenshot " + id, "Name": ws, "Shot": shot, "Day": shot.Taken.In(s.loc).Format("2006-01-02")})
}

// findShot finds a shot's workspace and entry (the API has no shot lookup
// by id; a shot's page links carry the workspace and day).
func (s *Server) findShot(r *http.Request, id string) (string, tracking.Shot, error) {
	ws, day := r.URL.Query().Get("w"), r.URL.Query().Get("day")
	d, err := time.ParseInLocation("2006-01-02", day, s.loc)
	if ws == "" || err != nil {
		return "", tracking.Shot{}, fmt.Errorf("%w: open screenshots from a workspace's diary page", api.ErrNotFound)
	}
	v, err := s.b.Diary(r.Context(), ws, d, d.AddDate(0, 0, 1), s.loc.String())
	if err != nil {
		return "", tracking.Shot{}, err
	}
	for _, dd := range v.Days {
		for _, sl := range dd.Slots {
			for _, sh := range sl.Shots {
				if sh.ID == id {
					return ws, sh, nil
				}
			}
		}
	}
	return "", tracking.Shot{}, fmt.Errorf("%w: no screenshot %q in %s on %s", api.ErrNotFound, id, ws, day)
}

// shotImage serves a shot (decrypted by the daemon, in memory), never
// cached, only to a logged-in browser.
func (s *Server) shotImage(w http.ResponseWriter, r *http.Request) {
	kind := r.URL.Query().Get("kind")
	if kind != "thumbnail" {
		kind = "current"
	}
	b, err := s.b.ShotImage(r.Context(), r.PathValue("id"), kind)
	if err != nil {
		s.failErr(w, r, err)
		return
	}
	w.Header().Set("Content-Type", http.DetectContentType(b))
	w.Header().Set("Cache-Control", "no-store")
	w.Write(b)
}

// doCover covers the regions the form lists (all at once, in one logged
// cover), or the whole shot when its "whole" button was used. A cover adds
// to the shot's earlier ones.
func (s *Server) doCover(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := r.ParseForm(); err != nil {
		s.fail(w, r, http.StatusBadRequest, "The cover form could not be read: "+err.Error())
		return
	}
	var rects []tracking.Rect
	if r.PostFormValue("whole") != "yes" {
		var err error
		if rects, err = parseRects(r.PostForm["rect"]); err != nil {
			s.fail(w, r, http.StatusBadRequest, "Cover: "+err.Error()+". Nothing was covered.")
			return
		}
		if len(rects) == 0 {
			s.fail(w, r, http.StatusBadRequest, "Cover: no region given. Drag on the picture (each drag adds a region) or type x,y,w,h, several separated by \";\"; or use \u201cCover the whole shot\u201d. Nothing was covered.")
			return
		}
	}
	if err := s.b.Cover(r.Context(), id, api.CoverRequest{Rects: rects}); err != nil {
		s.failErr(w, r, err)
		return
	}
	q := url.Values{"w": {r.PostFormValue("w")}, "day": {r.PostFormValue("day")}}
	http.Redirect(w, r, "/shot/"+url.PathEscape(id)+"?"+q.Encode(), http.StatusSeeOther)
}

func (s *Server) doDelete(w http.ResponseWriter, r *http.Request) {
	if r.PostFormValue("confirm") != "yes" {
		s.fail(w, r, http.StatusBadRequest, "Deleting needs the confirmation box ticked.")
		return
	}
	if err := s.b.DeleteShot(r.Context(), r.PathValue("id")); err != nil {
		s.failErr(w, r, err)
		return
	}
	http.Redirect(w, r, "/w/"+r.PostFormValue("w")+"?day="+r.PostFormValue("day"), http.StatusSeeOther)
}

// doRetake has the agent retake the shot now; back to the day, which
// shows the retake beside it.
func (s *Server) doRetake(w http.ResponseWriter, r *http.Request) {
	if _, err := s.b.Retake(r.Context(), r.PathValue("id")); err != nil {
		s.failErr(w, r, err)
		return
	}
	http.Redirect(w, r, "/w/"+url.PathEscape(r.PostFormValue("w"))+"?day="+url.QueryEscape(r.PostFormValue("day")), http.StatusSeeOther)
}

// doWorkspace starts, stops or switches to a VM, or turns its tracking on or off.
func (s *Server) doWorkspace(w http.ResponseWriter, r *http.Request) {
	name, action := r.PathValue("name"), r.PathValue("action")
	var err error
	switch action {
	case "start":
		_, err = s.b.Start(r.Context(), name, api.StartRequest{})
	case "stop":
		_, err = s.b.Stop(r.Context(), name, api.StopRequest{})
	case "switch":
		// Suspend every other running workspace, then start or resume this one.
		_, err = s.b.Switch(r.Context(), name, api.StartRequest{})
	case "track-start":
		_, err = s.b.Track(r.Context(), name, api.TrackRequest{On: true, Memo: r.PostFormValue("memo")})
	case "track-stop":
		_, err = s.b.Track(r.Context(), name, api.TrackRequest{On: false})
	default:
		s.fail(w, r, http.StatusNotFound, "There is no action "+action+".")
		return
	}
	if err != nil {
		s.failErr(w, r, err)
		return
	}
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func (s *Server) pageExport(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if _, err := s.b.Workspace(r.Context(), name); err != nil {
		s.failErr(w, r, err)
		return
	}
	now := s.now().In(s.loc)
	s.render(w, r, "export.html", map[string]any{"Title": "Export " + name, "Name": name,
		"From": now.AddDate(0, 0, -((int(now.Weekday()) + 6) % 7)).Format("2006-01-02"), "To": now.Format("2006-01-02")})
}

func (s *Server) doExport(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	from, err1 := time.ParseInLocation("2006-01-02", r.PostFormValue("from"), s.loc)
	to, err2 := time.ParseInLocation("2006-01-02", r.PostFormValue("to"), s.loc)
	if err1 != nil || err2 != nil || to.Before(from) {
		s.fail(w, r, http.StatusBadRequest, "Choose a first and a last day, the last not before the first.")
		return
	}
	for _, d := range []time.Time{from, to} {
		if err := s.checkDate(d); err != nil {
			s.fail(w, r, http.StatusBadRequest, err.Error())
			return
		}
	}
	var buf bytes.Buffer
	req := api.ExportRequest{From: from, To: to.AddDate(0, 0, 1)}
	ctype, ext := "application/octet-stream", "diary"
	var err error
	switch kind := r.PostFormValue("kind"); kind {
	case "", "export":
		err = s.b.Export(r.Context(), name, req, &buf)
	case "html", "csv":
		err = s.b.Report(r.Context(), name, kind, req, &buf)
		ctype, ext = "text/html; charset=utf-8", "html"
		if kind == "csv" {
			ctype, ext = "text/csv; charset=utf-8", "csv"
		}
	default:
		s.fail(w, r, http.StatusBadRequest, "Unknown download "+kind+".")
		return
	}
	if err != nil {
		s.failErr(w, r, err)
		return
	}
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s-%s-%s.%s"`, name, from.Format("20060102"), to.Format("20060102"), ext))
	w.Header().Set("Cache-Control", "no-store")
	w.Write(buf.Bytes())
}

func (s *Server) pageLive(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if _, err := s.b.Workspace(r.Context(), name); err != nil {
		s.failErr(w, r, err)
		return
	}
	s.render(w, r, "live.html", map[string]any{"Title": name + " · live", "Name": name})
}

func (s *Server) screen(w http.ResponseWriter, r *http.Request) {
	b, err := s.b.Screen(r.Context(), r.PathValue("name"))
	if err != nil {
		s.failErr(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "image/png")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(b)
}

// doReveal downloads a shot's reveal file (encrypted to the client and the
// freelancer), which proves what a cover hid.
func (s *Server) doReveal(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	var buf bytes.Buffer
	if err := s.b.Reveal(r.Context(), id, nil, &buf); err != nil {
		s.failErr(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s.reveal"`, id))
	w.Header().Set("Cache-Control", "no-store")
	w.Write(buf.Bytes())
}

// slotSpan is a slot's label, "03:10–03:20", or "03:12:00–03:12:30" when
// minutes alone would not tell its slots apart.
func slotSpan(start, end time.Time) string {
	layout := tracking.ClockLayout(start, end)
	return start.Local().Format(layout) + "–" + end.Local().Format(layout)
}
