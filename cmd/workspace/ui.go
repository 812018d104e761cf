package main

import (
	"errors"
	"fmt"
	"html/template"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

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
browser then keeps a session cookie until you log out, close the browser,
or leave the UI alone for an hour.

The link never goes on a command line (where every user of this machine
could read it in the process list and log in first): the browser is given a
file in your runtime folder ($XDG_RUNTIME_DIR, readable by you only) that
sends it on to the link. Without a runtime folder, the link is only
printed.

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
// openBrowser opens url in the browser without ever putting it on a
// command line (where every user of this machine could read the one-time
// token in the process list and log in first): xdg-open gets a 0600 page in
// the user's runtime folder that sends the browser on. Without a private
// runtime folder the link is only printed.
func openBrowser(a *app, url string) {
	if os.Getenv("DISPLAY") == "" && os.Getenv("WAYLAND_DISPLAY") == "" {
		return
	}
	opener, err := exec.LookPath("xdg-open")
	if err != nil {
		return
	}
	page, err := writeLoginPage(os.Getenv("XDG_RUNTIME_DIR"), url, time.Now())
	if err != nil {
		fmt.Fprintf(a.stderr, "Not opening the browser (%v): open the link above.\n", err)
		return
	}
	c := exec.Command(opener, "file://"+page)
	c.Stdout, c.Stderr = io.Discard, io.Discard
	if err := c.Start(); err == nil {
		go func() { _ = c.Wait() }()
	}
}

// loginPagePattern names the redirect pages in the runtime folder.
const loginPagePattern = "workspace-ui-*.html"

// loginPageTTL is how long a redirect page is kept: as long as its link is
// valid.
const loginPageTTL = 5 * time.Minute

var loginPage = template.Must(template.New("login").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="refresh" content="0;url={{.}}">
<meta name="referrer" content="no-referrer">
<title>workspace: logging in</title></head>
<body><p><a href="{{.}}">Open the work diary</a></p></body></html>
`))

// writeLoginPage writes a page that sends the browser on to url into a new
// 0600 file in the user's runtime folder dir, and returns its path; the
// path holds no token. dir must be a folder of this user that no one else
// may enter (as $XDG_RUNTIME_DIR is). Pages older than their link are
// removed on the way.
func writeLoginPage(dir, url string, now time.Time) (string, error) {
	if dir == "" {
		return "", errors.New("no $XDG_RUNTIME_DIR")
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return "", fmt.Errorf("runtime folder: %w", err)
	}
	if !fi.IsDir() || fi.Mode().Perm()&0o077 != 0 || !ownedByMe(fi) {
		return "", fmt.Errorf("runtime folder %s is not a private folder of this user", dir)
	}
	old, _ := filepath.Glob(filepath.Join(dir, loginPagePattern))
	for _, p := range old {
		if fi, err := os.Lstat(p); err == nil && fi.Mode().IsRegular() && now.Sub(fi.ModTime()) > loginPageTTL {
			_ = os.Remove(p)
		}
	}
	f, err := os.CreateTemp(dir, loginPagePattern) // mode 0600
	if err != nil {
		return "", fmt.Errorf("login page: %w", err)
	}
	if err := f.Chmod(0o600); err == nil {
		err = loginPage.Execute(f, template.URL(strings.TrimSpace(url)))
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			return f.Name(), nil
		}
	} else {
		f.Close()
	}
	_ = os.Remove(f.Name())
	return "", fmt.Errorf("login page: %w", err)
}
