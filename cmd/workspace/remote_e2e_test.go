//go:build linux

package main

// End-to-end test of a daemon on another host: a real OpenSSH server of
// the test's own (a throwaway host key and user key, its own config and
// known_hosts, on a loopback port) in front of a real daemon, and the
// built CLI driving the real test guest through it with --host ssh://...
// and a context, as a user with a workspace server does. Nothing of the
// machine's ~/.ssh or /etc/ssh is read or written: the client runs
// `ssh -F CONFIG` (WORKSPACE_SSH_COMMAND), the server `sshd -f CONFIG`.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jezek/xgb"

	"github.com/workspace-sandbox/workspace/api"
	"github.com/workspace-sandbox/workspace/internal/xvfbtest"
	"github.com/workspace-sandbox/workspace/tracking"
)

// sshServer is a real sshd on 127.0.0.1 with everything in its folder.
type sshServer struct {
	t         *testing.T
	dir       string
	port      int
	sshd      string
	config    string // sshd_config
	clientCfg string // the client's ssh_config (ssh -F)
	cmd       *exec.Cmd
	log       *os.File
}

// startSSHServer makes the keys and configs and starts sshd. Its sessions
// find the test's workspace binary first on their PATH and the test
// daemon's socket in WORKSPACE_SOCKET, as a server's admin would set up
// (there: the package's /usr/bin/workspace and the default socket).
func startSSHServer(t *testing.T, e *e2eEnv) *sshServer {
	t.Helper()
	sshd := "/usr/sbin/sshd"
	if _, err := os.Stat(sshd); err != nil {
		p, err := exec.LookPath("sshd")
		if err != nil {
			t.Skip("the OpenSSH server is not installed (scripts/deps.sh test installs openssh-server)")
		}
		sshd = p
	}
	for _, p := range []string{"ssh", "ssh-keygen"} {
		if _, err := exec.LookPath(p); err != nil {
			t.Skipf("%s is not installed (openssh-client)", p)
		}
	}
	if os.Geteuid() != 0 {
		t.Skip("the SSH test runs sshd as root (it logs in as root with a key)")
	}
	// sshd as root wants its privilege-separation folder (the Debian
	// service makes it at start; it may not exist when sshd never ran).
	if _, err := os.Stat("/run/sshd"); err != nil {
		if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
			t.Fatal(err)
		}
	}
	dir := filepath.Join(e.dir, "ssh")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	keygen := func(name, comment string) {
		if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", filepath.Join(dir, name)).CombinedOutput(); err != nil {
			t.Fatalf("ssh-keygen: %v\n%s", err, out)
		}
	}
	keygen("host_ed25519", "wstest-host")
	keygen("user_ed25519", "wstest-user")
	userPub, _ := os.ReadFile(filepath.Join(dir, "user_ed25519.pub"))
	hostPub, _ := os.ReadFile(filepath.Join(dir, "host_ed25519.pub"))
	os.WriteFile(filepath.Join(dir, "authorized_keys"), userPub, 0o600)

	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	f := strings.Fields(string(hostPub))
	os.WriteFile(filepath.Join(dir, "known_hosts"), []byte(fmt.Sprintf("[127.0.0.1]:%d %s %s\n", port, f[0], f[1])), 0o600)

	s := &sshServer{t: t, dir: dir, port: port, sshd: sshd, config: filepath.Join(dir, "sshd_config"), clientCfg: filepath.Join(dir, "ssh_config")}
	os.WriteFile(s.config, []byte(fmt.Sprintf(`ListenAddress 127.0.0.1:%d
HostKey %s
PidFile %s
AuthorizedKeysFile %s
StrictModes no
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
UsePAM no
AllowTcpForwarding no
AllowAgentForwarding no
X11Forwarding no
PermitTTY no
PrintMotd no
PrintLastLog no
SetEnv PATH=%s:/usr/sbin:/usr/bin:/sbin:/bin WORKSPACE_SOCKET=%s
LogLevel VERBOSE
`, port, filepath.Join(dir, "host_ed25519"), filepath.Join(dir, "sshd.pid"), filepath.Join(dir, "authorized_keys"),
		filepath.Dir(binPath), e.socket)), 0o600)
	// The client: this key only, this known_hosts only, never a prompt.
	// (No port forwarding is allowed by the server: ui needs none.)
	os.WriteFile(s.clientCfg, []byte(fmt.Sprintf(`Host 127.0.0.1
  IdentityFile %s
  IdentitiesOnly yes
  IdentityAgent none
  UserKnownHostsFile %s
  GlobalKnownHostsFile /dev/null
  StrictHostKeyChecking yes
  BatchMode yes
  ConnectTimeout 20
  LogLevel ERROR
`, filepath.Join(dir, "user_ed25519"), filepath.Join(dir, "known_hosts"))), 0o600)
	s.start()
	t.Cleanup(s.stop)
	return s
}

// start runs sshd and waits until it greets on its port.
func (s *sshServer) start() {
	s.t.Helper()
	lf, err := os.OpenFile(filepath.Join(s.dir, "sshd.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		s.t.Fatal(err)
	}
	s.log = lf
	cmd := exec.Command(s.sshd, "-D", "-e", "-f", s.config)
	cmd.Stdout, cmd.Stderr = lf, lf
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("start sshd: %v", err)
	}
	s.cmd = cmd
	go cmd.Wait()
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", s.port), time.Second)
		if err == nil {
			c.SetDeadline(time.Now().Add(5 * time.Second))
			banner, _ := bufio.NewReader(c).ReadString('\n')
			c.Close()
			if strings.HasPrefix(banner, "SSH-2.0-") {
				return
			}
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(lf.Name())
			s.t.Fatalf("sshd did not come up on port %d:\n%s", s.port, b)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// kill ends sshd at once, with every session it serves: what a server
// crash or a cut network does to the clients.
func (s *sshServer) kill() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	pids := append(descendants(s.cmd.Process.Pid), s.cmd.Process.Pid)
	for _, p := range pids {
		syscall.Kill(p, syscall.SIGKILL)
	}
	s.cmd = nil
	s.log.Close()
}

func (s *sshServer) stop() {
	s.kill()
	if s.t.Failed() {
		b, _ := os.ReadFile(filepath.Join(s.dir, "sshd.log"))
		s.t.Logf("sshd log:\n%s", b)
	}
}

func (s *sshServer) host() string { return fmt.Sprintf("ssh://root@127.0.0.1:%d", s.port) }

// descendants lists the processes below pid (from /proc).
func descendants(pid int) []int {
	parent := map[int]int{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...; comm may hold spaces and parentheses.
		rest := string(b[bytes.LastIndexByte(b, ')')+1:])
		f := strings.Fields(rest)
		if len(f) >= 2 {
			parent[p], _ = strconv.Atoi(f[1])
		}
	}
	var out []int
	var walk func(int)
	walk = func(p int) {
		for c, pp := range parent {
			if pp == p {
				out = append(out, c)
				walk(c)
			}
		}
	}
	walk(pid)
	return out
}

// cmdlineOf is a process's command line, arguments joined by spaces.
func cmdlineOf(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return strings.TrimSpace(string(bytes.ReplaceAll(b, []byte{0}, []byte{' '})))
}

// remoteCLI runs the built CLI as a user on another machine would: its
// own config folder (contexts), ssh through the test's client config, and
// a WORKSPACE_SOCKET that leads nowhere (so a command that did not go over
// SSH fails).
type remoteCLI struct {
	t    *testing.T
	srv  *sshServer
	cfg  string
	host []string // ["--host", URL], or nil to use the current context
}

func (r *remoteCLI) env(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); k == "WORKSPACE_SOCKET" || k == "WORKSPACE_HOST" || k == "WORKSPACE_CONTEXT" {
			continue
		}
		env = append(env, kv)
	}
	env = append(env, "XDG_CONFIG_HOME="+r.cfg, "WORKSPACE_SSH_COMMAND=ssh -F "+r.srv.clientCfg)
	if r.host != nil {
		env = append(env, "WORKSPACE_SOCKET=/nonexistent/workspace.sock")
	}
	return append(env, extra...)
}

func (r *remoteCLI) command(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, binPath, append(append([]string{}, r.host...), args...)...)
	cmd.Env = r.env()
	return cmd
}

func (r *remoteCLI) run(args ...string) result {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := r.command(ctx, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	res := result{stdout: out.String(), stderr: errb.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		res.code = ee.ExitCode()
	} else if err != nil {
		r.t.Fatalf("run %v: %v", args, err)
	}
	return res
}

func (r *remoteCLI) must(args ...string) result {
	r.t.Helper()
	res := r.run(args...)
	if res.code != 0 {
		r.t.Fatalf("workspace %s %s: %s", strings.Join(r.host, " "), strings.Join(args, " "), res)
	}
	return res
}

func (r *remoteCLI) status(name string) api.Workspace {
	r.t.Helper()
	var w api.Workspace
	if err := json.Unmarshal([]byte(r.must("status", name, "--json").stdout), &w); err != nil {
		r.t.Fatal(err)
	}
	return w
}

// sameFreePort returns 127.0.0.2:P for a port P free on both 127.0.0.2
// and 127.0.0.1.
func sameFreePort(t *testing.T) string {
	t.Helper()
	for i := 0; i < 20; i++ {
		ln, err := net.Listen("tcp4", "127.0.0.2:0")
		if err != nil {
			t.Fatalf("listen on 127.0.0.2: %v", err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		other, err := net.Listen("tcp4", fmt.Sprintf("127.0.0.1:%d", port))
		ln.Close()
		if err == nil {
			other.Close()
			return fmt.Sprintf("127.0.0.2:%d", port)
		}
	}
	t.Fatal("no port free on both 127.0.0.1 and 127.0.0.2")
	return ""
}

// TestRemoteOverSSH is issue 15's promise, on one booted guest: every
// command through a real sshd, the display and the web UI through it, and
// a cut connection that leaves the server as it was.
func TestRemoteOverSSH(t *testing.T) {
	e := newE2EEnv(t)
	// The server's web UI listens on 127.0.0.2:P, a port P that is free on
	// 127.0.0.1 too: the client (this same machine) can then forward its
	// own 127.0.0.1:P, the UI's port number, as it does on a laptop, and the
	// browser's Host names the port the UI serves.
	e.stopDaemon()
	e.ui = sameFreePort(t)
	e.startDaemon()
	srv := startSSHServer(t, e)
	rc := &remoteCLI{t: t, srv: srv, cfg: filepath.Join(e.dir, "client-config"), host: []string{"--host", srv.host()}}
	name := "wstest-ssh-" + randHex(3)
	client := writeIdentity(t, filepath.Join(e.dir, "client.key"))
	step := func(what string, fn func(t *testing.T)) {
		if !t.Run(what, func(t *testing.T) { rc.t = t; fn(t); rc.t = nil }) {
			t.FailNow()
		}
	}

	step("version and contexts", func(t *testing.T) {
		r := rc.must("version")
		if !strings.Contains(r.stdout, "daemon: ") || strings.Contains(r.stdout, "not running") || !strings.Contains(r.stdout, "libvirt "+e.uri) {
			t.Fatalf("version over SSH: %s", r)
		}
		ctxCLI := &remoteCLI{t: t, srv: srv, cfg: rc.cfg}
		ctxCLI.must("context", "add", "lab", srv.host(), "--description", "the test's server")
		ctxCLI.must("context", "use", "lab")
		for p, mode := range map[string]os.FileMode{filepath.Join(rc.cfg, "workspace"): 0o700, filepath.Join(rc.cfg, "workspace", "contexts.json"): 0o600} {
			if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != mode {
				t.Fatalf("%s: %v, %v; want mode %04o", p, fi, err, mode)
			}
		}
		if r := ctxCLI.must("list", "--json"); strings.TrimSpace(r.stdout) != "[]" {
			t.Fatalf("list through the context: %s", r)
		}
		var info struct {
			Daemon api.Info `json:"daemon"`
		}
		if err := json.Unmarshal([]byte(ctxCLI.must("version", "--json").stdout), &info); err != nil || info.Daemon.StateDir != filepath.Join(e.dir, "state") {
			t.Fatalf("version --json through the context: %+v %v", info, err)
		}
		ctxCLI.must("context", "use", "default")
	})

	step("the peer check applies to the user dial-stdio runs as", func(t *testing.T) {
		// The socket is opened to everyone for a moment, so that the
		// daemon's own check (SO_PEERCRED) is what refuses nobody.
		bin := filepath.Join(e.dir, "bin-for-nobody")
		os.Mkdir(bin, 0o755)
		nb := filepath.Join(bin, "workspace")
		if b, err := os.ReadFile(binPath); err != nil || os.WriteFile(nb, b, 0o755) != nil {
			t.Fatal(err)
		}
		os.Chmod(e.socket, 0o666)
		defer os.Chmod(e.socket, 0o660)
		cmd := exec.Command(nb, "system", "dial-stdio", "--socket", e.socket)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		cmd.Stdin = strings.NewReader("GET /v1/workspaces HTTP/1.1\r\nHost: workspace\r\nConnection: close\r\n\r\n")
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("dial-stdio as nobody: %v\n%s", err, out)
		}
		if !bytes.HasPrefix(out, []byte("HTTP/1.1 403")) || !bytes.Contains(out, []byte("uid 65534 is not allowed")) {
			t.Fatalf("the daemon answered nobody through dial-stdio:\n%s", out)
		}
	})

	step("image import streams over SSH with progress", func(t *testing.T) {
		cmdline, _ := os.ReadFile(filepath.Join(e.imageDir, "cmdline"))
		args := append(append([]string{}, rc.host...), "image", "import", "testimg", filepath.Join(e.imageDir, "disk.qcow2"),
			"--kernel", filepath.Join(e.imageDir, "vmlinuz"), "--initrd", filepath.Join(e.imageDir, "initrd.img"),
			"--cmdline", strings.TrimSpace(string(cmdline)))
		var line strings.Builder
		line.WriteString(binPath)
		for _, a := range args {
			line.WriteString(" '" + a + "'")
		}
		// The progress bar shows on a terminal: script(1) gives the CLI one.
		cmd := exec.Command("script", "-q", "-e", "-c", line.String(), "/dev/null")
		cmd.Env = rc.env()
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("image import over SSH on a terminal: %v\n%s", err, out)
		}
		if !bytes.Contains(out, []byte("importing testimg [")) || !bytes.Contains(out, []byte("100%")) || !bytes.Contains(out, []byte(`imported image "testimg"`)) {
			t.Fatalf("no upload progress shown:\n%q", out)
		}
		var imgs []api.Image
		json.Unmarshal([]byte(rc.must("image", "list", "--json").stdout), &imgs)
		want := sha256File(t, filepath.Join(e.imageDir, "disk.qcow2"))
		if len(imgs) != 1 || imgs[0].SHA256 != want || !imgs[0].Kernel {
			t.Fatalf("image list over SSH: %+v, want sha256 %s", imgs, want)
		}
	})

	step("create sends a profile that exists only on the client", func(t *testing.T) {
		// The profile and its base live in a tmpfs of the client's own
		// mount namespace: the daemon (outside it) cannot see them.
		stage := filepath.Join(e.dir, "stage")
		private := filepath.Join(e.dir, "client-profiles")
		os.Mkdir(stage, 0o700)
		os.Mkdir(private, 0o700)
		os.WriteFile(filepath.Join(stage, "base.hcl"), []byte(fmt.Sprintf(`image  = "testimg"
cpus   = 1
memory = "384MiB"
disk   = "2GiB"
network {
  mode = "none"
}
display {
  type = "spice"
}
tracking {
  slot         = "30s"
  idle_timeout = "1m"
}
client {
  name      = "ACME Corp"
  recipient = "%s"
}
`, client.Recipient())), 0o600)
		os.WriteFile(filepath.Join(stage, "client.hcl"), []byte("extends = \"base.hcl\"\nmemory = \"448MiB\"\n"), 0o600)
		script := `set -e
mount -t tmpfs -o mode=0700 wstest-client "$1"
cp "$2"/base.hcl "$2"/client.hcl "$1"/
rm -rf "$2"
shift 2
exec "$@"`
		args := append([]string{"--mount", "--propagation", "private", "sh", "-c", script, "sh", private, stage, binPath}, rc.host...)
		args = append(args, "create", name, "--profile", filepath.Join(private, "client.hcl"), "--json")
		cmd := exec.Command("unshare", args...)
		cmd.Env = rc.env()
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("create in a private mount namespace: %v\n%s", err, out)
		}
		if _, err := os.Stat(filepath.Join(private, "client.hcl")); err == nil {
			t.Fatal("the profile is visible outside the client's namespace: the test proves nothing")
		}
		w := rc.status(name)
		if w.Settings == nil || w.Settings.Memory.String() != "448MiB" || w.Settings.CPUs != 1 || w.Settings.Display.Type != "spice" || w.Settings.Client == nil || w.Settings.Client.Name != "ACME Corp" || w.Profile != filepath.Join(private, "client.hcl") {
			t.Fatalf("the workspace made from the client's profile (extends resolved there): %+v %+v", w, w.Settings)
		}
	})

	step("start, list and status", func(t *testing.T) {
		rc.must("start", name, "--wait", "--timeout", "90s")
		r := rc.must("list")
		if !strings.Contains(r.stdout, name) || !strings.Contains(r.stdout, "running") {
			t.Fatalf("list over SSH: %s", r)
		}
		for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(time.Second) {
			w := rc.status(name)
			if w.Agent != nil && w.Agent.Connected {
				break
			}
			if time.Now().After(deadline) {
				b, _ := os.ReadFile(w.ConsoleLog)
				t.Fatalf("the agent did not connect: %+v\n%s", w.Agent, b)
			}
		}
	})

	begin := time.Now()
	var shots []tracking.Shot
	step("track", func(t *testing.T) {
		rc.must("init")
		rc.must("track", "start", name, "--memo", "over ssh")
		for deadline := time.Now().Add(3 * time.Minute); ; time.Sleep(3 * time.Second) {
			var v tracking.DiaryView
			r := rc.must("diary", name, "--from", begin.Add(-time.Minute).Format(time.RFC3339), "--to", time.Now().Add(time.Minute).Format(time.RFC3339), "--json")
			if err := json.Unmarshal([]byte(r.stdout), &v); err != nil {
				t.Fatal(err)
			}
			if shots = shotsOf(v); len(shots) >= 1 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("no screenshot in the diary after %s: %s", time.Since(begin).Round(time.Second), rc.must("track", "status", name).stdout)
			}
		}
		rc.must("track", "stop", name)
		jpg := filepath.Join(e.dir, "shot-over-ssh.jpg")
		rc.must("diary", "show", shots[0].ID, "--out", jpg)
		if b, _ := os.ReadFile(jpg); !bytes.HasPrefix(b, []byte{0xFF, 0xD8, 0xFF}) {
			t.Fatal("diary show over SSH did not write the JPEG here")
		}
	})

	step("export and verify", func(t *testing.T) {
		exp := filepath.Join(e.dir, "over-ssh.diary")
		day := time.Now().Format("2006-01-02")
		rc.must("diary", "export", name, "--from", day, "--to", day, "--out", exp)
		// The client verifies offline: no daemon, no SSH.
		r := mustCLI(t, "/nonexistent.sock", "diary", "verify", exp, "--identity", filepath.Join(e.dir, "client.key"))
		if !strings.Contains(r.stdout, "OK:") || !strings.Contains(r.stdout, "ACME Corp") {
			t.Fatalf("verify of the export made over SSH:\n%s", r.stdout)
		}
	})

	step("view", func(t *testing.T) {
		if _, err := exec.LookPath("remote-viewer"); err != nil {
			t.Skip("remote-viewer is not installed (scripts/deps.sh test installs virt-viewer)")
		}
		disp := xvfbtest.Start(t, 1280, 1024)
		runtimeDir := t.TempDir()
		logStart := daemonLogSize(e)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		vc := rc.command(ctx, "view", name)
		vc.Env = append(vc.Env, "DISPLAY="+disp, "XDG_RUNTIME_DIR="+runtimeDir, "NO_AT_BRIDGE=1")
		var vout, verr bytes.Buffer
		vc.Stdout, vc.Stderr = &vout, &verr
		if err := vc.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- vc.Wait() }()
		logs := func() string { return fmt.Sprintf("view stdout:\n%s\nview stderr:\n%s", vout.String(), verr.String()) }
		x, err := xgb.NewConnDisplay(disp)
		if err != nil {
			t.Fatal(err)
		}
		defer x.Close()
		win := waitViewerWindow(t, x, name, exited, 90*time.Second, logs)
		at, shown := waitGuestInWindow(t, x, api.NewClient(e.socket), name, win, 90*time.Second)
		t.Logf("over SSH: the guest screen (%dx%d) shown 1:1 at %v in the viewer (%.2f%% equal)", shown.Dx(), shown.Dy(), at, 100*matchShare)
		// The viewer keeps its streams: a few seconds on, none has ended.
		time.Sleep(3 * time.Second)
		select {
		case err := <-exited:
			t.Fatalf("view exited while showing the guest: %v\n%s", err, logs())
		default:
		}
		log := daemonLogSince(e, logStart)
		if n := countLines(log, "display disconnected", "workspace="+name); n != 0 {
			t.Fatalf("daemon log: %d display streams ended while the viewer runs:\n%s", n, log)
		}
		if n := countLines(log, "display connected", "workspace="+name, "uid=0"); n < 2 {
			t.Fatalf("daemon log: want the SPICE channels connected as the SSH user (uid 0), got %d:\n%s", n, log)
		}
		vc.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			if err != nil {
				t.Fatalf("view after SIGTERM: %v\n%s", err, logs())
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("view did not stop\n%s", logs())
		}
		waitStreamsEnded(t, e, name, logStart)
	})

	step("ui through the forward", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		uc := rc.command(ctx, "ui", "--no-open")
		stdout, err := uc.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		var uerr bytes.Buffer
		uc.Stderr = &uerr
		if err := uc.Start(); err != nil {
			t.Fatal(err)
		}
		defer uc.Process.Kill()
		line, err := bufio.NewReader(stdout).ReadString('\n')
		if err != nil {
			t.Fatalf("ui printed no link: %v\n%s", err, uerr.String())
		}
		login := strings.TrimSpace(line)
		lu, err := url.Parse(login)
		if err != nil || lu.Scheme != "http" || !strings.HasPrefix(lu.Host, "127.0.0.1:") || lu.Path != "/login" || lu.Query().Get("token") == "" {
			t.Fatalf("login link %q", login)
		}
		token := lu.Query().Get("token")
		// The forward is this machine's 127.0.0.1 on the UI's own port
		// number (the server's UI, on this same machine, is on 127.0.0.2).
		_, uiPort, _ := net.SplitHostPort(e.ui)
		if lu.Host != "127.0.0.1:"+uiPort {
			t.Fatalf("the link %s does not lead to 127.0.0.1:%s, the forward on the UI's own port", login, uiPort)
		}
		// No command line on this machine shows the token.
		entries, _ := os.ReadDir("/proc")
		for _, en := range entries {
			if pid, err := strconv.Atoi(en.Name()); err == nil && strings.Contains(cmdlineOf(pid), token) {
				t.Fatalf("process %d shows the login token on its command line: %s", pid, cmdlineOf(pid))
			}
		}

		jar, _ := cookiejar.New(nil)
		hc := &http.Client{Jar: jar, Timeout: 30 * time.Second}
		defer hc.CloseIdleConnections()
		get := func(u string) string {
			t.Helper()
			resp, err := hc.Get(u)
			if err != nil {
				t.Fatalf("GET %s: %v", u, err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("GET %s: %s\n%s", u, resp.Status, b)
			}
			return string(b)
		}
		base := lu.Scheme + "://" + lu.Host
		if page := get(login); !strings.Contains(page, name) || !strings.Contains(page, "ACME Corp") {
			t.Fatalf("the workspaces page through the forward:\n%s", page)
		}
		day := get(base + "/w/" + name + "?day=" + time.Now().Format("2006-01-02"))
		if !strings.Contains(day, "/shot/"+shots[0].ID+"/image") || !strings.Contains(day, "over ssh") {
			t.Fatalf("the diary page through the forward lacks shot %s and the memo:\n%s", shots[0].ID, day)
		}
		thumb := get(base + "/shot/" + shots[0].ID + "/image?kind=thumbnail")
		if !strings.HasPrefix(thumb, "\xFF\xD8\xFF") {
			t.Fatalf("the thumbnail through the forward is not a JPEG (%d bytes)", len(thumb))
		}
		// A POST with the page's CSRF token and the browser's Origin: the
		// UI's checks see the forward's origin on both and let it through.
		m := regexp.MustCompile(`name="csrf" value="([0-9a-f]+)"`).FindStringSubmatch(get(base + "/w/" + name + "/export"))
		if m == nil {
			t.Fatal("no CSRF token on the export page")
		}
		form := url.Values{"csrf": {m[1]}, "from": {time.Now().Format("2006-01-02")}, "to": {time.Now().Format("2006-01-02")}, "kind": {"csv"}}
		req, _ := http.NewRequest(http.MethodPost, base+"/w/"+name+"/export", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", base)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		csv, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !bytes.Contains(csv, []byte("over ssh")) {
			t.Fatalf("CSV timesheet through the forward: %s\n%s", resp.Status, csv)
		}
		uc.Process.Signal(os.Interrupt)
		if err := uc.Wait(); err != nil {
			t.Fatalf("ui after Ctrl-C: %v\n%s", err, uerr.String())
		}
		if !strings.Contains(uerr.String(), "until you press Ctrl-C") {
			t.Fatalf("ui's stderr: %s", uerr.String())
		}
	})

	step("a broken SSH connection", func(t *testing.T) {
		daemonPID := e.daemon.Process.Pid
		before := e.status(name)
		// startEvents runs `events` over SSH and waits until its stream
		// has reached the daemon (a new dial-stdio runs under sshd: the
		// SSH session is up, not still in its handshake).
		startEvents := func() (*exec.Cmd, *bytes.Buffer, chan error) {
			t.Helper()
			seen := map[int]bool{}
			for _, p := range descendants(srv.cmd.Process.Pid) {
				seen[p] = true
			}
			ec := rc.command(context.Background(), "events", "--json")
			var eerr bytes.Buffer
			ec.Stderr = &eerr
			if err := ec.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- ec.Wait() }()
			for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
				found := false
				for _, p := range descendants(srv.cmd.Process.Pid) {
					found = found || !seen[p] && strings.Contains(cmdlineOf(p), "system dial-stdio")
				}
				if found {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("events over SSH never reached the server: %s", eerr.String())
				}
			}
			time.Sleep(time.Second)
			return ec, &eerr, done
		}
		waitFailed := func(what string, done chan error, stderr *bytes.Buffer, want ...string) {
			t.Helper()
			select {
			case err := <-done:
				ee, ok := err.(*exec.ExitError)
				if !ok || ee.ExitCode() != 1 {
					t.Fatalf("%s: events ended with %v, want exit status 1\n%s", what, err, stderr.String())
				}
			case <-time.After(30 * time.Second):
				t.Fatalf("%s: events still runs", what)
			}
			for _, w := range append(want, srv.host()) {
				if !strings.Contains(stderr.String(), w) {
					t.Fatalf("%s: the error lacks %q:\n%s", what, w, stderr.String())
				}
			}
			t.Logf("%s: %s", what, strings.TrimSpace(stderr.String()))
		}

		// The client's ssh dies.
		ec, eerr, done := startEvents()
		var sshPIDs []int
		for _, p := range descendants(ec.Process.Pid) {
			if strings.HasPrefix(cmdlineOf(p), "ssh ") {
				sshPIDs = append(sshPIDs, p)
			}
		}
		if len(sshPIDs) == 0 {
			t.Fatal("events runs no ssh process")
		}
		for _, p := range sshPIDs {
			syscall.Kill(p, syscall.SIGKILL)
		}
		waitFailed("ssh killed", done, eerr, "the ssh connection was lost", "killed")

		// The server's sshd dies with its sessions.
		_, eerr, done = startEvents()
		srv.kill()
		waitFailed("sshd killed", done, eerr, "the ssh connection was lost", "exited with status 255")

		// With no sshd at all: a clear refusal, quickly.
		start := time.Now()
		r := rc.run("list")
		if r.code != 1 || !strings.Contains(r.stderr, "ssh could not connect") || !strings.Contains(r.stderr, "Connection refused") || time.Since(start) > 20*time.Second {
			t.Fatalf("list with sshd down (%s): %s", time.Since(start).Round(time.Millisecond), r)
		}

		// The server is as it was: the same daemon, the workspace running.
		if err := syscall.Kill(daemonPID, 0); err != nil {
			t.Fatalf("the daemon (pid %d) is gone: %v", daemonPID, err)
		}
		after := e.status(name)
		if after.State != api.StateRunning || after.CreatedAt != before.CreatedAt || after.Agent == nil || !after.Agent.Connected {
			t.Fatalf("after the broken connections: %+v, before %+v", after, before)
		}
		srv.start()
		if r := rc.must("status", name, "--json"); !strings.Contains(r.stdout, `"running"`) {
			t.Fatalf("status over SSH again: %s", r)
		}
	})

	step("destroy", func(t *testing.T) {
		if r := rc.run("destroy", name); r.code == 0 || !strings.Contains(r.stderr, "--yes") {
			t.Fatalf("destroy without --yes: %s", r)
		}
		rc.must("destroy", name, "--yes")
		if r := rc.run("status", name); r.code == 0 || !strings.Contains(r.stderr, fmt.Sprintf("no workspace named %q", name)) {
			t.Fatalf("status after destroy: %s", r)
		}
		rc.must("image", "rm", "testimg")
	})
}

// TestDaemonRefusesARemoteLibvirt: a libvirt URI naming another host is
// refused before anything is made, with the way that works instead.
func TestDaemonRefusesARemoteLibvirt(t *testing.T) {
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	out, err := exec.Command(binPath, "daemon", "--state-dir", state, "--socket", filepath.Join(dir, "d.sock"),
		"--libvirt-uri", "qemu+ssh://admin@kvm1.example.com/system").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "names another host (kvm1.example.com)") || !strings.Contains(string(out), "workspace --host ssh://USER@kvm1.example.com") {
		t.Fatalf("daemon with a remote libvirt: %v\n%s", err, out)
	}
	if _, err := os.Stat(state); err == nil {
		t.Fatal("the refused daemon made its state folder")
	}
}
