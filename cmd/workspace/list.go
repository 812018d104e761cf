package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/workspace-sandbox/workspace/api"
)

func newListCmd(a *app) *cobra.Command {
	cmd := command("list", "List workspaces", cobra.NoArgs, nil)
	cmd.Aliases = []string{"ls"}
	return readCmd(a, cmd,
		func(cmd *cobra.Command, _ []string) ([]api.Workspace, error) {
			return a.client().Workspaces(cmd.Context())
		},
		func(_ []string, ws []api.Workspace) error {
			if len(ws) == 0 {
				fmt.Fprintln(a.stderr, "no workspaces yet: create one with `workspace create NAME --profile FILE`")
				return nil
			}
			tw := newTable(a.stdout)
			fmt.Fprintln(tw, "NAME\tSTATE\tIMAGE\tDISPLAY\tCREATED\tDISPOSABLE\tMEMORY")
			now := time.Now()
			for _, w := range ws {
				disposable := "no"
				if w.Disposable {
					disposable = "yes"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", w.Name, w.State, w.Image, w.Display, humanAge(w.CreatedAt, now), disposable, memoryColumn(w))
			}
			return tw.Flush()
		})
}

// memoryColumn is what a workspace holds: the host memory of a running
// one, the saved state on disk of a suspended one.
func memoryColumn(w api.Workspace) string {
	switch {
	case w.Saved != nil:
		return humanBytes(uint64(w.Saved.Bytes)) + " saved"
	case w.RSSBytes > 0:
		return humanBytes(w.RSSBytes) + " RSS"
	}
	return "-"
}
