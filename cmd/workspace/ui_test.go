package main

import (
	"bytes"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/workspace-sandbox/workspace/api"
)

// fakeLoginDaemon answers POST /v1/ui/login on a unix socket like the
// daemon does, with a fixed token.
func fakeLoginDaemon(t *testing.T, token string) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "ws.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /"+api.Version+"/ui/login", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(api.UILogin{URL: "http://127.0.0.1:7420/login?token=" + token, Base: "http://127.0.0.1:7420"})
	})
	srv := &http.Server{Handler: mux}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
	return sock
}

// TestUIKeepsTheTokenOffCommandLines runs `workspace ui` with a browser
// opener (xdg-open first in PATH) that records its command line and its
// environment: the token is in neither, but in a 0600 page in the runtime
// folder that the opener is given, and which sends the browser on to the
// link.
func TestUIKeepsTheTokenOffCommandLines(t *testing.T) {
	const token = "0123456789abcdef0123456789abcdef0123456789abcdef"
	sock := fakeLoginDaemon(t, token)
	bin, runtime := t.TempDir(), t.TempDir()
	if err := os.Chmod(runtime, 0o700); err != nil {
		t.Fatal(err)
	}
	record := filepath.Join(t.TempDir(), "opener.log")
	script := "#!/bin/sh\n{ printf '%s\\n' \"$0\" \"$@\"; tr '\\0' '\\n' < /proc/$$/cmdline; env; } > " + record + ".tmp && mv " + record + ".tmp " + record + "\n"
	if err := os.WriteFile(filepath.Join(bin, "xdg-open"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	// An old page of an earlier run, past its link's life, is cleaned up.
	stale := filepath.Join(runtime, "workspace-ui-old.html")
	os.WriteFile(stale, []byte("old"), 0o600)
	old := time.Now().Add(-time.Hour)
	os.Chtimes(stale, old, old)

	t.Setenv("PATH", bin+":"+os.Getenv("PATH"))
	t.Setenv("DISPLAY", ":99")
	t.Setenv("XDG_RUNTIME_DIR", runtime)
	var stdout, stderr bytes.Buffer
	if code := run([]string{"--socket", sock, "ui"}, &stdout, &stderr); code != 0 {
		t.Fatalf("ui: exit %d: %s", code, stderr.String())
	}
	if !strings.Contains(stdout.String(), token) {
		t.Fatalf("the link is not printed for the user: %q", stdout.String())
	}
	var rec []byte
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if b, err := os.ReadFile(record); err == nil {
			rec = b
			break
		}
	}
	if rec == nil {
		t.Fatal("the browser opener was not run")
	}
	if bytes.Contains(rec, []byte(token)) || bytes.Contains(rec, []byte(token[:16])) {
		t.Fatalf("the token is on the opener's command line or in its environment:\n%s", rec)
	}
	lines := strings.Split(string(rec), "\n")
	if len(lines) < 2 || !strings.HasPrefix(lines[1], "file://"+runtime+"/workspace-ui-") {
		t.Fatalf("the opener was not given a page in the runtime folder: %q", lines[:2])
	}
	page := strings.TrimPrefix(lines[1], "file://")
	fi, err := os.Stat(page)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("the login page is %v, not 0600", fi.Mode().Perm())
	}
	b, _ := os.ReadFile(page)
	if !bytes.Contains(b, []byte(`http-equiv="refresh" content="0;url=http://127.0.0.1:7420/login?token=`+token)) {
		t.Errorf("the page does not send the browser on to the link:\n%s", b)
	}
	if _, err := os.Stat(stale); err == nil {
		t.Error("a stale login page was left in the runtime folder")
	}
}

// TestUIWithoutAPrivateRuntimeFolder: the link is only printed; nothing
// is opened and no file written where others could read it.
func TestUIWithoutAPrivateRuntimeFolder(t *testing.T) {
	sock := fakeLoginDaemon(t, "feedfacefeedface")
	bin, shared := t.TempDir(), t.TempDir()
	os.Chmod(shared, 0o755)
	record := filepath.Join(t.TempDir(), "opener.log")
	os.WriteFile(filepath.Join(bin, "xdg-open"), []byte("#!/bin/sh\necho \"$@\" > "+record+"\n"), 0o755)
	t.Setenv("PATH", bin+":"+os.Getenv("PATH"))
	t.Setenv("DISPLAY", ":99")
	for _, dir := range []string{"", shared} {
		t.Setenv("XDG_RUNTIME_DIR", dir)
		var stdout, stderr bytes.Buffer
		if code := run([]string{"--socket", sock, "ui"}, &stdout, &stderr); code != 0 {
			t.Fatalf("ui: exit %d: %s", code, stderr.String())
		}
		if !strings.Contains(stdout.String(), "feedfacefeedface") || !strings.Contains(stderr.String(), "open the link above") {
			t.Errorf("runtime folder %q: stdout %q stderr %q", dir, stdout.String(), stderr.String())
		}
	}
	time.Sleep(200 * time.Millisecond)
	if _, err := os.Stat(record); err == nil {
		t.Error("the opener ran without a private runtime folder")
	}
	if entries, _ := os.ReadDir(shared); len(entries) != 0 {
		t.Errorf("a page was written to a shared folder: %v", entries)
	}
}
