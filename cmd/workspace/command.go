package main

import "github.com/spf13/cobra"

// command is a cobra command from its use line, its short help, its rule
// for arguments and what it runs; callers add long help, aliases, flags.
func command(use, short string, args cobra.PositionalArgs, run func(cmd *cobra.Command, args []string) error) *cobra.Command {
	return &cobra.Command{Use: use, Short: short, Args: args, RunE: run}
}

// group is a command that only holds subcommands.
func group(use, short string, subs ...*cobra.Command) *cobra.Command {
	cmd := &cobra.Command{Use: use, Short: short}
	cmd.AddCommand(subs...)
	return cmd
}

// readCmd makes c a read command: get fetches what it shows; with --json
// that is printed as JSON, else show prints it for people.
func readCmd[T any](a *app, c *cobra.Command, get func(cmd *cobra.Command, args []string) (T, error), show func(args []string, v T) error) *cobra.Command {
	var asJSON bool
	c.RunE = func(cmd *cobra.Command, args []string) error {
		v, err := get(cmd, args)
		if err != nil {
			return err
		}
		if asJSON {
			return printJSON(a.stdout, v)
		}
		return show(args, v)
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return c
}
