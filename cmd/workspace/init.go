package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/workspace-sandbox/workspace/api"
	"github.com/workspace-sandbox/workspace/internal/atomicfile"
)

// passphraseSource reads a passphrase from --passphrase-file, then its
// environment variable ($WORKSPACE_PASSPHRASE unless env names another),
// then the terminal (without echo). Never from a flag's value: a command
// line is visible to every local user.
type passphraseSource struct {
	file string
	env  string
}

func (p *passphraseSource) envName() string {
	if p.env != "" {
		return p.env
	}
	return "WORKSPACE_PASSPHRASE"
}

func (p *passphraseSource) flags(cmd *cobra.Command) {
	cmd.Flags().StringVar(&p.file, "passphrase-file", "", "read the passphrase from this file (first line) instead of the terminal or $"+p.envName())
}

func (p *passphraseSource) read(a *app, prompt string, confirm bool) (string, error) {
	if p.file != "" {
		b, err := os.ReadFile(p.file)
		if err != nil {
			return "", fmt.Errorf("passphrase file: %w", err)
		}
		line, _, _ := strings.Cut(string(b), "\n")
		if line = strings.TrimRight(line, "\r"); line == "" {
			return "", fmt.Errorf("passphrase file %s: the first line is empty", p.file)
		}
		return line, nil
	}
	if env := os.Getenv(p.envName()); env != "" {
		return env, nil
	}
	fd := int(os.Stdin.Fd())
	if !term.IsTerminal(fd) {
		line, err := bufio.NewReader(os.Stdin).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return "", fmt.Errorf("read passphrase from stdin: %w", err)
		}
		if line = strings.TrimRight(line, "\r\n"); line == "" {
			return "", fmt.Errorf("no passphrase: give --passphrase-file, set %s, or run on a terminal", p.envName())
		}
		return line, nil
	}
	fmt.Fprint(a.stderr, prompt)
	b, err := term.ReadPassword(fd)
	fmt.Fprintln(a.stderr)
	if err != nil {
		return "", fmt.Errorf("read passphrase: %w", err)
	}
	if len(b) == 0 {
		return "", errors.New("empty passphrase")
	}
	if confirm {
		fmt.Fprint(a.stderr, "Again: ")
		b2, err := term.ReadPassword(fd)
		fmt.Fprintln(a.stderr)
		if err != nil {
			return "", fmt.Errorf("read passphrase: %w", err)
		}
		if string(b2) != string(b) {
			return "", errors.New("the passphrases differ")
		}
	}
	return string(b), nil
}

func newInitCmd(a *app) *cobra.Command {
	var protect bool
	var pass passphraseSource
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Create your diary identity (age) and signing key in the daemon's state",
		Long: `init creates the freelancer's identity: an age X25519 identity that wraps each
workspace's data key and decrypts your own exports, and an Ed25519 key that
signs the diary's checkpoints. With --passphrase the identity is protected
with a passphrase (age scrypt); the daemon then starts locked and records
nothing until "workspace unlock".`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			req := api.InitRequest{}
			if protect || pass.file != "" {
				p, err := pass.read(a, "New passphrase for your diary identity: ", true)
				if err != nil {
					return err
				}
				req.Passphrase = p
			}
			st, err := a.client().Init(cmd.Context(), req)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "Identity created.\nrecipient (give to no one; exports are also encrypted to it): %s\nsigner (give to your clients, to pin with `diary verify --signer`): %s\n", st.Recipient, st.Signer)
			if st.Protected {
				fmt.Fprintln(a.stdout, "The identity is passphrase-protected: run `workspace unlock` after each daemon start.")
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&protect, "passphrase", false, "protect the identity with a passphrase")
	pass.flags(cmd)
	return cmd
}

func newUnlockCmd(a *app) *cobra.Command {
	var pass passphraseSource
	cmd := command("unlock", "Unlock a passphrase-protected diary identity in the daemon", cobra.NoArgs, func(cmd *cobra.Command, _ []string) error {
		p, err := pass.read(a, "Diary passphrase: ", false)
		if err != nil {
			return err
		}
		if _, err := a.client().Unlock(cmd.Context(), p); err != nil {
			return err
		}
		fmt.Fprintln(a.stdout, "Unlocked: the daemon records screenshots again.")
		return nil
	})
	pass.flags(cmd)
	return cmd
}

func newBackupCmd(a *app) *cobra.Command {
	var out string
	var pass passphraseSource
	cmd := &cobra.Command{
		Use:   "backup --out FILE",
		Short: "Write an encrypted backup of the diary and keys",
		Long: `backup writes the whole diary (database snapshot, sealed screenshots,
checkpoints) and the key directory into one file encrypted with a passphrase
(age scrypt). Without the passphrase it can be neither read nor altered
unnoticed. Base images and VM disks are not included: re-import images, and
recreate workspaces from their profiles.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return errors.New("--out FILE is required")
			}
			p, err := pass.read(a, "Backup passphrase: ", true)
			if err != nil {
				return err
			}
			return writeAtomically(out, 0o600, func(w io.Writer) error {
				return a.client().Backup(cmd.Context(), p, w)
			}, func(n int64) {
				fmt.Fprintf(a.stdout, "Backup written to %s (%s).\n", out, humanBytes(uint64(n)))
			})
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "backup file to write")
	pass.flags(cmd)
	return cmd
}

func newRestoreCmd(a *app) *cobra.Command {
	var force bool
	var pass passphraseSource
	cmd := &cobra.Command{
		Use:   "restore FILE | restore NAME SNAP",
		Short: "Replace the diary and keys with a backup's, or return a workspace to a snapshot",
		Long: `With one argument, restore replaces the diary and keys with backup FILE's.
It checks the backup completely (passphrase, every file's hash) before it
touches anything; a tampered or truncated backup is refused and changes
nothing. Over a daemon that already has diaries it needs --force; the
replaced diary and keys are moved aside, not deleted.

With two arguments, restore returns workspace NAME to its snapshot SNAP,
as "workspace snapshot restore NAME SNAP" does.`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 2 {
				if cmd.Flags().Changed("force") || cmd.Flags().Changed("passphrase-file") {
					return fmt.Errorf("--force and --passphrase-file are for restoring a backup FILE, not snapshot %q of workspace %q", args[1], args[0])
				}
				return restoreSnapshot(cmd, a, args[0], args[1])
			}
			f, err := os.Open(args[0])
			if errors.Is(err, os.ErrNotExist) && api.ValidateWorkspaceName(args[0]) == nil {
				return fmt.Errorf("no backup file %s; to return workspace %q to a snapshot, name the snapshot too: workspace restore %s SNAP (workspace snapshot list %s shows them)", args[0], args[0], args[0], args[0])
			}
			if err != nil {
				return err
			}
			defer f.Close()
			p, err := pass.read(a, "Backup passphrase: ", false)
			if err != nil {
				return err
			}
			res, err := a.client().Restore(cmd.Context(), p, f, force)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "Restored %d workspace diaries: %s\n", len(res.Workspaces), strings.Join(res.Workspaces, ", "))
			for _, r := range res.Replaced {
				fmt.Fprintf(a.stdout, "The previous state was moved aside to %s\n", r)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "replace existing diaries (they are moved aside)")
	pass.flags(cmd)
	return cmd
}

// writeAtomically writes a file through a temp file beside it, so a failed
// write leaves no partial file behind; done learns how many bytes it has.
func writeAtomically(path string, mode os.FileMode, fill func(io.Writer) error, done func(n int64)) error {
	var n int64
	err := atomicfile.WriteFrom(path, mode, func(w io.Writer) error {
		cw := &countWriter{w: w}
		err := fill(cw)
		n = cw.n
		return err
	})
	if err == nil && done != nil {
		done(n)
	}
	return err
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
