// Package provision owns what a workspace gets on top of its image: the
// host's private apt, which checks a profile's package names against the
// Debian archive and downloads .debs resolved against a guest's own dpkg
// status (the guest needs no network), the script that installs them and
// runs the profile's scripts once in the guest, and the guest's account of
// it (the provisioning status). The daemon drives it through the QEMU guest
// agent.
package provision

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
)

// Archive is the daemon's private apt on the host: its own sources, lists
// and download cache in Dir, never the host's own package state. Every
// workspace shares the cache, so a package is downloaded once.
type Archive struct {
	Dir string
	// Mirror and SecurityMirror are the Debian archives; Suite the release
	// of the guests' images (the desktop image's: bookworm).
	Mirror, SecurityMirror, Suite string
	// MaxAge is how old the package lists may be before a refresh.
	MaxAge time.Duration
	Log    hclog.Logger
	// AptGet is the apt-get program ("" finds it on PATH; tests give a
	// stand-in).
	AptGet string

	mu sync.Mutex
}

// ErrNoApt means the daemon's host has no apt-get.
var ErrNoApt = errors.New("the daemon's host has no apt-get (provision.packages needs a Debian or Ubuntu host)")

// NotFoundError names the packages the archive does not have.
type NotFoundError struct {
	Names []string
	Suite string
}

func (e *NotFoundError) Error() string {
	return fmt.Sprintf("the Debian archive (%s) has no package %s", e.Suite, strings.Join(quoteAll(e.Names), ", "))
}

func quoteAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = fmt.Sprintf("%q", s)
	}
	return out
}

func (a *Archive) opts(status string) []string {
	return []string{
		"-o", "Dir::Etc::SourceList=" + filepath.Join(a.Dir, "sources.list"),
		"-o", "Dir::Etc::SourceParts=/nonexistent",
		"-o", "Dir::State::Lists=" + filepath.Join(a.Dir, "lists"),
		"-o", "Dir::State::status=" + status,
		"-o", "Dir::Cache=" + a.Dir,
		"-o", "Dir::Cache::archives=" + filepath.Join(a.Dir, "archives"),
		"-o", "Debug::NoLocking=1",
		"-o", "APT::Get::List-Cleanup=0",
		"-o", "APT::Install-Recommends=0",
		"-o", "APT::Sandbox::User=root",
	}
}

func (a *Archive) apt(ctx context.Context, status string, args ...string) ([]byte, error) {
	bin := a.AptGet
	if bin == "" {
		var err error
		if bin, err = exec.LookPath("apt-get"); err != nil {
			return nil, ErrNoApt
		}
	}
	cmd := exec.CommandContext(ctx, bin, append(a.opts(status), args...)...)
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive", "LC_ALL=C")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.Bytes(), err
}

// update refreshes the package lists when they are older than MaxAge.
func (a *Archive) update(ctx context.Context) error {
	for _, d := range []string{"lists/partial", "archives/partial"} {
		if err := os.MkdirAll(filepath.Join(a.Dir, d), 0o755); err != nil {
			return fmt.Errorf("apt folder: %w", err)
		}
	}
	stamp := filepath.Join(a.Dir, "updated")
	if fi, err := os.Stat(stamp); err == nil && time.Since(fi.ModTime()) < a.MaxAge {
		return nil
	}
	src := fmt.Sprintf("deb %[1]s %[3]s main\ndeb %[1]s %[3]s-updates main\ndeb %[2]s %[3]s-security main\n", a.Mirror, a.SecurityMirror, a.Suite)
	if err := os.WriteFile(filepath.Join(a.Dir, "sources.list"), []byte(src), 0o644); err != nil {
		return fmt.Errorf("apt sources: %w", err)
	}
	empty := filepath.Join(a.Dir, "status-empty")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		return fmt.Errorf("apt status: %w", err)
	}
	start := time.Now()
	out, err := a.apt(ctx, empty, "-q", "update")
	if err != nil {
		return fmt.Errorf("update the package lists from %s: %w: %s", a.Mirror, err, lastLines(out, 5))
	}
	if bytes.Contains(out, []byte("Err:")) || bytes.Contains(out, []byte("W: Failed to fetch")) {
		return fmt.Errorf("update the package lists from %s: %s", a.Mirror, lastLines(out, 5))
	}
	a.Log.Info("package lists updated", "mirror", a.Mirror, "suite", a.Suite, "took", time.Since(start).Round(time.Millisecond))
	return os.WriteFile(stamp, nil, 0o644)
}

var (
	notFoundRE    = regexp.MustCompile(`(?m)^E: Unable to locate package (\S+)$`)
	noCandidateRE = regexp.MustCompile(`(?m)^E: Package '([^']+)' has no installation candidate$`)
)

// Check tells which of names the archive cannot install (a
// *NotFoundError), resolving them as on an empty system.
func (a *Archive) Check(ctx context.Context, names []string) error {
	if len(names) == 0 {
		return nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if err := a.update(ctx); err != nil {
		return err
	}
	out, err := a.apt(ctx, filepath.Join(a.Dir, "status-empty"), append([]string{"-s", "install", "--"}, names...)...)
	if err == nil {
		return nil
	}
	var missing []string
	for _, re := range []*regexp.Regexp{notFoundRE, noCandidateRE} {
		for _, m := range re.FindAllSubmatch(out, -1) {
			missing = append(missing, string(m[1]))
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return &NotFoundError{Names: missing, Suite: a.Suite}
	}
	return fmt.Errorf("resolve packages %s: %w: %s", strings.Join(names, " "), err, lastLines(out, 5))
}

// Deb is a downloaded package file.
type Deb struct {
	Name string // package name
	Path string // in the cache
	Size int64
}

var instRE = regexp.MustCompile(`(?m)^Inst (\S+) (?:\[[^\]]*\] )?\((\S+) .*\[(\S+)\]\)$`)

// Download resolves names against a guest's dpkg status (what it has
// already), downloads what it lacks into the cache and returns those
// files, in apt's install order.
func (a *Archive) Download(ctx context.Context, names []string, guestStatus []byte) ([]Deb, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if err := a.update(ctx); err != nil {
		return nil, err
	}
	f, err := os.CreateTemp(a.Dir, "status-guest-*")
	if err != nil {
		return nil, fmt.Errorf("guest status: %w", err)
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(guestStatus); err != nil {
		f.Close()
		return nil, fmt.Errorf("guest status: %w", err)
	}
	f.Close()
	args := append([]string{"-s", "install", "--"}, names...)
	out, err := a.apt(ctx, f.Name(), args...)
	if err != nil {
		return nil, fmt.Errorf("resolve %s against the guest's packages: %w: %s", strings.Join(names, " "), err, lastLines(out, 5))
	}
	var debs []Deb
	for _, m := range instRE.FindAllSubmatch(out, -1) {
		name, version, arch := string(m[1]), string(m[2]), string(m[3])
		if i := strings.IndexByte(name, ':'); i >= 0 {
			name = name[:i]
		}
		file := fmt.Sprintf("%s_%s_%s.deb", name, strings.ReplaceAll(version, ":", "%3a"), arch)
		debs = append(debs, Deb{Name: name, Path: filepath.Join(a.Dir, "archives", file)})
	}
	if len(debs) == 0 {
		return nil, nil
	}
	start := time.Now()
	out, err = a.apt(ctx, f.Name(), append([]string{"-q", "-y", "--download-only", "install", "--"}, names...)...)
	if err != nil {
		return nil, fmt.Errorf("download %s: %w: %s", strings.Join(names, " "), err, lastLines(out, 5))
	}
	var total int64
	for i := range debs {
		fi, err := os.Stat(debs[i].Path)
		if err != nil {
			return nil, fmt.Errorf("download %s: %s is not in the cache: %w", strings.Join(names, " "), debs[i].Name, err)
		}
		debs[i].Size = fi.Size()
		total += fi.Size()
	}
	a.Log.Info("packages ready", "packages", len(debs), "bytes", total, "took", time.Since(start).Round(time.Millisecond))
	return debs, nil
}

func lastLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "; ")
}
