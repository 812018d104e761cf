package main

import (
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"strings"

	"github.com/spf13/cobra"
)

func newUICmd(a *app) *cobra.Command {
	var noOpen bool
	var port int
	cmd := &cobra.Command{
		Use:   "ui",
		Short: "Open the work diary in the browser (prints a one-time login link)",
		Long: `ui asks the daemon for a one-time login link to its web UI (on 127.0.0.1:7420
unless the daemon was told otherwise), prints it, and opens it in the
browser when there is one. The link works once, for five minutes; the
browser then keeps a session cookie.

When the daemon is on another host (--host ssh://..., or a context), ui
forwards a port on this machine's 127.0.0.1 to the web UI on the server
through the SSH connection, prints the link for this machine's browser, and
keeps forwarding until you press Ctrl-C. The port is the UI's own port
number when it is free here, another free one otherwise, or --port.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			c := a.client()
			l, err := c.UILogin(ctx)
			if err != nil {
				return err
			}
			ep, _ := a.endpoint()
			var fwd *uiForward
			if ep.remote() {
				fwd, err = startUIForward(ctx, c.UIStream, l.Base, port, func(err error) { fmt.Fprintf(a.stderr, "ui: %v\n", err) })
				if err != nil {
					return fmt.Errorf("ui: forward the web UI of %s: %w", ep, err)
				}
				defer fwd.Close()
				if l.URL, err = fwd.link(l.URL); err != nil {
					return fmt.Errorf("ui: %w", err)
				}
			} else if port != 0 {
				return fmt.Errorf("ui: --port is for a daemon on another host (--host ssh://...): this one serves its UI at %s itself", l.Base)
			}
			fmt.Fprintln(a.stdout, l.URL)
			if !noOpen {
				openBrowser(a, l.URL)
			}
			// Over SSH the link leads to the forward: it must outlive the
			// browser's opening, until Ctrl-C.
			if fwd != nil {
				if su, err := url.Parse(l.Base); err == nil && port == 0 && !strings.HasSuffix(fwd.base, ":"+su.Port()) {
					fmt.Fprintf(a.stderr, "port %s, the web UI's own, is taken on this machine: forwarding another one\n", su.Port())
				}
				fmt.Fprintf(a.stderr, "the web UI of %s is at %s on this machine until you press Ctrl-C\n", ep, fwd.base)
				<-ctx.Done()
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&noOpen, "no-open", false, "only print the link")
	cmd.Flags().IntVar(&port, "port", 0, "with a daemon on another host: the local port to forward (default: the UI's own port number when free here, else any free port)")
	return cmd
}

// openBrowser opens url in the browser when there is a graphical session
// and an opener; otherwise the printed link is all there is.
func openBrowser(_ *app, url string) {
	if os.Getenv("DISPLAY") == "" && os.Getenv("WAYLAND_DISPLAY") == "" {
		return
	}
	if p, err := exec.LookPath("xdg-open"); err == nil {
		c := exec.Command(p, url)
		if err := c.Start(); err == nil {
			go func() { _ = c.Wait() }()
		}
	}
}
