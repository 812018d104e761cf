package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/workspace-sandbox/workspace/api"
)

// TestSuspendResumeEndToEnd is suspend, resume and switch as a user meets
// them, on the test guest with 30-second slots: a tracking workspace is
// suspended and resumed 5 times and its agent reconnects each time; the
// last shot before a suspend is in the diary once the suspend returns (the
// agent flushed); the suspended time is a gap (reason "suspended") whose
// slots are not billed; tracking goes on after the resume and no slot of
// it lacks its shot. The saved state is 0600 in the state folder while
// suspended. Then switch between two workspaces leaves exactly one
// running, and a stale saved state falls back to a cold boot.
func TestSuspendResumeEndToEnd(t *testing.T) {
	e := newE2EEnv(t)
	mustCLI(t, e.socket, "init")
	e.importTestImage("testimg")
	a, b := "wstest-"+randHex(3), "wstest-"+randHex(3)
	prof := filepath.Join(e.dir, "suspend.hcl")
	os.WriteFile(prof, []byte("image = \"testimg\"\ncpus = 1\nmemory = \"512MiB\"\ndisk = \"2GiB\"\ntracking {\n  slot = \"30s\"\n}\n"), 0o644)
	mustCLI(t, e.socket, "create", a, "--profile", prof)
	mustCLI(t, e.socket, "create", b, "--profile", prof)
	mustCLI(t, e.socket, "start", a, "--wait")
	w := e.waitAgent(a, 2*time.Minute)
	if w.RSSBytes == 0 {
		t.Errorf("status of a running workspace shows no host RSS: %+v", w)
	}
	begin := time.Now()
	mustCLI(t, e.socket, "track", "start", a, "--memo", "suspend e2e")
	e.waitShotAfter(a, begin, begin, 2*time.Minute)

	type span struct{ from, to time.Time }
	var suspended []span
	saved := filepath.Join(e.dir, "state", "saved", w.Domain+".save")
	for i := 1; i <= 5; i++ {
		var ts api.TrackStatus
		json.Unmarshal([]byte(mustCLI(t, e.socket, "track", "status", a, "--json").stdout), &ts)
		from := time.Now()
		mustCLI(t, e.socket, "suspend", a)
		sw := e.status(a)
		if sw.State != api.StateSuspended || sw.Saved == nil || sw.Saved.Bytes == 0 {
			t.Fatalf("cycle %d: status after suspend: %+v", i, sw)
		}
		if ts.Guest != nil && !ts.Guest.LastShot.IsZero() && !e.hasShotAt(a, begin, ts.Guest.LastShot) {
			t.Errorf("cycle %d: the agent's last shot (%s) is not in the diary after the suspend: the spool was not flushed", i, ts.Guest.LastShot.Format(time.TimeOnly))
		}
		if i == 1 {
			fi, err := os.Stat(saved)
			if err != nil || fi.Mode().Perm() != 0o600 || fi.Size() != sw.Saved.Bytes {
				t.Fatalf("saved state %s: %v %v (status says %d bytes)", saved, fi.Mode(), err, sw.Saved.Bytes)
			}
			if r := mustCLI(t, e.socket, "list"); !strings.Contains(r.stdout, "suspended") || !strings.Contains(r.stdout, "saved") {
				t.Errorf("list does not show the suspended workspace and its saved state:\n%s", r.stdout)
			}
			e.checkPrivateFiles()
			// Long enough that a whole slot lies inside the suspension.
			time.Sleep(62 * time.Second)
		}
		to := time.Now()
		mustCLI(t, e.socket, "start", a)
		e.waitAgent(a, time.Minute)
		t.Logf("cycle %d: suspended for %s, agent back %s after the start", i, to.Sub(from).Round(time.Second), time.Since(to).Round(100*time.Millisecond))
		suspended = append(suspended, span{from, to})
		if _, err := os.Stat(saved); !os.IsNotExist(err) {
			t.Fatalf("cycle %d: the saved state is still there after the resume: %v", i, err)
		}
	}
	// Tracking goes on: the next whole slot after the last resume has its
	// shot (taken by the guest's clock, which the resume set right).
	last := suspended[len(suspended)-1].to
	next := last.Truncate(30 * time.Second).Add(30 * time.Second)
	e.waitShotAfter(a, begin, next, 2*time.Minute)

	v := e.diaryView(a, begin.Add(-time.Minute), time.Now().Add(time.Minute))
	long := suspended[0]
	inside := 0
	for _, d := range v.Days {
		for _, s := range d.Slots {
			for _, sh := range s.Shots {
				for _, sp := range suspended {
					if sh.Taken.After(sp.from.Add(time.Second)) && sh.Taken.Before(sp.to.Add(-time.Second)) {
						t.Errorf("shot %s taken at %s, while the workspace was suspended (%s to %s)", sh.ID, sh.Taken.Format(time.TimeOnly), sp.from.Format(time.TimeOnly), sp.to.Format(time.TimeOnly))
					}
				}
			}
			if s.Start.Before(long.from) || s.End.After(long.to) {
				continue
			}
			inside++
			if s.Billable || len(s.Shots) != 0 || !slices.Contains(s.Gaps, "suspended") {
				t.Errorf("slot %s inside the suspension: billable %v, %d shots, gaps %q", s.Start.Format(time.TimeOnly), s.Billable, len(s.Shots), s.Gaps)
			}
		}
	}
	if inside == 0 {
		t.Errorf("no slot of the diary lies inside the suspension from %s to %s", long.from.Format(time.TimeOnly), long.to.Format(time.TimeOnly))
	}
	mustCLI(t, e.socket, "track", "stop", a)
	if r := mustCLI(t, e.socket, "diary", "check", a); !strings.Contains(r.stdout, "OK") {
		t.Fatalf("check: %s", r)
	}

	// Switch: a is suspended, b boots; then back; exactly one runs.
	mustCLI(t, e.socket, "switch", b)
	e.waitAgent(b, 2*time.Minute)
	e.checkOneRunning(b)
	// Back to a with the web UI's button (the CLI when there is no
	// chromium).
	if closeUI, ok := uiSwitch(t, e.socket, a); ok {
		e.waitAgent(a, time.Minute) // the browser waits for its answer meanwhile
		closeUI()
	} else {
		mustCLI(t, e.socket, "switch", a)
	}
	e.waitAgent(a, time.Minute)
	e.checkOneRunning(a)

	// A stale saved state (what it was made from changed) is deleted and
	// the workspace boots cold, saying so.
	record := filepath.Join(e.dir, "state", "saved", e.status(b).Domain+".json")
	rb, err := os.ReadFile(record)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(record, []byte(strings.Replace(string(rb), `"from":"image `, `"from":"image changed `, 1)), 0o600)
	r := mustCLI(t, e.socket, "switch", b)
	if !strings.Contains(r.stderr, "boots cold") || !strings.Contains(r.stderr, "changed since it was suspended") {
		t.Errorf("switch to a workspace with a stale saved state does not say it boots cold:\n%s", r)
	}
	if _, err := os.Stat(record); !os.IsNotExist(err) {
		t.Errorf("the stale saved state's record is still there: %v", err)
	}
	e.waitAgent(b, 2*time.Minute)
	e.checkOneRunning(b)

	// Destroy removes a suspended workspace's saved state.
	mustCLI(t, e.socket, "destroy", a, "--yes")
	if _, err := os.Stat(saved); !os.IsNotExist(err) {
		t.Errorf("destroy left the saved state: %v", err)
	}
}

// waitShotAfter waits until the diary (from since) holds a shot taken at
// or after at.
func (e *e2eEnv) waitShotAfter(name string, since, at time.Time, timeout time.Duration) {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		for _, sh := range shotsOf(e.diaryView(name, since.Add(-time.Minute), time.Now().Add(time.Minute))) {
			if !sh.Taken.Before(at.Truncate(time.Second)) {
				return
			}
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("no shot taken after %s in the diary of %s within %s", at.Format(time.TimeOnly), name, timeout)
		}
		time.Sleep(2 * time.Second)
	}
}

// hasShotAt says whether the diary holds a shot taken at t (to the second).
func (e *e2eEnv) hasShotAt(name string, since, t time.Time) bool {
	for _, sh := range shotsOf(e.diaryView(name, since.Add(-time.Minute), time.Now().Add(time.Minute))) {
		if sh.Taken.Unix() == t.Unix() {
			return true
		}
	}
	return false
}

// checkOneRunning fails unless name is the only running workspace.
func (e *e2eEnv) checkOneRunning(name string) {
	e.t.Helper()
	var ws []api.Workspace
	json.Unmarshal([]byte(mustCLI(e.t, e.socket, "list", "--json").stdout), &ws)
	var running []string
	for _, w := range ws {
		if w.State == api.StateRunning {
			running = append(running, w.Name)
		}
	}
	if len(running) != 1 || running[0] != name {
		e.t.Fatalf("after switching to %s, running: %v", name, running)
	}
}

// uiSwitch presses the Switch here button of name on the web UI's
// workspaces page and returns at once (the switch takes seconds; the
// caller waits for it, then closes the browser); ok is false when chromium
// is not installed.
func uiSwitch(t *testing.T, socket, name string) (closeIt func(), ok bool) {
	t.Helper()
	bctx, _, closeIt, ok := uiBrowser(t, socket)
	if !ok {
		return nil, false
	}
	button := `form[action="/w/` + name + `/switch"] button`
	if err := chromedp.Do(bctx, chromedp.Click(button)); err != nil {
		closeIt()
		t.Fatalf("press Switch here of %s in the web UI: %v", name, err)
	}
	return closeIt, true
}
