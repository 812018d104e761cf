package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/workspace-sandbox/workspace/internal/contexts"
)

func newContextCmd(a *app) *cobra.Command {
	cmd := group("context", "Name the daemons you use (this machine's, or servers over SSH) and choose one",
		newContextAddCmd(a), newContextUseCmd(a), newContextLsCmd(a), newContextRmCmd(a), newContextShowCmd(a))
	cmd.Long = `A context names a daemon: ssh://[USER@]HOST[:PORT] for a workspace server
reached over SSH, or unix:///PATH for a daemon socket on this machine.
"workspace context use NAME" makes every later command talk to it;
"default" is the daemon on this machine.

Which daemon a command talks to, first match wins: --host or --context,
--socket, WORKSPACE_HOST or WORKSPACE_CONTEXT, WORKSPACE_SOCKET, the
current context, the default socket.

Contexts are kept in contexts.json in your config folder (on Linux
~/.config/workspace), readable only by you.`
	return cmd
}

func newContextAddCmd(a *app) *cobra.Command {
	var desc string
	var use bool
	cmd := command("add NAME HOST", "Name a daemon: ssh://[USER@]HOST[:PORT] or unix:///PATH", cobra.ExactArgs(2),
		func(cmd *cobra.Command, args []string) error {
			name, host := args[0], args[1]
			if err := contexts.ValidName(name); err != nil {
				return err
			}
			ep, err := parseHost(host)
			if err != nil {
				return err
			}
			st, f, err := a.loadContexts()
			if err != nil {
				return err
			}
			if _, ok := f.Find(name); ok {
				return fmt.Errorf("context %q already exists: remove it first (workspace context rm %s)", name, name)
			}
			f.Contexts = append(f.Contexts, contexts.Context{Name: name, Host: ep.String(), Description: desc})
			if use {
				f.Current = name
			}
			if err := st.Save(f); err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "added context %q: %s\n", name, ep.String())
			if use {
				fmt.Fprintf(a.stdout, "every command now talks to %s\n", ep.String())
			}
			return nil
		})
	cmd.Example = `  workspace context add lab ssh://alice@lab.example.com
  workspace context add home ssh://me@homeserver:2222 --description "the box under the desk" --use`
	cmd.Flags().StringVar(&desc, "description", "", "what the context is, shown by context ls")
	cmd.Flags().BoolVar(&use, "use", false, "make it the current context")
	return cmd
}

func newContextUseCmd(a *app) *cobra.Command {
	return command("use NAME", `Make NAME the current context ("default": the daemon on this machine)`, cobra.ExactArgs(1),
		func(cmd *cobra.Command, args []string) error {
			name := args[0]
			st, f, err := a.loadContexts()
			if err != nil {
				return err
			}
			target := "the daemon on this machine"
			if name == contexts.Default {
				f.Current = ""
			} else {
				c, ok := f.Find(name)
				if !ok {
					return fmt.Errorf("no context named %q (workspace context ls)", name)
				}
				f.Current, target = name, c.Host
			}
			if err := st.Save(f); err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "current context: %s (%s)\n", name, target)
			return nil
		})
}

// contextRow is a line of `context ls --json`.
type contextRow struct {
	Name        string `json:"name"`
	Host        string `json:"host"`
	Description string `json:"description,omitempty"`
	Current     bool   `json:"current"`
}

func newContextLsCmd(a *app) *cobra.Command {
	cmd := readCmd(a, command("ls", "List the contexts; * marks the current one", cobra.NoArgs, nil),
		func(*cobra.Command, []string) ([]contextRow, error) {
			_, f, err := a.loadContexts()
			if err != nil {
				return nil, err
			}
			rows := []contextRow{{Name: contexts.Default, Host: endpoint{socket: a.socket}.String(), Description: "the daemon on this machine", Current: f.Current == ""}}
			for _, c := range f.Contexts {
				rows = append(rows, contextRow{Name: c.Name, Host: c.Host, Description: c.Description, Current: c.Name == f.Current})
			}
			return rows, nil
		},
		func(_ []string, rows []contextRow) error {
			tw := newTable(a.stdout)
			fmt.Fprintln(tw, "NAME\tHOST\tDESCRIPTION")
			for _, r := range rows {
				mark := ""
				if r.Current {
					mark = " *"
				}
				fmt.Fprintf(tw, "%s%s\t%s\t%s\n", r.Name, mark, r.Host, r.Description)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			if ep, err := a.endpoint(); err == nil && ep.source != "the current context" && ep.source != "the default" {
				fmt.Fprintf(a.stderr, "(%s overrides the current context: commands talk to %s)\n", ep.source, ep.String())
			}
			return nil
		})
	cmd.Aliases = []string{"list"}
	return cmd
}

func newContextRmCmd(a *app) *cobra.Command {
	var force bool
	cmd := command("rm NAME...", "Remove contexts (the current one only with --force: then the default is current)", cobra.MinimumNArgs(1),
		func(cmd *cobra.Command, args []string) error {
			st, f, err := a.loadContexts()
			if err != nil {
				return err
			}
			gone := map[string]bool{}
			for _, name := range args {
				if name == contexts.Default {
					return fmt.Errorf("context %q is this machine's daemon and cannot be removed", name)
				}
				if _, ok := f.Find(name); !ok {
					return fmt.Errorf("no context named %q (workspace context ls)", name)
				}
				if name == f.Current && !force {
					return fmt.Errorf("context %q is the current one: switch first (workspace context use default), or remove it with --force", name)
				}
				gone[name] = true
			}
			kept := f.Contexts[:0]
			for _, c := range f.Contexts {
				if !gone[c.Name] {
					kept = append(kept, c)
				}
			}
			f.Contexts = kept
			if gone[f.Current] {
				f.Current = ""
			}
			if err := st.Save(f); err != nil {
				return err
			}
			for _, name := range args {
				fmt.Fprintf(a.stdout, "removed context %q\n", name)
			}
			return nil
		})
	cmd.Aliases = []string{"remove"}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "also remove the current context")
	return cmd
}

// contextShow is what `context show --json` prints.
type contextShow struct {
	Context string `json:"context,omitempty"`
	Host    string `json:"host"`
	Source  string `json:"source"`
}

func newContextShowCmd(a *app) *cobra.Command {
	return readCmd(a, command("show", "Print the daemon commands talk to now, and what chose it", cobra.NoArgs, nil),
		func(*cobra.Command, []string) (contextShow, error) {
			ep, err := a.endpoint()
			if err != nil {
				return contextShow{}, err
			}
			out := contextShow{Context: ep.context, Host: ep.String(), Source: ep.source}
			if out.Context == "" && (ep.source == "the default" || ep.source == "--socket" || ep.source == "WORKSPACE_SOCKET") {
				out.Context = contexts.Default
			}
			return out, nil
		},
		func(_ []string, out contextShow) error {
			name := out.Context
			if name == "" {
				name = "(none)"
			}
			fmt.Fprintf(a.stdout, "%s\t%s\t(from %s)\n", name, out.Host, out.Source)
			return nil
		})
}
