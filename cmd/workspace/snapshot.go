package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/workspace-sandbox/workspace/api"
)

func newSnapshotCmd(a *app) *cobra.Command {
	var snap string
	var asJSON bool
	take := func(cmd *cobra.Command, args []string) error {
		if err := api.ValidateWorkspaceName(args[0]); err != nil {
			return err
		}
		if snap != "" {
			if err := api.ValidateSnapshotName(snap); err != nil {
				return err
			}
		}
		s, err := a.client().CreateSnapshot(cmd.Context(), args[0], api.SnapshotRequest{Name: snap})
		if err != nil {
			return err
		}
		if asJSON {
			return printJSON(a.stdout, s)
		}
		what := "disk only, taken while stopped"
		if s.Memory {
			what = "disk and memory, taken while " + s.State
		}
		fmt.Fprintf(a.stdout, "snapshot %q of workspace %q taken (%s); restore it with `workspace restore %s %s`\n", s.Name, args[0], what, args[0], s.Name)
		return nil
	}
	cmd := &cobra.Command{
		Use:   "snapshot NAME [--name SNAP]",
		Short: "Take a snapshot of a workspace; list, restore and delete snapshots",
		Long: `snapshot takes a snapshot of workspace NAME, kept inside its disk overlay.
Taken while the workspace is stopped it holds the disk; taken while it runs
it also holds the memory, and restoring it brings the VM back running at
that moment. Without --name the snapshot is named after the time
(20261123-1504). Names are 1-64 letters, digits, '.', '_' or '-'.

A workspace with a virtiofs share (or a 9p share the guest has mounted)
cannot save its memory: snapshot it while it is stopped. Disposable
workspaces have no snapshots.

  workspace snapshot NAME [--name SNAP]       take one
  workspace snapshot list NAME [--json]       list them
  workspace snapshot restore NAME SNAP        return to one (also: workspace restore NAME SNAP)
  workspace snapshot rm NAME SNAP             delete one`,
		Args: cobra.ExactArgs(1),
		RunE: take,
	}
	cmd.Flags().StringVar(&snap, "name", "", "snapshot name (default: the time, like 20261123-1504)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the snapshot as JSON")

	// The explicit form, also for workspaces named list, restore or rm.
	create := &cobra.Command{
		Use:   "create NAME [--name SNAP]",
		Short: "Take a snapshot of a workspace (as `workspace snapshot NAME`)",
		Args:  cobra.ExactArgs(1),
		RunE:  take,
	}
	create.Flags().StringVar(&snap, "name", "", "snapshot name (default: the time, like 20261123-1504)")
	create.Flags().BoolVar(&asJSON, "json", false, "print the snapshot as JSON")

	cmd.AddCommand(create, newSnapshotListCmd(a), newSnapshotRestoreCmd(a), newSnapshotRmCmd(a))
	return cmd
}

func newSnapshotListCmd(a *app) *cobra.Command {
	cmd := command("list NAME", "List a workspace's snapshots, oldest first", cobra.ExactArgs(1), nil)
	cmd.Aliases = []string{"ls"}
	return readCmd(a, cmd,
		func(cmd *cobra.Command, args []string) ([]api.Snapshot, error) {
			return a.client().Snapshots(cmd.Context(), args[0])
		},
		func(args []string, snaps []api.Snapshot) error {
			if len(snaps) == 0 {
				fmt.Fprintf(a.stderr, "workspace %q has no snapshots yet: take one with `workspace snapshot %s`\n", args[0], args[0])
				return nil
			}
			tw := newTable(a.stdout)
			fmt.Fprintln(tw, "NAME\tTAKEN\tSTATE\tMEMORY\tCURRENT")
			for _, s := range snaps {
				mem, cur := "no", ""
				if s.Memory {
					mem = "yes"
				}
				if s.Current {
					cur = "*"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", s.Name, s.CreatedAt.Local().Format("2006-01-02 15:04:05"), s.State, mem, cur)
			}
			return tw.Flush()
		})
}

// restoreSnapshot returns a workspace to a snapshot and says what it is now.
func restoreSnapshot(cmd *cobra.Command, a *app, name, snap string) error {
	if err := api.ValidateWorkspaceName(name); err != nil {
		return err
	}
	if err := api.ValidateSnapshotName(snap); err != nil {
		return err
	}
	r, err := a.client().RestoreSnapshot(cmd.Context(), name, snap)
	if err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "workspace %q restored to snapshot %q (taken %s); it is %s\n",
		name, r.Snapshot.Name, r.Snapshot.CreatedAt.Local().Format(time.RFC3339), r.Workspace.State)
	return nil
}

func newSnapshotRestoreCmd(a *app) *cobra.Command {
	cmd := command("restore NAME SNAP", "Return a workspace to a snapshot (its disk, and its running state if taken running)", cobra.ExactArgs(2),
		func(cmd *cobra.Command, args []string) error { return restoreSnapshot(cmd, a, args[0], args[1]) })
	cmd.Long = `restore returns workspace NAME to snapshot SNAP: its disk, and for a
snapshot taken while it ran, the running VM at that moment. What the
workspace has now (disk changes, and a running VM's state) is lost; the
snapshot stays. A snapshot that does not exist changes nothing.`
	return cmd
}

func newSnapshotRmCmd(a *app) *cobra.Command {
	cmd := command("rm NAME SNAP", "Delete a snapshot of a workspace", cobra.ExactArgs(2), func(cmd *cobra.Command, args []string) error {
		if err := a.client().DeleteSnapshot(cmd.Context(), args[0], args[1]); err != nil {
			return err
		}
		fmt.Fprintf(a.stdout, "snapshot %q of workspace %q deleted\n", args[1], args[0])
		return nil
	})
	cmd.Aliases = []string{"delete"}
	return cmd
}
