package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// clientTargets are the platforms the CLI is built for: the Linux host, and
// the client's side on every OS.
var clientTargets = []string{"linux/amd64", "linux/arm64", "darwin/amd64", "darwin/arm64", "windows/amd64"}

// TestClientBuildLinksNoDaemon: on macOS and Windows the CLI links neither
// the daemon nor libvirt nor the image builder, and the verify path (the
// diary package) links none of them on any OS.
func TestClientBuildLinksNoDaemon(t *testing.T) {
	forbidden := []string{
		"github.com/workspace-sandbox/workspace/daemon",
		"github.com/workspace-sandbox/workspace/vm",
		"github.com/workspace-sandbox/workspace/images",
		"github.com/workspace-sandbox/workspace/guestagent",
		"github.com/digitalocean/go-libvirt",
	}
	check := func(what, goos, pkg string) {
		cmd := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", pkg)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+goos, "GOARCH=amd64")
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("go list %s for %s: %v", pkg, goos, err)
		}
		for _, dep := range strings.Fields(string(out)) {
			for _, bad := range forbidden {
				if dep == bad || strings.HasPrefix(dep, bad+"/") {
					t.Errorf("%s on %s links %s", what, goos, dep)
				}
			}
		}
	}
	for _, goos := range []string{"darwin", "windows"} {
		check("the CLI", goos, ".")
	}
	for _, goos := range []string{"linux", "darwin", "windows"} {
		check("the verifier (diary)", goos, "../../diary")
	}
}

// TestClientCrossBuilds compiles the CLI for every platform it ships on.
func TestClientCrossBuilds(t *testing.T) {
	if testing.Short() {
		t.Skip("cross builds skipped in -short mode")
	}
	for _, target := range clientTargets {
		goos, goarch, _ := strings.Cut(target, "/")
		cmd := exec.Command("go", "build", "-o", os.DevNull, ".")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+goos, "GOARCH="+goarch)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("build for %s: %v\n%s", target, err, out)
		}
	}
}

// TestClientSideCommands: every command named client-side exists (a rename
// cannot silently drop one), the client-side ones work without a daemon,
// and a daemon-side stand-in says it needs the Linux host.
func TestClientSideCommands(t *testing.T) {
	var out bytes.Buffer
	root := newRootCmd(&app{stdout: &out, stderr: &out})
	root.InitDefaultHelpCmd() // what Execute adds
	root.InitDefaultCompletionCmd()
	for path := range clientSide {
		args := strings.Fields(strings.TrimPrefix(path, "workspace"))
		c, rest, err := root.Find(args)
		if err != nil || len(rest) > 0 || c.CommandPath() != path {
			t.Errorf("client-side command %q is not in the tree (found %v)", path, c.CommandPath())
		}
		if !isClientSide(c) {
			t.Errorf("%q is not seen as client-side", path)
		}
	}
	for _, daemonSide := range [][]string{{"list"}, {"diary", "export"}, {"daemon"}, {"image", "build"}, {"witness", "log"}} {
		c, _, err := root.Find(daemonSide)
		if err != nil || isClientSide(c) {
			t.Errorf("%v is seen as client-side (%v)", daemonSide, err)
		}
	}
	err := needsLinuxHost(linuxOnlyCmd("daemon", "x"))
	if !errors.Is(err, errLinuxHost) || !strings.Contains(err.Error(), "daemon needs the Linux host") || !strings.Contains(err.Error(), "diary verify") {
		t.Errorf("linux-only stand-in: %v", err)
	}

	// Without a daemon: version says so and succeeds; profile validate and
	// completion need none.
	sock := filepath.Join(t.TempDir(), "none.sock")
	var stdout, stderr bytes.Buffer
	if code := run([]string{"--socket", sock, "version"}, &stdout, &stderr); code != 0 || !strings.Contains(stdout.String(), "daemon: not running") {
		t.Errorf("version without a daemon: %d\n%s%s", code, &stdout, &stderr)
	}
	stdout.Reset()
	if code := run([]string{"completion", "fish"}, &stdout, &stderr); code != 0 || !strings.Contains(stdout.String(), "complete -c workspace") {
		t.Errorf("completion fish: %d %s", code, &stderr)
	}
	stdout.Reset()
	if code := run([]string{"profile", "validate", "../../profiles/examples/team/acme.hcl"}, &stdout, &stderr); code != 0 {
		t.Errorf("profile validate: %d\n%s%s", code, &stdout, &stderr)
	}
}
