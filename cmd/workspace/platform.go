package main

import (
	"errors"
	"fmt"
	"runtime"
	"sort"
	"strings"

	"github.com/spf13/cobra"
)

// errLinuxHost marks the error of a command that runs only on the Linux host.
var errLinuxHost = errors.New("needs the Linux host")

// clientSide lists the commands that work without a daemon, on any OS: what
// a client runs on an export or as a witness, and the CLI's own.
var clientSide = map[string]bool{
	"workspace diary verify":        true,
	"workspace diary verify-reveal": true,
	"workspace profile validate":    true,
	"workspace version":             true,
	"workspace completion":          true,
	"workspace help":                true,
	// A client's own witness runs wherever the client does.
	"workspace witness init":    true,
	"workspace witness serve":   true,
	"workspace witness add-log": true,
	"workspace witness logs":    true,
}

// isClientSide says whether cmd (or the command it is under, for
// `completion bash` and the like) is a client-side command.
func isClientSide(cmd *cobra.Command) bool {
	for c := cmd; c != nil; c = c.Parent() {
		if clientSide[c.CommandPath()] {
			return true
		}
	}
	return cmd.Parent() == nil // the bare `workspace` prints help
}

// needsLinuxHost is the error of a daemon-side command on an OS where no
// daemon runs.
func needsLinuxHost(cmd *cobra.Command) error {
	return fmt.Errorf("%s %w, where the workspace daemon runs; this is %s, where this CLI does the client's side: %s",
		cmd.CommandPath(), errLinuxHost, osName(), clientSideList())
}

// hostHint explains a failed daemon-side command on macOS and Windows.
func hostHint(cmd *cobra.Command, err error) string {
	if runtime.GOOS == "linux" || cmd == nil || isClientSide(cmd) || errors.Is(err, errLinuxHost) {
		return ""
	}
	return fmt.Sprintf("%s talks to the workspace daemon, which runs on a Linux host: reach one over SSH with --host ssh://USER@HOST (or a context); without one, on %s this CLI does the client's side: %s",
		cmd.CommandPath(), osName(), clientSideList())
}

func clientSideList() string {
	var names []string
	for path := range clientSide {
		if name := strings.TrimPrefix(path, "workspace "); name != "help" {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

func osName() string {
	switch runtime.GOOS {
	case "darwin":
		return "macOS"
	case "windows":
		return "Windows"
	}
	return strings.ToUpper(runtime.GOOS[:1]) + runtime.GOOS[1:]
}

// linuxOnlyCmd stands for a command that exists only on the Linux host.
func linuxOnlyCmd(use, short string) *cobra.Command {
	return &cobra.Command{
		Use:                use,
		Short:              short,
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return needsLinuxHost(cmd)
		},
	}
}
