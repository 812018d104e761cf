package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestPackageDependencies pins the dependency direction of
// docs/architecture.md: vm, profiles and diary import neither each other
// nor daemon; api does not import daemon, vm or diary; tracking, the leaf
// every side shares, imports nothing of the project.
func TestPackageDependencies(t *testing.T) {
	const mod = "github.com/workspace-sandbox/workspace/"
	forbidden := map[string][]string{
		"vm":         {"profiles", "daemon", "api", "cmd"},
		"profiles":   {"vm", "daemon", "api", "cmd"},
		"api":        {"vm", "daemon", "diary", "cmd"},
		"daemon":     {"cmd"},
		"channel":    {"vm", "profiles", "daemon", "diary", "api", "guestagent", "cmd"},
		"guestagent": {"vm", "profiles", "daemon", "diary", "api", "cmd"},
		"diary":      {"vm", "profiles", "daemon", "api", "channel", "guestagent", "web", "cmd"},
		// The witness package is what a client's verify and a client's
		// witness run: nothing of the host's.
		"witness": {"vm", "profiles", "daemon", "diary", "api", "channel", "guestagent", "web", "cmd"},
	}
	for pkg, bad := range forbidden {
		out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", "../../"+pkg).Output()
		if err != nil {
			t.Fatalf("go list %s: %v", pkg, err)
		}
		for _, dep := range strings.Fields(string(out)) {
			for _, b := range bad {
				if strings.HasPrefix(dep, mod+b) {
					t.Errorf("%s depends on %s", pkg, dep)
				}
			}
		}
	}
}

// TestDiaryImports pins diary's direct imports of the project: the shared
// tracking types, the small internal helpers and the witness protocol
// (keys, cosignatures), nothing else.
func TestDiaryImports(t *testing.T) {
	const mod = "github.com/workspace-sandbox/workspace/"
	out, err := exec.Command("go", "list", "-f", `{{join .Imports "\n"}}`, "../../diary").Output()
	if err != nil {
		t.Fatalf("go list diary: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		if strings.HasPrefix(dep, mod) && dep != mod+"tracking" && dep != mod+"witness" && !strings.HasPrefix(dep, mod+"internal/") {
			t.Errorf("diary imports %s", dep)
		}
	}
}

// TestVerifierLinksNoHCL keeps the profile parser out of what the client
// runs to verify an export offline: the diary (its verify path) depends on
// neither HCL nor go-cty, nor on the API types that carry profiles.
func TestVerifierLinksNoHCL(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", "../../diary").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, bad := range []string{"github.com/hashicorp/hcl", "github.com/zclconf/go-cty", "github.com/workspace-sandbox/workspace/profiles", "github.com/workspace-sandbox/workspace/api"} {
			if strings.HasPrefix(dep, bad) {
				t.Errorf("the diary's verifier depends on %s", dep)
			}
		}
	}
}

// TestTrackingIsALeaf keeps the tracking types safe for the guest: the
// package imports only the standard library.
func TestTrackingIsALeaf(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", "../../tracking").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		if dep != "github.com/workspace-sandbox/workspace/tracking" {
			t.Errorf("tracking depends on %s", dep)
		}
	}
}

// TestAgentImports keeps the guest agent small and host-free: no libvirt,
// no SQLite, no daemon, nothing of the host's.
func TestAgentImports(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", "../workspace-agent").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, bad := range []string{"github.com/digitalocean/go-libvirt", "modernc.org/sqlite", "github.com/workspace-sandbox/workspace/daemon",
			"github.com/workspace-sandbox/workspace/diary", "github.com/workspace-sandbox/workspace/vm", "github.com/hashicorp/hcl"} {
			if strings.HasPrefix(dep, bad) {
				t.Errorf("workspace-agent depends on %s", dep)
			}
		}
	}
}

// TestAgentLinuxBuildHasNoSharedMemoryCapture keeps github.com/kbinani/screenshot
// out of the Linux agent: its X11 path creates its MIT-SHM segment with mode
// 0777, readable by every process in the guest while a shot is taken. The
// Linux agent captures through xgb without shared memory; only the Windows
// build uses the library (GDI).
func TestAgentLinuxBuildHasNoSharedMemoryCapture(t *testing.T) {
	for _, target := range []string{"linux/amd64", "linux/arm64", "windows/amd64"} {
		goos, goarch, _ := strings.Cut(target, "/")
		cmd := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", "../workspace-agent")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+goos, "GOARCH="+goarch)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("go list for %s: %v", target, err)
		}
		has := strings.Contains(string(out), "github.com/kbinani/screenshot")
		if goos == "linux" && has {
			t.Errorf("the %s agent links github.com/kbinani/screenshot (world-readable MIT-SHM capture)", target)
		}
		if goos == "windows" && !has {
			t.Errorf("the %s agent does not capture with github.com/kbinani/screenshot", target)
		}
	}
}

// TestAgentCrossBuilds compiles the agent, static, for every guest platform.
func TestAgentCrossBuilds(t *testing.T) {
	if testing.Short() {
		t.Skip("cross builds skipped in -short mode")
	}
	for _, target := range []string{"linux/amd64", "linux/arm64", "windows/amd64"} {
		goos, goarch, _ := strings.Cut(target, "/")
		cmd := exec.Command("go", "build", "-o", os.DevNull, "../workspace-agent")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+goos, "GOARCH="+goarch)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("build for %s: %v\n%s", target, err, out)
		}
	}
}

// TestVagrantfileValidates checks the development VM's definition with
// Vagrant itself (make test installs Debian's vagrant).
func TestVagrantfileValidates(t *testing.T) {
	if _, err := exec.LookPath("vagrant"); err != nil {
		t.Skip("vagrant is not installed (make test installs it)")
	}
	cmd := exec.Command("vagrant", "validate", "--ignore-provider")
	cmd.Dir = "../.."
	cmd.Env = append(os.Environ(), "VAGRANT_CHECKPOINT_DISABLE=1", "VAGRANT_HOME="+t.TempDir())
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "validated successfully") {
		t.Fatalf("vagrant validate: %v\n%s", err, out)
	}
}
