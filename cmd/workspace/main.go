// Command workspace is the CLI for per-client VM workspaces, and with
// `workspace daemon` the host daemon itself.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/workspace-sandbox/workspace/api"
	"github.com/workspace-sandbox/workspace/internal/contexts"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// app is what every command shares: where to find the daemon and where to
// print.
type app struct {
	socket      string // --socket, WORKSPACE_SOCKET or the default
	hostFlag    string // --host
	contextFlag string // --context
	stdout      io.Writer
	stderr      io.Writer

	root     *cobra.Command
	contexts *contexts.Store // nil: the user's (tests set their own)

	resolved bool
	ep       endpoint
	epErr    error
	api      *api.Client
}

func newRootCmd(a *app) *cobra.Command {
	root := &cobra.Command{
		Use:   "workspace",
		Short: "Per-client virtual-machine workspaces with private, verifiable time tracking",
		Long: `workspace runs one VM per client, defined by a profile, through a host daemon
that drives libvirt. Start the daemon with "workspace daemon" (as root), then
create, start, view, stop and destroy workspaces.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version,
	}
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	a.root = root
	root.PersistentFlags().StringVar(&a.socket, "socket", api.SocketFromEnv(), "daemon socket on this machine (env WORKSPACE_SOCKET)")
	root.PersistentFlags().StringVarP(&a.hostFlag, "host", "H", "", "the daemon's host: ssh://[USER@]HOST[:PORT] over SSH, or unix:///PATH (env WORKSPACE_HOST)")
	root.PersistentFlags().StringVarP(&a.contextFlag, "context", "c", "", "a named host (workspace context ls; env WORKSPACE_CONTEXT)")
	root.AddCommand(
		newDaemonCmd(a),
		newCreateCmd(a),
		newStartCmd(a),
		newStopCmd(a),
		newSuspendCmd(a),
		newSwitchCmd(a),
		newRestartCmd(a),
		newDestroyCmd(a),
		newListCmd(a),
		newStatusCmd(a),
		newEventsCmd(a),
		newImageCmd(a),
		newProfileCmd(a),
		newInitCmd(a),
		newUnlockCmd(a),
		newDiaryCmd(a),
		newTrackCmd(a),
		newUICmd(a),
		newViewCmd(a),
		newExecCmd(a),
		newShellCmd(a),
		newBackupCmd(a),
		newRestoreCmd(a),
		newSnapshotCmd(a),
		newContextCmd(a),
		newSystemCmd(a),
		newWitnessCmd(a),
		newVersionCmd(a),
		newGenDocsCmd(a),
	)
	return root
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	a := &app{stdout: stdout, stderr: stderr}
	root := newRootCmd(a)
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(ctx)
	if a.api != nil {
		a.api.Close()
	}
	if err != nil {
		var ee *exitError
		if errors.As(err, &ee) {
			if ee.msg != "" {
				fmt.Fprintln(stderr, ee.msg)
			}
			return ee.code
		}
		fmt.Fprintf(stderr, "Error: %v\n", err)
		if hint := hostHint(cmd, err); hint != "" {
			fmt.Fprintln(stderr, hint)
		}
		return 1
	}
	return 0
}

// exitError ends the program with a given code and an optional message
// already formatted for the user.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }
