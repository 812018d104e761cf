//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/spf13/cobra"

	"github.com/workspace-sandbox/workspace/api"
	"github.com/workspace-sandbox/workspace/images"
)

// imageBuildResult is what `image build --json` prints.
type imageBuildResult struct {
	images.Result
	Seconds float64 `json:"seconds"`
	User    string  `json:"user"`
	// Password is set only when it was generated: it is shown this once.
	Password string     `json:"password,omitempty"`
	Image    *api.Image `json:"image,omitempty"`
	// Kept is true when the files stay on disk (--out was given).
	Kept bool `json:"kept"`
}

// imageBuild is one `image build` run: its flags, then what it found out.
type imageBuild struct {
	variant, out, name, user, password string
	mirror, securityMirror, agent      string
	noImport, autologin, asJSON, debug bool

	generated bool // the password was generated (and is shown once)
	kept      bool // the built files stay (--out was given)
}

func newImageBuildCmd(a *app) *cobra.Command {
	b := &imageBuild{}
	cmd := &cobra.Command{
		Use:   "build desktop [--variant full|minimal] [--out FILE] [--name NAME] [--no-import]",
		Short: "Build the desktop image from Debian packages (mmdebstrap) and import it",
		Long: `Builds a Debian 12 desktop image with workspace-agent started in the user's
X session, spice-vdagent and qemu-guest-agent, and imports it into the daemon.

  --variant full      XFCE with lightdm (the default)
  --variant minimal   an X server and openbox with autologin: small and fast to build

The desktop user's password comes from --password, else the environment
variable WORKSPACE_IMAGE_PASSWORD, else it is generated and printed once.
Needs root (or unprivileged user namespaces) and network access to a Debian
archive. With --out the files stay (FILE.qcow2 plus .vmlinuz, .initrd.img and
.cmdline beside it); without it they are removed once imported.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 || args[0] != "desktop" {
				return errors.New(`image build takes one recipe: "desktop" (workspace image build desktop)`)
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error { return b.run(cmd.Context(), a) },
	}
	b.flags(cmd)
	return cmd
}

func (b *imageBuild) flags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&b.variant, "variant", images.VariantFull, "full (XFCE) or minimal (X server and openbox)")
	f.StringVar(&b.out, "out", "", "keep the built disk here (FILE.qcow2; kernel, initrd and cmdline beside it)")
	f.StringVar(&b.name, "name", "", `image name to import as (default "desktop", or "desktop-minimal")`)
	f.StringVar(&b.user, "user", "user", "the desktop user's name")
	f.StringVar(&b.password, "password", "", "the desktop user's password (else $WORKSPACE_IMAGE_PASSWORD, else generated)")
	f.BoolVar(&b.autologin, "autologin", false, "log the user in at boot (full variant; minimal always does)")
	f.StringVar(&b.mirror, "mirror", images.DefaultMirror, "Debian archive")
	f.StringVar(&b.securityMirror, "security-mirror", images.DefaultSecurityMirror, "Debian security archive")
	f.StringVar(&b.agent, "agent", "", "static workspace-agent to install (default: beside this binary, in PATH, or built from the source tree)")
	f.BoolVar(&b.noImport, "no-import", false, "only build (needs --out)")
	f.BoolVar(&b.asJSON, "json", false, "print the result as JSON")
	f.BoolVar(&b.debug, "verbose", false, "show every line of the build's output")
}

// check validates the flags and fills in the defaults (name, password)
// before anything is built.
func (b *imageBuild) check() error {
	if b.variant != images.VariantFull && b.variant != images.VariantMinimal {
		return fmt.Errorf("--variant %q: want %q or %q", b.variant, images.VariantFull, images.VariantMinimal)
	}
	if b.name == "" {
		b.name = "desktop"
		if b.variant == images.VariantMinimal {
			b.name = "desktop-minimal"
		}
	}
	if err := api.ValidateImageName(b.name); err != nil {
		return err
	}
	if b.noImport && b.out == "" {
		return errors.New("--no-import needs --out FILE: where to keep the image")
	}
	if err := images.ValidateUser(b.user); err != nil {
		return fmt.Errorf("--user: %w", err)
	}
	if b.password == "" {
		b.password = os.Getenv("WORKSPACE_IMAGE_PASSWORD")
	}
	if b.password == "" {
		p, err := images.GeneratePassword()
		if err != nil {
			return err
		}
		b.password, b.generated = p, true
	}
	if err := images.ValidatePassword(b.password); err != nil {
		return fmt.Errorf("--password: %w", err)
	}
	b.kept = b.out != ""
	return nil
}

// nameFree asks the daemon, before the long build, whether it is there and
// the image name is free.
func (b *imageBuild) nameFree(ctx context.Context, a *app) error {
	if b.noImport {
		return nil
	}
	imgs, err := a.client().Images(ctx)
	if err != nil {
		return fmt.Errorf("the image is imported once built: %w", err)
	}
	for _, img := range imgs {
		if img.Name == b.name {
			return fmt.Errorf("image %q is already imported: remove it (workspace image rm %s) or choose another --name", b.name, b.name)
		}
	}
	return nil
}

func (b *imageBuild) run(ctx context.Context, a *app) error {
	if err := b.check(); err != nil {
		return err
	}
	if err := b.nameFree(ctx, a); err != nil {
		return err
	}
	// The disk is a few hundred MiB: not in /tmp, often a tmpfs.
	tmpParent := os.Getenv("TMPDIR")
	if tmpParent == "" {
		tmpParent = "/var/tmp"
	}
	tmp, err := os.MkdirTemp(tmpParent, "workspace-build-")
	if err != nil {
		return fmt.Errorf("make a temporary folder: %w", err)
	}
	defer os.RemoveAll(tmp)
	if b.out == "" {
		b.out = filepath.Join(tmp, b.name+".qcow2")
	} else if b.out, err = filepath.Abs(b.out); err != nil {
		return fmt.Errorf("--out: %w", err)
	}
	res, err := b.build(ctx, a, tmp)
	if err != nil {
		return err
	}
	result := imageBuildResult{Result: *res, Seconds: res.Duration.Seconds(), User: b.user, Kept: b.kept}
	if b.generated {
		result.Password = b.password
	}
	if !b.noImport {
		img, err := a.uploadImage(ctx, b.name, res.Files.Disk, res.Files.Kernel, res.Files.Initrd, res.Cmdline)
		if err != nil {
			if b.kept {
				return fmt.Errorf("import the built image as %q: %w (the built files stay in %s)", b.name, err, filepath.Dir(b.out))
			}
			return fmt.Errorf("import the built image as %q: %w", b.name, err)
		}
		result.Image = &img
	}
	if b.asJSON {
		return printJSON(a.stdout, result)
	}
	b.print(a, result)
	return nil
}

// build runs the recipe, with progress on stderr. What can fail fast fails
// before the agent is looked for or built.
func (b *imageBuild) build(ctx context.Context, a *app, tmp string) (*images.Result, error) {
	if err := images.Preflight(ctx, b.mirror, b.securityMirror); err != nil {
		return nil, err
	}
	agentPath, from, err := images.LocateAgent(ctx, b.agent, tmp)
	if err != nil {
		return nil, err
	}
	pr := images.NewPrinter(a.stderr)
	defer pr.Close()
	if !b.asJSON {
		fmt.Fprintf(a.stderr, "building the %s desktop image (workspace-agent %s)\n", b.variant, from)
	}
	opts := images.DesktopOptions{
		Variant: b.variant, Out: b.out, Mirror: b.mirror, SecurityMirror: b.securityMirror,
		User: b.user, Password: b.password, Autologin: b.autologin, Agent: agentPath,
		Progress: pr.Event,
		Logger:   hclog.New(&hclog.LoggerOptions{Name: "image build", Output: a.stderr, Level: hclog.Warn}),
	}
	if b.debug {
		opts.Output = a.stderr
	}
	return images.BuildDesktop(ctx, opts)
}

func (b *imageBuild) print(a *app, r imageBuildResult) {
	fmt.Fprintf(a.stdout, "built the %s desktop image in %s: %s\n", b.variant, r.Duration.Round(time.Second), humanBytes(uint64(r.DiskSize)))
	if b.kept {
		fmt.Fprintf(a.stdout, "  disk    %s\n  kernel  %s\n  initrd  %s\n  cmdline %s\n", r.Files.Disk, r.Files.Kernel, r.Files.Initrd, r.Cmdline)
	}
	if r.Image != nil {
		fmt.Fprintf(a.stdout, "imported image %q (sha256 %.12s): use `image = %q` in a profile\n", b.name, r.Image.SHA256, b.name)
	}
	if b.generated {
		fmt.Fprintf(a.stdout, "desktop user %q, generated password (shown only now): %s\n", b.user, b.password)
	} else {
		fmt.Fprintf(a.stdout, "desktop user %q with the password given\n", b.user)
	}
}
