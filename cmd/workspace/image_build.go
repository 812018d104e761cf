package main

import (
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

func newImageBuildCmd(a *app) *cobra.Command {
	var (
		variant, out, name, user, password string
		mirror, securityMirror, agent      string
		noImport, autologin, asJSON, debug bool
	)
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
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if variant != images.VariantFull && variant != images.VariantMinimal {
				return fmt.Errorf("--variant %q: want %q or %q", variant, images.VariantFull, images.VariantMinimal)
			}
			if name == "" {
				name = "desktop"
				if variant == images.VariantMinimal {
					name = "desktop-minimal"
				}
			}
			if err := api.ValidateImageName(name); err != nil {
				return err
			}
			if noImport && out == "" {
				return errors.New("--no-import needs --out FILE: where to keep the image")
			}
			if err := images.ValidateUser(user); err != nil {
				return fmt.Errorf("--user: %w", err)
			}
			generated := false
			if password == "" {
				password = os.Getenv("WORKSPACE_IMAGE_PASSWORD")
			}
			if password == "" {
				p, err := images.GeneratePassword()
				if err != nil {
					return err
				}
				password, generated = p, true
			}
			if err := images.ValidatePassword(password); err != nil {
				return fmt.Errorf("--password: %w", err)
			}
			// Before the long build: is the daemon there, is the name free?
			if !noImport {
				imgs, err := a.client().Images(ctx)
				if err != nil {
					return fmt.Errorf("the image is imported once built: %w", err)
				}
				for _, img := range imgs {
					if img.Name == name {
						return fmt.Errorf("image %q is already imported: remove it (workspace image rm %s) or choose another --name", name, name)
					}
				}
			}
			kept := out != ""
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
			if out == "" {
				out = filepath.Join(tmp, name+".qcow2")
			} else if out, err = filepath.Abs(out); err != nil {
				return fmt.Errorf("--out: %w", err)
			}
			// What can fail fast fails before the agent is looked for or built.
			if err := images.Preflight(ctx, mirror, securityMirror); err != nil {
				return err
			}
			agentPath, from, err := images.LocateAgent(ctx, agent, tmp)
			if err != nil {
				return err
			}
			pr := images.NewPrinter(a.stderr)
			if !asJSON {
				fmt.Fprintf(a.stderr, "building the %s desktop image (workspace-agent %s)\n", variant, from)
			}
			opts := images.DesktopOptions{
				Variant: variant, Out: out, Mirror: mirror, SecurityMirror: securityMirror,
				User: user, Password: password, Autologin: autologin, Agent: agentPath,
				Progress: pr.Event,
				Logger:   hclog.New(&hclog.LoggerOptions{Name: "image build", Output: a.stderr, Level: hclog.Warn}),
			}
			if debug {
				opts.Output = a.stderr
			}
			res, err := images.BuildDesktop(ctx, opts)
			pr.Close()
			if err != nil {
				return err
			}
			result := imageBuildResult{Result: *res, Seconds: res.Duration.Seconds(), User: user, Kept: kept}
			if generated {
				result.Password = password
			}
			if !noImport {
				img, err := a.uploadImage(ctx, name, res.Files.Disk, res.Files.Kernel, res.Files.Initrd, res.Cmdline)
				if err != nil {
					if kept {
						return fmt.Errorf("import the built image as %q: %w (the built files stay in %s)", name, err, filepath.Dir(out))
					}
					return fmt.Errorf("import the built image as %q: %w", name, err)
				}
				result.Image = &img
			}
			if asJSON {
				return printJSON(a.stdout, result)
			}
			fmt.Fprintf(a.stdout, "built the %s desktop image in %s: %s\n", variant, res.Duration.Round(time.Second), humanBytes(uint64(res.DiskSize)))
			if kept {
				fmt.Fprintf(a.stdout, "  disk    %s\n  kernel  %s\n  initrd  %s\n  cmdline %s\n", res.Files.Disk, res.Files.Kernel, res.Files.Initrd, res.Cmdline)
			}
			if result.Image != nil {
				fmt.Fprintf(a.stdout, "imported image %q (sha256 %.12s): use `image = %q` in a profile\n", name, result.Image.SHA256, name)
			}
			if generated {
				fmt.Fprintf(a.stdout, "desktop user %q, generated password (shown only now): %s\n", user, password)
			} else {
				fmt.Fprintf(a.stdout, "desktop user %q with the password given\n", user)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&variant, "variant", images.VariantFull, "full (XFCE) or minimal (X server and openbox)")
	f.StringVar(&out, "out", "", "keep the built disk here (FILE.qcow2; kernel, initrd and cmdline beside it)")
	f.StringVar(&name, "name", "", `image name to import as (default "desktop", or "desktop-minimal")`)
	f.StringVar(&user, "user", "user", "the desktop user's name")
	f.StringVar(&password, "password", "", "the desktop user's password (else $WORKSPACE_IMAGE_PASSWORD, else generated)")
	f.BoolVar(&autologin, "autologin", false, "log the user in at boot (full variant; minimal always does)")
	f.StringVar(&mirror, "mirror", images.DefaultMirror, "Debian archive")
	f.StringVar(&securityMirror, "security-mirror", images.DefaultSecurityMirror, "Debian security archive")
	f.StringVar(&agent, "agent", "", "static workspace-agent to install (default: beside this binary, in PATH, or built from the source tree)")
	f.BoolVar(&noImport, "no-import", false, "only build (needs --out)")
	f.BoolVar(&asJSON, "json", false, "print the result as JSON")
	f.BoolVar(&debug, "verbose", false, "show every line of the build's output")
	return cmd
}
