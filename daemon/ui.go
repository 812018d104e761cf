package daemon

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/workspace-sandbox/workspace/api"
	"github.com/workspace-sandbox/workspace/web"
)

// DefaultUIAddr is where the web UI listens unless told otherwise.
const DefaultUIAddr = "127.0.0.1:7420"

// uiState is the running web UI, if any.
type uiState struct {
	mu   sync.Mutex
	srv  *web.Server
	base string // http(s)://host:port
	addr string // the listener's address, for web UI streams (ui/stream)
	err  string // why there is none
}

// checkUIAddr refuses a non-loopback address without TLS.
func checkUIAddr(addr, cert, key string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("--ui-addr %q: %w", addr, err)
	}
	ip := net.ParseIP(host)
	loopback := host == "localhost" || (ip != nil && ip.IsLoopback())
	if !loopback && (cert == "" || key == "") {
		return fmt.Errorf("--ui-addr %q is not a loopback address: the web UI shows screenshots, so it listens beyond this machine only with --ui-tls-cert and --ui-tls-key", addr)
	}
	if (cert == "") != (key == "") {
		return errors.New("--ui-tls-cert and --ui-tls-key go together")
	}
	return nil
}

// startUI serves the web UI until ctx ends. A port that is taken is logged
// and the daemon goes on without a UI (`workspace ui` says why).
func (d *Daemon) startUI(ctx context.Context) {
	addr := d.cfg.UIAddr
	if addr == "off" {
		d.ui.set(nil, "", "the web UI is off (--ui-addr off)")
		return
	}
	ws, err := web.New(api.NewClient(d.cfg.Socket), d.log.Named("web"))
	if err != nil {
		d.ui.set(nil, "", err.Error())
		return
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		d.log.Error("web UI not started", "addr", addr, "error", err)
		d.ui.set(nil, "", fmt.Sprintf("the web UI could not listen on %s: %v", addr, err))
		return
	}
	scheme := "http"
	if d.cfg.UITLSCert != "" {
		cert, err := tls.LoadX509KeyPair(d.cfg.UITLSCert, d.cfg.UITLSKey)
		if err != nil {
			ln.Close()
			d.ui.set(nil, "", fmt.Sprintf("web UI TLS: %v", err))
			d.log.Error("web UI not started", "error", err)
			return
		}
		ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
		scheme = "https"
	}
	base := scheme + "://" + ln.Addr().String()
	d.ui.set(ws, base, "")
	d.ui.mu.Lock()
	d.ui.addr = ln.Addr().String()
	d.ui.mu.Unlock()
	srv := &http.Server{Handler: ws.Handler(), ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: d.log.Named("web").StandardLogger(&hclog.StandardLoggerOptions{InferLevels: true})}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil {
			d.log.Warn("shutdown: connections still open after the grace period", "error", err)
		}
	}()
	d.log.Info("web UI", "url", base)
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			d.log.Error("web UI stopped", "error", err)
		}
	}()
}

func (u *uiState) set(s *web.Server, base, err string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.srv, u.base, u.err = s, base, err
}

// handleUILogin returns a one-time login URL for the web UI.
func (s *server) handleUILogin(*http.Request) (any, error) {
	s.ui.mu.Lock()
	ws, base, why := s.ui.srv, s.ui.base, s.ui.err
	s.ui.mu.Unlock()
	if ws == nil {
		if why == "" {
			why = "the web UI is not running"
		}
		return nil, fmt.Errorf("%w: %s", api.ErrUnavailable, why)
	}
	return api.UILogin{URL: base + "/login?token=" + ws.NewLogin(), Base: base}, nil
}
