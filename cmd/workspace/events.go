package main

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/workspace-sandbox/workspace/api"
)

func newEventsCmd(a *app) *cobra.Command {
	var asJSON bool
	cmd := command("events [--json]", "Stream lifecycle events of workspaces (JSON lines with --json) until interrupted", cobra.NoArgs, func(cmd *cobra.Command, _ []string) error {
		enc := json.NewEncoder(a.stdout)
		return a.client().Events(cmd.Context(), func(ev api.Event) error {
			if asJSON {
				return enc.Encode(ev)
			}
			_, err := fmt.Fprintf(a.stdout, "%s  %-12s %s %s\n", ev.Time.Local().Format(time.TimeOnly), ev.Type, ev.Workspace, ev.Detail)
			return err
		})
	})
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON object per line")
	return cmd
}
