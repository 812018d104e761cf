package api

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
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
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", c.socket)
	if err != nil {
		return nil, c.dialError(err)
	}
	out, err := upgradeDisplay(ctx, conn, c.url("/workspaces/"+url.PathEscape(name)+"/display", nil))
	if err != nil {
		conn.Close()
		return nil, err
	}
	return out, nil
}

func upgradeDisplay(ctx context.Context, conn net.Conn, u string) (net.Conn, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", DisplayProtocol)
	// The handshake obeys ctx; the stream after it has no deadline.
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if err := req.Write(conn); err != nil {
		return nil, fmt.Errorf("open display: send request: %w", ctxErr(ctx, err))
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		return nil, fmt.Errorf("open display: read answer: %w", ctxErr(ctx, err))
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		defer resp.Body.Close()
		if err := checkResponse(resp); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("open display: daemon answered %s instead of switching protocols", resp.Status)
	}
	if !strings.EqualFold(resp.Header.Get("Upgrade"), DisplayProtocol) {
		return nil, fmt.Errorf("open display: daemon switched to %q, want %q", resp.Header.Get("Upgrade"), DisplayProtocol)
	}
	if !stop() {
		return nil, fmt.Errorf("open display: %w", ctx.Err())
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
