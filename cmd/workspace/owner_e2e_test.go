package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/workspace-sandbox/workspace/api"
)

func listNames(t *testing.T, e *e2eEnv) []string {
	t.Helper()
	var ws []api.Workspace
	r := mustCLI(t, e.socket, "list", "--json")
	if err := json.Unmarshal([]byte(r.stdout), &ws); err != nil {
		t.Fatalf("list --json: %v\n%s", err, r)
	}
	var out []string
	for _, w := range ws {
		out = append(out, w.Name)
	}
	sort.Strings(out)
	return out
}

// Two daemons on one libvirtd, each with its own state folder (a user's
// and a test's, or two users'): both create a workspace of the same name,
// and each lists, describes, receives events for and destroys only its
// own; destroying the other's through its socket is "not found".
func TestEndToEndTwoDaemons(t *testing.T) {
	e1, e2 := newE2EEnv(t), newE2EEnv(t)
	name := "wstest-own-" + randHex(3)
	other := name + "-b"
	// Each daemon's profile is in its test's folder: a test's cleanup
	// destroys only workspaces whose profile is in its folder.
	prof := map[*e2eEnv]string{}
	for _, e := range []*e2eEnv{e1, e2} {
		e.importTestImage("ownimg")
		prof[e] = filepath.Join(e.dir, "own.hcl")
		os.WriteFile(prof[e], []byte("image = \"ownimg\"\ncpus = 1\nmemory = \"256MiB\"\ndisk = \"1GiB\"\nnetwork {\n  mode = \"isolated\"\n}\ndisplay {\n  type = \"none\"\n}\n"), 0o644)
	}

	// e1's events from here on.
	evCtx, evCancel := context.WithCancel(context.Background())
	defer evCancel()
	evCmd := exec.CommandContext(evCtx, binPath, "events", "--json")
	evCmd.Env = append(os.Environ(), "WORKSPACE_SOCKET="+e1.socket)
	var evOut bytes.Buffer
	evCmd.Stdout = &evOut
	if err := evCmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond) // subscribed

	mustCLI(t, e1.socket, "create", name, "--profile", prof[e1])
	mustCLI(t, e2.socket, "create", name, "--profile", prof[e2])
	mustCLI(t, e2.socket, "create", other, "--profile", prof[e2])

	if got := listNames(t, e1); strings.Join(got, ",") != name {
		t.Fatalf("the first daemon lists %v, want only its own %s", got, name)
	}
	if got := listNames(t, e2); strings.Join(got, ",") != name+","+other {
		t.Fatalf("the second daemon lists %v", got)
	}
	d1, d2 := e1.status(name).Domain, e2.status(name).Domain
	if d1 == d2 || !strings.HasSuffix(d1, "-"+name) || !strings.HasSuffix(d2, "-"+name) {
		t.Fatalf("one workspace name, libvirt domains %q and %q", d1, d2)
	}
	for _, args := range [][]string{{"net-info", d1}, {"net-info", d2}, {"nwfilter-dumpxml", d1}, {"nwfilter-dumpxml", d2}} {
		if out, err := exec.Command("virsh", append([]string{"-c", e1.uri}, args...)...).CombinedOutput(); err != nil {
			t.Errorf("virsh %v: %v\n%s", args, err, out)
		}
	}

	// The other daemon's workspace is not there for e1, whatever it tries.
	for _, args := range [][]string{{"status", other}, {"destroy", other, "--yes"}, {"start", other}} {
		if r := cli(t, e1.socket, args...); r.code == 0 || !strings.Contains(r.stderr, "no workspace named") {
			t.Errorf("workspace %s through the first daemon: %s", strings.Join(args, " "), r)
		}
	}
	if w := e2.status(other); w.Name != other {
		t.Fatalf("the second daemon's workspace after the first tried to destroy it: %+v", w)
	}

	// Destroying e1's workspace leaves e2's of the same name whole.
	mustCLI(t, e1.socket, "destroy", name, "--yes")
	if got := listNames(t, e1); len(got) != 0 {
		t.Fatalf("the first daemon lists %v after destroying its workspace", got)
	}
	if got := listNames(t, e2); strings.Join(got, ",") != name+","+other {
		t.Fatalf("the second daemon lists %v after the first destroyed its own", got)
	}
	for _, args := range [][]string{{"dominfo", d2}, {"net-info", d2}, {"nwfilter-dumpxml", d2}} {
		if out, err := exec.Command("virsh", append([]string{"-c", e1.uri}, args...)...).CombinedOutput(); err != nil {
			t.Errorf("the second daemon's %s is gone: %v\n%s", args[0], err, out)
		}
	}
	mustCLI(t, e2.socket, "destroy", other, "--yes")

	time.Sleep(time.Second)
	evCancel()
	_ = evCmd.Wait()
	counts := map[string]int{}
	for _, line := range strings.Split(strings.TrimSpace(evOut.String()), "\n") {
		var ev api.Event
		if json.Unmarshal([]byte(line), &ev) == nil {
			counts[ev.Workspace+" "+ev.Type]++
		}
	}
	if counts[name+" defined"] != 1 || counts[name+" undefined"] != 1 || counts[other+" defined"] != 0 || counts[other+" undefined"] != 0 {
		t.Errorf("the first daemon's events (want its own workspace's only): %v\n%s", counts, evOut.String())
	}

	// A third daemon told to use e1's pool, whose folder is in e1's state
	// folder, refuses to start and says why.
	dir := filepath.Join(e1.dir, "third")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, binPath, "daemon", "--state-dir", filepath.Join(dir, "state"), "--socket", filepath.Join(dir, "ws.sock"),
		"--libvirt-uri", e1.uri, "--pool", e1.pool, "--ui-addr", "off").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "keeps its volumes in "+filepath.Join(e1.dir, "state", "pool")) {
		t.Fatalf("a daemon on another daemon's pool: %v\n%s", err, out)
	}
}
