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
		// The client's version prints whatever the daemon's state: on
		// macOS and Windows there is no daemon to ask.
		info, err := a.client().Info(cmd.Context())
		if asJSON {
			out := map[string]any{"client": version, "daemon": info}
			if err != nil {
				out["daemon"], out["daemon_error"] = nil, err.Error()
			}
			return printJSON(a.stdout, out)
		}
		fmt.Fprintf(a.stdout, "client: %s\n", version)
		if errors.Is(err, api.ErrDaemonNotRunning) {
			fmt.Fprintf(a.stdout, "daemon: not running (%s)\n", a.client().Where())
			return nil
		}
		if err != nil {
			fmt.Fprintf(a.stdout, "daemon: not reachable: %v\n", err)
			return nil
		}
		fmt.Fprintf(a.stdout, "daemon: %s (libvirt %s, connected %v, domain type %s)\n", info.Version, info.LibvirtURI, info.Connected, info.DomainType)
		return nil
	})
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
