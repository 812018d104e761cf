package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// displayOpener opens one stream to a workspace's display (the daemon's
// upgraded display connection; a fake in tests).
type displayOpener func(ctx context.Context) (net.Conn, error)

// viewProxy is the viewer's end of `workspace view`: a unix socket in a
// private folder (0700, so only this user and root can connect) that joins
// every connection it accepts to the workspace's display through the
// daemon. A SPICE client opens one connection per channel; each gets its
// own stream.
//
// remote-viewer opens VNC only by host and port, so for a VNC display it
// also listens on 127.0.0.1 (an ephemeral port, only while the viewer
// runs) and serves a connection there only when the socket table says the
// peer is this same user.
type viewProxy struct {
	dir      string
	socket   string
	loopback string // 127.0.0.1:PORT, when started with one
	peerUID  func(net.Conn) (int, error)
	lns      []net.Listener
	relay    *relay
	once     sync.Once
}

// openTimeout bounds opening one display stream through the daemon.
const openTimeout = 30 * time.Second

// startViewProxy makes the private folder under $XDG_RUNTIME_DIR (or the
// temp folder) and starts listening there, and on loopback when asked.
// report receives the failure of each connection that could not be joined;
// the proxy keeps serving.
func startViewProxy(ctx context.Context, open displayOpener, report func(error), loopback bool) (*viewProxy, error) {
	base := os.Getenv("XDG_RUNTIME_DIR")
	if fi, err := os.Stat(base); base == "" || err != nil || !fi.IsDir() {
		base = os.TempDir()
	}
	dir, err := os.MkdirTemp(base, "workspace-view-")
	if err != nil {
		return nil, fmt.Errorf("make the viewer's socket folder: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("make the viewer's socket folder: %w", err)
	}
	p := &viewProxy{dir: dir, socket: filepath.Join(dir, "display.sock"), peerUID: loopbackPeerUID}
	ln, err := net.Listen("unix", p.socket)
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("listen for the viewer: %w", err)
	}
	p.lns = append(p.lns, ln)
	var tcp net.Listener
	if loopback {
		tcp, err = net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			ln.Close()
			os.RemoveAll(dir)
			return nil, fmt.Errorf("listen for the viewer on loopback: %w", err)
		}
		p.loopback = tcp.Addr().String()
		p.lns = append(p.lns, tcp)
	}
	p.relay = newRelay(ctx, open, report)
	p.relay.serve(ln, nil, "viewer")
	if tcp != nil {
		p.relay.serve(tcp, p.sameUser, "viewer")
	}
	return p, nil
}

// sameUser admits a loopback connection only from this process's user.
func (p *viewProxy) sameUser(c net.Conn) error { return sameUserPeer(c, p.peerUID) }

// sameUserPeer admits a loopback connection only when peerUID says it
// belongs to this process's user.
func sameUserPeer(c net.Conn, peerUID func(net.Conn) (int, error)) error {
	uid, err := peerUID(c)
	if err != nil {
		return fmt.Errorf("refused connection from %s: cannot tell its user: %w", c.RemoteAddr(), err)
	}
	if uid != os.Getuid() {
		return fmt.Errorf("refused connection from %s: it belongs to uid %d, not to you (uid %d)", c.RemoteAddr(), uid, os.Getuid())
	}
	return nil
}

// Close stops listening, ends every open stream and removes the folder.
func (p *viewProxy) Close() error {
	p.once.Do(func() {
		for _, ln := range p.lns {
			ln.Close()
		}
		p.relay.stop()
		os.RemoveAll(p.dir)
	})
	return nil
}
