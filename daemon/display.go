package daemon

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/workspace-sandbox/workspace/api"
	"github.com/workspace-sandbox/workspace/internal/splice"
)

// displayDialTimeout bounds connecting to QEMU's display socket.
const displayDialTimeout = 5 * time.Second

// handleDisplay joins an upgraded API connection to the workspace's display
// socket (GET /v1/workspaces/{name}/display with "Connection: Upgrade" and
// "Upgrade: workspace-display"). The socket belongs to QEMU's user in a
// folder ordinary users cannot enter, and the display never listens on TCP,
// so this is how a member of the workspace group reaches it: the daemon
// connects as root and copies bytes both ways until either side closes.
// Every viewer connection (a SPICE client opens one per channel) is its own
// request.
func (s *server) handleDisplay(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if !isDisplayUpgrade(r) {
		s.writeError(w, r, fmt.Errorf("%w: display of %q: the request must upgrade the connection (Connection: Upgrade, Upgrade: %s)", api.ErrInvalid, name, api.DisplayProtocol))
		return
	}
	ws, err := s.m.get(r.Context(), name)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if ws.Display == "none" || ws.DisplaySocket == "" {
		s.writeError(w, r, fmt.Errorf("%w: workspace %q has no display: its profile says display { type = \"none\" }", api.ErrConflict, name))
		return
	}
	if ws.State != api.StateRunning {
		s.writeError(w, r, fmt.Errorf("%w: workspace %q is %s: start it first (workspace start %s)", api.ErrConflict, name, ws.State, name))
		return
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		s.writeError(w, r, errors.New("display: this connection cannot be upgraded"))
		return
	}
	dctx, cancel := context.WithTimeout(r.Context(), displayDialTimeout)
	var d net.Dialer
	display, err := d.DialContext(dctx, "unix", ws.DisplaySocket)
	cancel()
	if err != nil {
		s.writeError(w, r, fmt.Errorf("%w: display of %q: connect to its %s socket: %v", api.ErrUnavailable, name, ws.Display, err))
		return
	}
	conn, brw, err := hj.Hijack()
	if err != nil {
		display.Close()
		s.log.Error("display: hijack connection", "workspace", name, "error", err)
		return
	}
	// The server's header-read deadline must not cut the stream.
	conn.SetDeadline(time.Time{})
	brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: " + api.DisplayProtocol + "\r\n\r\n")
	if err := brw.Flush(); err != nil {
		conn.Close()
		display.Close()
		s.log.Debug("display: client left before the upgrade", "workspace", name, "error", err)
		return
	}

	log := s.log.With("workspace", name, "display", ws.Display)
	if pc, ok := r.Context().Value(peerKey{}).(peerCred); ok {
		log = log.With("uid", pc.uid, "pid", pc.pid)
	}
	log.Info("display connected")
	start := time.Now()
	// The session ends with either side, or when the daemon stops serving
	// (hijacked connections are not closed by the HTTP server's shutdown).
	ctx, stop := context.WithCancel(r.Context())
	defer stop()
	go func() {
		select {
		case <-s.events.done:
			stop()
		case <-ctx.Done():
		}
	}()
	toDisplay, toClient := splice.Splice(ctx, &hijacked{Conn: conn, r: brw.Reader}, display)
	log.Info("display disconnected", "duration", time.Since(start).Round(time.Millisecond), "bytes_in", toDisplay, "bytes_out", toClient)
}

// isDisplayUpgrade tells whether r asks to switch to the display protocol.
func isDisplayUpgrade(r *http.Request) bool {
	upgrade := false
	for _, v := range r.Header.Values("Connection") {
		for _, tok := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(tok), "upgrade") {
				upgrade = true
			}
		}
	}
	return upgrade && strings.EqualFold(r.Header.Get("Upgrade"), api.DisplayProtocol)
}

// hijacked reads what the HTTP server already buffered before the
// connection itself.
type hijacked struct {
	net.Conn
	r *bufio.Reader
}

func (h *hijacked) Read(p []byte) (int, error) { return h.r.Read(p) }
