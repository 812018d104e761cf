package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/workspace-sandbox/workspace/api"
	"github.com/workspace-sandbox/workspace/internal/atomicfile"
	"github.com/workspace-sandbox/workspace/internal/safetext"
	"github.com/workspace-sandbox/workspace/profiles"
	"github.com/workspace-sandbox/workspace/provision"
)

// guestProvisionDir is where the daemon puts the packages and scripts in
// the guest, and where the runner keeps its status.
const guestProvisionDir = "/var/lib/workspace/provision"

// Provisioning's pace and bounds.
const (
	provisionAgentWait = 10 * time.Minute
	provisionPoll      = 2 * time.Second
	pushChunk          = 1 << 20
	maxGuestDpkgStatus = 64 << 20
)

// provisioner gets a workspace's profile provision into its guest at the
// first boot: it waits for the guest agent, resolves the packages against
// the guest's own dpkg status, downloads them on the host, copies them and
// the scripts in, and starts the runner, which installs and runs them once
// and records how it went in the guest. The daemon's own account (and the
// last word of the guest's) is kept in STATE/provision/NAME.json, so status
// is known while the workspace is stopped.
type provisioner struct {
	m       *manager
	archive *provision.Archive
	dir     string
	log     hclog.Logger

	mu     sync.Mutex
	active map[string]bool
}

func newProvisioner(m *manager, stateDir string, log hclog.Logger) *provisioner {
	return &provisioner{
		m: m, dir: filepath.Join(stateDir, "provision"), log: log, active: map[string]bool{},
		archive: &provision.Archive{
			Dir: filepath.Join(stateDir, "apt"), Mirror: "http://deb.debian.org/debian",
			SecurityMirror: "http://deb.debian.org/debian-security", Suite: "bookworm",
			MaxAge: 24 * time.Hour, Log: log.Named("apt"),
		},
	}
}

// checkPackages refuses, at create, packages the archive does not have,
// naming where each was written.
func (p *provisioner) checkPackages(ctx context.Context, pr profiles.Provision, positions map[string]string) error {
	if len(pr.Packages) == 0 {
		return nil
	}
	err := p.archive.Check(ctx, pr.Packages)
	var nf *provision.NotFoundError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &nf):
		var errs []error
		for _, name := range nf.Names {
			at := "provision.packages"
			if pos := positions[profiles.PackagePosition(name)]; pos != "" {
				at = safetext.Term(pos) + ": " + at
			}
			errs = append(errs, fmt.Errorf("%s: the Debian archive (%s) has no package %q", at, nf.Suite, name))
		}
		return fmt.Errorf("%w: %w", api.ErrInvalid, errors.Join(errs...))
	case errors.Is(err, provision.ErrNoApt):
		return fmt.Errorf("%w: %w", api.ErrUnavailable, err)
	}
	return fmt.Errorf("%w: check provision.packages: %w", api.ErrUnavailable, err)
}

func (p *provisioner) file(name string) string { return filepath.Join(p.dir, name+".json") }

// saved is the last known status of a workspace, nil when none.
func (p *provisioner) saved(name string) *provision.Status {
	b, err := os.ReadFile(p.file(name))
	if err != nil {
		return nil
	}
	var st provision.Status
	if json.Unmarshal(b, &st) != nil {
		return nil
	}
	return &st
}

func (p *provisioner) save(name string, st provision.Status) {
	b, err := json.Marshal(st)
	if err == nil {
		if err = os.MkdirAll(p.dir, 0o700); err == nil {
			err = atomicfile.Write(p.file(name), b, 0o600)
		}
	}
	if err != nil {
		p.log.Warn("provisioning status not saved", "workspace", name, "error", err)
	}
}

// forget drops a destroyed workspace's record.
func (p *provisioner) forget(name string) { os.Remove(p.file(name)) }

// status is what status shows: nil when the profile provisions nothing.
// It starts provisioning of a running workspace that is not yet done and
// not being provisioned (after a daemon restart, for one).
func (p *provisioner) status(w api.Workspace) *provision.Status {
	if w.Settings == nil || w.Settings.Provision.Empty() {
		return nil
	}
	st := p.saved(w.Name)
	if st == nil {
		st = &provision.Status{Root: provision.Phase{State: provision.Pending}, User: provision.Phase{State: provision.Pending}}
	}
	if w.State == api.StateRunning && !st.Final() {
		p.kick(w.Name, w.Settings.Provision)
	}
	return st
}

// kick starts provisioning name in the background unless it runs already.
func (p *provisioner) kick(name string, pr profiles.Provision) {
	if pr.Empty() {
		return
	}
	p.mu.Lock()
	if p.active[name] {
		p.mu.Unlock()
		return
	}
	p.active[name] = true
	p.mu.Unlock()
	go func() {
		defer func() {
			p.mu.Lock()
			delete(p.active, name)
			p.mu.Unlock()
		}()
		if err := p.run(context.Background(), name, pr); err != nil {
			p.log.Warn("provisioning", "workspace", name, "error", err)
		}
	}()
}

// run does the host's part and follows the guest's until both phases end.
func (p *provisioner) run(ctx context.Context, name string, pr profiles.Provision) error {
	ga, ok := p.m.hv.(guestAgent)
	if !ok {
		return errors.New("no guest agent access")
	}
	log := p.log.With("workspace", name)
	deadline := time.Now().Add(provisionAgentWait)
	for ga.GuestPing(ctx, name) != nil {
		if time.Now().After(deadline) {
			p.hostFailed(name, "the guest agent did not answer within "+provisionAgentWait.String()+": provisioning needs qemu-guest-agent in the guest")
			return errors.New("no guest agent")
		}
		if !p.isRunning(ctx, name) {
			return nil // stopped before it booted: again at the next start
		}
		time.Sleep(provisionPoll)
	}
	st, err := p.guestStatus(ctx, ga, name)
	if err != nil {
		return err
	}
	if st == nil {
		log.Info("provisioning", "packages", len(pr.Packages), "scripts", len(pr.Scripts), "user_scripts", len(pr.UserScripts))
		if err := p.prepare(ctx, ga, name, pr); err != nil {
			p.hostFailed(name, err.Error())
			return err
		}
	}
	for {
		st, err := p.guestStatus(ctx, ga, name)
		if err != nil || st == nil {
			if !p.isRunning(ctx, name) {
				return nil
			}
			time.Sleep(provisionPoll)
			continue
		}
		p.save(name, *st)
		if st.Final() {
			log.Info("provisioned", "root", st.Root.State, "user", st.User.State)
			return nil
		}
		time.Sleep(provisionPoll)
	}
}

func (p *provisioner) isRunning(ctx context.Context, name string) bool {
	w, err := p.m.get(ctx, name)
	return err == nil && w.State == api.StateRunning
}

// hostStep is the step of a failure of the host's part: nothing ran in
// the guest yet, so the next start tries again.
const hostStep = "preparing on the host"

// retry forgets a failure of the host's part (the archive was out of
// reach, the guest agent did not answer), so this start tries again.
func (p *provisioner) retry(name string) {
	if api.ValidateWorkspaceName(name) != nil {
		return // start refuses it
	}
	if st := p.saved(name); st != nil && st.Root.State == provision.Failed && st.Root.Step == hostStep {
		p.forget(name)
	}
}

// hostFailed records a failure of the host's part (before the runner).
func (p *provisioner) hostFailed(name, msg string) {
	code := -1
	p.save(name, provision.Status{
		Root: provision.Phase{State: provision.Failed, Exit: &code, Step: hostStep, Lines: []string{msg}},
		User: provision.Phase{State: provision.Skipped, Step: "the root phase failed"},
	})
}

// step records what the host is doing, for status.
func (p *provisioner) step(name, step string) {
	p.save(name, provision.Status{Root: provision.Phase{State: provision.Running, Step: step}, User: provision.Phase{State: provision.Pending}})
}

// guestStatus reads the runner's status in the guest: nil when it has
// none (never provisioned). A phase running under an earlier boot was cut
// short by a reboot or power-off.
func (p *provisioner) guestStatus(ctx context.Context, ga guestAgent, name string) (*provision.Status, error) {
	b, err := readGuestFile(ctx, ga, name, guestProvisionDir+"/status", provision.MaxStatusSize)
	if err != nil {
		return nil, nil // no status file (or no answer: asked again)
	}
	st, err := provision.ParseStatus(b)
	if err != nil {
		return nil, err
	}
	boot, _ := readGuestFile(ctx, ga, name, "/proc/sys/kernel/random/boot_id", 128)
	if st.Boot != "" && len(boot) > 0 && strings.TrimSpace(string(boot)) != st.Boot {
		code := -1
		for _, ph := range []*provision.Phase{&st.Root, &st.User} {
			if !ph.Final() {
				ph.State, ph.Exit, ph.Lines = provision.Failed, &code, append(ph.Lines, "interrupted: the guest rebooted or stopped before this phase ended")
			}
		}
	}
	return &st, nil
}

// prepare resolves and downloads the packages, copies them, the scripts
// and the runner into the guest and starts the runner.
func (p *provisioner) prepare(ctx context.Context, ga guestAgent, name string, pr profiles.Provision) error {
	d := guestProvisionDir
	if _, err := guestRun(ctx, ga, name, "/bin/sh", "-c", `umask 022; mkdir -p "$1" && cd "$1" && rm -rf debs root user && mkdir -m 0700 debs root && mkdir -m 0755 user && chmod 0755 "$1"`, "sh", d); err != nil {
		return fmt.Errorf("prepare %s in the guest: %w", d, err)
	}
	if len(pr.Packages) > 0 {
		p.step(name, "resolving "+fmt.Sprint(len(pr.Packages))+" packages against the guest's")
		status, err := readGuestFile(ctx, ga, name, "/var/lib/dpkg/status", maxGuestDpkgStatus)
		if err != nil {
			return fmt.Errorf("read the guest's dpkg status: %w", err)
		}
		p.step(name, "downloading packages on the host")
		debs, err := p.archive.Download(ctx, pr.Packages, status)
		if err != nil {
			return err
		}
		var total int64
		for _, deb := range debs {
			total += deb.Size
		}
		var sent int64
		for i, deb := range debs {
			p.step(name, fmt.Sprintf("copying package %d of %d into the guest (%s of %s)", i+1, len(debs), profiles.Size(sent), profiles.Size(total)))
			f, err := os.Open(deb.Path)
			if err != nil {
				return fmt.Errorf("package %s: %w", deb.Name, err)
			}
			err = pushGuestFile(ctx, ga, name, fmt.Sprintf("%s/debs/%03d-%s", d, i, filepath.Base(deb.Path)), f)
			f.Close()
			if err != nil {
				return fmt.Errorf("copy package %s into the guest: %w", deb.Name, err)
			}
			sent += deb.Size
		}
	}
	files := map[string]string{"packages": strings.Join(pr.Packages, "\n") + "\n"}
	for i, s := range pr.Scripts {
		files[fmt.Sprintf("root/%02d.sh", i+1)] = s.Text
		files[fmt.Sprintf("root/%02d.from", i+1)] = s.From
	}
	for i, s := range pr.UserScripts {
		files[fmt.Sprintf("user/%02d.sh", i+1)] = s.Text
		files[fmt.Sprintf("user/%02d.from", i+1)] = s.From
	}
	files["run.sh"] = string(provision.Runner)
	for f, text := range files {
		if err := pushGuestFile(ctx, ga, name, d+"/"+f, strings.NewReader(text)); err != nil {
			return fmt.Errorf("copy %s into the guest: %w", f, err)
		}
	}
	p.step(name, "starting in the guest")
	if _, err := ga.GuestExecStart(ctx, name, []string{"/bin/sh", d + "/run.sh"}, nil); err != nil {
		return fmt.Errorf("start the provisioning runner: %w", err)
	}
	return nil
}

// guestRun runs a short command in the guest and waits for it.
func guestRun(ctx context.Context, ga guestAgent, name string, argv ...string) (int, error) {
	pid, err := ga.GuestExecStart(ctx, name, argv, nil)
	if err != nil {
		return 0, err
	}
	for {
		st, err := ga.GuestExecStatus(ctx, name, pid)
		if err != nil {
			return 0, err
		}
		if st.Exited {
			if st.ExitCode != 0 {
				return st.ExitCode, fmt.Errorf("%s exited with status %d", argv[0], st.ExitCode)
			}
			return 0, nil
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// readGuestFile reads a whole guest file of at most limit bytes.
func readGuestFile(ctx context.Context, ga guestAgent, name, path string, limit int) ([]byte, error) {
	h, err := ga.GuestFileOpen(ctx, name, path, "r")
	if err != nil {
		return nil, err
	}
	defer ga.GuestFileClose(ctx, name, h)
	var out []byte
	for {
		b, err := ga.GuestFileRead(ctx, name, h, pushChunk)
		if err != nil {
			return nil, err
		}
		if len(b) == 0 {
			return out, nil
		}
		out = append(out, b...)
		if len(out) > limit {
			return nil, fmt.Errorf("%s in the guest is larger than %d bytes", path, limit)
		}
	}
}

// pushGuestFile writes r to a new file in the guest.
func pushGuestFile(ctx context.Context, ga guestAgent, name, path string, r io.Reader) error {
	h, err := ga.GuestFileOpen(ctx, name, path, "w")
	if err != nil {
		return err
	}
	buf := make([]byte, pushChunk)
	for {
		n, rerr := io.ReadFull(r, buf)
		if n > 0 {
			if err := ga.GuestFileWrite(ctx, name, h, buf[:n]); err != nil {
				ga.GuestFileClose(ctx, name, h)
				return err
			}
		}
		if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
			break
		}
		if rerr != nil {
			ga.GuestFileClose(ctx, name, h)
			return rerr
		}
	}
	return ga.GuestFileClose(ctx, name, h)
}
