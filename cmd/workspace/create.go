package main

import (
	"fmt"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/workspace-sandbox/workspace/api"
	"github.com/workspace-sandbox/workspace/profiles"
)

func newCreateCmd(a *app) *cobra.Command {
	var profilePath string
	var asJSON, disposable bool
	cmd := &cobra.Command{
		Use:   "create NAME --profile FILE [--disposable]",
		Short: "Define a workspace from a profile (does not start it)",
		Long: `create defines workspace NAME from a profile; start it with "workspace start".

With --disposable every change to the workspace's disk is thrown away when
it stops, so each start begins from the clean base image (like Windows
Sandbox or a Qubes disposable). A disposable workspace has no snapshots.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			if err := api.ValidateWorkspaceName(name); err != nil {
				return err
			}
			p, err := profiles.Load(profilePath)
			if err != nil {
				return &exitError{code: 1, msg: err.Error()}
			}
			abs, err := filepath.Abs(profilePath)
			if err != nil {
				return fmt.Errorf("profile %s: %w", profilePath, err)
			}
			w, err := a.client().Create(cmd.Context(), api.CreateRequest{Name: name, ProfilePath: abs, Profile: p, Disposable: disposable, Positions: p.Positions})
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(a.stdout, w)
			}
			if w.Disposable {
				fmt.Fprintf(a.stdout, "workspace %q is disposable: every change to its disk is thrown away when it stops\n", w.Name)
			}
			fmt.Fprintf(a.stdout, "created workspace %q (image %s, %d CPUs, %s memory, %s network); start it with `workspace start %s`\n",
				w.Name, w.Image, p.CPUs, p.Memory, p.Network.Mode, w.Name)
			return nil
		},
	}
	cmd.Flags().StringVarP(&profilePath, "profile", "p", "", "profile file (HCL)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the new workspace as JSON")
	cmd.Flags().BoolVar(&disposable, "disposable", false, "throw away every change to the disk at each stop")
	_ = cmd.MarkFlagRequired("profile")
	return cmd
}
