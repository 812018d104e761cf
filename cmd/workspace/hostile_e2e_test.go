package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/workspace-sandbox/workspace/api"
)

// vmHWM is the peak resident memory of process pid, from /proc.
func vmHWM(t *testing.T, pid int) int64 {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmHWM")
	return 0
}

// TestHostileGuestEndToEnd: a guest whose agent is compromised floods the
// daemon for 60 seconds (internal/hostileagent, shared into the test image,
// whose init runs it instead of the real agent) while an honest workspace
// tracks beside it. The daemon's API answers throughout (p99 of status
// under 100 ms), its peak RSS stays under 300 MiB, the honest workspace
// loses no shot, the hostile one's diary holds only what the rules allow
// plus gaps saying what was refused, and the daemon's log names it.
func TestHostileGuestEndToEnd(t *testing.T) {
	e := newE2EEnv(t)
	mustCLI(t, e.socket, "init")
	e.importTestImage("testimg")
	share := filepath.Join(e.dir, "hostile")
	if err := os.MkdirAll(share, 0o755); err != nil {
		t.Fatal(err)
	}
	build := exec.Command("go", "build", "-trimpath", "-o", filepath.Join(share, "workspace-hostile"), "./internal/hostileagent/cmd/workspace-hostile")
	build.Dir, build.Env = repoRoot(t), append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the hostile agent: %v\n%s", err, out)
	}
	os.WriteFile(filepath.Join(share, "args"), []byte("-for 60s -workers 8\n"), 0o644)
	const prof = "image = \"testimg\"\ncpus = 1\nmemory = \"512MiB\"\ndisk = \"2GiB\"\nnetwork {\n  mode = \"none\"\n}\ntracking {\n  slot = \"30s\"\n}\n"
	honest, evil := "wstest-"+randHex(3), "wstest-"+randHex(3)
	os.WriteFile(filepath.Join(e.dir, "honest.hcl"), []byte(prof), 0o644)
	os.WriteFile(filepath.Join(e.dir, "evil.hcl"), []byte(prof+"share \"hostile\" {\n  host = \""+share+"\"\n}\n"), 0o644)
	mustCLI(t, e.socket, "create", honest, "--profile", filepath.Join(e.dir, "honest.hcl"))
	mustCLI(t, e.socket, "create", evil, "--profile", filepath.Join(e.dir, "evil.hcl"))
	mustCLI(t, e.socket, "start", honest)
	mustCLI(t, e.socket, "start", evil)
	e.waitAgent(honest, 3*time.Minute)
	ew := e.waitAgent(evil, 3*time.Minute)
	e.waitConsole(ew, "WORKSPACE-HOSTILE-AGENT", time.Second)

	begin := time.Now()
	mustCLI(t, e.socket, "track", "start", honest)
	mustCLI(t, e.socket, "track", "start", evil)
	c := api.NewClient(e.socket)
	defer c.Close()
	ctx := context.Background()
	var lat []time.Duration
	var worstErr error
	for deadline := time.Now().Add(3 * time.Minute); ; time.Sleep(200 * time.Millisecond) {
		t0 := time.Now()
		_, err := c.Workspace(ctx, honest)
		lat = append(lat, time.Since(t0))
		if err != nil {
			worstErr = err
		}
		if b, _ := os.ReadFile(ew.ConsoleLog); strings.Contains(string(b), "WORKSPACE-HOSTILE-DONE") {
			break
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(ew.ConsoleLog)
			t.Fatalf("the hostile agent did not finish its flood:\n%s", b)
		}
	}
	end := time.Now()
	mustCLI(t, e.socket, "track", "stop", honest)
	mustCLI(t, e.socket, "track", "stop", evil)
	if worstErr != nil {
		t.Errorf("status failed during the flood: %v", worstErr)
	}
	slices.Sort(lat)
	p99 := lat[(len(lat)*99)/100]
	hwm := vmHWM(t, e.daemon.Process.Pid)
	b, _ := os.ReadFile(ew.ConsoleLog)
	done := ""
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, "WORKSPACE-HOSTILE-DONE") {
			done = strings.TrimSpace(l)
		}
	}
	t.Logf("flood of %s: %s; status p50 %s p99 %s max %s over %d calls; daemon peak RSS %d MiB",
		end.Sub(begin).Round(time.Second), done, lat[len(lat)/2].Round(time.Millisecond), p99.Round(time.Millisecond), lat[len(lat)-1].Round(time.Millisecond), len(lat), hwm>>20)
	if p99 > 100*time.Millisecond {
		t.Errorf("status p99 %s during the flood, want under 100 ms", p99)
	}
	if hwm > 300<<20 {
		t.Errorf("the daemon's peak RSS is %d MiB, want under 300", hwm>>20)
	}

	// The honest workspace: nothing refused, a shot in every slot wholly
	// inside the flood.
	var hs api.TrackStatus
	json.Unmarshal([]byte(mustCLI(t, e.socket, "track", "status", honest, "--json").stdout), &hs)
	if hs.Agent.Refused != 0 || (hs.Guest != nil && hs.Guest.Refused != 0) {
		t.Errorf("the honest workspace had refusals: %+v %+v", hs.Agent, hs.Guest)
	}
	hv := e.diaryView(honest, begin.Add(-time.Minute), time.Now().Add(time.Minute))
	have := map[int64]bool{}
	for _, sh := range shotsOf(hv) {
		have[sh.Taken.Truncate(30*time.Second).Unix()] = true
	}
	for s := begin.Truncate(30 * time.Second).Add(30 * time.Second); s.Add(30 * time.Second).Before(end); s = s.Add(30 * time.Second) {
		if !have[s.Unix()] {
			t.Errorf("the honest workspace has no shot in the slot at %s", s.Format(time.TimeOnly))
		}
	}

	// The hostile workspace: at most the slot's quota (1 screenshot, 1
	// retake) of captures per slot, all inside the session, and gaps that
	// say what was refused.
	var es api.TrackStatus
	json.Unmarshal([]byte(mustCLI(t, e.socket, "track", "status", evil, "--json").stdout), &es)
	if es.Agent.Refused == 0 {
		t.Errorf("nothing of the hostile agent was refused: %+v", es.Agent)
	}
	ev := e.diaryView(evil, begin.Add(-time.Hour), time.Now().Add(time.Hour))
	refusedGaps := 0
	for _, d := range ev.Days {
		for _, s := range d.Slots {
			if len(s.Shots) > 2 {
				t.Errorf("the hostile slot at %s holds %d shots", s.Start.Format(time.TimeOnly), len(s.Shots))
			}
			for _, sh := range s.Shots {
				if sh.Taken.Before(begin.Add(-2*time.Minute)) || sh.Taken.After(end.Add(2*time.Minute)) {
					t.Errorf("hostile shot %s taken at %s, outside the session", sh.ID, sh.Taken)
				}
			}
			for _, g := range s.Gaps {
				if strings.Contains(g, "refused") {
					refusedGaps++
				}
			}
			if s.IdleSeconds > 30 {
				t.Errorf("the hostile slot at %s has %d idle seconds", s.Start.Format(time.TimeOnly), s.IdleSeconds)
			}
		}
	}
	if refusedGaps == 0 {
		t.Error("no gap in the hostile diary says what was refused")
	}
	if r := mustCLI(t, e.socket, "diary", "check", evil); !strings.Contains(r.stdout, "OK") {
		t.Fatalf("check: %s", r)
	}
	log, _ := os.ReadFile(filepath.Join(e.dir, "daemon.log"))
	if !hasLine(string(log), "refused what the guest sent", "workspace="+evil) {
		t.Errorf("the daemon log does not name the hostile workspace")
	}
	if hasLine(string(log), "refused what the guest sent", "workspace="+honest) {
		t.Errorf("the daemon log blames the honest workspace")
	}
}

// hasLine says whether one line of log has all the parts.
func hasLine(log string, parts ...string) bool {
	for _, l := range strings.Split(log, "\n") {
		ok := true
		for _, p := range parts {
			ok = ok && strings.Contains(l, p)
		}
		if ok {
			return true
		}
	}
	return false
}
