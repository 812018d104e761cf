package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/workspace-sandbox/workspace/api"
)

func newStopCmd(a *app) *cobra.Command {
	return stopCmd(a, "stop NAME [--force] [--timeout 60s]", "Shut a workspace down (ACPI, then power off on timeout only with --force)", (*api.Client).Stop)
}

func newRestartCmd(a *app) *cobra.Command {
	return stopCmd(a, "restart NAME [--force] [--timeout 60s]", "Stop a workspace cleanly, then start it again", (*api.Client).Restart)
}

// stopCmd is stop or restart: call with the stop flags, then the state.
func stopCmd(a *app, use, short string, call func(*api.Client, context.Context, string, api.StopRequest) (api.Workspace, error)) *cobra.Command {
	var req api.StopRequest
	var timeout time.Duration
	cmd := command(use, short, cobra.ExactArgs(1), func(cmd *cobra.Command, args []string) error {
		req.Timeout = timeout.String()
		w, err := call(a.client(), cmd.Context(), args[0], req)
		if err != nil {
			return err
		}
		fmt.Fprintf(a.stdout, "workspace %q is %s\n", w.Name, w.State)
		return nil
	})
	cmd.Flags().BoolVar(&req.Force, "force", false, "power off if the guest has not shut down within --timeout")
	cmd.Flags().DurationVar(&timeout, "timeout", 60*time.Second, "how long to wait for a clean shutdown")
	return cmd
}
