package main

import (
	"fmt"
	"os"
	"os/exec"

	"github.com/spf13/cobra"
)

func newUICmd(a *app) *cobra.Command {
	var noOpen bool
	cmd := &cobra.Command{
		Use:   "ui",
		Short: "Open the work diary in the browser (prints a one-time login link)",
		Long: `ui asks the daemon for a one-time login link to its web UI (on 127.0.0.1:7420
unless the daemon was told otherwise), prints it, and opens it in the
browser when there is one. The link works once, for five minutes; the
browser then keeps a session cookie.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			l, err := a.client().UILogin(cmd.Context())
			if err != nil {
				return err
			}
			fmt.Fprintln(a.stdout, l.URL)
			if noOpen || (os.Getenv("DISPLAY") == "" && os.Getenv("WAYLAND_DISPLAY") == "") {
				return nil
			}
			if p, err := exec.LookPath("xdg-open"); err == nil {
				c := exec.Command(p, l.URL)
				if err := c.Start(); err == nil {
					go c.Wait()
				}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&noOpen, "no-open", false, "only print the link")
	return cmd
}
