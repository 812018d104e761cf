package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/workspace-sandbox/workspace/api"
)

func newStartCmd(a *app) *cobra.Command {
	var req api.StartRequest
	var timeout time.Duration
	cmd := command("start NAME", "Boot a workspace, or resume a suspended one", cobra.ExactArgs(1), func(cmd *cobra.Command, args []string) error {
		req.Timeout = timeout.String()
		if req.Wait {
			fmt.Fprintf(a.stderr, "starting %s and waiting for the guest to boot (up to %s)...\n", args[0], timeout)
		}
		w, err := a.client().Start(cmd.Context(), args[0], req)
		if err != nil {
			return err
		}
		if w.Notice != "" {
			fmt.Fprintf(a.stderr, "note: %s\n", w.Notice)
		}
		fmt.Fprintf(a.stdout, "workspace %q is %s\n", w.Name, w.State)
		return nil
	})
	cmd.Flags().BoolVar(&req.Wait, "wait", false, "wait until the guest has booted")
	cmd.Flags().DurationVar(&timeout, "timeout", 2*time.Minute, "how long --wait waits")
	return cmd
}
