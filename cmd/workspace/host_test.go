package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/workspace-sandbox/workspace/api"
	"github.com/workspace-sandbox/workspace/internal/sshconn"
)

// cleanHostEnv gives the test a config folder of its own and none of the
// variables that choose a daemon.
func cleanHostEnv(t *testing.T) string {
	t.Helper()
	cfg := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", cfg)
	t.Setenv("HOME", cfg) // where macOS keeps its config folder
	for _, v := range []string{"WORKSPACE_HOST", "WORKSPACE_CONTEXT", "WORKSPACE_SOCKET", "WORKSPACE_SSH_COMMAND"} {
		t.Setenv(v, "")
	}
	return cfg
}

// runCLI runs the CLI in this process.
func runCLI(args ...string) result {
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return result{code: code, stdout: out.String(), stderr: errb.String()}
}

func mustRun(t *testing.T, args ...string) result {
	t.Helper()
	r := runCLI(args...)
	if r.code != 0 {
		t.Fatalf("workspace %s: %s", strings.Join(args, " "), r)
	}
	return r
}

func shown(t *testing.T, args ...string) contextShow {
	t.Helper()
	var s contextShow
	r := mustRun(t, append(args, "context", "show", "--json")...)
	if err := json.Unmarshal([]byte(r.stdout), &s); err != nil {
		t.Fatalf("context show --json: %v\n%s", err, r)
	}
	return s
}

func TestContextCommands(t *testing.T) {
	cfg := cleanHostEnv(t)
	if s := shown(t); s.Context != "default" || s.Host != "unix://"+api.DefaultSocket || s.Source != "the default" {
		t.Fatalf("no context: %+v", s)
	}
	mustRun(t, "context", "add", "lab", "ssh://alice@lab.example.com:2222", "--description", "team server")
	mustRun(t, "context", "add", "home", "ssh://me@homebox")
	file := filepath.Join(cfg, "workspace", "contexts.json")
	if runtime.GOOS != "windows" {
		for p, want := range map[string]os.FileMode{filepath.Dir(file): 0o700, file: 0o600} {
			if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != want {
				t.Fatalf("%s: %v %v, want mode %04o", p, fi, err, want)
			}
		}
	}
	// Adding is not choosing.
	if s := shown(t); s.Context != "default" {
		t.Fatalf("after add: %+v", s)
	}
	mustRun(t, "context", "use", "lab")
	if s := shown(t); s.Context != "lab" || s.Host != "ssh://alice@lab.example.com:2222" || s.Source != "the current context" {
		t.Fatalf("after use: %+v", s)
	}
	var rows []contextRow
	if err := json.Unmarshal([]byte(mustRun(t, "context", "ls", "--json").stdout), &rows); err != nil {
		t.Fatal(err)
	}
	if len(rows) != 3 || rows[0].Name != "default" || rows[0].Current || rows[2].Name != "lab" || !rows[2].Current || rows[2].Description != "team server" {
		t.Fatalf("context ls --json: %+v", rows)
	}
	if r := mustRun(t, "context", "ls"); !strings.Contains(r.stdout, "lab *") || !strings.Contains(r.stdout, "team server") {
		t.Fatalf("context ls:\n%s", r.stdout)
	}

	// Bad input changes nothing.
	before, _ := os.ReadFile(file)
	for _, tc := range []struct {
		args []string
		err  string
	}{
		{[]string{"context", "add", "lab", "ssh://x"}, "already exists"},
		{[]string{"context", "add", "default", "ssh://x"}, "taken"},
		{[]string{"context", "add", "pw", "ssh://alice:hunter2@lab"}, "password"},
		{[]string{"context", "add", "web", "https://lab"}, "want ssh://"},
		{[]string{"context", "add", "rel", "unix://relative.sock"}, "unix:///ABSOLUTE"},
		{[]string{"context", "use", "nope"}, `no context named "nope"`},
		{[]string{"context", "rm", "lab"}, "is the current one"},
		{[]string{"context", "rm", "home", "nope"}, `no context named "nope"`},
		{[]string{"context", "rm", "default"}, "cannot be removed"},
	} {
		r := runCLI(tc.args...)
		if r.code == 0 || !strings.Contains(r.stderr, tc.err) || strings.Contains(r.stderr, "hunter2") {
			t.Errorf("workspace %s: %s\nwant an error with %q", strings.Join(tc.args, " "), r, tc.err)
		}
	}
	if after, _ := os.ReadFile(file); !bytes.Equal(before, after) {
		t.Fatalf("refused commands changed the file:\n%s\n%s", before, after)
	}

	mustRun(t, "context", "rm", "home")
	mustRun(t, "context", "rm", "--force", "lab")
	if s := shown(t); s.Context != "default" {
		t.Fatalf("after removing the current context: %+v", s)
	}
	mustRun(t, "context", "add", "lab", "ssh://alice@lab", "--use")
	mustRun(t, "context", "use", "default")
	if s := shown(t); s.Context != "default" {
		t.Fatalf("after use default: %+v", s)
	}
}

// TestEndpointPrecedence: --host or --context, --socket, WORKSPACE_HOST or
// WORKSPACE_CONTEXT, WORKSPACE_SOCKET, the current context, the default.
func TestEndpointPrecedence(t *testing.T) {
	cleanHostEnv(t)
	mustRun(t, "context", "add", "lab", "ssh://alice@lab", "--use")
	mustRun(t, "context", "add", "other", "ssh://bob@other:2200")
	mustRun(t, "context", "add", "here", "unix:///tmp/here.sock")

	check := func(what string, args []string, env map[string]string, host, source string) {
		t.Helper()
		for k, v := range env {
			t.Setenv(k, v)
		}
		s := shown(t, args...)
		for k := range env {
			t.Setenv(k, "")
		}
		if s.Host != host || s.Source != source {
			t.Errorf("%s: talks to %s (from %s), want %s (from %s)", what, s.Host, s.Source, host, source)
		}
	}
	check("the current context", nil, nil, "ssh://alice@lab", "the current context")
	check("WORKSPACE_SOCKET over the current context", nil, map[string]string{"WORKSPACE_SOCKET": "/run/x.sock"}, "unix:///run/x.sock", "WORKSPACE_SOCKET")
	check("WORKSPACE_CONTEXT over WORKSPACE_SOCKET", nil, map[string]string{"WORKSPACE_CONTEXT": "other", "WORKSPACE_SOCKET": "/run/x.sock"}, "ssh://bob@other:2200", "WORKSPACE_CONTEXT")
	check("WORKSPACE_HOST", nil, map[string]string{"WORKSPACE_HOST": "ssh://carol@h"}, "ssh://carol@h", "WORKSPACE_HOST")
	check("--socket over WORKSPACE_HOST", []string{"--socket", "/run/y.sock"}, map[string]string{"WORKSPACE_HOST": "ssh://carol@h"}, "unix:///run/y.sock", "--socket")
	check("--host over everything", []string{"--host", "ssh://dave@d:22"}, map[string]string{"WORKSPACE_HOST": "ssh://carol@h", "WORKSPACE_SOCKET": "/x"}, "ssh://dave@d:22", "--host")
	check("--context", []string{"-c", "here"}, map[string]string{"WORKSPACE_HOST": "ssh://carol@h"}, "unix:///tmp/here.sock", "--context")
	check("--context default", []string{"--context", "default"}, nil, "unix://"+api.DefaultSocket, "--context")

	for _, tc := range []struct {
		args []string
		env  map[string]string
		err  string
	}{
		{[]string{"--host", "ssh://a", "--context", "lab"}, nil, "give one"},
		{[]string{"--host", "ssh://a", "--socket", "/x"}, nil, "give one"},
		{nil, map[string]string{"WORKSPACE_HOST": "ssh://a", "WORKSPACE_CONTEXT": "lab"}, "unset one"},
		{[]string{"--context", "nope"}, nil, `no context named "nope"`},
		{[]string{"--host", "ssh://a:pw@b"}, nil, "password"},
		{nil, map[string]string{"WORKSPACE_HOST": "tcp://a:1"}, "WORKSPACE_HOST"},
	} {
		for k, v := range tc.env {
			t.Setenv(k, v)
		}
		// Commands that need the daemon fail with the reason, before any
		// connection is tried.
		r := runCLI(append(tc.args, "list")...)
		for k := range tc.env {
			t.Setenv(k, "")
		}
		if r.code == 0 || !strings.Contains(r.stderr, tc.err) || strings.Contains(r.stderr, "pw@") {
			t.Errorf("%v %v list: %s\nwant an error with %q", tc.args, tc.env, r, tc.err)
		}
	}

	// A bad WORKSPACE_SSH_COMMAND is named.
	t.Setenv("WORKSPACE_SSH_COMMAND", `ssh -F "unclosed`)
	if r := runCLI("--host", "ssh://a", "list"); r.code == 0 || !strings.Contains(r.stderr, "WORKSPACE_SSH_COMMAND") {
		t.Errorf("bad WORKSPACE_SSH_COMMAND: %s", r)
	}
}

// TestRemoteErrorsAreClear: an ssh that cannot connect gives one clear
// line naming the host and what ssh said.
func TestRemoteErrorsAreClear(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("the stand-in for ssh is a shell script")
	}
	cleanHostEnv(t)
	dir := t.TempDir()
	fake := filepath.Join(dir, "ssh")
	// A stand-in for ssh that fails as ssh does when nothing listens.
	os.WriteFile(fake, []byte("#!/bin/sh\necho 'ssh: connect to host lab port 2222: Connection refused' >&2\nexit 255\n"), 0o755)
	t.Setenv("WORKSPACE_SSH_COMMAND", fake)
	r := runCLI("--host", "ssh://alice@lab:2222", "list")
	want := "Error: talk to the daemon at ssh://alice@lab:2222: ssh could not connect (ssh exited with status 255): ssh: connect to host lab port 2222: Connection refused\n"
	if r.code != 1 || r.stderr != want {
		t.Fatalf("list over a refused ssh:\n%s\nwant stderr %q", r, want)
	}
	// version answers for the client without a daemon, and says why the
	// daemon's half is missing.
	r = runCLI("--host", "ssh://alice@lab:2222", "version")
	if r.code != 0 || !strings.Contains(r.stdout, "daemon: not reachable") || !strings.Contains(r.stdout, "Connection refused") {
		t.Fatalf("version over a refused ssh: %s", r)
	}
}

// TestDialStdio joins stdin and stdout to a socket both ways, ends when
// the server ends, and says why it cannot connect with the exit status the
// client reads.
func TestDialStdio(t *testing.T) {
	dir, err := os.MkdirTemp("", "wsds")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, "d.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		b, _ := io.ReadAll(c) // until the client's side is closed
		fmt.Fprintf(c, "got %q", b)
		c.Close()
	}()
	var out bytes.Buffer
	if err := dialStdio(context.Background(), sock, strings.NewReader("GET /v1/info\r\n"), &out); err != nil {
		t.Fatal(err)
	}
	if out.String() != `got "GET /v1/info\r\n"` {
		t.Fatalf("dial-stdio wrote %q", out.String())
	}

	err = dialStdio(context.Background(), filepath.Join(dir, "none.sock"), strings.NewReader(""), io.Discard)
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != sshconn.ExitNoDaemon || !strings.Contains(ee.msg, "not running") {
		t.Fatalf("no daemon: %v", err)
	}
	for _, c := range []string{"system dial-stdio", "daemon"} {
		if r := runCLI(append([]string{"--host", "ssh://a"}, strings.Fields(c)...)...); r.code == 0 || !strings.Contains(r.stderr, "--host and --context do not apply") {
			t.Fatalf("%s with --host: %s", c, r)
		}
	}
}

// TestUIForward: the forward listens on the UI's own port number when it is
// free, on another port when it is not, joins each browser connection to
// a stream of its own, and points the login link at itself.
func TestUIForward(t *testing.T) {
	ui := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "host=%s path=%s", r.Host, r.URL.RequestURI())
	}))
	defer ui.Close()
	opened := 0
	var ports []int
	open := func(ctx context.Context, forwardPort int) (net.Conn, error) {
		opened++
		ports = append(ports, forwardPort)
		var d net.Dialer
		return d.DialContext(ctx, "tcp", ui.Listener.Addr().String())
	}
	var reported []error
	report := func(err error) { reported = append(reported, err) }

	// A server UI on a port that is free here: the same port.
	free, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	freePort := free.Addr().(*net.TCPAddr).Port
	free.Close()
	fwd, err := startUIForward(context.Background(), open, fmt.Sprintf("http://127.0.0.1:%d", freePort), 0, report)
	if err != nil {
		t.Fatal(err)
	}
	if fwd.base != fmt.Sprintf("http://127.0.0.1:%d", freePort) {
		t.Fatalf("forward at %s, want the UI's own port %d", fwd.base, freePort)
	}
	link, err := fwd.link(fmt.Sprintf("http://127.0.0.1:%d/login?token=abc", freePort))
	if err != nil || link != fwd.base+"/login?token=abc" {
		t.Fatalf("link %q, %v", link, err)
	}
	hc := &http.Client{Timeout: 10 * time.Second}
	resp, err := hc.Get(link)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != fmt.Sprintf("host=127.0.0.1:%d path=/login?token=abc", freePort) || opened != 1 || ports[0] != freePort {
		t.Fatalf("through the forward: %q (%d streams, forward ports %v)", body, opened, ports)
	}
	hc.CloseIdleConnections()
	fwd.Close()

	// The UI's port is taken here (by the test's UI itself): another port.
	fwd, err = startUIForward(context.Background(), open, ui.URL, 0, report)
	if err != nil {
		t.Fatal(err)
	}
	defer fwd.Close()
	if fwd.base == ui.URL || !strings.HasPrefix(fwd.base, "http://127.0.0.1:") {
		t.Fatalf("forward at %s while %s is taken", fwd.base, ui.URL)
	}
	// --port that is taken is an error.
	if _, err := startUIForward(context.Background(), open, ui.URL, ui.Listener.Addr().(*net.TCPAddr).Port, report); err == nil {
		t.Fatal("a taken --port was accepted")
	}
	if len(reported) != 0 {
		t.Fatalf("reported: %v", reported)
	}
}
