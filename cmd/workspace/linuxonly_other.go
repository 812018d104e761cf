//go:build !linux

package main

import (
	"github.com/spf13/cobra"
)

// On macOS and Windows this CLI is the client's side: the daemon and the
// image build need the Linux host (libvirt, mmdebstrap), so their commands
// stay in the tree (help and completion show them) and say so when run.

func newDaemonCmd(*app) *cobra.Command {
	return linuxOnlyCmd("daemon", "Run the host daemon (on the Linux host only)")
}

func newImageBuildCmd(*app) *cobra.Command {
	return linuxOnlyCmd("build", "Build the desktop image (on the Linux host only)")
}
