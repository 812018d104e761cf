package main

import (
	"bytes"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/workspace-sandbox/workspace/api"
	"github.com/workspace-sandbox/workspace/diary"
	"github.com/workspace-sandbox/workspace/internal/litewitnesstest"
	"github.com/workspace-sandbox/workspace/witness"
)

// holdingProxy sits between the daemon and a witness. While holding, it
// forwards a submission to the witness (which cosigns it and records the
// new size) but keeps the answer back until released: the moment to kill
// the daemon "mid-submission".
type holdingProxy struct {
	mu      sync.Mutex
	holding bool
	held    chan struct{}
	release chan struct{}
	url     string
}

func startHoldingProxy(t *testing.T, target string) *holdingProxy {
	t.Helper()
	u, _ := url.Parse(target)
	rp := httputil.NewSingleHostReverseProxy(u)
	p := &holdingProxy{held: make(chan struct{}, 1), release: make(chan struct{})}
	rp.ModifyResponse = func(*http.Response) error {
		p.mu.Lock()
		hold := p.holding
		p.holding = false
		p.mu.Unlock()
		if hold {
			p.held <- struct{}{}
			<-p.release
		}
		return nil
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: rp}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	p.url = "http://" + l.Addr().String()
	return p
}

func (p *holdingProxy) holdNext() {
	p.mu.Lock()
	p.holding = true
	p.mu.Unlock()
}

// startWitnessServe runs `workspace witness serve` (the built binary) on a
// free loopback port.
func startWitnessServe(t *testing.T, dir string) (url, vkey, db string) {
	t.Helper()
	key := filepath.Join(dir, "witness.key")
	r := mustCLI(t, "/nonexistent.sock", "witness", "init", "--key", key, "--name", "client.example/witness")
	vkey = strings.TrimSpace(r.stdout)
	if fi, err := os.Stat(key); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("witness key file: %v %v", fi, err)
	}
	if _, err := witness.NewVerifier(vkey); err != nil {
		t.Fatalf("witness init printed %q: %v", vkey, err)
	}
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close()
	db = filepath.Join(dir, "witness.db")
	logf, _ := os.Create(filepath.Join(dir, "witness.log"))
	cmd := exec.Command(binPath, "witness", "serve", "--addr", addr, "--key", key, "--db", db)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("witness serve log:\n%s", b)
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("witness serve did not listen")
		}
		time.Sleep(50 * time.Millisecond)
	}
	return "http://" + addr, vkey, db
}

// TestWitnessedTrackingEndToEnd: a workspace on the real test guest tracks
// with two witnesses, `workspace witness serve` and litewitness; the daemon
// is killed with SIGKILL while a submission is in flight (the witness has
// cosigned, the answer never arrives) and resumes without a gap; the
// export verifies with both witness keys pinned, every slot witnessed
// within a minute of its capture.
func TestWitnessedTrackingEndToEnd(t *testing.T) {
	e := newE2EEnv(t)
	e.stopDaemon()
	e.daemonArgs = []string{"--witness-interval", "20s"}
	e.startDaemon()
	mustCLI(t, e.socket, "init")
	e.importTestImage("testimg")
	clientKey := filepath.Join(e.dir, "client.key")
	client := writeIdentity(t, clientKey)

	wURL, wKey, wDB := startWitnessServe(t, e.dir)
	proxy := startHoldingProxy(t, wURL)
	lw := litewitnesstest.Start(t, "litewitness.example/w")

	name := "wstest-" + randHex(3)
	prof := filepath.Join(e.dir, "witnessed.hcl")
	os.WriteFile(prof, []byte(`image = "testimg"
cpus = 1
memory = "512MiB"
disk = "2GiB"
tracking {
  slot = "30s"
}
client {
  name      = "Witnessed Corp"
  recipient = "`+client.Recipient().String()+`"
}
witness "client" {
  url = "`+proxy.url+`"
  key = "`+wKey+`"
}
witness "lite" {
  url = "`+lw.URL+`"
  key = "`+lw.VKey+`"
}
`), 0o644)
	mustCLI(t, e.socket, "profile", "validate", prof)
	mustCLI(t, e.socket, "create", name, "--profile", prof)

	// The log's identity, registered with both witnesses as their
	// operators do.
	var ws api.WitnessState
	if err := json.Unmarshal([]byte(mustCLI(t, e.socket, "witness", "log", name, "--json").stdout), &ws); err != nil || ws.Origin == "" || ws.LogKey == "" {
		t.Fatalf("witness log: %+v %v", ws, err)
	}
	mustCLI(t, "/nonexistent.sock", "witness", "add-log", "--db", wDB, "--origin", ws.Origin, "--key", ws.LogKey)
	lw.AddLog(ws.Origin, ws.LogKey)

	mustCLI(t, e.socket, "start", name, "--wait")
	e.waitAgent(name, 2*time.Minute)
	begin := time.Now()
	mustCLI(t, e.socket, "track", "start", name, "--memo", "witnessed")

	witnessState := func() api.WitnessState {
		var ts api.TrackStatus
		if err := json.Unmarshal([]byte(mustCLI(t, e.socket, "track", "status", name, "--json").stdout), &ts); err != nil || ts.Witness == nil || len(ts.Witness.Witnesses) != 2 {
			t.Fatalf("track status: %+v %v", ts.Witness, err)
		}
		return *ts.Witness
	}
	// Two slots with shots, both witnesses cosigning as it goes.
	deadline := time.Now().Add(3 * time.Minute)
	for {
		v := e.diaryView(name, begin.Add(-time.Minute), time.Now().Add(time.Minute))
		st := witnessState()
		if len(shotsOf(v)) >= 2 && st.Witnesses[0].CosignedSize > 0 && st.Witnesses[1].CosignedSize > 0 {
			t.Logf("witnessing: %+v", st.Witnesses)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %d shots, witnesses %+v", time.Since(begin).Round(time.Second), len(shotsOf(v)), st.Witnesses)
		}
		time.Sleep(2 * time.Second)
	}

	// SIGKILL while a submission is in flight: the witness cosigned and
	// recorded the new size; the daemon never got the answer.
	proxy.holdNext()
	select {
	case <-proxy.held:
	case <-time.After(90 * time.Second):
		t.Fatal("no submission reached the witness in 90 s")
	}
	e.killDaemon()
	close(proxy.release)
	var logs []witness.LogState
	json.Unmarshal([]byte(mustCLI(t, "/nonexistent.sock", "witness", "logs", "--db", wDB, "--json").stdout), &logs)
	if len(logs) != 1 {
		t.Fatalf("witness logs: %+v", logs)
	}
	atKill := logs[0].Size
	t.Logf("killed the daemon mid-submission: the witness holds size %d", atKill)
	e.startDaemon()
	e.waitAgent(name, time.Minute)

	// It resumes: the witness's 409 names the size it holds, the daemon
	// proves consistency from it, and both witnesses catch up.
	deadline = time.Now().Add(2 * time.Minute)
	for {
		st := witnessState()
		if st.Witnesses[0].CosignedSize > atKill && st.Witnesses[1].CosignedSize > atKill {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the witnesses did not get past size %d after the restart: %+v", atKill, st.Witnesses)
		}
		time.Sleep(2 * time.Second)
	}
	if b, _ := os.ReadFile(filepath.Join(e.dir, "daemon.log")); !bytes.Contains(b, []byte("witness knows another size of the log")) {
		t.Errorf("the daemon log does not show the 409 it resumed from")
	}
	// One more slot after the restart, then stop: the last entries are
	// submitted at once.
	time.Sleep(35 * time.Second)
	mustCLI(t, e.socket, "track", "stop", name)
	end := time.Now()

	exp := filepath.Join(e.dir, "witnessed.diary")
	r := mustCLI(t, e.socket, "diary", "export", name, "--from", begin.Add(-time.Minute).Format(time.RFC3339), "--to", end.Add(time.Minute).Format(time.RFC3339), "--out", exp)
	if strings.Contains(r.stderr, "Warning") {
		t.Fatalf("export: %s", r)
	}
	r = mustCLI(t, "/nonexistent.sock", "diary", "verify", exp, "--identity", clientKey, "--witness", wKey, "--witness", lw.VKey, "--max-delay", "1m", "--json")
	var v diary.Verified
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil {
		t.Fatal(err)
	}
	if v.Witness == nil || len(v.Witness.Pinned) != 2 || v.Witness.Pinned[0].ExportCosigned.IsZero() || v.Witness.Pinned[1].ExportCosigned.IsZero() {
		t.Fatalf("witnesses: %+v", v.Witness)
	}
	slots, worst := 0, 0
	for _, d := range v.View.Days {
		for _, s := range d.Slots {
			if len(s.Shots) == 0 {
				continue
			}
			slots++
			if s.Witness == nil || s.Witness.Late || s.Witness.DelaySeconds > 60 {
				t.Errorf("slot %s: %+v", s.Start.Format(time.TimeOnly), s.Witness)
				continue
			}
			worst = max(worst, s.Witness.DelaySeconds)
		}
	}
	if slots < 3 || v.View.Totals.Witness == nil || v.View.Totals.Witness.LateSlots != 0 {
		t.Fatalf("%d slots with shots, totals %+v", slots, v.View.Totals.Witness)
	}
	t.Logf("%d slots with shots, each first cosigned by both witnesses within %d s of its capture", slots, worst)
	// The terminal report says so too.
	r = mustCLI(t, "/nonexistent.sock", "diary", "verify", exp, "--identity", clientKey, "--witness", wKey, "--witness", lw.VKey)
	for _, want := range []string{"witness client.example/witness:", "witness litewitness.example/w:", "witnessed on time:"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("verify output lacks %q:\n%s", want, r.stdout)
		}
	}
	if r := mustCLI(t, e.socket, "diary", "check", name); !strings.Contains(r.stdout, "OK") {
		t.Fatalf("check: %s", r)
	}

	// A later export extends this one: --previous and a state file pass.
	state := filepath.Join(e.dir, "verify.state")
	mustCLI(t, "/nonexistent.sock", "diary", "verify", exp, "--identity", clientKey, "--state", state)
	mustCLI(t, e.socket, "diary", "add", name, "--from", end.Add(-20*time.Minute).Format(time.RFC3339), "--to", end.Add(-15*time.Minute).Format(time.RFC3339), "--memo", "call")
	exp2 := filepath.Join(e.dir, "witnessed-2.diary")
	mustCLI(t, e.socket, "diary", "export", name, "--from", begin.Add(-time.Minute).Format(time.RFC3339), "--to", end.Add(time.Minute).Format(time.RFC3339), "--out", exp2)
	r = mustCLI(t, "/nonexistent.sock", "diary", "verify", exp2, "--identity", clientKey, "--witness", wKey, "--witness", lw.VKey, "--previous", exp, "--state", state)
	if !strings.Contains(r.stdout, "earlier exports:") {
		t.Errorf("the second export does not show the earlier one it extends:\n%s", r.stdout)
	}
}
