package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/workspace-sandbox/workspace/profiles"
)

func newProfileCmd(a *app) *cobra.Command {
	return group("profile", "Validate and show profiles (works without the daemon)", newProfileValidateCmd(a), newProfileShowCmd(a))
}

func newProfileValidateCmd(a *app) *cobra.Command {
	return command("validate FILE...", "Check profiles; print every problem with file:line:col and exit 1 on any", cobra.MinimumNArgs(1), func(_ *cobra.Command, args []string) error {
		failed := 0
		for _, path := range args {
			if _, err := profiles.Load(path); err != nil {
				failed++
				fmt.Fprintln(a.stderr, strings.TrimRight(err.Error(), "\n"))
				continue
			}
			fmt.Fprintf(a.stdout, "%s: ok\n", path)
		}
		if failed > 0 {
			return &exitError{code: 1, msg: fmt.Sprintf("%d of %d profiles have errors", failed, len(args))}
		}
		return nil
	})
}

func newProfileShowCmd(a *app) *cobra.Command {
	return readCmd(a, command("show FILE [--json]", "Print a profile after extends, merging and defaults", cobra.ExactArgs(1), nil),
		func(_ *cobra.Command, args []string) (*profiles.Profile, error) {
			p, err := profiles.Load(args[0])
			if err != nil {
				return nil, &exitError{code: 1, msg: strings.TrimRight(err.Error(), "\n")}
			}
			return p, nil
		}, func(_ []string, p *profiles.Profile) error { return printProfile(a.stdout, p) })
}

func printProfile(w io.Writer, p *profiles.Profile) error {
	tw := newTable(w)
	fmt.Fprintf(tw, "source:\t%s\n", p.Source)
	for _, e := range p.Extends {
		fmt.Fprintf(tw, "extends:\t%s\n", e)
	}
	fmt.Fprintf(tw, "image:\t%s\n", p.Image)
	fmt.Fprintf(tw, "cpus:\t%d\n", p.CPUs)
	fmt.Fprintf(tw, "memory:\t%s\n", p.Memory)
	fmt.Fprintf(tw, "disk:\t%s\n", p.Disk)
	fmt.Fprintf(tw, "network:\t%s", p.Network.Mode)
	if len(p.Network.Allow) > 0 {
		fmt.Fprintf(tw, " (allow %s)", strings.Join(p.Network.Allow, ", "))
	}
	fmt.Fprintln(tw)
	fmt.Fprintf(tw, "display:\t%s\n", p.Display.Type)
	fmt.Fprintf(tw, "clipboard:\t%s\n", p.Clipboard)
	for _, s := range p.Shares {
		mode := "read-only"
		if !s.ReadOnly {
			mode = "read-write"
		}
		fmt.Fprintf(tw, "share %s:\t%s (%s)\n", s.Tag, s.Host, mode)
	}
	t := p.Tracking
	fmt.Fprintf(tw, "tracking:\tslot %s, %d screenshots per slot, idle after %s, blur %v, jpeg quality %d, spool %s\n",
		t.Slot, t.ScreenshotsPerSlot, t.IdleTimeout, t.Blur, t.JPEGQuality, t.SpoolLimit)
	if p.Client != nil {
		fmt.Fprintf(tw, "client:\t%s %s\n", p.Client.Name, p.Client.Recipient)
	}
	if pr := p.Provision; len(pr.Packages) > 0 {
		fmt.Fprintf(tw, "packages:\t%s\n", strings.Join(pr.Packages, " "))
	}
	for _, s := range p.Provision.Scripts {
		fmt.Fprintf(tw, "script (root, first boot):\t%s, %d lines\n", s.From, strings.Count(strings.TrimRight(s.Text, "\n"), "\n")+1)
	}
	for _, s := range p.Provision.UserScripts {
		fmt.Fprintf(tw, "script (user, first login):\t%s, %d lines\n", s.From, strings.Count(strings.TrimRight(s.Text, "\n"), "\n")+1)
	}
	return tw.Flush()
}
