package images

import (
	"bufio"
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

const modulePath = "github.com/workspace-sandbox/workspace"

// CheckAgent checks that path is a static linux/amd64 program, as the
// image needs (it has no Go runtime libraries of its own to offer).
func CheckAgent(path string) error {
	if path == "" {
		return errors.New("no workspace-agent binary given")
	}
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("workspace-agent %s: not a Linux program: %w", path, err)
	}
	defer f.Close()
	if f.Machine != elf.EM_X86_64 {
		return fmt.Errorf("workspace-agent %s is built for %s, the image is amd64", path, f.Machine)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("workspace-agent %s is dynamically linked: build it with CGO_ENABLED=0", path)
		}
	}
	return nil
}

// LocateAgent finds the workspace-agent to put into an image: the one
// given; else `workspace-agent` beside the running binary or in PATH;
// else, inside a checkout of this project with a Go toolchain, one built
// static from source into dir. It says where it came from.
func LocateAgent(ctx context.Context, given, dir string) (path, from string, err error) {
	if given != "" {
		return given, "given", CheckAgent(given)
	}
	if exe, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(exe), "workspace-agent")
		if CheckAgent(p) == nil {
			return p, "beside the workspace binary", nil
		}
	}
	if p, err := exec.LookPath("workspace-agent"); err == nil && CheckAgent(p) == nil {
		return p, "PATH", nil
	}
	root, ok := findCheckout()
	goBin := findGo()
	if !ok || goBin == "" {
		return "", "", errors.New("no workspace-agent found: install it beside the workspace binary or in PATH, pass --agent FILE, or run this inside the source tree with Go installed")
	}
	out := filepath.Join(dir, "workspace-agent")
	cmd := exec.CommandContext(ctx, goBin, "build", "-trimpath", "-o", out, "./cmd/workspace-agent")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", "", fmt.Errorf("build workspace-agent from %s: %w\n%s", root, err, b)
	}
	return out, "built from " + root, CheckAgent(out)
}

// findCheckout looks upward from the working folder for this module's go.mod.
func findCheckout() (string, bool) {
	dir, err := os.Getwd()
	if err != nil {
		return "", false
	}
	for {
		if f, err := os.Open(filepath.Join(dir, "go.mod")); err == nil {
			sc := bufio.NewScanner(f)
			first := ""
			if sc.Scan() {
				first = strings.TrimSpace(sc.Text())
			}
			f.Close()
			if first == "module "+modulePath {
				if _, err := os.Stat(filepath.Join(dir, "cmd", "workspace-agent")); err == nil {
					return dir, true
				}
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", false
		}
		dir = parent
	}
}

func findGo() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/local/go/bin/go"); err == nil {
		return "/usr/local/go/bin/go"
	}
	return ""
}
