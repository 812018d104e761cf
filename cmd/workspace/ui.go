package main

import (
	"errors"
	"fmt"
	"html/template"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

func newUICmd(a *app) *cobra.Command {
	var noOpen bool
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
printed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			l, err := a.client().UILogin(cmd.Context())
			if err != nil {
				return err
			}
			fmt.Fprintln(a.stdout, l.URL)
			if noOpen || (os.Getenv("DISPLAY") == "" && os.Getenv("WAYLAND_DISPLAY") == "") {
				return nil
			}
			opener, err := exec.LookPath("xdg-open")
			if err != nil {
				return nil
			}
			page, err := writeLoginPage(os.Getenv("XDG_RUNTIME_DIR"), l.URL, time.Now())
			if err != nil {
				fmt.Fprintf(a.stderr, "Not opening the browser (%v): open the link above.\n", err)
				return nil
			}
			c := exec.Command(opener, "file://"+page)
			c.Stdout, c.Stderr = io.Discard, io.Discard
			if err := c.Start(); err == nil {
				go func() { _ = c.Wait() }()
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&noOpen, "no-open", false, "only print the link")
	return cmd
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
