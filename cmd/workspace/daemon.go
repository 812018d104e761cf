//go:build linux

package main

import (
	"errors"
	"fmt"
	"os"
	"syscall"

	"github.com/hashicorp/go-hclog"
	"github.com/spf13/cobra"

	"github.com/workspace-sandbox/workspace/daemon"
	"github.com/workspace-sandbox/workspace/internal/safetext"
	"github.com/workspace-sandbox/workspace/profiles"
)

func newDaemonCmd(a *app) *cobra.Command {
	cfg := daemon.Config{Version: version}
	var logLevel string
	var logJSON bool
	minFree := "1GiB"
	tcgCache := fmt.Sprintf("%dMiB", daemon.DefaultTCGCache>>20)
	cmd := command("daemon", "Run the host daemon (as root): owns libvirt, serves the API on a unix socket", cobra.NoArgs, func(cmd *cobra.Command, _ []string) error {
		if a.hostFlag != "" || a.contextFlag != "" {
			return errors.New("the daemon runs on the host it serves, on its --socket: --host and --context do not apply (to run it on a server, log in there and run `workspace daemon`)")
		}
		cfg.Socket = a.socket
		if minFree == "0" || minFree == "off" {
			cfg.DiaryMinFree = -1
		} else {
			n, err := profiles.ParseSize(minFree)
			if err != nil || n == 0 {
				return fmt.Errorf("--diary-min-free: %v (a size like \"1GiB\", or \"off\")", err)
			}
			cfg.DiaryMinFree = int64(n)
		}
		if tcgCache == "0" || tcgCache == "off" {
			cfg.TCGCache = -1
		} else {
			n, err := profiles.ParseSize(tcgCache)
			if err != nil || n < 32<<20 || n > 4<<30 {
				return fmt.Errorf("--tcg-cache %q: a size from 32MiB to 4GiB, or \"off\" for QEMU's default", tcgCache)
			}
			cfg.TCGCache = int64(n)
		}
		// Nothing the daemon writes (diary database, records, logs of its
		// own) is for other users; what must be shared (the socket, the
		// public keys, folders QEMU passes through) gets its mode
		// explicitly.
		syscall.Umask(0o077)
		// Log values may hold what a guest sent (gap reasons, agent
		// versions, errors): hclog quotes one-line values, and this writer
		// escapes the control bytes (ESC, CR...) left in multi-line ones,
		// so no log line can recolour or rewrite the terminal it is read
		// on. A value's own newlines stay indented under its key ("  | "),
		// so they cannot pass for a log line.
		cfg.Logger = hclog.New(&hclog.LoggerOptions{
			Name:       "workspace",
			Level:      hclog.LevelFromString(logLevel),
			Output:     safetext.Writer(a.stderr),
			JSONFormat: logJSON,
		})
		return daemon.Run(cmd.Context(), cfg)
	})
	def := os.Getenv("WORKSPACE_STATE_DIR")
	if def == "" {
		def = "/var/lib/workspace"
	}
	cmd.Flags().StringVar(&cfg.StateDir, "state-dir", def, "state folder: the daemon's identity, image records, storage pool, per-workspace sockets (env WORKSPACE_STATE_DIR)")
	cmd.Flags().StringVar(&cfg.LibvirtURI, "libvirt-uri", "qemu:///system", "libvirt URI of this host: qemu:///system, qemu+unix:///system?socket=PATH, test:///default (another host's libvirt is refused: run the daemon there and use workspace --host ssh://...)")
	cmd.Flags().StringVar(&cfg.PoolName, "pool", "", "libvirt storage pool for images and overlays, kept in STATE/pool (default: \"workspace\" for /var/lib/workspace, else workspace-HASH of the state folder)")
	cmd.Flags().StringVar(&logLevel, "log-level", "info", "log level: trace, debug, info, warn, error")
	cmd.Flags().BoolVar(&logJSON, "log-json", false, "log as JSON lines")
	cmd.Flags().StringVar(&cfg.UIAddr, "ui-addr", daemon.DefaultUIAddr, "web UI address (loopback unless TLS is given; \"off\" for none)")
	cmd.Flags().StringVar(&cfg.UITLSCert, "ui-tls-cert", "", "TLS certificate for a web UI beyond loopback")
	cmd.Flags().StringVar(&cfg.UITLSKey, "ui-tls-key", "", "TLS key for a web UI beyond loopback")
	cmd.Flags().StringArrayVar(&cfg.ShareRoots, "share-root", nil, "a folder below which profiles may share host folders (repeatable; default: the home folder of the user asking)")
	cmd.Flags().BoolVar(&cfg.SuspendOnStop, "suspend-on-stop", false, "on SIGTERM (a service stop at host shutdown), suspend the running workspaces before exiting instead of leaving them to be shut down")
	cmd.Flags().DurationVar(&cfg.SuspendTimeout, "suspend-timeout", daemon.DefaultSuspendTimeout, "how long --suspend-on-stop may take in all; the service's TimeoutStopSec must be longer")
	cmd.Flags().DurationVar(&cfg.WitnessInterval, "witness-interval", daemon.DefaultWitnessInterval, "shortest time between two submissions of a workspace's checkpoints to its witnesses")
	cmd.Flags().StringVar(&minFree, "diary-min-free", minFree, "free space the diary's file system keeps: below it, guests' captures are refused and a gap says \"host disk nearly full\" (\"off\" for no floor)")
	cmd.Flags().StringVar(&tcgCache, "tcg-cache", tcgCache, "without KVM, the translation cache of each new guest: QEMU's default of 1GiB stays in host memory while a guest idles (\"off\" keeps it)")
	return cmd
}
