package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/workspace-sandbox/workspace/internal/splice"
)

// displayOpener opens one stream to a workspace's display (the daemon's
// upgraded display connection; a fake in tests).
type displayOpener func(ctx context.Context) (net.Conn, error)

// viewProxy is the viewer's end of `workspace view`: a unix socket in a
// private folder (0700, so only this user and root can connect) that joins
// every connection it accepts to the workspace's display through the
// daemon. A SPICE client opens one connection per channel; each gets its
// own stream.
type viewProxy struct {
	dir    string
	socket string
	ln     net.Listener
	open   displayOpener
	report func(error)

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
}

// openTimeout bounds opening one display stream through the daemon.
const openTimeout = 30 * time.Second

// startViewProxy makes the private folder under $XDG_RUNTIME_DIR (or the
// temp folder) and starts listening. report receives the failure of each
// connection that could not be joined; the proxy keeps serving.
func startViewProxy(ctx context.Context, open displayOpener, report func(error)) (*viewProxy, error) {
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
	sock := filepath.Join(dir, "display.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("listen for the viewer: %w", err)
	}
	p := &viewProxy{dir: dir, socket: sock, ln: ln, open: open, report: report}
	p.ctx, p.cancel = context.WithCancel(ctx)
	p.wg.Add(1)
	go p.serve()
	return p, nil
}

func (p *viewProxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				p.report(fmt.Errorf("accept viewer connection: %w", err))
			}
			return
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			octx, cancel := context.WithTimeout(p.ctx, openTimeout)
			d, err := p.open(octx)
			cancel()
			if err != nil {
				c.Close()
				if p.ctx.Err() == nil {
					p.report(err)
				}
				return
			}
			splice.Splice(p.ctx, c, d)
		}()
	}
}

// Close stops listening, ends every open stream and removes the folder.
func (p *viewProxy) Close() error {
	p.once.Do(func() {
		p.cancel()
		p.ln.Close()
		p.wg.Wait()
		os.RemoveAll(p.dir)
	})
	return nil
}
