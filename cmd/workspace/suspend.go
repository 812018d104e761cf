package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/workspace-sandbox/workspace/api"
)

func newSuspendCmd(a *app) *cobra.Command {
	return command("suspend NAME", "Save a running workspace's memory to disk and free its host memory (`workspace start` resumes it)", cobra.ExactArgs(1), func(cmd *cobra.Command, args []string) error {
		w, err := a.client().Suspend(cmd.Context(), args[0])
		if err != nil {
			return err
		}
		fmt.Fprintf(a.stdout, "workspace %q is %s%s\n", w.Name, w.State, savedSuffix(w))
		return nil
	})
}

func newSwitchCmd(a *app) *cobra.Command {
	var req api.StartRequest
	var timeout time.Duration
	cmd := command("switch NAME", "Suspend every other running workspace, then start or resume NAME", cobra.ExactArgs(1), func(cmd *cobra.Command, args []string) error {
		req.Timeout = timeout.String()
		res, err := a.client().Switch(cmd.Context(), args[0], req)
		if len(res.Suspended) > 0 {
			fmt.Fprintf(a.stderr, "suspended: %s\n", strings.Join(res.Suspended, ", "))
		}
		for _, n := range res.Notices {
			fmt.Fprintf(a.stderr, "note: %s\n", n)
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(a.stdout, "workspace %q is %s\n", res.Workspace.Name, res.Workspace.State)
		return nil
	})
	cmd.Flags().BoolVar(&req.Wait, "wait", false, "wait until the guest has booted (a resumed guest has)")
	cmd.Flags().DurationVar(&timeout, "timeout", 2*time.Minute, "how long --wait waits")
	return cmd
}

// savedSuffix names a suspended workspace's saved state and its size.
func savedSuffix(w api.Workspace) string {
	if w.Saved == nil {
		return ""
	}
	return fmt.Sprintf(" (saved state %s)", humanBytes(uint64(w.Saved.Bytes)))
}
