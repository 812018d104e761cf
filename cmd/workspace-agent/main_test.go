package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/workspace-sandbox/workspace/guestagent"
)

func TestVersionAndUsage(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"version"}, &out, &errb); code != 0 || !strings.HasPrefix(out.String(), "workspace-agent ") {
		t.Fatalf("version: %d %q", code, out.String())
	}
	if code := run([]string{"frobnicate"}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "unknown command") {
		t.Fatalf("unknown command: %d %q", code, errb.String())
	}
}

func TestStatus(t *testing.T) {
	dir := t.TempDir()
	var out, errb bytes.Buffer
	if code := run([]string{"status", "--state-dir", dir}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "is the agent running?") {
		t.Fatalf("status without an agent: %d %q", code, errb.String())
	}
	ls := guestagent.LocalStatus{Written: time.Now(), PortError: "no virtio-serial port named org.workspace.agent.0 among 2 ports"}
	ls.Tracking, ls.Session, ls.SpoolItems, ls.SpoolBytes, ls.DisplayError = true, "s1", 3, 4096, "no X display :0"
	b, _ := json.Marshal(ls)
	os.WriteFile(filepath.Join(dir, "status.json"), b, 0o644)
	out.Reset()
	if code := run([]string{"status", "--state-dir", dir}, &out, &errb); code != 0 {
		t.Fatalf("status: %d %s", code, errb.String())
	}
	for _, want := range []string{"tracking:     on (session s1)", "not connected: no virtio-serial port", "3 items, 4096 bytes", "display error: no X display :0"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("status lacks %q:\n%s", want, out.String())
		}
	}
}

// Bad shot requests get a clear error and write nothing.
func TestShotRefusesBadInput(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "shot.jpg")
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"shot"}, 2, "usage: workspace-agent shot --out FILE"},
		{[]string{"shot", "--out", out, "extra"}, 2, "usage: workspace-agent shot --out FILE"},
		{[]string{"shot", "--out", out, "--quality", "5", "--display", ":0"}, 1, "quality 5 is outside 10..100"},
		{[]string{"shot", "--out", out, "--display", ":77"}, 1, "no X display :77"},
		{[]string{"shot", "--out", out, "--quality", "x"}, 2, "invalid value"},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(c.args, &stdout, &stderr); code != c.code || !strings.Contains(stderr.String(), c.want) {
			t.Errorf("%v: exit %d, %q; want %d and %q", c.args, code, stderr.String(), c.code, c.want)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("refused shots left files: %v", entries)
	}
}
