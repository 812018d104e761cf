package daemon

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/workspace-sandbox/workspace/api"
)

// handleUIStream joins an upgraded API connection to the web UI's own
// listener (GET /v1/ui/stream with "Connection: Upgrade" and "Upgrade:
// workspace-ui"). `workspace ui` on another host forwards a loopback port
// of its own through such streams, one per browser connection: the bytes
// (HTTP, or TLS when the UI has a certificate) pass unchanged, so the UI's
// login, cookies and Host and Origin checks see what the browser sent.
// Like every API request it passes the peer check first.
func (s *server) handleUIStream(w http.ResponseWriter, r *http.Request) {
	if !isUpgrade(r, api.UIProtocol) {
		s.writeError(w, r, fmt.Errorf("%w: web UI stream: the request must upgrade the connection (Connection: Upgrade, Upgrade: %s)", api.ErrInvalid, api.UIProtocol))
		return
	}
	forward := 0
	if p := r.URL.Query().Get("port"); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			s.writeError(w, r, fmt.Errorf("%w: web UI stream: port %.16q is not a TCP port", api.ErrInvalid, p))
			return
		}
		forward = n
	}
	s.ui.mu.Lock()
	srv, running, addr, why := s.ui.srv, s.ui.srv != nil, s.ui.addr, s.ui.err
	s.ui.mu.Unlock()
	if !running || addr == "" {
		if why == "" {
			why = "the web UI is not running"
		}
		s.writeError(w, r, fmt.Errorf("%w: %s", api.ErrUnavailable, why))
		return
	}
	// A remote `workspace ui` serves the browser on a loopback port of its
	// own machine; when that is not the UI's own port number, the UI must
	// take that port's loopback names as its Host too.
	if forward != 0 {
		if err := srv.AllowForwardPort(forward); err != nil {
			s.writeError(w, r, fmt.Errorf("%w: web UI stream: %v", api.ErrInvalid, err))
			return
		}
	}
	hj, ui, log, ok := s.dialForUpgrade(w, r, "web UI stream", "tcp", addr)
	if !ok {
		return
	}
	log = log.With("ui", addr)
	start := time.Now()
	in, out, ok := s.spliceUpgraded(r.Context(), hj, api.UIProtocol, ui, func() { log.Debug("web UI stream opened") })
	if ok {
		log.Debug("web UI stream closed", "duration", time.Since(start).Round(time.Millisecond), "bytes_in", in, "bytes_out", out)
	}
}
