package main

import (
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/workspace-sandbox/workspace/api"
	"github.com/workspace-sandbox/workspace/internal/safetext"
	"github.com/workspace-sandbox/workspace/provision"
)

func newStatusCmd(a *app) *cobra.Command {
	return readCmd(a, command("status NAME", "Show a workspace", cobra.ExactArgs(1), nil),
		func(cmd *cobra.Command, args []string) (api.Workspace, error) {
			return a.client().Workspace(cmd.Context(), args[0])
		},
		func(_ []string, w api.Workspace) error {
			tw := newTable(a.stdout)
			fmt.Fprintf(tw, "name:\t%s\n", w.Name)
			fmt.Fprintf(tw, "state:\t%s\n", w.State)
			if w.Saved != nil {
				fmt.Fprintf(tw, "saved state:\t%s, saved %s (`workspace start %s` resumes it)\n", humanBytes(uint64(w.Saved.Bytes)), w.Saved.SavedAt.Local().Format(time.RFC3339), w.Name)
			}
			if w.RSSBytes > 0 {
				fmt.Fprintf(tw, "host memory:\t%s (RSS of the VM on the host)\n", humanBytes(w.RSSBytes))
			}
			fmt.Fprintf(tw, "image:\t%s\n", w.Image)
			fmt.Fprintf(tw, "profile:\t%s\n", w.Profile)
			fmt.Fprintf(tw, "created:\t%s\n", w.CreatedAt.Local().Format(time.RFC3339))
			fmt.Fprintf(tw, "domain:\t%s\n", w.Domain)
			if w.Disposable {
				fmt.Fprintf(tw, "disposable:\tyes (every change to the disk is thrown away at stop)\n")
			}
			if s := w.Settings; s != nil {
				fmt.Fprintf(tw, "resources:\t%d CPUs, %s memory, %s disk\n", s.CPUs, s.Memory, s.Disk)
				fmt.Fprintf(tw, "network:\t%s\n", s.Network.Mode)
				fmt.Fprintf(tw, "clipboard:\t%s\n", s.Clipboard)
			}
			fmt.Fprintf(tw, "display:\t%s\n", w.Display)
			if w.Agent != nil {
				fmt.Fprintf(tw, "agent:\t%s\n", agentLine(*w.Agent))
			}
			printWitnessState(tw, w.Witness)
			printProvisioning(tw, w.Provisioning)
			if w.DisplaySocket != "" {
				fmt.Fprintf(tw, "display socket:\t%s\n", w.DisplaySocket)
			}
			if w.ConsoleLog != "" {
				fmt.Fprintf(tw, "console log:\t%s\n", w.ConsoleLog)
			}
			return tw.Flush()
		})
}

// printProvisioning shows each phase: its state, what it does or where it
// failed (exit status and last lines: the guest's text, escaped).
func printProvisioning(w io.Writer, st *provision.Status) {
	if st == nil {
		return
	}
	for _, ph := range []struct {
		name string
		p    provision.Phase
	}{{"provisioning (root):", st.Root}, {"provisioning (user):", st.User}} {
		line := ph.p.State
		if ph.p.Exit != nil && ph.p.State == provision.Failed {
			line += fmt.Sprintf(" with exit status %d", *ph.p.Exit)
		}
		if ph.p.Step != "" {
			line += " (" + safetext.Term(ph.p.Step) + ")"
		}
		fmt.Fprintf(w, "%s\t%s\n", ph.name, line)
		for _, l := range ph.p.Lines {
			fmt.Fprintf(w, "\t| %s\n", safetext.Term(l))
		}
	}
}
