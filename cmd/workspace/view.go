package main

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/workspace-sandbox/workspace/api"
)

// defaultViewer is virt-viewer's client for VNC and SPICE URIs.
const defaultViewer = "remote-viewer"

// installViewerHint is what to do when remote-viewer is missing.
const installViewerHint = "install virt-viewer (sudo apt install virt-viewer)"

// viewInfo is what `view --print --json` prints.
type viewInfo struct {
	Workspace string `json:"workspace"`
	Display   string `json:"display"`
	URI       string `json:"uri"`
	Socket    string `json:"socket"`
}

func newViewCmd(a *app) *cobra.Command {
	var printOnly, asJSON bool
	var viewer string
	cmd := &cobra.Command{
		Use:   "view NAME",
		Short: "Open a workspace's display in remote-viewer (virt-viewer)",
		Long: `view opens the desktop of a running workspace in remote-viewer.

The VM's display (VNC or SPICE, as its profile says) listens only on a unix
socket that belongs to QEMU's user, never on TCP. view makes a private
socket of your own (in a 0700 folder under $XDG_RUNTIME_DIR), joins every
connection to it to the display through the daemon, runs remote-viewer on
it ("spice+unix:///…"), and cleans up when the viewer closes.

remote-viewer opens VNC only by host and port: for a VNC display, view
also listens on an ephemeral 127.0.0.1 port while the viewer runs, and
serves only connections that belong to your own user.

With the daemon on another host (--host ssh://... or a context), the viewer
and its socket are on this machine and every stream goes through ssh.

With --print it only makes the socket and prints its URI
(vnc+unix:///… or spice+unix:///…) for another client, until interrupted.
`,
		Example: `  workspace view acme
  workspace view acme --print`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			printOnly = printOnly || asJSON
			var viewerPath string
			if !printOnly {
				p, err := findViewer(viewer)
				if err != nil {
					return err
				}
				viewerPath = p
				if os.Getenv("DISPLAY") == "" && os.Getenv("WAYLAND_DISPLAY") == "" {
					return fmt.Errorf("view %q: no graphical session here (DISPLAY and WAYLAND_DISPLAY are unset): run it in your desktop session, or use --print and another viewer", name)
				}
			}
			ctx := cmd.Context()
			c := a.client()
			w, err := c.Workspace(ctx, name)
			if err != nil {
				return err
			}
			scheme, err := viewScheme(w)
			if err != nil {
				return err
			}
			// remote-viewer 11 opens SPICE on a unix socket but VNC only by
			// host and port: for VNC it gets a same-user loopback port.
			loopback := !printOnly && w.Display == "vnc"
			px, err := startViewProxy(ctx, func(ctx context.Context) (net.Conn, error) { return c.Display(ctx, name) },
				func(err error) { fmt.Fprintf(a.stderr, "view %s: %v\n", name, err) }, loopback)
			if err != nil {
				return fmt.Errorf("view %q: %w", name, err)
			}
			defer px.Close()
			uri := (&url.URL{Scheme: scheme, Path: px.socket}).String()

			if printOnly {
				info := viewInfo{Workspace: name, Display: w.Display, URI: uri, Socket: px.socket}
				if asJSON {
					if err := printJSON(a.stdout, info); err != nil {
						return err
					}
				} else {
					fmt.Fprintln(a.stdout, uri)
				}
				fmt.Fprintf(a.stderr, "the %s display of %s is at %s until you press Ctrl-C\n", w.Display, name, uri)
				<-ctx.Done()
				return nil
			}
			if px.loopback != "" {
				uri = "vnc://" + px.loopback
			}
			return runViewer(ctx, a, viewerPath, name, uri)
		},
	}
	cmd.Flags().BoolVar(&printOnly, "print", false, "only make the display socket and print its URI (for another viewer); runs until interrupted")
	cmd.Flags().BoolVar(&asJSON, "json", false, "with --print: print the URI and socket as JSON")
	cmd.Flags().StringVar(&viewer, "viewer", defaultViewer, "the viewer program; it gets remote-viewer's arguments (--title T URI)")
	return cmd
}

// findViewer resolves the viewer program, or says what to install.
func findViewer(viewer string) (string, error) {
	p, err := exec.LookPath(viewer)
	if err == nil {
		return p, nil
	}
	if viewer == defaultViewer {
		return "", fmt.Errorf("remote-viewer is not installed (not found on PATH): %s", installViewerHint)
	}
	return "", fmt.Errorf("viewer %q: %w", viewer, err)
}

// viewScheme is the remote-viewer URI scheme of a workspace's display, or
// why it cannot be viewed.
func viewScheme(w api.Workspace) (string, error) {
	if w.Display == "none" || w.DisplaySocket == "" {
		return "", fmt.Errorf("workspace %q has no display: its profile says display { type = \"none\" }", w.Name)
	}
	if w.State != api.StateRunning {
		return "", fmt.Errorf("workspace %q is %s: start it first (workspace start %s)", w.Name, w.State, w.Name)
	}
	switch w.Display {
	case "vnc":
		return "vnc+unix", nil
	case "spice":
		return "spice+unix", nil
	}
	return "", fmt.Errorf("workspace %q: display type %q cannot be viewed", w.Name, w.Display)
}

// runViewer runs the viewer on uri until it exits (or ctx ends: then it is
// asked to quit with SIGTERM).
func runViewer(ctx context.Context, a *app, viewerPath, name, uri string) error {
	vc := exec.CommandContext(ctx, viewerPath, "--title", name+" - workspace", uri)
	vc.Stdout, vc.Stderr = a.stderr, a.stderr
	vc.Cancel = func() error { return vc.Process.Signal(syscall.SIGTERM) }
	vc.WaitDelay = 5 * time.Second
	err := vc.Run()
	if ctx.Err() != nil {
		return nil
	}
	if err != nil {
		return fmt.Errorf("view %q: %s: %w", name, viewerPath, err)
	}
	return nil
}
