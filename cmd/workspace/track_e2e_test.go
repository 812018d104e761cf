package main

import (
	"bytes"
	"encoding/json"
	"image"
	_ "image/jpeg"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/workspace-sandbox/workspace/api"
	"github.com/workspace-sandbox/workspace/internal/xvfbtest"
	"github.com/workspace-sandbox/workspace/tracking"
)

// hostPicture runs an X server on the host showing a picture of its own
// (green and magenta): a screenshot taken anywhere but in the guest would
// show it.
func hostPicture(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("xsetroot"); err != nil {
		t.Skip("xsetroot is not installed (make test-image installs it)")
	}
	disp := xvfbtest.Start(t, 1024, 768)
	xbm := filepath.Join(repoRoot(t), "images", "test", "picture.xbm")
	if out, err := exec.Command("xsetroot", "-display", disp, "-bitmap", xbm, "-fg", "#00ff00", "-bg", "#ff00ff").CombinedOutput(); err != nil {
		t.Fatalf("xsetroot on the host: %v\n%s", err, out)
	}
}

// pictureShare returns the share of pixels close to the guest's colours and
// the number close to the host's.
func pictureShare(t *testing.T, b []byte) (guest float64, host int) {
	t.Helper()
	img, _, err := image.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	near := func(r, g, b uint32, want [3]int) bool {
		d := func(a uint32, w int) int {
			x := int(a>>8) - w
			if x < 0 {
				x = -x
			}
			return x
		}
		return d(r, want[0])+d(g, want[1])+d(b, want[2]) < 90
	}
	bounds := img.Bounds()
	n, gs := 0, 0
	for y := bounds.Min.Y; y < bounds.Max.Y; y += 3 {
		for x := bounds.Min.X; x < bounds.Max.X; x += 3 {
			r, g, b, _ := img.At(x, y).RGBA()
			n++
			if near(r, g, b, [3]int{0xff, 0x88, 0x00}) || near(r, g, b, [3]int{0x00, 0x33, 0x66}) {
				gs++
			}
			if near(r, g, b, [3]int{0x00, 0xff, 0x00}) || near(r, g, b, [3]int{0xff, 0x00, 0xff}) {
				host++
			}
		}
	}
	return float64(gs) / float64(n), host
}

func (e *e2eEnv) waitAgent(name string, timeout time.Duration) api.Workspace {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		w := e.status(name)
		if w.Agent != nil && w.Agent.Connected {
			return w
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(w.ConsoleLog)
			e.t.Fatalf("the agent of %s did not connect within %s: %+v\nconsole:\n%s", name, timeout, w.Agent, b)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func (e *e2eEnv) diaryView(name string, from, to time.Time) tracking.DiaryView {
	e.t.Helper()
	var v tracking.DiaryView
	r := mustCLI(e.t, e.socket, "diary", name, "--from", from.Format(time.RFC3339), "--to", to.Format(time.RFC3339), "--json")
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil {
		e.t.Fatal(err)
	}
	return v
}

func shotsOf(v tracking.DiaryView) []tracking.Shot {
	var out []tracking.Shot
	for _, d := range v.Days {
		for _, s := range d.Slots {
			out = append(out, s.Shots...)
		}
	}
	return out
}

// TestTrackingEndToEnd is the agent's promise, as a user sees it: a
// workspace from a profile with 30-second slots on the test image tracks
// for three slots; every screenshot in the diary is the guest's picture,
// none the host's, and activity minutes are recorded.
func TestTrackingEndToEnd(t *testing.T) {
	e := newE2EEnv(t)
	hostPicture(t)
	mustCLI(t, e.socket, "init")
	e.importTestImage("testimg")
	name := "wstest-" + randHex(3)
	prof := filepath.Join(e.dir, "track.hcl")
	os.WriteFile(prof, []byte(`image = "testimg"
cpus = 1
memory = "512MiB"
disk = "2GiB"
tracking {
  slot         = "30s"
  idle_timeout = "1m"
  jpeg_quality = 80
}
`), 0o644)
	mustCLI(t, e.socket, "create", name, "--profile", prof)
	if r := cli(t, e.socket, "track", "start", name); r.code == 0 || !strings.Contains(r.stderr, "start it first") {
		t.Fatalf("track start while stopped: %s", r)
	}
	mustCLI(t, e.socket, "start", name, "--wait")
	w := e.waitAgent(name, 2*time.Minute)
	if w.Agent.Version == "" {
		t.Fatalf("agent version missing: %+v", w.Agent)
	}
	// exec works in busybox's sh too (no uid 1000 there: as root).
	if r := cli(t, e.socket, "exec", name, "--", "sh", "-c", "echo in-$(id -un); exit 5"); r.code != 5 || r.stdout != "in-root\n" {
		t.Errorf("exec in the test guest: %s", r)
	}
	begin := time.Now()
	mustCLI(t, e.socket, "track", "start", name, "--memo", "e2e tracking")
	if r := cli(t, e.socket, "track", "start", name); r.code == 0 || !strings.Contains(r.stderr, "already tracking") {
		t.Fatalf("second track start: %s", r)
	}
	deadline := time.Now().Add(4 * time.Minute)
	var v tracking.DiaryView
	for {
		v = e.diaryView(name, begin.Add(-time.Minute), time.Now().Add(time.Minute))
		if len(shotsOf(v)) >= 3 && v.Totals.Slots >= 3 {
			break
		}
		if time.Now().After(deadline) {
			st := mustCLI(t, e.socket, "track", "status", name)
			t.Fatalf("after %s the diary has %d shots in %d slots\n%s", time.Since(begin).Round(time.Second), len(shotsOf(v)), v.Totals.Slots, st.stdout)
		}
		time.Sleep(3 * time.Second)
	}
	// A retake, as a user asks for one: the agent in the VM takes a new
	// shot of the same display now; deleting the bad one then does not cost
	// the slot its pay. Only a shot of the running slot can be retaken, so
	// wait for one with a few seconds of its slot left.
	for retakeBy := time.Now().Add(2 * time.Minute); ; time.Sleep(time.Second) {
		shots := shotsOf(e.diaryView(name, begin.Add(-time.Minute), time.Now().Add(time.Minute)))
		bad := shots[len(shots)-1]
		if time.Until(bad.Taken.Truncate(30*time.Second).Add(30*time.Second)) < 10*time.Second {
			if time.Now().After(retakeBy) {
				t.Fatal("no shot early enough in its slot to retake in 2 minutes")
			}
			continue
		}
		var rt api.Retake
		if err := json.Unmarshal([]byte(mustCLI(t, e.socket, "diary", "retake", bad.ID, "--json").stdout), &rt); err != nil || rt.Pending || len(rt.Retakes) != 1 {
			t.Fatalf("retake of %s: %+v %v", bad.ID, rt, err)
		}
		if r := cli(t, e.socket, "diary", "retake", bad.ID); r.code == 0 || !strings.Contains(r.stderr, "retaken already") {
			t.Fatalf("a second retake: %s", r)
		}
		mustCLI(t, e.socket, "diary", "delete", bad.ID, "--yes")
		v = e.diaryView(name, begin.Add(-time.Minute), time.Now().Add(time.Minute))
		var found bool
		for _, d := range v.Days {
			for _, s := range d.Slots {
				for _, sh := range s.Shots {
					if sh.ID == rt.Retakes[0] {
						found = true
						if sh.RetakeOf != bad.ID || sh.State != tracking.ShotOK || s.Reason == "a screenshot was deleted" {
							t.Fatalf("the retake %+v in slot %+v", sh, s)
						}
					}
				}
			}
		}
		if !found {
			t.Fatalf("the retake %s is not in the diary", rt.Retakes[0])
		}
		t.Logf("shot %s retaken as %s, deleted, and its slot kept", bad.ID, rt.Retakes[0])
		break
	}

	var ts api.TrackStatus
	json.Unmarshal([]byte(mustCLI(t, e.socket, "track", "status", name, "--json").stdout), &ts)
	if !ts.Tracking || ts.Guest == nil || !ts.Guest.Tracking || ts.Guest.LastShot.IsZero() {
		t.Fatalf("track status: %+v %+v", ts, ts.Guest)
	}
	checkTrackingUI(t, e.socket, name)
	mustCLI(t, e.socket, "track", "stop", name)
	t.Logf("%d shots in %d slots after %s", len(shotsOf(v)), v.Totals.Slots, time.Since(begin).Round(time.Second))

	minutes := 0
	for _, d := range v.Days {
		for _, s := range d.Slots {
			minutes += s.Minutes
			// Activity is per minute: with 30 s slots the minute tracking
			// started in may open a slot before the session did.
			if len(s.Shots) > 0 && s.Memo != "e2e tracking" {
				t.Errorf("slot %s memo %q", s.Start.Format("15:04:05"), s.Memo)
			}
		}
	}
	if minutes == 0 {
		t.Error("no activity minutes recorded")
	}
	for _, sh := range shotsOf(v) {
		if sh.State == tracking.ShotDeleted {
			continue // the retaken shot, shredded
		}
		f := filepath.Join(e.dir, sh.ID+".jpg")
		mustCLI(t, e.socket, "diary", "show", sh.ID, "--out", f)
		b, _ := os.ReadFile(f)
		share, host := pictureShare(t, b)
		if share < 0.75 || host > 0 { // JPEG softens the stripes' edges
			t.Errorf("shot %s: %.0f%% guest picture, %d host-picture pixels", sh.ID, share*100, host)
		}
		if sh.Width != 1024 || sh.Height != 768 {
			t.Errorf("shot %s is %dx%d", sh.ID, sh.Width, sh.Height)
		}
	}
	if r := mustCLI(t, e.socket, "diary", "check", name); !strings.Contains(r.stdout, "OK") {
		t.Fatalf("check: %s", r)
	}
	// An export, then everything the daemon made for this running,
	// tracked workspace is private.
	today := time.Now().Format("2006-01-02")
	client, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	mustCLI(t, e.socket, "diary", "export", name, "--from", today, "--to", today, "--recipient", client.Recipient().String(), "--out", filepath.Join(t.TempDir(), "today.diary"))
	e.checkPrivateFiles()
}

// waitConsoleSince waits for a marker in the (freshly truncated) console
// log and returns when it was first seen.
func (e *e2eEnv) waitMarker(path, marker string, timeout time.Duration) time.Time {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if b, _ := os.ReadFile(path); bytes.Contains(b, []byte(marker)) {
			return time.Now()
		}
		time.Sleep(100 * time.Millisecond)
	}
	b, _ := os.ReadFile(path)
	e.t.Fatalf("console never showed %s:\n%s", marker, b)
	return time.Time{}
}

// TestAgentResilience restarts the guest 10 times and the daemon 5 times
// while tracking: each time the agent reconnects within 10 s of the guest's
// userspace starting (or of the daemon coming back). Then the daemon stays
// down for 2 minutes: every slot of that time has its screenshot in the
// diary afterwards, and nothing is stored twice.
func TestAgentResilience(t *testing.T) {
	if testing.Short() {
		t.Skip("long end-to-end test")
	}
	e := newE2EEnv(t)
	mustCLI(t, e.socket, "init")
	e.importTestImage("testimg")
	name := "wstest-" + randHex(3)
	prof := filepath.Join(e.dir, "res.hcl")
	os.WriteFile(prof, []byte("image = \"testimg\"\ncpus = 1\nmemory = \"512MiB\"\ndisk = \"2GiB\"\ntracking {\n  slot = \"30s\"\n}\n"), 0o644)
	mustCLI(t, e.socket, "create", name, "--profile", prof)
	mustCLI(t, e.socket, "start", name, "--wait")
	w := e.waitAgent(name, 2*time.Minute)
	begin := time.Now()
	mustCLI(t, e.socket, "track", "start", name, "--memo", "resilience")

	var worst time.Duration
	for i := 1; i <= 10; i++ {
		mustCLI(t, e.socket, "restart", name, "--timeout", "60s")
		up := e.waitMarker(w.ConsoleLog, "WORKSPACE-GUEST-BOOTED", 2*time.Minute)
		e.waitAgent(name, time.Minute)
		d := time.Since(up)
		worst = max(worst, d)
		if d > 10*time.Second {
			t.Errorf("guest restart %d: the agent reconnected %s after userspace started", i, d.Round(100*time.Millisecond))
		}
	}
	t.Logf("10 guest restarts: slowest reconnect %s after userspace start", worst.Round(100*time.Millisecond))
	worst = 0
	for i := 1; i <= 5; i++ {
		e.stopDaemon()
		e.startDaemon()
		up := time.Now()
		e.waitAgent(name, time.Minute)
		d := time.Since(up)
		worst = max(worst, d)
		if d > 10*time.Second {
			t.Errorf("daemon restart %d: the agent reconnected after %s", i, d.Round(100*time.Millisecond))
		}
	}
	t.Logf("5 daemon restarts: slowest reconnect %s", worst.Round(100*time.Millisecond))
	var ts api.TrackStatus
	json.Unmarshal([]byte(mustCLI(t, e.socket, "track", "status", name, "--json").stdout), &ts)
	if !ts.Tracking || ts.Guest == nil || !ts.Guest.Tracking {
		t.Fatalf("tracking did not survive the restarts: %+v", ts)
	}

	// Two minutes without a daemon: the guest spools.
	e.stopDaemon()
	downFrom := time.Now()
	time.Sleep(2 * time.Minute)
	downTo := time.Now()
	e.startDaemon()
	e.waitAgent(name, time.Minute)
	// Every 30 s slot wholly inside the downtime must get its shot.
	var want []time.Time
	for s := downFrom.Truncate(30 * time.Second).Add(30 * time.Second); s.Add(30 * time.Second).Before(downTo); s = s.Add(30 * time.Second) {
		want = append(want, s)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		v := e.diaryView(name, begin.Add(-time.Minute), time.Now().Add(time.Minute))
		have := map[int64]int{} // shots per slot
		ids := map[string]bool{}
		for _, sh := range shotsOf(v) {
			have[sh.Taken.Truncate(30*time.Second).Unix()]++
			ids[sh.ID] = true
		}
		// No duplicates: the guest ran on through the downtime, so each of
		// its slots has exactly the one moment of screenshots_per_slot = 1;
		// a capture delivered twice (a replay after the daemon came back
		// stored under a new id) would make two.
		missing := 0
		for _, s := range want {
			switch n := have[s.Unix()]; {
			case n == 0:
				missing++
			case n > 1:
				t.Fatalf("the downtime's slot at %s has %d shots, want 1 (a capture stored twice)", s.Format(time.TimeOnly), n)
			}
		}
		if missing == 0 {
			t.Logf("%d shots in the diary; all %d slots of the 2-minute downtime present", len(ids), len(want))
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d slots of the downtime have no shot", missing, len(want))
		}
		time.Sleep(2 * time.Second)
	}
	mustCLI(t, e.socket, "track", "stop", name)
	if r := mustCLI(t, e.socket, "diary", "check", name); !strings.Contains(r.stdout, "OK") {
		t.Fatalf("check: %s", r)
	}
}
