package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/workspace-sandbox/workspace/api"
)

func stopFlags(cmd *cobra.Command, req *api.StopRequest, timeout *time.Duration) {
	cmd.Flags().BoolVar(&req.Force, "force", false, "power off if the guest has not shut down within --timeout")
	cmd.Flags().DurationVar(timeout, "timeout", 60*time.Second, "how long to wait for a clean shutdown")
}

func newStopCmd(a *app) *cobra.Command {
	var req api.StopRequest
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "stop NAME [--force] [--timeout 60s]",
		Short: "Shut a workspace down (ACPI, then power off on timeout only with --force)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req.Timeout = timeout.String()
			w, err := a.client().Stop(cmd.Context(), args[0], req)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "workspace %q is %s\n", w.Name, w.State)
			return nil
		},
	}
	stopFlags(cmd, &req, &timeout)
	return cmd
}

func newRestartCmd(a *app) *cobra.Command {
	var req api.StopRequest
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "restart NAME [--force] [--timeout 60s]",
		Short: "Stop a workspace cleanly, then start it again",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req.Timeout = timeout.String()
			w, err := a.client().Restart(cmd.Context(), args[0], req)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "workspace %q is %s\n", w.Name, w.State)
			return nil
		},
	}
	stopFlags(cmd, &req, &timeout)
	return cmd
}
