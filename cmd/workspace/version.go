package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/workspace-sandbox/workspace/api"
)

func newVersionCmd(a *app) *cobra.Command {
	var asJSON bool
	cmd := command("version", "Print the CLI's and the daemon's versions", cobra.NoArgs, func(cmd *cobra.Command, _ []string) error {
		info, err := a.client().Info(cmd.Context())
		if err != nil && !errors.Is(err, api.ErrDaemonNotRunning) {
			return err
		}
		if asJSON {
			return printJSON(a.stdout, map[string]any{"client": version, "daemon": info})
		}
		fmt.Fprintf(a.stdout, "client: %s\n", version)
		if err != nil {
			fmt.Fprintf(a.stdout, "daemon: not running (%s)\n", a.client().Where())
			return nil
		}
		fmt.Fprintf(a.stdout, "daemon: %s (libvirt %s, connected %v, domain type %s)\n", info.Version, info.LibvirtURI, info.Connected, info.DomainType)
		return nil
	})
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
