package main

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"runtime"
	"strconv"
	"sync"
)

// uiForward is `workspace ui`'s end of the web UI when the daemon is on
// another host: a port on this machine's 127.0.0.1 whose every connection
// is joined, through the daemon's API (over SSH), to the web UI's own
// listener on the server. The bytes pass unchanged: the UI's one-time
// login, session cookie, CSRF, Origin and Host checks work as they do
// locally, and no token is on any command line (the login link comes back
// over the API stream).
//
// It listens on the UI's own port number when that port is free here (so
// the browser's Host and Origin name the same port as on the server), on
// another free port otherwise, or on --port. On Linux it serves only
// connections that belong to the user running it, as the VNC port of
// `workspace view` does.
type uiForward struct {
	ln    net.Listener
	base  string // scheme://127.0.0.1:PORT
	relay *relay
	once  sync.Once
}

// startUIForward listens for the browser. serverBase is the UI's address
// on the server (http://127.0.0.1:7420); port is the local port asked for
// (0: the server's port number if free, else any).
func startUIForward(ctx context.Context, open func(ctx context.Context, forwardPort int) (net.Conn, error), serverBase string, port int, report func(error)) (*uiForward, error) {
	su, err := url.Parse(serverBase)
	if err != nil || su.Host == "" {
		return nil, fmt.Errorf("the daemon gave a web UI address %q that is not a URL", serverBase)
	}
	var ln net.Listener
	if port != 0 {
		ln, err = net.Listen("tcp4", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			return nil, fmt.Errorf("listen on 127.0.0.1:%d for the browser: %w", port, err)
		}
	} else {
		if p := su.Port(); p != "" {
			ln, _ = net.Listen("tcp4", net.JoinHostPort("127.0.0.1", p))
		}
		if ln == nil {
			ln, err = net.Listen("tcp4", "127.0.0.1:0")
			if err != nil {
				return nil, fmt.Errorf("listen on 127.0.0.1 for the browser: %w", err)
			}
		}
	}
	// Each stream names the local port, so the UI takes this port's
	// loopback names as its Host when it is not the UI's own number.
	local := ln.Addr().(*net.TCPAddr).Port
	f := &uiForward{ln: ln, base: su.Scheme + "://" + ln.Addr().String(),
		relay: newRelay(ctx, func(ctx context.Context) (net.Conn, error) { return open(ctx, local) }, report)}
	var admit func(net.Conn) error
	if runtime.GOOS == "linux" {
		admit = func(c net.Conn) error { return sameUserPeer(c, loopbackPeerUID) }
	}
	f.relay.serve(ln, admit, "browser")
	return f, nil
}

// link is the login link the daemon made, pointed at the forward.
func (f *uiForward) link(login string) (string, error) {
	u, err := url.Parse(login)
	if err != nil {
		return "", fmt.Errorf("the daemon gave a login link that is not a URL: %w", err)
	}
	b, _ := url.Parse(f.base)
	u.Scheme, u.Host = b.Scheme, b.Host
	return u.String(), nil
}

// Close stops listening and ends every forwarded connection.
func (f *uiForward) Close() error {
	f.once.Do(func() {
		f.ln.Close()
		f.relay.stop()
	})
	return nil
}
