package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/workspace-sandbox/workspace/api"
	"github.com/workspace-sandbox/workspace/internal/safetext"
	"github.com/workspace-sandbox/workspace/provision"
)

func newStartCmd(a *app) *cobra.Command {
	var req api.StartRequest
	var timeout time.Duration
	var waitProvision bool
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
		if waitProvision && w.Provisioning != nil {
			return a.followProvisioning(cmd.Context(), w.Name)
		}
		return nil
	})
	cmd.Flags().BoolVar(&req.Wait, "wait", false, "wait until the guest has booted")
	cmd.Flags().BoolVar(&waitProvision, "provision", false, "also wait for the profile's provisioning (packages, first-boot scripts), showing its steps")
	cmd.Flags().DurationVar(&timeout, "timeout", 2*time.Minute, "how long --wait waits")
	return cmd
}

// followProvisioning shows each step of a workspace's provisioning until
// both phases are over; a failed phase fails the command.
func (a *app) followProvisioning(ctx context.Context, name string) error {
	start := time.Now()
	last := ""
	for {
		w, err := a.client().Workspace(ctx, name)
		if err != nil {
			return err
		}
		st := w.Provisioning
		if st == nil {
			return nil
		}
		phase := func(p provision.Phase) string {
			if p.Step == "" {
				return p.State
			}
			return p.State + " (" + p.Step + ")"
		}
		line := "root " + phase(st.Root) + ", user " + phase(st.User)
		if line != last {
			fmt.Fprintf(a.stderr, "[%s] provisioning: %s\n", fmtElapsed(time.Since(start)), safetext.Term(line))
			last = line
		}
		if st.Final() {
			tw := newTable(a.stdout)
			printProvisioning(tw, st)
			tw.Flush()
			if st.Root.State == provision.Failed || st.User.State == provision.Failed {
				return &exitError{code: 1, msg: fmt.Sprintf("provisioning of %q failed (workspace status %s)", name, name)}
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(2 * time.Second):
		}
	}
}

func fmtElapsed(d time.Duration) string {
	d = d.Round(time.Second)
	return fmt.Sprintf("%02d:%02d", int(d.Minutes()), int(d.Seconds())%60)
}
