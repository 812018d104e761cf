package main

import (
	"bytes"
	"encoding/json"
	"image"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/workspace-sandbox/workspace/api"
	"github.com/workspace-sandbox/workspace/tracking"
)

// desktopImage is the minimal desktop image `make desktop-image` builds.
type desktopImage struct {
	disk, kernel, initrd, cmdline string
}

func builtDesktopImage(t *testing.T) desktopImage {
	t.Helper()
	dir := filepath.Join(repoRoot(t), "images", "desktop", "build")
	img := desktopImage{
		disk:   filepath.Join(dir, "minimal.qcow2"),
		kernel: filepath.Join(dir, "minimal.vmlinuz"),
		initrd: filepath.Join(dir, "minimal.initrd.img"),
	}
	for _, f := range []string{img.disk, img.kernel, img.initrd} {
		if _, err := os.Stat(f); err != nil {
			t.Skipf("minimal desktop image not built (%v): run `make desktop-image`", err)
		}
	}
	b, err := os.ReadFile(filepath.Join(dir, "minimal.cmdline"))
	if err != nil {
		t.Fatal(err)
	}
	img.cmdline = strings.TrimSpace(string(b))
	return img
}

// desktopBackground returns the share of pixels close to the minimal
// desktop's background (yellow #ffcc00 and purple #6a1b9a squares).
func desktopBackground(t *testing.T, b []byte) (share float64, w, h int) {
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
	n, hit := 0, 0
	for y := bounds.Min.Y; y < bounds.Max.Y; y += 3 {
		for x := bounds.Min.X; x < bounds.Max.X; x += 3 {
			r, g, b, _ := img.At(x, y).RGBA()
			n++
			if near(r, g, b, [3]int{0xff, 0xcc, 0x00}) || near(r, g, b, [3]int{0x6a, 0x1b, 0x9a}) {
				hit++
			}
		}
	}
	return float64(hit) / float64(n), bounds.Dx(), bounds.Dy()
}

// TestDesktopImageEndToEnd boots the minimal desktop image as a user
// would: imported, a workspace from a small profile with 30 s slots,
// started; the share is mounted at boot; the agent in the guest's X
// session connects, tracks, and the diary's screenshot is the guest's real
// X session (its known background on the VGA display), not anything of the
// host's.
func TestDesktopImageEndToEnd(t *testing.T) {
	img := builtDesktopImage(t)
	e := newE2EEnv(t)
	hostPicture(t)
	mustCLI(t, e.socket, "init")
	r := mustCLI(t, e.socket, "image", "import", "desk", img.disk, "--kernel", img.kernel, "--initrd", img.initrd, "--cmdline", img.cmdline, "--json")
	var im api.Image
	if err := json.Unmarshal([]byte(r.stdout), &im); err != nil || !im.Kernel {
		t.Fatalf("import: %v %s", err, r)
	}
	name := "wstest-desk-" + randHex(3)
	// A read-only shared folder: the image mounts it by tag at boot.
	handoff := filepath.Join(e.dir, "handoff")
	os.Mkdir(handoff, 0o755)
	os.WriteFile(filepath.Join(handoff, "note.txt"), []byte("from the host\n"), 0o644)
	// A read-write share for what commands in the guest write (QEMU runs
	// as its owner, never root).
	out := filepath.Join(e.dir, "out")
	os.Mkdir(out, 0o755)
	if err := os.Chown(out, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	// 9p in mapped mode shows the guest the host folder's mode: the
	// desktop user (not the folder's owner here) may write in it.
	os.Chmod(out, 0o777)
	prof := filepath.Join(e.dir, "desk.hcl")
	// No network: the packages come from the host through the guest agent.
	// The root script succeeds and counts its runs; the user script fails.
	profText := `image  = "desk"
cpus   = 2
memory = "1GiB"
disk   = "4GiB"
network {
  mode = "none"
}
display {
  type = "vnc"
}
share "handoff" {
  host     = "` + handoff + `"
  readonly = true
}
share "out" {
  host     = "` + out + `"
  readonly = false
}
tracking {
  slot = "30s"
}
provision {
  packages    = ["scrot"]
  script      = "echo root-script-ran; echo run >> /var/tmp/provision-runs"
  user_script = "echo user-script-output as $(id -un) on $DISPLAY; echo about to fail >&2; exit 7"
}
`
	// A package the archive does not have is refused at create, at its line.
	os.WriteFile(prof, []byte(strings.Replace(profText, `["scrot"]`, `["scrot", "no-such-package-x"]`, 1)), 0o644)
	if r := cli(t, e.socket, "create", name, "--profile", prof); r.code == 0 || !strings.Contains(r.stderr, prof+":23:") || !strings.Contains(r.stderr, `no package "no-such-package-x"`) {
		t.Fatalf("create with an unknown package: %s", r)
	}
	os.WriteFile(prof, []byte(profText), 0o644)
	mustCLI(t, e.socket, "create", name, "--profile", prof)
	start := time.Now()
	mustCLI(t, e.socket, "start", name, "--wait")
	w := e.waitAgent(name, 4*time.Minute)
	t.Logf("agent connected %s after start (agent %s)", time.Since(start).Round(time.Second), w.Agent.Version)

	begin := time.Now()
	mustCLI(t, e.socket, "track", "start", name, "--memo", "desktop image")
	deadline := time.Now().Add(4 * time.Minute)
	var shots []tracking.Shot
	for {
		shots = shotsOf(e.diaryView(name, begin.Add(-time.Minute), time.Now().Add(time.Minute)))
		if len(shots) > 0 {
			break
		}
		if time.Now().After(deadline) {
			st := mustCLI(t, e.socket, "track", "status", name)
			b, _ := os.ReadFile(w.ConsoleLog)
			t.Fatalf("no screenshot in the diary after %s\n%s\nconsole:\n%s", time.Since(begin).Round(time.Second), st.stdout, b)
		}
		time.Sleep(3 * time.Second)
	}
	mustCLI(t, e.socket, "track", "stop", name)
	for _, sh := range shots {
		f := filepath.Join(e.dir, sh.ID+".jpg")
		mustCLI(t, e.socket, "diary", "show", sh.ID, "--out", f)
		b, _ := os.ReadFile(f)
		share, w, h := desktopBackground(t, b)
		_, host := pictureShare(t, b)
		t.Logf("shot %s: %dx%d, %.0f%% desktop background", sh.ID, w, h, share*100)
		// The mouse pointer and JPEG edges cover a little of it.
		if share < 0.9 || host > 0 {
			t.Errorf("shot %s: %.0f%% of the desktop's background, %d host-picture pixels", sh.ID, share*100, host)
		}
	}
	// The share mounter found the host's list in fw_cfg at boot and
	// mounted the share by its tag, read-only.
	if b, _ := os.ReadFile(w.ConsoleLog); !bytes.Contains(b, []byte("workspace-shares: handoff mounted at /mnt/shares/handoff (9p, ro)")) {
		t.Errorf("the console does not show the share mounted:\n%s", b)
	}
	checkProvisionAndExec(t, e, name, out)
	mustCLI(t, e.socket, "stop", name, "--timeout", "90s")
	mustCLI(t, e.socket, "destroy", name, "--yes")
}

// waitProvisioned polls status until both provisioning phases are over.
func (e *e2eEnv) waitProvisioned(name string, timeout time.Duration) api.Workspace {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		w := e.status(name)
		if p := w.Provisioning; p != nil && p.Final() {
			return w
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(w.ConsoleLog)
			e.t.Fatalf("provisioning of %s not over within %s: %+v\nconsole:\n%s", name, timeout, w.Provisioning, b)
		}
		time.Sleep(2 * time.Second)
	}
}

// checkProvisionAndExec, on the booted desktop: the packages were
// installed without a network and the root script ran, the failing user
// script shows as failed with its exit status and last lines; exec runs
// scrot as the desktop user and its shot is the guest's desktop, never
// the host's display; exec returns a failing command's status; after a
// restart nothing runs again.
func checkProvisionAndExec(t *testing.T, e *e2eEnv, name, out string) {
	start := time.Now()
	w := e.waitProvisioned(name, 8*time.Minute)
	p := w.Provisioning
	t.Logf("provisioned %s after the shots: root %s, user %s", time.Since(start).Round(time.Second), p.Root.State, p.User.State)
	if p.Root.State != "done" || p.User.State != "failed" || p.User.Exit == nil || *p.User.Exit != 7 ||
		!strings.Contains(strings.Join(p.User.Lines, "\n"), "user-script-output as user on :0") || !strings.Contains(strings.Join(p.User.Lines, "\n"), "about to fail") {
		t.Fatalf("provisioning: %+v", p)
	}
	if r := mustCLI(t, e.socket, "status", name); !strings.Contains(r.stdout, "done") || !strings.Contains(r.stdout, "failed with exit status 7") || !strings.Contains(r.stdout, "| about to fail") {
		t.Errorf("status does not show provisioning:\n%s", r.stdout)
	}
	// start --provision on the running workspace: the steps, then the
	// result, and a failed phase fails the command.
	if r := cli(t, e.socket, "start", name, "--wait", "--provision"); r.code != 1 || !strings.Contains(r.stderr, "provisioning: root done, user failed") ||
		!strings.Contains(r.stdout, "failed with exit status 7") || !strings.Contains(r.stderr, "provisioning of") {
		t.Errorf("start --provision: %s", r)
	}
	if b, _ := os.ReadFile(w.ConsoleLog); !bytes.Contains(b, []byte("workspace-provision: root-script-ran")) {
		t.Errorf("the console does not show the root script's output:\n%s", b)
	}

	// scrot, installed from the host, as the desktop user on its display.
	r := mustCLI(t, e.socket, "exec", name, "--", "scrot", "/mnt/shares/out/inside.png")
	b, err := os.ReadFile(filepath.Join(out, "inside.png"))
	if err != nil {
		t.Fatalf("scrot wrote nothing to the share: %v %s", err, r)
	}
	share, sw, sh := desktopBackground(t, b)
	_, host := pictureShare(t, b)
	t.Logf("scrot in the guest: %dx%d, %.0f%% desktop background, %d host-picture pixels", sw, sh, share*100, host)
	if share < 0.9 || host > 0 {
		t.Errorf("scrot's shot: %.0f%% of the guest's desktop, %d pixels of the host's display", share*100, host)
	}
	if r := mustCLI(t, e.socket, "exec", name, "--", "id", "-un"); r.stdout != "user\n" {
		t.Errorf("exec runs as %q, want the desktop user", r.stdout)
	}
	if r := mustCLI(t, e.socket, "exec", name, "--user", "root", "--", "sh", "-c", "cat /var/tmp/provision-runs; id -un"); r.stdout != "run\nroot\n" {
		t.Errorf("exec --user root: %q", r.stdout)
	}
	r = cli(t, e.socket, "exec", name, "--", "sh", "-c", "echo partial; echo broken >&2; exit 3")
	if r.code != 3 || r.stdout != "partial\n" || !strings.Contains(r.stderr, "broken") {
		t.Errorf("a failing command: %s", r)
	}

	// stdin: exec -i passes it and its end; shell reads line by line.
	withStdin := func(in string, args ...string) result {
		cmd := exec.Command(binPath, args...)
		cmd.Env = append(os.Environ(), "WORKSPACE_SOCKET="+e.socket)
		cmd.Stdin = strings.NewReader(in)
		var o, eb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &o, &eb
		err := cmd.Run()
		r := result{stdout: o.String(), stderr: eb.String()}
		if ee, ok := err.(*exec.ExitError); ok {
			r.code = ee.ExitCode()
		}
		return r
	}
	if r := withStdin("one\ntwo\n", "exec", name, "-i", "--", "wc", "-l"); r.code != 0 || strings.TrimSpace(r.stdout) != "2" {
		t.Errorf("exec -i: %s", r)
	}
	if r := withStdin("cd /tmp\npwd\necho shell-as-$(id -un)\nexit 4\n", "shell", name); r.code != 4 || r.stdout != "/tmp\nshell-as-user\n" {
		t.Errorf("shell: %s", r)
	}

	// A second boot runs nothing again.
	mustCLI(t, e.socket, "restart", name, "--timeout", "90s")
	e.waitAgent(name, 4*time.Minute)
	r = mustCLI(t, e.socket, "exec", name, "--user", "root", "--", "cat", "/var/tmp/provision-runs")
	if r.stdout != "run\n" {
		t.Errorf("after a restart the root script ran again: %q", r.stdout)
	}
	if p := e.status(name).Provisioning; p == nil || p.User.State != "failed" || p.Root.State != "done" {
		t.Errorf("after a restart: %+v", p)
	}
}

// TestDesktopImageBuildBadInput: arguments and an unreachable Debian
// archive are refused with a clear message, before anything is made.
func TestDesktopImageBuildBadInput(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "none.sock")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"image", "build"}, `one recipe: "desktop"`},
		{[]string{"image", "build", "server"}, `one recipe: "desktop"`},
		{[]string{"image", "build", "desktop", "--variant", "kde", "--no-import", "--out", filepath.Join(dir, "x.qcow2")}, `--variant "kde"`},
		{[]string{"image", "build", "desktop", "--no-import"}, "--no-import needs --out"},
		{[]string{"image", "build", "desktop", "--name", "Bad Name", "--no-import", "--out", filepath.Join(dir, "x.qcow2")}, "image name"},
		{[]string{"image", "build", "desktop", "--user", "root", "--no-import", "--out", filepath.Join(dir, "x.qcow2")}, "taken by the system"},
		{[]string{"image", "build", "desktop", "--mirror", "ftp://x/debian", "--no-import", "--out", filepath.Join(dir, "x.qcow2")}, `mirror "ftp://x/debian"`},
		// Importing needs the daemon: said before building for minutes.
		{[]string{"image", "build", "desktop", "--variant", "minimal"}, "daemon is not running"},
	} {
		r := cli(t, sock, tc.args...)
		if r.code == 0 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("workspace %s: want an error with %q, got %s", strings.Join(tc.args, " "), tc.want, r)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("bad input left %v", entries)
	}

	if os.Geteuid() != 0 {
		t.Skip("the unreachable-archive case needs root to get past the privilege check")
	}
	for _, tool := range []string{"mmdebstrap", "qemu-img"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("the unreachable-archive case needs %s (make test installs it): %v", tool, err)
		}
	}
	// No network access to the archive (a closed port): a clear error in
	// seconds, no build folder, no output file, nothing imported.
	tmp := filepath.Join(dir, "tmp")
	os.Mkdir(tmp, 0o755)
	out := filepath.Join(dir, "out")
	os.Mkdir(out, 0o755)
	cmd := exec.Command(binPath, "image", "build", "desktop", "--variant", "minimal", "--mirror", "http://127.0.0.1:1/debian",
		"--no-import", "--out", filepath.Join(out, "desk.qcow2"), "--password", "pw")
	cmd.Env = append(os.Environ(), "TMPDIR="+tmp, "WORKSPACE_SOCKET="+sock)
	start := time.Now()
	b, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(b), "cannot reach the Debian archive at http://127.0.0.1:1/debian") || !strings.Contains(string(b), "--mirror") {
		t.Fatalf("closed mirror: %v\n%s", err, b)
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("the archive check took %s", d)
	}
	for _, d := range []string{tmp, out} {
		if entries, _ := os.ReadDir(d); len(entries) != 0 {
			t.Errorf("a failed build left %v in %s", entries, d)
		}
	}
}

// TestDesktopImageBuildBadMirrorImportsNothing: with a daemon, a build
// that cannot reach the archive imports nothing.
func TestDesktopImageBuildBadMirrorImportsNothing(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to get past the privilege check")
	}
	e := newE2EEnv(t)
	r := cli(t, e.socket, "image", "build", "desktop", "--variant", "minimal", "--mirror", "http://127.0.0.1:1/debian", "--name", "desk-bad", "--password", "pw")
	if r.code == 0 || !strings.Contains(r.stderr, "cannot reach the Debian archive") {
		t.Fatalf("closed mirror: %s", r)
	}
	if r := mustCLI(t, e.socket, "image", "list", "--json"); strings.TrimSpace(r.stdout) != "[]" {
		t.Fatalf("a failed build imported: %s", r.stdout)
	}
}
