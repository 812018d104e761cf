package main

// End-to-end tests: the built `workspace` binary, driven as a user drives it,
// against a real daemon, a real libvirtd and the real test guest.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/workspace-sandbox/workspace/api"
	"github.com/workspace-sandbox/workspace/internal/libvirttest"
)

var binPath string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "ws-e2e-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binPath = filepath.Join(dir, "workspace")
	out, err := exec.Command("go", "build", "-tags", "ingesttest", "-o", binPath, ".").CombinedOutput() // with the test-only ingestion endpoints (ingest_e2e_helpers_test.go)
	if err != nil {
		fmt.Fprintf(os.Stderr, "build workspace: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func repoRoot(t *testing.T) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

type result struct {
	code           int
	stdout, stderr string
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
}

// cli runs the binary with args and the given socket.
func cli(t *testing.T, socket string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binPath, args...)
	cmd.Env = append(os.Environ(), "WORKSPACE_SOCKET="+socket)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run %v: %v", args, err)
	}
	return r
}

func mustCLI(t *testing.T, socket string, args ...string) result {
	t.Helper()
	r := cli(t, socket, args...)
	if r.code != 0 {
		t.Fatalf("workspace %s: %s", strings.Join(args, " "), r)
	}
	return r
}

func TestProfileCommands(t *testing.T) {
	root := repoRoot(t)
	ex := filepath.Join(root, "profiles", "examples")
	files, _ := filepath.Glob(filepath.Join(ex, "*.hcl"))
	team, _ := filepath.Glob(filepath.Join(ex, "team", "*.hcl"))
	files = append(files, team...)
	if len(files) < 4 {
		t.Fatalf("expected at least 4 example profiles, found %v", files)
	}
	r := mustCLI(t, "/nonexistent", append([]string{"profile", "validate"}, files...)...)
	if strings.Count(r.stdout, ": ok") != len(files) {
		t.Fatalf("validate: %s", r)
	}

	r = mustCLI(t, "/nonexistent", "profile", "show", "--json", filepath.Join(ex, "team", "acme.hcl"))
	var p map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &p); err != nil || p["client"] == nil || p["extends"] == nil {
		t.Fatalf("show --json: %v\n%s", err, r)
	}

	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.hcl")
	os.WriteFile(bad, []byte("image = \"test\"\nmemory = \"lots\"\ncpus = 0\nbogus = 1\n"), 0o644)
	r = cli(t, "/nonexistent", "profile", "validate", bad)
	if r.code != 1 {
		t.Fatalf("bad profile: want exit 1, got %s", r)
	}
	for _, want := range []string{"bad.hcl:2", "bad.hcl:3", "bad.hcl:4", "memory", "cpus", "bogus"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("diagnostics lack %q:\n%s", want, r.stderr)
		}
	}

	// A profile handing the guest the host: refused at validate, where
	// each share's host was written.
	hostile := filepath.Join(dir, "hostile.hcl")
	os.WriteFile(hostile, []byte("image = \"test\"\nmemory = \"4PiB\"\ndisk = \"3.8EiB\"\nshare \"root\" {\n  host     = \"/\"\n  readonly = false\n}\nshare \"cron\" {\n  host = \"/etc/cron.d\"\n}\n"), 0o644)
	r = cli(t, "/nonexistent", "profile", "validate", hostile)
	for _, want := range []string{"hostile.hcl:2:10: Invalid memory: must be at most 4TiB", "hostile.hcl:3:8: Invalid disk: must be at most 16TiB",
		`hostile.hcl:5:14: Invalid share.root.host: "/" would give the guest the whole host`, "hostile.hcl:9:10: Invalid share.cron.host", "system folder"} {
		if r.code != 1 || !strings.Contains(r.stderr, want) {
			t.Errorf("hostile profile: want %q in:\n%s", want, r)
		}
	}
}

func TestDaemonNotRunningMessage(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "none.sock")
	r := cli(t, sock, "list")
	if r.code == 0 || !strings.Contains(r.stderr, "daemon is not running") || !strings.Contains(r.stderr, "workspace daemon") || !strings.Contains(r.stderr, sock) {
		t.Fatalf("want a message saying the daemon is not running and how to start it: %s", r)
	}
}

func TestLibvirtUnreachable(t *testing.T) {
	dir := t.TempDir()
	// Nothing listens on port 1 of the loopback address.
	cmd := exec.Command(binPath, "daemon", "--state-dir", dir, "--socket", filepath.Join(dir, "d.sock"), "--libvirt-uri", "qemu+tcp://127.0.0.1:1/system")
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "cannot reach libvirt at qemu+tcp://127.0.0.1:1/system") {
		t.Fatalf("want a clear libvirt error, got %v:\n%s", err, out)
	}
	if entries, _ := os.ReadDir(dir); len(entries) > 0 {
		for _, e := range entries {
			if e.Name() != "images" {
				t.Errorf("left behind: %s", e.Name())
			}
		}
	}
}

// e2eEnv is a daemon of our own on the real libvirtd, in a fresh state dir
// with its own storage pool, torn down at the end.
type e2eEnv struct {
	t        *testing.T
	dir      string
	socket   string
	pool     string
	uri      string
	daemon   *exec.Cmd
	logFile  *os.File
	imageDir string
	// ui is the web UI's address ("" for 127.0.0.1 on a free port).
	ui string
	// daemonArgs are added to the daemon's command line.
	daemonArgs []string
}

func (e *e2eEnv) uiAddr() string {
	if e.ui != "" {
		return e.ui
	}
	return "127.0.0.1:0"
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func libvirtURI() string {
	if u := os.Getenv("WORKSPACE_TEST_LIBVIRT_URI"); u != "" {
		return u
	}
	return "qemu:///system"
}

func newE2EEnv(t *testing.T) *e2eEnv {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test skipped in -short mode")
	}
	root := repoRoot(t)
	imageDir := filepath.Join(root, "images", "test", "build")
	for _, f := range []string{"disk.qcow2", "vmlinuz", "initrd.img"} {
		if _, err := os.Stat(filepath.Join(imageDir, f)); err != nil {
			t.Skipf("test guest image not built (%v): run `make test-image`", err)
		}
	}
	uri := libvirtURI()
	if out, err := exec.Command("virsh", "-c", uri, "version").CombinedOutput(); err != nil {
		if os.Geteuid() == 0 {
			if out2, err2 := exec.Command("bash", filepath.Join(root, "scripts", "libvirt-up.sh")).CombinedOutput(); err2 != nil {
				t.Skipf("libvirtd is not available at %s and could not be started: %v\n%s\n%s", uri, err2, out, out2)
			}
		} else {
			t.Skipf("libvirtd is not available at %s (%v): run `sudo make libvirt`\n%s", uri, err, out)
		}
	}
	// What killed runs of these tests left (their state folders are
	// wse2e*); a user's or the demo's daemon is never touched.
	sweepOnce.Do(func() { libvirttest.SweepStale(t, uri, "wse2e") })
	base, err := os.MkdirTemp("", "wse2e")
	if err != nil {
		t.Fatal(err)
	}
	// qemu runs as its own user and must reach the workspace folders.
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	e := &e2eEnv{t: t, dir: base, socket: filepath.Join(base, "ws.sock"), pool: "wstest-e2e-" + randHex(4), uri: uri, imageDir: imageDir}
	t.Cleanup(e.cleanup)
	e.startDaemon()
	return e
}

var sweepOnce sync.Once

func (e *e2eEnv) startDaemon() {
	e.t.Helper()
	lf, err := os.OpenFile(filepath.Join(e.dir, "daemon.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		e.t.Fatal(err)
	}
	e.logFile = lf
	args := []string{"daemon", "--state-dir", filepath.Join(e.dir, "state"), "--socket", e.socket,
		"--libvirt-uri", e.uri, "--pool", e.pool, "--log-level", "debug", "--ui-addr", e.uiAddr(),
		"--share-root", e.dir} // the tests run as root, whose home is no share root
	cmd := exec.Command(binPath, append(args, e.daemonArgs...)...)
	cmd.Stdout, cmd.Stderr = lf, lf
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	e.daemon = cmd
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if cli(e.t, e.socket, "version").stdout != "" && cli(e.t, e.socket, "list", "--json").code == 0 {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	log, _ := os.ReadFile(lf.Name())
	e.t.Fatalf("daemon did not come up:\n%s", log)
}

func (e *e2eEnv) stopDaemon() {
	if e.daemon == nil {
		return
	}
	_ = e.daemon.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { _ = e.daemon.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = e.daemon.Process.Kill()
		<-done
	}
	e.daemon = nil
	e.logFile.Close()
}

func (e *e2eEnv) cleanup() {
	if e.daemon != nil {
		var ws []api.Workspace
		if r := cli(e.t, e.socket, "list", "--json"); r.code == 0 {
			_ = json.Unmarshal([]byte(r.stdout), &ws)
		}
		for _, w := range ws {
			// libvirt is shared: only what this test made (its profiles
			// live in its folder), never another test's or a user's VM.
			if strings.HasPrefix(w.Profile, e.dir) {
				cli(e.t, e.socket, "destroy", w.Name, "--yes")
			}
		}
		var imgs []api.Image
		if r := cli(e.t, e.socket, "image", "list", "--json"); r.code == 0 {
			_ = json.Unmarshal([]byte(r.stdout), &imgs)
		}
		for _, img := range imgs {
			cli(e.t, e.socket, "image", "rm", img.Name)
		}
	}
	e.stopDaemon()
	_ = exec.Command("virsh", "-c", e.uri, "pool-destroy", e.pool).Run()
	_ = exec.Command("virsh", "-c", e.uri, "pool-undefine", e.pool).Run()
	if e.t.Failed() {
		log, _ := os.ReadFile(filepath.Join(e.dir, "daemon.log"))
		e.t.Logf("daemon log:\n%s", log)
	}
	os.RemoveAll(e.dir)
}

func (e *e2eEnv) status(name string) api.Workspace {
	e.t.Helper()
	var w api.Workspace
	r := mustCLI(e.t, e.socket, "status", name, "--json")
	if err := json.Unmarshal([]byte(r.stdout), &w); err != nil {
		e.t.Fatalf("status --json: %v\n%s", err, r)
	}
	return w
}

func (e *e2eEnv) waitConsole(w api.Workspace, marker string, timeout time.Duration) {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		b, _ := os.ReadFile(w.ConsoleLog)
		if bytes.Contains(b, []byte(marker)) {
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
	b, _ := os.ReadFile(w.ConsoleLog)
	e.t.Fatalf("guest console never showed %s within %s:\n%s", marker, timeout, b)
}

func (e *e2eEnv) importTestImage(name string) {
	e.t.Helper()
	cmdline, err := os.ReadFile(filepath.Join(e.imageDir, "cmdline"))
	if err != nil {
		e.t.Fatal(err)
	}
	r := mustCLI(e.t, e.socket, "image", "import", name, filepath.Join(e.imageDir, "disk.qcow2"),
		"--kernel", filepath.Join(e.imageDir, "vmlinuz"), "--initrd", filepath.Join(e.imageDir, "initrd.img"),
		"--cmdline", strings.TrimSpace(string(cmdline)), "--json")
	var img api.Image
	if err := json.Unmarshal([]byte(r.stdout), &img); err != nil || img.Format != "qcow2" || !img.Kernel || len(img.SHA256) != 64 {
		e.t.Fatalf("import: %v %s", err, r)
	}
}

func TestEndToEndLifecycle(t *testing.T) {
	e := newE2EEnv(t)
	name := "wstest-" + randHex(3)
	e.importTestImage("testimg")
	if r := cli(t, e.socket, "image", "import", "testimg", filepath.Join(e.imageDir, "disk.qcow2")); r.code == 0 || !strings.Contains(r.stderr, "already imported") {
		t.Fatalf("second import: %s", r)
	}

	prof := filepath.Join(e.dir, "client.hcl")
	os.WriteFile(prof, []byte("image = \"testimg\"\ncpus = 1\nmemory = \"512MiB\"\ndisk = \"2GiB\"\nnetwork {\n  mode = \"nat\"\n}\ndisplay {\n  type = \"vnc\"\n}\n"), 0o644)

	// Bad input: an image that is not imported changes nothing.
	badProf := filepath.Join(e.dir, "bad.hcl")
	os.WriteFile(badProf, []byte("image = \"nothere\"\n"), 0o644)
	if r := cli(t, e.socket, "create", name, "--profile", badProf); r.code == 0 || !strings.Contains(r.stderr, `image "nothere" is not imported`) {
		t.Fatalf("create with a missing image: %s", r)
	}
	if r := mustCLI(t, e.socket, "list", "--json"); strings.TrimSpace(r.stdout) != "[]" {
		t.Fatalf("failed create left a workspace: %s", r)
	}

	mustCLI(t, e.socket, "create", name, "--profile", prof)
	if r := cli(t, e.socket, "create", name, "--profile", prof); r.code == 0 || !strings.Contains(r.stderr, "already exists") {
		t.Fatalf("duplicate create: %s", r)
	}
	if r := cli(t, e.socket, "image", "rm", "testimg"); r.code == 0 || !strings.Contains(r.stderr, name) {
		t.Fatalf("image rm while used: %s", r)
	}
	w := e.status(name)
	if w.State != "stopped" || w.Image != "testimg" || w.Profile != prof || w.CreatedAt.IsZero() {
		t.Fatalf("after create: %+v", w)
	}

	start := time.Now()
	mustCLI(t, e.socket, "start", name, "--wait", "--timeout", "60s")
	if w = e.status(name); w.State != "running" {
		t.Fatalf("after start: %+v", w)
	}
	e.waitConsole(w, "WORKSPACE-GUEST-XREADY", 90*time.Second)
	t.Logf("guest up (X ready) %s after start", time.Since(start).Round(time.Second))

	// The daemon restarts; the VM keeps running and is shown as running.
	e.stopDaemon()
	e.startDaemon()
	if w = e.status(name); w.State != "running" {
		t.Fatalf("after daemon restart: %+v", w)
	}

	// Events, watched from here on (the stream ends with the daemon it came from).
	evCtx, evCancel := context.WithCancel(context.Background())
	defer evCancel()
	evCmd := exec.CommandContext(evCtx, binPath, "events", "--json")
	evCmd.Env = append(os.Environ(), "WORKSPACE_SOCKET="+e.socket)
	var evOut bytes.Buffer
	evCmd.Stdout = &evOut
	if err := evCmd.Start(); err != nil {
		t.Fatal(err)
	}

	mustCLI(t, e.socket, "stop", name, "--timeout", "60s")
	if w = e.status(name); w.State != "stopped" {
		t.Fatalf("after stop: %+v", w)
	}
	mustCLI(t, e.socket, "start", name)
	e.waitConsole(e.status(name), "WORKSPACE-GUEST-XREADY", 90*time.Second)
	mustCLI(t, e.socket, "restart", name, "--timeout", "60s")
	if w = e.status(name); w.State != "running" {
		t.Fatalf("after restart: %+v", w)
	}
	r := mustCLI(t, e.socket, "list")
	if !strings.Contains(r.stdout, name) || !strings.Contains(r.stdout, "running") {
		t.Fatalf("list: %s", r)
	}

	if r := cli(t, e.socket, "destroy", name); r.code == 0 || !strings.Contains(r.stderr, "--yes") {
		t.Fatalf("destroy without --yes: %s", r)
	}
	mustCLI(t, e.socket, "destroy", name, "--yes")
	if r := cli(t, e.socket, "status", name); r.code == 0 || !strings.Contains(r.stderr, fmt.Sprintf("no workspace named %q", name)) {
		t.Fatalf("status after destroy: %s", r)
	}
	// Every libvirt object of the workspace has its (random) name in its
	// own (ws-DAEMONID-NAME).
	for _, kind := range []string{"list --all", "net-list --all", "nwfilter-list", "vol-list " + e.pool} {
		args := append([]string{"-c", e.uri}, strings.Fields(kind)...)
		out, _ := exec.Command("virsh", args...).CombinedOutput()
		if strings.Contains(string(out), name) {
			t.Errorf("virsh %s still shows %s:\n%s", kind, name, out)
		}
	}
	mustCLI(t, e.socket, "image", "rm", "testimg")

	time.Sleep(time.Second)
	evCancel()
	_ = evCmd.Wait()
	types := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(evOut.String()), "\n") {
		var ev api.Event
		if json.Unmarshal([]byte(line), &ev) == nil && ev.Workspace == name {
			types[ev.Type] = true
		}
	}
	for _, want := range []string{"stopped", "started", "undefined"} {
		if !types[want] {
			t.Errorf("events --json lacks %q for %s:\n%s", want, name, evOut.String())
		}
	}
}

// TestExampleProfilesCreate: every example profile creates on a fresh
// machine as it is: no shared folder it names is missing, it asks for no
// more CPUs or memory than a small host has, and the archive has its
// packages. Create does not boot, so a blank disk stands in for the
// desktop image.
func TestExampleProfilesCreate(t *testing.T) {
	e := newE2EEnv(t)
	e.importTestImage("test")
	blank := filepath.Join(e.dir, "blank.qcow2")
	if out, err := exec.Command("qemu-img", "create", "-q", "-f", "qcow2", blank, "4G").CombinedOutput(); err != nil {
		t.Fatalf("qemu-img: %v %s", err, out)
	}
	mustCLI(t, e.socket, "image", "import", "desktop", blank)
	ex := filepath.Join(repoRoot(t), "profiles", "examples")
	files, _ := filepath.Glob(filepath.Join(ex, "*.hcl"))
	team, _ := filepath.Glob(filepath.Join(ex, "team", "*.hcl"))
	for i, f := range append(files, team...) {
		name := fmt.Sprintf("wstest-ex%d-%s", i, randHex(2))
		if r := cli(t, e.socket, "create", name, "--profile", f); r.code != 0 {
			t.Errorf("example %s does not create: %s", filepath.Base(f), r)
			continue
		}
		mustCLI(t, e.socket, "destroy", name, "--yes")
	}
}
