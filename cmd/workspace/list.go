package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"
)

func newListCmd(a *app) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List workspaces",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ws, err := a.client().Workspaces(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(a.stdout, ws)
			}
			if len(ws) == 0 {
				fmt.Fprintln(a.stderr, "no workspaces yet: create one with `workspace create NAME --profile FILE`")
				return nil
			}
			tw := newTable(a.stdout)
			fmt.Fprintln(tw, "NAME\tSTATE\tIMAGE\tDISPLAY\tCREATED\tDISPOSABLE")
			now := time.Now()
			for _, w := range ws {
				disposable := "no"
				if w.Disposable {
					disposable = "yes"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", w.Name, w.State, w.Image, w.Display, humanAge(w.CreatedAt, now), disposable)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
