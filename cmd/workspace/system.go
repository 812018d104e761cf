package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/user"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/workspace-sandbox/workspace/internal/sshconn"
)

func newSystemCmd(a *app) *cobra.Command {
	return group("system", "Commands about the workspace host itself", newDialStdioCmd(a))
}

func newDialStdioCmd(a *app) *cobra.Command {
	cmd := command("dial-stdio", "Join stdin and stdout to this host's daemon socket (what `workspace --host ssh://...` runs on the server)", cobra.NoArgs,
		func(cmd *cobra.Command, _ []string) error {
			if a.hostFlag != "" || a.contextFlag != "" {
				return errors.New("system dial-stdio runs on the daemon's host and uses its socket (--socket or WORKSPACE_SOCKET): --host and --context do not apply")
			}
			return dialStdio(cmd.Context(), a.socket, os.Stdin, os.Stdout)
		})
	cmd.Long = `dial-stdio connects to the daemon's socket on this host and copies stdin to
it and its answers to stdout, until either side ends. A client elsewhere runs
it through ssh ("workspace --host ssh://USER@THIS-HOST ..."), so its requests
reach this daemon as the SSH user's: the daemon's socket permissions and its
peer check (root, the daemon's user, or the workspace group) apply to that
user.

It always uses this host's socket (--socket, WORKSPACE_SOCKET, or the
default), never a --host or a context.

Exit status 3: no daemon listens on the socket; 4: this user may not open it.`
	return cmd
}

// dialStdio joins in and out to the daemon's socket until the daemon ends
// the stream, out fails, or ctx ends. When in ends, the socket's write side
// is closed and the daemon's remaining answer is still copied.
func dialStdio(ctx context.Context, socket string, in io.Reader, out io.Writer) error {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", socket)
	if err != nil {
		return dialStdioError(socket, err)
	}
	uc := c.(*net.UnixConn)
	stop := context.AfterFunc(ctx, func() { uc.Close() })
	defer stop()
	defer uc.Close()
	go func() {
		_, _ = io.Copy(uc, in)
		_ = uc.CloseWrite()
	}()
	if _, err := io.Copy(out, uc); err != nil && ctx.Err() == nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("dial-stdio: %w", err)
	}
	return nil
}

// dialStdioError says, for the user at the other end of ssh, why the
// socket could not be opened, with an exit status the client recognizes.
func dialStdioError(socket string, err error) error {
	host, _ := os.Hostname()
	switch {
	case errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED):
		return &exitError{code: sshconn.ExitNoDaemon, msg: fmt.Sprintf(
			"workspace daemon is not running on %s (no daemon listens on %s): start it there (sudo systemctl start workspace, or sudo workspace daemon)", host, socket)}
	case errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EPERM):
		who := "this user"
		if u, uerr := user.Current(); uerr == nil {
			who = "user " + u.Username
		}
		return &exitError{code: sshconn.ExitForbidden, msg: fmt.Sprintf(
			"%s may not use the daemon's socket %s on %s: add them to the workspace group there (sudo adduser USER workspace) and log in again", who, socket, host)}
	}
	return fmt.Errorf("dial-stdio: connect to %s: %w", socket, err)
}
