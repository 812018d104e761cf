// Package images builds workspace base images from the recipes embedded in
// it, so an installed `workspace` binary can build them without the source
// tree. The desktop recipe (images/desktop/) runs mmdebstrap into a
// partitionless ext4 root and writes a qcow2 disk with the kernel, initrd
// and kernel command line to boot it by direct kernel boot.
package images

import (
	"bufio"
	"context"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
)

//go:embed desktop/build.sh desktop/essential.sh desktop/customize.sh desktop/files
var recipe embed.FS

// Variants of the desktop image.
const (
	VariantFull    = "full"    // Debian 12 XFCE with lightdm
	VariantMinimal = "minimal" // an X server and openbox, autologin; fast enough for CI
)

// DefaultMirror and DefaultSecurityMirror are the Debian archives the
// desktop image is built from unless told otherwise.
const (
	DefaultMirror         = "http://deb.debian.org/debian"
	DefaultSecurityMirror = "http://deb.debian.org/debian-security"
	Suite                 = "bookworm"
)

// DesktopOptions say what to build and where.
type DesktopOptions struct {
	Variant string // VariantFull or VariantMinimal
	// Out is the qcow2 disk to write; the kernel, initrd and command line
	// go beside it (see OutputPaths). None of them may exist yet.
	Out            string
	Mirror         string // Debian archive ("" = DefaultMirror)
	SecurityMirror string // Debian security archive ("" = DefaultSecurityMirror)
	User           string // the desktop user
	Password       string // the desktop user's password
	Autologin      bool   // log the user in at boot (the minimal variant always does)
	Agent          string // a static linux/amd64 workspace-agent to install
	// TempDir is where the build's work folder goes ("" = $TMPDIR or
	// /var/tmp): it needs a few GiB (the full variant's tree is ~2.5 GiB).
	TempDir string
	// MirrorTimeout bounds the up-front check of the archives (0 = 15 s).
	MirrorTimeout time.Duration
	Logger        hclog.Logger
	Progress      func(Event) // stage changes and the latest line of output
	Output        io.Writer   // if set, every line the build prints
}

// Event is a step of a build.
type Event struct {
	Stage   string        // a Stage* constant
	Detail  string        // the latest line of the tools' output, if any
	Elapsed time.Duration // since the build began
}

// Stages of a desktop build, in order.
const (
	StageCheck      = "check"      // privileges, tools, the Debian archive
	StagePackages   = "packages"   // mmdebstrap downloads and installs the packages
	StageConfigure  = "configure"  // user, agent, session, shares
	StageKernel     = "kernel"     // kernel and initrd taken out of the tree
	StageFilesystem = "filesystem" // the ext4 root
	StageQcow2      = "qcow2"      // compressed qcow2
	StageDone       = "done"
)

// StageLabel is how a stage is shown to a person.
func StageLabel(stage string) string {
	switch stage {
	case StageCheck:
		return "checking privileges, tools and the Debian archive"
	case StagePackages:
		return "downloading and installing packages"
	case StageConfigure:
		return "configuring user, agent and session"
	case StageKernel:
		return "taking out kernel and initrd"
	case StageFilesystem:
		return "making the ext4 root file system"
	case StageQcow2:
		return "writing the compressed qcow2 disk"
	case StageDone:
		return "done"
	}
	return stage
}

// Outputs are the files a desktop build writes.
type Outputs struct {
	Disk        string `json:"disk"`
	Kernel      string `json:"kernel"`
	Initrd      string `json:"initrd"`
	CmdlineFile string `json:"cmdline_file"`
}

// OutputPaths names the files of a build whose disk is out: for
// "dir/desktop.qcow2", "dir/desktop.vmlinuz", "dir/desktop.initrd.img" and
// "dir/desktop.cmdline".
func OutputPaths(out string) Outputs {
	stem := strings.TrimSuffix(out, ".qcow2")
	return Outputs{Disk: out, Kernel: stem + ".vmlinuz", Initrd: stem + ".initrd.img", CmdlineFile: stem + ".cmdline"}
}

func (o Outputs) list() []string { return []string{o.Disk, o.Kernel, o.Initrd, o.CmdlineFile} }

// Result is a finished build.
type Result struct {
	Variant  string        `json:"variant"`
	Files    Outputs       `json:"files"`
	Cmdline  string        `json:"cmdline"`
	DiskSize int64         `json:"disk_size"`
	Duration time.Duration `json:"duration_ns"`
}

// BuildDesktop builds the desktop image. It checks everything it can before
// the long part (privileges, tools, the Debian archive), and on any failure
// or cancellation leaves nothing behind: no work folder, no output file.
func BuildDesktop(ctx context.Context, opts DesktopOptions) (*Result, error) {
	start := time.Now()
	log := opts.Logger
	if log == nil {
		log = hclog.NewNullLogger()
	}
	report := func(stage, detail string) {
		if opts.Progress != nil {
			opts.Progress(Event{Stage: stage, Detail: detail, Elapsed: time.Since(start)})
		}
	}
	if err := opts.validate(); err != nil {
		return nil, err
	}
	outs := OutputPaths(opts.Out)
	if err := checkOutputs(outs); err != nil {
		return nil, err
	}
	report(StageCheck, "")
	if err := CheckAgent(opts.Agent); err != nil {
		return nil, err
	}
	if err := preflight(ctx, opts.Mirror, opts.SecurityMirror, opts.MirrorTimeout); err != nil {
		return nil, err
	}

	work, err := os.MkdirTemp(opts.tempDir(), "workspace-image-")
	if err != nil {
		return nil, fmt.Errorf("make the build folder: %w", err)
	}
	defer func() {
		if err := removeWork(work); err != nil {
			log.Error("could not remove the build folder", "dir", work, "error", err)
		}
	}()
	log.Debug("building the desktop image", "variant", opts.Variant, "work", work)
	dir := filepath.Join(work, "recipe")
	if err := extractRecipe(dir); err != nil {
		return nil, err
	}
	// The recipe's hooks run as the root of a user namespace when the build
	// is not root: they read the agent from the world-readable recipe folder.
	agent := filepath.Join(dir, "workspace-agent")
	if err := copyFile(opts.Agent, agent, 0o755); err != nil {
		return nil, fmt.Errorf("copy workspace-agent into the build: %w", err)
	}
	opts.Agent = agent
	outDir := filepath.Join(work, "out")
	tail, err := runRecipe(ctx, filepath.Join(dir, "build.sh"), recipeEnv(opts, work, outDir), report, opts.Output, log)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("build the %s desktop image: interrupted", opts.Variant)
		}
		return nil, fmt.Errorf("build the %s desktop image: %w\n--- last lines of the build ---\n%s", opts.Variant, err, tail)
	}
	cmdline, err := os.ReadFile(filepath.Join(outDir, "cmdline"))
	if err != nil {
		return nil, fmt.Errorf("build the %s desktop image: the recipe wrote no kernel command line: %w", opts.Variant, err)
	}
	if err := placeOutputs(outDir, outs); err != nil {
		return nil, err
	}
	fi, err := os.Stat(outs.Disk)
	if err != nil {
		return nil, fmt.Errorf("stat the built disk: %w", err)
	}
	report(StageDone, "")
	return &Result{Variant: opts.Variant, Files: outs, Cmdline: strings.TrimSpace(string(cmdline)), DiskSize: fi.Size(), Duration: time.Since(start)}, nil
}

// Preflight checks, in seconds, what a build needs before its long part:
// root or user namespaces, the tools, and both Debian archives ("" for the
// defaults) answering.
func Preflight(ctx context.Context, mirror, securityMirror string) error {
	if mirror == "" {
		mirror = DefaultMirror
	}
	if securityMirror == "" {
		securityMirror = DefaultSecurityMirror
	}
	for _, m := range []string{mirror, securityMirror} {
		if err := ValidateMirror(m); err != nil {
			return err
		}
	}
	return preflight(ctx, mirror, securityMirror, 0)
}

func preflight(ctx context.Context, mirror, securityMirror string, timeout time.Duration) error {
	if timeout == 0 {
		timeout = 15 * time.Second
	}
	if err := CheckPrivileges(); err != nil {
		return err
	}
	if err := CheckTools(); err != nil {
		return err
	}
	if err := CheckMirror(ctx, mirror, Suite, timeout); err != nil {
		return err
	}
	return CheckMirror(ctx, securityMirror, Suite+"-security", timeout)
}

func (o *DesktopOptions) validate() error {
	switch o.Variant {
	case VariantFull, VariantMinimal:
	default:
		return fmt.Errorf("unknown variant %q: want %q or %q", o.Variant, VariantFull, VariantMinimal)
	}
	if o.Out == "" {
		return errors.New("no output file given")
	}
	if !strings.HasSuffix(o.Out, ".qcow2") {
		return fmt.Errorf("output file %q: the disk is a qcow2 and its name must end in .qcow2", o.Out)
	}
	if o.Mirror == "" {
		o.Mirror = DefaultMirror
	}
	if o.SecurityMirror == "" {
		o.SecurityMirror = DefaultSecurityMirror
	}
	for _, m := range []string{o.Mirror, o.SecurityMirror} {
		if err := ValidateMirror(m); err != nil {
			return err
		}
	}
	if err := ValidateUser(o.User); err != nil {
		return err
	}
	if err := ValidatePassword(o.Password); err != nil {
		return err
	}
	if o.Variant == VariantMinimal {
		o.Autologin = true
	}
	return nil
}

func (o *DesktopOptions) tempDir() string {
	if o.TempDir != "" {
		return o.TempDir
	}
	if d := os.Getenv("TMPDIR"); d != "" {
		return d
	}
	return "/var/tmp"
}

func recipeEnv(o DesktopOptions, work, outDir string) []string {
	autologin := "0"
	if o.Autologin {
		autologin = "1"
	}
	env := []string{
		"VARIANT=" + o.Variant, "WORK=" + work, "OUT_DIR=" + outDir, "AGENT=" + o.Agent,
		"WS_USER=" + o.User, "WS_PASSWORD=" + o.Password, "AUTOLOGIN=" + autologin,
		"MIRROR=" + o.Mirror, "SECURITY_MIRROR=" + o.SecurityMirror, "SUITE=" + Suite,
		"LC_ALL=C.UTF-8", "DEBIAN_FRONTEND=noninteractive",
	}
	for _, k := range []string{"HOME", "TMPDIR", "http_proxy", "https_proxy", "no_proxy", "USER", "LOGNAME"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return append(env, "PATH=/usr/local/sbin:/usr/sbin:/sbin:/usr/local/bin:/usr/bin:/bin")
}

// extractRecipe writes the embedded recipe to dir. The files are readable
// by everyone: mmdebstrap's hooks run as the root of a user namespace.
func extractRecipe(dir string) error {
	err := fs.WalkDir(recipe, "desktop", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		dst := filepath.Join(dir, strings.TrimPrefix(path, "desktop"))
		if d.IsDir() {
			return os.MkdirAll(dst, 0o755)
		}
		b, err := recipe.ReadFile(path)
		if err != nil {
			return err
		}
		mode := os.FileMode(0o644)
		if strings.HasSuffix(path, ".sh") || bytesHasShebang(b) {
			mode = 0o755
		}
		return os.WriteFile(dst, b, mode)
	})
	if err != nil {
		return fmt.Errorf("write the recipe: %w", err)
	}
	return os.Chmod(filepath.Dir(dir), 0o755)
}

func bytesHasShebang(b []byte) bool { return len(b) > 2 && b[0] == '#' && b[1] == '!' }

// runRecipe runs the build script in its own process group, turning its
// "::stage" lines into events. It returns the last lines of output for an
// error message. Cancelling ctx stops the whole group.
func runRecipe(ctx context.Context, script string, env []string, report func(stage, detail string), all io.Writer, log hclog.Logger) (string, error) {
	cmd := exec.CommandContext(ctx, "/bin/bash", script)
	cmd.Env = env
	cmd.Dir = filepath.Dir(script)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) }
	cmd.WaitDelay = 30 * time.Second
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		return "", fmt.Errorf("run the recipe: %w", err)
	}
	tail := newTail(40)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64*1024), 1024*1024)
		stage := ""
		for sc.Scan() {
			line := strings.TrimRight(sc.Text(), "\r")
			if all != nil {
				fmt.Fprintln(all, line)
			}
			if s, ok := strings.CutPrefix(line, "::stage "); ok {
				stage = strings.TrimSpace(s)
				if stage != StageDone {
					report(stage, "")
				}
				continue
			}
			tail.add(line)
			log.Trace("build", "line", line)
			if stage != "" && strings.TrimSpace(line) != "" {
				report(stage, line)
			}
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	err := cmd.Wait()
	pw.Close()
	wg.Wait()
	if err == nil {
		return "", nil
	}
	// Make sure nothing of the group outlives a failed or cancelled build.
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	return tail.String(), err
}

// tail keeps the last n lines.
type tail struct {
	n     int
	lines []string
}

func newTail(n int) *tail { return &tail{n: n} }

func (t *tail) add(s string) {
	t.lines = append(t.lines, s)
	if len(t.lines) > t.n {
		t.lines = t.lines[len(t.lines)-t.n:]
	}
}

func (t *tail) String() string { return strings.Join(t.lines, "\n") }
