package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/workspace-sandbox/workspace/api"
)

func newExecCmd(a *app) *cobra.Command {
	var req api.ExecRequest
	cmd := command("exec NAME [--user USER] [-i] -- CMD [ARGS...]", "Run a command in a running workspace through its guest agent",
		cobra.MinimumNArgs(2), func(cmd *cobra.Command, args []string) error {
			if cmd.ArgsLenAtDash() != 1 {
				return fmt.Errorf("exec: write the command after --: workspace exec %s -- CMD ARGS", args[0])
			}
			req.Argv = args[1:]
			return a.runExec(cmd.Context(), args[0], req)
		})
	cmd.Long = `Runs CMD in the workspace's guest through the QEMU guest agent (no network
needed), as the desktop user with its X display (DISPLAY=:0) unless --user
names another, streams its output and exits with its exit status.
With -i the command's stdin is this one's (the end of input ends it). There
is no terminal in the guest: programs that need one will not work.`
	cmd.Flags().StringVarP(&req.User, "user", "u", "", "guest user to run as (default: the desktop user; root for the root user)")
	cmd.Flags().BoolVarP(&req.Stdin, "interactive", "i", false, "pass stdin to the command")
	return cmd
}

func newShellCmd(a *app) *cobra.Command {
	var user string
	cmd := command("shell NAME [--user USER]", "Open a line-oriented shell in a running workspace through its guest agent",
		cobra.ExactArgs(1), func(cmd *cobra.Command, args []string) error {
			fmt.Fprintln(a.stderr, "(a line-oriented shell through the guest agent: no prompt, no terminal; end it with exit or Ctrl-D)")
			return a.runExec(cmd.Context(), args[0], api.ExecRequest{
				Argv: []string{"/bin/sh", "-c", `if command -v bash >/dev/null; then exec bash -l; fi; exec sh -l`},
				User: user, Stdin: true,
			})
		})
	cmd.Long = `Opens a shell in the workspace's guest through the QEMU guest agent, as the
desktop user (or --user): each line you type is read by the guest's bash
(or sh) and its output is shown as it comes. The guest agent has no
pseudo-terminal, so there is no prompt, no line editing and no full-screen
program (compare incus exec -T, limactl shell over ssh); use
'workspace view' for the desktop itself.`
	cmd.Flags().StringVarP(&user, "user", "u", "", "guest user (default: the desktop user)")
	return cmd
}

// runExec streams a command's output and ends with its exit status.
func (a *app) runExec(ctx context.Context, name string, req api.ExecRequest) error {
	conn, err := a.client().Exec(ctx, name, req)
	if err != nil {
		return err
	}
	defer conn.Close()
	if req.Stdin {
		go func() {
			io.Copy(conn, os.Stdin)
			if cw, ok := conn.(interface{ CloseWrite() error }); ok {
				cw.CloseWrite()
			}
		}()
	}
	go func() {
		<-ctx.Done()
		conn.Close()
	}()
	code, err := api.ReadExecFrames(conn, a.stdout, a.stderr)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return err
	}
	if code != 0 {
		return &exitError{code: code}
	}
	return nil
}
