package api

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// DisplayProtocol is the HTTP Upgrade token of a display connection: after
// "101 Switching Protocols" the connection carries the workspace's display
// protocol (RFB for vnc, SPICE for spice) unchanged, both ways.
const DisplayProtocol = "workspace-display"

// Display opens a byte stream to the display of a running workspace through
// the daemon (GET /v1/workspaces/NAME/display, upgraded). The stream is what
// QEMU's display socket speaks; a SPICE client opens one per channel. ctx
// bounds the connect and the upgrade; the returned connection lives until it
// is closed.
func (c *Client) Display(ctx context.Context, name string) (net.Conn, error) {
	return c.upgrade(ctx, c.url("/workspaces/"+url.PathEscape(name)+"/display", nil), DisplayProtocol, "open display")
}

// UIProtocol is the HTTP Upgrade token of a web UI connection: after "101
// Switching Protocols" the connection is joined, both ways, to the web UI's
// own listener on the daemon's host, so a browser's HTTP (or TLS) goes
// through unchanged. `workspace ui` forwards a local port this way when the
// daemon is on another host.
const UIProtocol = "workspace-ui"

// UIStream opens a byte stream to the daemon's web UI listener (GET
// /v1/ui/stream, upgraded). forwardPort, when not 0, is the loopback port
// on the client's machine that the stream serves: the UI then also takes
// 127.0.0.1:forwardPort and localhost:forwardPort as its Host. ctx bounds
// the connect and the upgrade.
func (c *Client) UIStream(ctx context.Context, forwardPort int) (net.Conn, error) {
	var q url.Values
	if forwardPort != 0 {
		q = url.Values{"port": {strconv.Itoa(forwardPort)}}
	}
	return c.upgrade(ctx, c.url("/ui/stream", q), UIProtocol, "open the web UI stream")
}

// upgrade dials the daemon, asks to switch the connection to proto and
// returns it once the daemon has.
func (c *Client) upgrade(ctx context.Context, u, proto, what string) (net.Conn, error) {
	conn, err := c.dial(ctx)
	if err != nil {
		return nil, c.dialError(err)
	}
	out, err := upgradeConn(ctx, conn, u, proto, what)
	if err != nil {
		conn.Close()
		var re *RemoteError
		if c.socket != "" || errors.As(err, &re) || ctx.Err() != nil {
			return nil, err
		}
		return nil, c.dialError(err)
	}
	return out, nil
}

func upgradeConn(ctx context.Context, conn net.Conn, u, proto, what string) (net.Conn, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", proto)
	// The handshake obeys ctx; the stream after it has no deadline.
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if err := req.Write(conn); err != nil {
		return nil, fmt.Errorf(what+": send request: %w", ctxErr(ctx, err))
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		return nil, fmt.Errorf(what+": read answer: %w", ctxErr(ctx, err))
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		defer resp.Body.Close()
		if err := checkResponse(resp); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("%s: daemon answered %s instead of switching protocols", what, resp.Status)
	}
	if !strings.EqualFold(resp.Header.Get("Upgrade"), proto) {
		return nil, fmt.Errorf("%s: daemon switched to %q, want %q", what, resp.Header.Get("Upgrade"), proto)
	}
	if !stop() {
		return nil, fmt.Errorf("%s: %w", what, ctx.Err())
	}
	conn.SetDeadline(time.Time{})
	return &bufferedConn{Conn: conn, r: br}, nil
}

// ctxErr prefers the context's error over the I/O error it caused.
func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// bufferedConn reads what the response reader already buffered (display
// bytes the daemon sent right after the 101) before the connection itself.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (b *bufferedConn) Read(p []byte) (int, error) { return b.r.Read(p) }

// CloseWrite ends the stream's sending side when the connection can (a
// unix socket can): an exec's stdin ends this way.
func (b *bufferedConn) CloseWrite() error {
	if cw, ok := b.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
