package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/workspace-sandbox/workspace/api"
)

// snapEnv is newE2EEnv with the test image from $WORKSPACE_TEST_IMAGE_DIR
// when set (a test image built elsewhere).
func snapEnv(t *testing.T) *e2eEnv {
	e := newE2EEnv(t)
	if dir := os.Getenv("WORKSPACE_TEST_IMAGE_DIR"); dir != "" {
		e.imageDir = dir
	}
	return e
}

func snapshotList(t *testing.T, e *e2eEnv, name string) []api.Snapshot {
	t.Helper()
	r := mustCLI(t, e.socket, "snapshot", "list", name, "--json")
	var out []api.Snapshot
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatalf("snapshot list --json: %v\n%s", err, r)
	}
	return out
}

func sha256File(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

func TestEndToEndSnapshots(t *testing.T) {
	e := snapEnv(t)
	e.importTestImage("snapimg")
	name := "wstest-snap-" + randHex(3)
	prof := filepath.Join(e.dir, "snap.hcl")
	os.WriteFile(prof, []byte("image = \"snapimg\"\ncpus = 1\nmemory = \"256MiB\"\ndisk = \"1GiB\"\nnetwork {\n  mode = \"none\"\n}\ndisplay {\n  type = \"none\"\n}\n"), 0o644)

	if r := cli(t, e.socket, "snapshot", name); r.code == 0 || !strings.Contains(r.stderr, "no workspace named") {
		t.Fatalf("snapshot of a missing workspace: %s", r)
	}
	mustCLI(t, e.socket, "create", name, "--profile", prof)
	if r := cli(t, e.socket, "snapshot", name, "--name", "bad name!"); r.code == 0 || !strings.Contains(r.stderr, "snapshot name") {
		t.Fatalf("bad snapshot name: %s", r)
	}
	r := mustCLI(t, e.socket, "snapshot", name, "--name", "clean")
	if !strings.Contains(r.stdout, `snapshot "clean"`) || !strings.Contains(r.stdout, "disk only") {
		t.Fatalf("stopped snapshot: %s", r)
	}
	if s := snapshotList(t, e, name); len(s) != 1 || s[0].Name != "clean" || s[0].State != "stopped" || s[0].Memory || !s[0].Current {
		t.Fatalf("list after one snapshot: %+v", s)
	}

	// Running: a default-named snapshot with the memory.
	mustCLI(t, e.socket, "start", name, "--wait", "--timeout", "90s")
	e.waitConsole(e.status(name), "WORKSPACE-GUEST-XREADY", 2*time.Minute)
	r = mustCLI(t, e.socket, "snapshot", "create", name, "--json")
	var running api.Snapshot
	if err := json.Unmarshal([]byte(r.stdout), &running); err != nil || !regexp.MustCompile(`^\d{8}-\d{4}$`).MatchString(running.Name) || running.State != "running" || !running.Memory {
		t.Fatalf("running snapshot: %v %s", err, r)
	}
	mustCLI(t, e.socket, "stop", name, "--timeout", "60s")

	// A snapshot that does not exist: named in the error with those there
	// are, and nothing changes.
	r = cli(t, e.socket, "restore", name, "nope")
	for _, want := range []string{name, `"nope"`, "clean", running.Name} {
		if r.code == 0 || !strings.Contains(r.stderr, want) {
			t.Errorf("restore of a missing snapshot should fail naming %s: %s", want, r)
		}
	}
	if w := e.status(name); w.State != "stopped" {
		t.Fatalf("a failed restore changed the state to %s", w.State)
	}
	if s := snapshotList(t, e, name); len(s) != 2 || !s[1].Current {
		t.Fatalf("a failed restore changed the snapshots: %+v", s)
	}

	// The running snapshot: the workspace runs again, resumed, not booted.
	r = mustCLI(t, e.socket, "restore", name, running.Name)
	if !strings.Contains(r.stdout, "it is running") {
		t.Fatalf("restore of a running snapshot: %s", r)
	}
	w := e.status(name)
	if w.State != "running" {
		t.Fatalf("after restore: %+v", w)
	}
	mustCLI(t, e.socket, "stop", name, "--timeout", "60s")
	if b, _ := os.ReadFile(w.ConsoleLog); !strings.Contains(string(b), "WORKSPACE-GUEST-POWEROFF") || strings.Contains(string(b), "WORKSPACE-GUEST-BOOTED") {
		t.Fatalf("the restored guest should have resumed and powered off without booting:\n%s", b)
	}
	r = mustCLI(t, e.socket, "snapshot", "restore", name, "clean")
	if !strings.Contains(r.stdout, "it is stopped") {
		t.Fatalf("snapshot restore: %s", r)
	}
	r = mustCLI(t, e.socket, "snapshot", "list", name)
	if !strings.Contains(r.stdout, "clean") || !strings.Contains(r.stdout, running.Name) || !strings.Contains(r.stdout, "CURRENT") {
		t.Fatalf("snapshot list: %s", r)
	}
	mustCLI(t, e.socket, "snapshot", "rm", name, "clean")
	if s := snapshotList(t, e, name); len(s) != 1 || s[0].Name != running.Name {
		t.Fatalf("after rm: %+v", s)
	}
	if r := cli(t, e.socket, "restore", name); r.code == 0 || !strings.Contains(r.stderr, "name the snapshot too") {
		t.Fatalf("restore with only a workspace name: %s", r)
	}
	// A workspace with snapshots is destroyed completely.
	mustCLI(t, e.socket, "destroy", name, "--yes")
	for _, kind := range []string{"list --all", "vol-list " + e.pool} {
		out, _ := exec.Command("virsh", append([]string{"-c", e.uri}, strings.Fields(kind)...)...).CombinedOutput()
		if strings.Contains(string(out), name) {
			t.Errorf("virsh %s still shows %s:\n%s", kind, name, out)
		}
	}

	// `restore FILE` still restores a diary backup.
	pw := filepath.Join(e.dir, "pass")
	os.WriteFile(pw, []byte("a long diary passphrase\n"), 0o600)
	mustCLI(t, e.socket, "init", "--passphrase", "--passphrase-file", pw)
	bk := filepath.Join(e.dir, "backup.age")
	mustCLI(t, e.socket, "backup", "--out", bk, "--passphrase-file", pw)
	if r := cli(t, e.socket, "restore", name, "x", "--force"); r.code == 0 || !strings.Contains(r.stderr, "backup FILE") {
		t.Fatalf("--force with a snapshot restore: %s", r)
	}
	if r := mustCLI(t, e.socket, "restore", bk, "--force", "--passphrase-file", pw); !strings.Contains(r.stdout, "Restored") {
		t.Fatalf("backup restore: %s", r)
	}
}

func TestEndToEndDisposable(t *testing.T) {
	e := snapEnv(t)
	e.importTestImage("dispimg")
	name := "wstest-snap-d" + randHex(3)
	prof := filepath.Join(e.dir, "disp.hcl")
	os.WriteFile(prof, []byte("image = \"dispimg\"\ncpus = 1\nmemory = \"256MiB\"\ndisk = \"1GiB\"\nnetwork {\n  mode = \"none\"\n}\ndisplay {\n  type = \"none\"\n}\n"), 0o644)

	r := mustCLI(t, e.socket, "create", name, "--profile", prof, "--disposable")
	if !strings.Contains(r.stdout, "disposable") {
		t.Fatalf("create --disposable: %s", r)
	}
	if w := e.status(name); !w.Disposable {
		t.Fatalf("status --json: %+v", w)
	}
	if r := mustCLI(t, e.socket, "status", name); !strings.Contains(r.stdout, "disposable:") {
		t.Fatalf("status: %s", r)
	}
	if r := mustCLI(t, e.socket, "list"); !strings.Contains(r.stdout, "DISPOSABLE") || !strings.Contains(r.stdout, "yes") {
		t.Fatalf("list: %s", r)
	}
	if r := cli(t, e.socket, "snapshot", name); r.code == 0 || !strings.Contains(r.stderr, "disposable") {
		t.Fatalf("snapshot of a disposable workspace: %s", r)
	}
	domain := e.status(name).Domain
	overlay := filepath.Join(e.dir, "state", "pool", domain+".qcow2")
	clean := sha256File(t, overlay)
	leftovers := func() []string {
		m, _ := filepath.Glob(overlay + ".TRANSIENT-*")
		return m
	}

	// The VM stops while the daemon is not running: libvirt still throws
	// the run's writes away, and the next start begins clean.
	mustCLI(t, e.socket, "start", name, "--wait", "--timeout", "90s")
	e.waitConsole(e.status(name), "WORKSPACE-GUEST-XREADY", 2*time.Minute)
	if len(leftovers()) != 1 {
		t.Fatalf("a running disposable workspace has no throw-away overlay: %v", leftovers())
	}
	e.stopDaemon()
	if out, err := exec.Command("virsh", "-c", e.uri, "destroy", domain).CombinedOutput(); err != nil {
		t.Fatalf("virsh destroy: %v\n%s", err, out)
	}
	if l := leftovers(); len(l) != 0 {
		t.Fatalf("the run's writes stayed after the VM stopped: %v", l)
	}
	e.startDaemon()
	if sha256File(t, overlay) != clean {
		t.Fatal("the workspace's own overlay changed")
	}
	mustCLI(t, e.socket, "start", name, "--wait", "--timeout", "90s")
	e.waitConsole(e.status(name), "WORKSPACE-GUEST-BOOTED", 2*time.Minute)
	mustCLI(t, e.socket, "stop", name, "--force", "--timeout", "60s")
	if l := leftovers(); len(l) != 0 {
		t.Fatalf("throw-away overlay after stop: %v", l)
	}
	mustCLI(t, e.socket, "destroy", name, "--yes")
}
