package daemon

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
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
	hj, display, log, ok := s.dialForUpgrade(w, r, fmt.Sprintf("display of %q", name), "unix", ws.DisplaySocket)
	if !ok {
		return
	}
	log = log.With("workspace", name, "display", ws.Display)
	start := time.Now()
	toDisplay, toClient, ok := s.spliceUpgraded(r.Context(), hj, api.DisplayProtocol, display, func() { log.Info("display connected") })
	if !ok {
		log.Debug("display: client left before the upgrade")
		return
	}
	log.Info("display disconnected", "duration", time.Since(start).Round(time.Millisecond), "bytes_in", toDisplay, "bytes_out", toClient)
}

// dialForUpgrade checks that the request's connection can be taken over
// and connects to the target it is to be joined to (within
// displayDialTimeout). On failure it has answered the request and ok is
// false. what names the stream in errors; log names the peer.
func (s *server) dialForUpgrade(w http.ResponseWriter, r *http.Request, what, network, addr string) (hj http.Hijacker, target net.Conn, log hclog.Logger, ok bool) {
	hj, ok = w.(http.Hijacker)
	if !ok {
		s.writeError(w, r, fmt.Errorf("%s: this connection cannot be upgraded", what))
		return nil, nil, nil, false
	}
	dctx, cancel := context.WithTimeout(r.Context(), displayDialTimeout)
	defer cancel()
	var d net.Dialer
	target, err := d.DialContext(dctx, network, addr)
	if err != nil {
		s.writeError(w, r, fmt.Errorf("%w: %s: connect to %s: %v", api.ErrUnavailable, what, addr, err))
		return nil, nil, nil, false
	}
	log = s.log
	if pc, ok := r.Context().Value(peerKey{}).(peerCred); ok {
		log = log.With("uid", pc.uid, "pid", pc.pid)
	}
	return hj, target, log, true
}

// spliceUpgraded answers "101 Switching Protocols" to proto on the hijacked
// connection, calls connected, and copies bytes between it and target
// until either side ends or the daemon stops serving (hijacked connections
// are not closed by the HTTP server's shutdown). It closes both. ok is
// false when the connection could not be taken over or the client left
// before the answer.
func (s *server) spliceUpgraded(ctx context.Context, hj http.Hijacker, proto string, target net.Conn, connected func()) (toTarget, toClient int64, ok bool) {
	conn, brw, err := hj.Hijack()
	if err != nil {
		target.Close()
		s.log.Error("upgrade: hijack connection", "protocol", proto, "error", err)
		return 0, 0, false
	}
	// The server's header-read deadline must not cut the stream.
	conn.SetDeadline(time.Time{})
	brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: " + proto + "\r\n\r\n")
	if err := brw.Flush(); err != nil {
		conn.Close()
		target.Close()
		return 0, 0, false
	}
	connected()
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	go func() {
		select {
		case <-s.events.done:
			stop()
		case <-ctx.Done():
		}
	}()
	toTarget, toClient = splice.Splice(ctx, &hijacked{Conn: conn, r: brw.Reader}, target)
	return toTarget, toClient, true
}

// isDisplayUpgrade tells whether r asks to switch to the display protocol.
func isDisplayUpgrade(r *http.Request) bool { return isUpgrade(r, api.DisplayProtocol) }

// isUpgrade tells whether r asks to switch the connection to proto.
func isUpgrade(r *http.Request, proto string) bool {
	upgrade := false
	for _, v := range r.Header.Values("Connection") {
		for _, tok := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(tok), "upgrade") {
				upgrade = true
			}
		}
	}
	return upgrade && strings.EqualFold(r.Header.Get("Upgrade"), proto)
}

// hijacked reads what the HTTP server already buffered before the
// connection itself.
type hijacked struct {
	net.Conn
	r *bufio.Reader
}

func (h *hijacked) Read(p []byte) (int, error) { return h.r.Read(p) }
