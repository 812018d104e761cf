// Package deb holds the tests of the Debian package built by build.sh: it
// is installed on this machine with dpkg, looked at file by file, its
// daemon started the way its systemd unit starts it, and purged.
package deb

import (
	"bufio"
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"
)

const unitPath = "/lib/systemd/system/workspace.service"

// needDpkg skips unless the test can install packages on this machine.
func needDpkg(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("the package test installs a package: skipped in -short mode")
	}
	if os.Geteuid() != 0 {
		t.Skip("installing a package needs root (sudo make test)")
	}
	for _, tool := range []string{"dpkg", "dpkg-deb", "dpkg-query"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed: not a Debian machine", tool)
		}
	}
}

func repoRoot(t *testing.T) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

func run(t *testing.T, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// buildDeb runs `make deb`'s script into a temporary folder.
func buildDeb(t *testing.T) string {
	t.Helper()
	cmd := exec.Command("bash", "packaging/deb/build.sh")
	cmd.Dir = repoRoot(t)
	cmd.Env = append(os.Environ(), "OUT_DIR="+t.TempDir())
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("build the package: %v\n%s", err, stderr.String())
	}
	lines := strings.Fields(string(out))
	if len(lines) == 0 {
		t.Fatalf("build.sh printed no package path\n%s", stderr.String())
	}
	return lines[len(lines)-1]
}

// entry is one file of the package as dpkg-deb lists it.
type entry struct {
	path string
	mode fs.FileMode // permission bits
	dir  bool
}

var listRE = regexp.MustCompile(`^([dl-])([rwxsStT-]{9}) \S+\s+\d+ \S+ \S+ \./(.*)$`)

// contents lists the package's files and folders with their modes.
func contents(t *testing.T, deb string) []entry {
	t.Helper()
	var out []entry
	sc := bufio.NewScanner(strings.NewReader(run(t, nil, "dpkg-deb", "-c", deb)))
	for sc.Scan() {
		m := listRE.FindStringSubmatch(sc.Text())
		if m == nil {
			t.Fatalf("unexpected dpkg-deb -c line %q", sc.Text())
		}
		if m[1] == "l" {
			t.Fatalf("the package holds a symlink: %s", sc.Text())
		}
		var mode fs.FileMode
		for i, c := range m[2] {
			if c != '-' {
				mode |= 1 << (8 - i)
			}
			if c == 's' || c == 'S' || c == 't' || c == 'T' {
				t.Fatalf("setuid, setgid or sticky bit in the package: %s", sc.Text())
			}
		}
		p := "/" + strings.TrimSuffix(m[3], "/")
		if p == "/" {
			continue
		}
		out = append(out, entry{path: p, mode: mode, dir: m[1] == "d"})
	}
	return out
}

// want is every file the package must ship, with its mode.
var want = map[string]fs.FileMode{
	"/usr/bin/workspace":       0o755,
	"/usr/bin/workspace-agent": 0o755,
	unitPath:                   0o644,
	"/usr/share/bash-completion/completions/workspace":       0o644,
	"/usr/share/zsh/vendor-completions/_workspace":           0o644,
	"/usr/share/fish/vendor_completions.d/workspace.fish":    0o644,
	"/usr/share/man/man1/workspace.1.gz":                     0o644,
	"/usr/share/man/man1/workspace-daemon.1.gz":              0o644,
	"/usr/share/man/man1/workspace-diary-verify.1.gz":        0o644,
	"/usr/share/workspace/images/desktop/build.sh":           0o755,
	"/usr/share/workspace/images/desktop/customize.sh":       0o755,
	"/usr/share/workspace/images/desktop/files/start-agent":  0o755,
	"/usr/share/workspace/images/desktop/files/bash_profile": 0o644,
	"/usr/share/workspace/profiles/examples/desktop.hcl":     0o644,
	"/usr/share/workspace/profiles/examples/team/acme.hcl":   0o644,
	"/usr/share/doc/workspace/README.md":                     0o644,
	"/usr/share/doc/workspace/docs/client.md":                0o644,
	"/usr/share/doc/workspace/docs/install.md":               0o644,
}

// machineState is what the package may touch besides its own files: it
// must be the same after purge as before install.
type machineState struct {
	group, state, run bool
	stateEntries      []string
}

func observe() machineState {
	var s machineState
	s.group = exec.Command("getent", "group", "workspace").Run() == nil
	if fi, err := os.Stat("/var/lib/workspace"); err == nil && fi.IsDir() {
		s.state = true
		des, _ := os.ReadDir("/var/lib/workspace")
		for _, de := range des {
			s.stateEntries = append(s.stateEntries, de.Name())
		}
		sort.Strings(s.stateEntries)
	}
	_, err := os.Stat("/run/workspace")
	s.run = err == nil
	return s
}

func installed() bool {
	out, err := exec.Command("dpkg-query", "-W", "-f=${Status}", "workspace").Output()
	return err == nil && strings.Contains(string(out), "installed")
}

// TestDebianPackage installs the package built by `make deb` with dpkg,
// checks every file and its mode, checks the unit with systemd-analyze,
// runs `workspace version` against a daemon started as the unit starts it
// (with its own state folder and socket), then purges the package and
// checks that nothing is left and nothing else was changed.
func TestDebianPackage(t *testing.T) {
	needDpkg(t)
	if installed() {
		t.Skip("a workspace package is installed on this machine: not touching it")
	}
	for _, p := range []string{"/usr/bin/workspace", "/usr/bin/workspace-agent", unitPath} {
		if _, err := os.Lstat(p); err == nil {
			t.Skipf("%s exists and is not from a package: not overwriting it", p)
		}
	}
	deb := buildDeb(t)
	if !regexp.MustCompile(`/workspace_[0-9][^_/]*_amd64\.deb$`).MatchString(deb) && runtime.GOARCH == "amd64" {
		t.Errorf("package file name %s is not workspace_VERSION_amd64.deb", deb)
	}
	files := contents(t, deb)
	listed := map[string]entry{}
	for _, e := range files {
		listed[e.path] = e
	}
	for p, mode := range want {
		if e, ok := listed[p]; !ok || e.mode != mode {
			t.Errorf("the package lacks %s with mode %v (has %+v)", p, mode, e)
		}
	}

	before := observe()
	env := []string{"DEBIAN_FRONTEND=noninteractive"}
	t.Cleanup(func() {
		if installed() {
			exec.Command("dpkg", "--purge", "workspace").Run()
		}
	})
	out := run(t, env, "dpkg", "-i", deb)
	if !strings.Contains(out, "systemctl enable --now workspace") {
		t.Errorf("installing does not say how to start the daemon:\n%s", out)
	}

	// Every file and folder as packaged, nothing writable by others.
	for _, e := range files {
		stat := os.Lstat
		if e.dir {
			stat = os.Stat // /lib is a link to usr/lib on a merged-/usr system
		}
		fi, err := stat(e.path)
		if err != nil {
			t.Errorf("installed: %v", err)
			continue
		}
		if fi.IsDir() != e.dir || (!e.dir && !fi.Mode().IsRegular()) {
			t.Errorf("%s is %v, packaged as dir=%v", e.path, fi.Mode(), e.dir)
		}
		if !e.dir && fi.Mode().Perm() != e.mode {
			t.Errorf("%s has mode %v, packaged %v", e.path, fi.Mode().Perm(), e.mode)
		}
		if !e.dir && fi.Mode().Perm()&0o022 != 0 {
			t.Errorf("%s is writable by others: %v", e.path, fi.Mode().Perm())
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && (st.Uid != 0 || st.Gid != 0) {
			t.Errorf("%s is owned by %d:%d, not root", e.path, st.Uid, st.Gid)
		}
	}
	if fi, err := os.Stat("/var/lib/workspace"); err != nil || (!before.state && fi.Mode().Perm() != 0o711) {
		t.Errorf("the state folder after install: %v %v", fi, err)
	}
	if exec.Command("getent", "group", "workspace").Run() != nil {
		t.Error("no workspace group after install")
	}
	checkStatic(t, "/usr/bin/workspace-agent")
	checkCompletions(t)
	checkUnit(t)
	if out := run(t, nil, "/usr/bin/workspace", "completion", "bash"); !strings.Contains(out, "__start_workspace") {
		t.Error("the installed CLI has no bash completion")
	}
	versionAgainstUnitDaemon(t)

	// Purge: nothing of the package left, the machine as it was.
	out = run(t, env, "dpkg", "--purge", "workspace")
	if installed() {
		t.Fatal("still installed after purge")
	}
	for _, e := range files {
		if e.dir {
			if strings.Contains(e.path, "/workspace") {
				if _, err := os.Lstat(e.path); err == nil {
					t.Errorf("folder %s is left after purge", e.path)
				}
			}
			continue
		}
		if _, err := os.Lstat(e.path); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s is left after purge (%v)", e.path, err)
		}
	}
	after := observe()
	if fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("purge did not leave the machine as it was:\nbefore %+v\nafter  %+v\npurge said:\n%s", before, after, out)
	}
	if before.state && !strings.Contains(out, "was there before the package: left as it is") {
		t.Errorf("purge does not say why it kept /var/lib/workspace:\n%s", out)
	}
}

// checkStatic: the agent goes into guests of any distribution, so it has no
// dynamic loader.
func checkStatic(t *testing.T, path string) {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("%s is dynamically linked", path)
		}
	}
}

// checkCompletions loads each shell's completion in that shell, where it is
// installed.
func checkCompletions(t *testing.T) {
	t.Helper()
	for _, c := range []struct{ shell, script string }{
		{"bash", "source /usr/share/bash-completion/completions/workspace && complete -p workspace"},
		{"zsh", "autoload -Uz compinit && compinit -u && source /usr/share/zsh/vendor-completions/_workspace"},
		{"fish", "source /usr/share/fish/vendor_completions.d/workspace.fish && complete -C 'workspace dia'"},
	} {
		if _, err := exec.LookPath(c.shell); err != nil {
			t.Logf("%s is not installed: its completion is not loaded", c.shell)
			continue
		}
		cmd := exec.Command(c.shell, "-c", c.script)
		cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Errorf("%s completion: %v\n%s", c.shell, err, out)
		}
		if c.shell == "fish" && !strings.Contains(string(out), "diary") {
			t.Errorf("fish completes \"workspace dia\" to %q", out)
		}
	}
}

// checkUnit runs systemd-analyze verify on the installed unit (systemd is
// not PID 1 here: the check is offline).
func checkUnit(t *testing.T) {
	t.Helper()
	b, err := os.ReadFile(unitPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{"After=libvirtd.service", "Restart=on-failure", "RuntimeDirectory=workspace", "StateDirectory=workspace", "NoNewPrivileges=yes", "ProtectSystem=strict"} {
		if !bytes.Contains(b, []byte("\n"+line)) {
			t.Errorf("the unit lacks %s", line)
		}
	}
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Log("systemd-analyze is not installed: the unit is not verified")
		return
	}
	cmd := exec.Command("systemd-analyze", "verify", unitPath)
	out, err := cmd.CombinedOutput()
	// Without systemd as PID 1 verify may say so; anything about our unit
	// is an error.
	for _, line := range strings.Split(string(out), "\n") {
		if strings.Contains(line, "workspace.service") {
			t.Errorf("systemd-analyze verify: %s", line)
		}
	}
	if err != nil && strings.Contains(string(out), "workspace.service") {
		t.Errorf("systemd-analyze verify failed: %v\n%s", err, out)
	}
}

// unitCommand reads the unit's ExecStart and the capabilities and
// no-new-privileges it runs with, as setpriv options.
func unitCommand(t *testing.T) (argv, setpriv []string) {
	t.Helper()
	b, err := os.ReadFile(unitPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), "=")
		if !ok {
			continue
		}
		switch k {
		case "ExecStart":
			argv = strings.Fields(v)
		case "NoNewPrivileges":
			if v == "yes" {
				setpriv = append(setpriv, "--no-new-privs")
			}
		case "CapabilityBoundingSet":
			caps := []string{"-all"}
			for _, c := range strings.Fields(v) {
				caps = append(caps, "+"+strings.ToLower(strings.TrimPrefix(c, "CAP_")))
			}
			setpriv = append(setpriv, "--bounding-set", strings.Join(caps, ","))
		}
	}
	if len(argv) == 0 {
		t.Fatal("the unit has no ExecStart")
	}
	return argv, setpriv
}

// versionAgainstUnitDaemon starts the daemon with the unit's ExecStart,
// no new privileges and only the unit's capabilities, but its own state
// folder, socket and web UI port (other daemons share this libvirtd), and
// asks it for its version with the installed CLI.
func versionAgainstUnitDaemon(t *testing.T) {
	t.Helper()
	argv, priv := unitCommand(t)
	dir, err := os.MkdirTemp("", "wspkg-")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o711)
	state, sock := filepath.Join(dir, "state"), filepath.Join(dir, "ws.sock")
	t.Cleanup(func() {
		removePoolsUnder(t, dir)
		os.RemoveAll(dir)
	})
	args := append(argv, "--state-dir", state, "--socket", sock, "--ui-addr", "127.0.0.1:0")
	if _, err := exec.LookPath("setpriv"); err == nil {
		args = append(append(append([]string{"setpriv"}, priv...), "--"), args...)
	} else {
		t.Log("setpriv is not installed: the daemon runs with all of root's capabilities")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	daemon := exec.CommandContext(ctx, args[0], args[1:]...)
	daemon.Cancel = func() error { return daemon.Process.Signal(syscall.SIGTERM) }
	daemon.WaitDelay = 10 * time.Second
	var log bytes.Buffer
	daemon.Stdout, daemon.Stderr = &log, &log
	if err := daemon.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- daemon.Wait() }()
	defer func() {
		cancel()
		<-exited
	}()
	deadline := time.Now().Add(60 * time.Second)
	for {
		out, err := exec.Command("/usr/bin/workspace", "--socket", sock, "version").CombinedOutput()
		if err == nil && strings.Contains(string(out), "daemon: ") && !strings.Contains(string(out), "not running") {
			ver := regexp.MustCompile(`client: (\S+)\ndaemon: (\S+) `).FindStringSubmatch(string(out))
			if ver == nil || ver[1] != ver[2] || ver[1] == "dev" {
				t.Errorf("workspace version:\n%s", out)
			}
			t.Logf("workspace version:\n%s", out)
			break
		}
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("the daemon started as the unit starts it exited: %v\n%s", err, log.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no daemon answered on %s in 60 s: %s\n%s", sock, out, log.String())
		}
		time.Sleep(300 * time.Millisecond)
	}
	if fi, err := os.Stat(sock); err != nil || fi.Mode().Perm() != 0o660 {
		t.Errorf("the daemon's socket: %v %v", fi, err)
	}
}

// removePoolsUnder undefines the libvirt storage pools whose folder is
// inside dir: what a daemon with that state folder defined.
func removePoolsUnder(t *testing.T, dir string) {
	if _, err := exec.LookPath("virsh"); err != nil {
		return
	}
	v := func(args ...string) (string, error) {
		out, err := exec.Command("virsh", append([]string{"-q", "-c", "qemu:///system"}, args...)...).Output()
		return string(out), err
	}
	names, err := v("pool-list", "--all", "--name")
	if err != nil {
		return
	}
	for _, p := range strings.Fields(names) {
		if x, err := v("pool-dumpxml", p); err == nil && strings.Contains(x, "<path>"+dir+"/") {
			v("pool-destroy", p)
			if _, err := v("pool-undefine", p); err != nil {
				t.Errorf("undefine the test daemon's pool %s: %v", p, err)
			}
		}
	}
}

// TestPurgeKeepsTheDiary runs the package's postrm, as dpkg runs it on
// purge, on a state folder the package made, in a mount namespace where
// /var/lib is a temporary folder and /run and /etc/systemd/system are empty
// (this machine's own state, units and libvirtd stay out of reach):
// everything goes but the diary and its keys, and it says where they are.
func TestPurgeKeepsTheDiary(t *testing.T) {
	needDpkg(t)
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("unshare is not installed")
	}
	deb := buildDeb(t)
	ctl := t.TempDir()
	run(t, nil, "dpkg-deb", "-e", deb, ctl)
	varlib := t.TempDir()
	st := filepath.Join(varlib, "workspace")
	for _, f := range []string{"diary/diary.db", "diary/blobs/acme/x", "keys/identity.age", "images/test.json", "pool/img-test.disk", "workspaces/acme/agent.sock", "tracking/acme.json"} {
		os.MkdirAll(filepath.Dir(filepath.Join(st, f)), 0o700)
		os.WriteFile(filepath.Join(st, f), []byte("x"), 0o600)
	}
	os.WriteFile(filepath.Join(st, ".package"), []byte("state\n"), 0o600)
	script := fmt.Sprintf(`set -e
mount --bind %q /var/lib
mount -t tmpfs none /run
if [ -d /etc/systemd/system ]; then mount -t tmpfs none /etc/systemd/system; fi
sh %q purge`, varlib, filepath.Join(ctl, "postrm"))
	cmd := exec.Command("unshare", "--mount", "--propagation", "private", "sh", "-c", script)
	out, err := cmd.CombinedOutput()
	if err != nil {
		if strings.Contains(string(out), "Operation not permitted") || strings.Contains(string(out), "unshare failed") {
			t.Skipf("no mount namespace here: %s", out)
		}
		t.Fatalf("postrm purge: %v\n%s", err, out)
	}
	var left []string
	filepath.WalkDir(varlib, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(varlib, p)
			left = append(left, rel)
		}
		return nil
	})
	sort.Strings(left)
	if want := []string{"workspace/diary/blobs/acme/x", "workspace/diary/diary.db", "workspace/keys/identity.age"}; fmt.Sprint(left) != fmt.Sprint(want) {
		t.Errorf("after purge %v are left, want %v", left, want)
	}
	for _, w := range []string{"your work diary stays in /var/lib/workspace/diary", "/var/lib/workspace/keys", "libvirtd is not reachable"} {
		if !strings.Contains(string(out), w) {
			t.Errorf("purge does not say %q:\n%s", w, out)
		}
	}
}
