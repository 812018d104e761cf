package provision

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// runRunner runs runner.sh with the host's sh on a folder laid out as the
// daemon lays it out in the guest, the console being a file.
func runRunner(t *testing.T, files map[string]string) (Status, string) {
	t.Helper()
	dir := t.TempDir()
	for name, text := range files {
		os.MkdirAll(filepath.Join(dir, filepath.Dir(name)), 0o755)
		os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644)
	}
	os.WriteFile(filepath.Join(dir, "run.sh"), Runner, 0o644)
	console := filepath.Join(dir, "console")
	cmd := exec.Command("sh", filepath.Join(dir, "run.sh"))
	cmd.Env = append(os.Environ(), "WORKSPACE_PROVISION_DIR="+dir, "WORKSPACE_PROVISION_CONSOLE="+console, "WORKSPACE_PROVISION_SESSION_WAIT=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("runner: %v\n%s", err, out)
	}
	b, err := os.ReadFile(filepath.Join(dir, "status"))
	if err != nil {
		t.Fatal(err)
	}
	st, err := ParseStatus(b)
	if err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	c, _ := os.ReadFile(console)
	return st, string(c)
}

// TestRunnerStopsAtFailingScript: root scripts run in order, the first
// failure ends the phase with its exit status and last lines, later
// scripts and the user phase do not run; the output is on the console.
func TestRunnerStopsAtFailingScript(t *testing.T) {
	st, console := runRunner(t, map[string]string{
		"root/01.sh": "echo first ran\n", "root/01.from": "team/base.hcl:4",
		"root/02.sh": "#!/bin/sh\necho second >&2\nexit 9\n", "root/02.from": "acme.hcl:7",
		"root/03.sh": "echo third ran\n",
		"user/01.sh": "echo user ran\n",
	})
	if st.Root.State != Failed || st.Root.Exit == nil || *st.Root.Exit != 9 || st.User.State != Skipped {
		t.Fatalf("%+v", st)
	}
	lines := strings.Join(st.Root.Lines, "\n")
	for _, want := range []string{"first ran", "second", "script 2 of 3 (acme.hcl:7) failed with exit status 9"} {
		if !strings.Contains(lines, want) || !strings.Contains(console, "workspace-provision: "+want) {
			t.Errorf("%q missing from the last lines or the console:\n%s\n--\n%s", want, lines, console)
		}
	}
	if strings.Contains(console, "third ran") || strings.Contains(console, "user ran") {
		t.Errorf("ran after the failure:\n%s", console)
	}
}

// TestRunnerDone: scripts that succeed leave the root phase done; without
// a desktop session in time the user phase fails saying so.
func TestRunnerDone(t *testing.T) {
	st, _ := runRunner(t, map[string]string{"root/01.sh": "true\n", "user/01.sh": "true\n"})
	if st.Root.State != Done || st.Root.Exit == nil || *st.Root.Exit != 0 || st.User.State != Failed ||
		!strings.Contains(strings.Join(st.User.Lines, "\n"), "no desktop session") {
		t.Fatalf("%+v", st)
	}
	st, _ = runRunner(t, map[string]string{"root/01.sh": "true\n"})
	if !st.Final() || st.Root.State != Done || st.User.State != Done {
		t.Fatalf("no user scripts: %+v", st)
	}
}
