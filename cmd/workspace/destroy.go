package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newDestroyCmd(a *app) *cobra.Command {
	var yes bool
	cmd := command("destroy NAME --yes", "Delete a workspace: power it off, undefine it, delete its disk overlay and network", cobra.ExactArgs(1), func(cmd *cobra.Command, args []string) error {
		if !yes {
			return fmt.Errorf("destroy deletes workspace %q and its disk for good; add --yes to confirm", args[0])
		}
		if err := a.client().Destroy(cmd.Context(), args[0]); err != nil {
			return err
		}
		fmt.Fprintf(a.stdout, "workspace %q destroyed\n", args[0])
		return nil
	})
	cmd.Flags().BoolVar(&yes, "yes", false, "confirm")
	return cmd
}
