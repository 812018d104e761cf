package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"

	"github.com/workspace-sandbox/workspace/internal/splice"
)

// relay joins every connection its listeners accept to a new stream that
// open gives (a display or the web UI, through the daemon), after admit
// says yes. It is the shared half of `workspace view`'s proxy and
// `workspace ui`'s forward.
type relay struct {
	open   displayOpener
	report func(error) // each connection that could not be joined; serving goes on

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func newRelay(ctx context.Context, open displayOpener, report func(error)) *relay {
	r := &relay{open: open, report: report}
	r.ctx, r.cancel = context.WithCancel(ctx)
	return r
}

// serve accepts on ln until it is closed; what names the peer in errors
// ("viewer", "browser").
func (r *relay) serve(ln net.Listener, admit func(net.Conn) error, what string) {
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				if !errors.Is(err, net.ErrClosed) {
					r.report(fmt.Errorf("accept %s connection: %w", what, err))
				}
				return
			}
			r.wg.Add(1)
			go func() {
				defer r.wg.Done()
				r.join(c, admit)
			}()
		}
	}()
}

func (r *relay) join(c net.Conn, admit func(net.Conn) error) {
	if admit != nil {
		if err := admit(c); err != nil {
			r.report(err)
			c.Close()
			return
		}
	}
	octx, cancel := context.WithTimeout(r.ctx, openTimeout)
	s, err := r.open(octx)
	cancel()
	if err != nil {
		// Reported before the peer sees its connection end, so whoever
		// watches both sees the reason first.
		if r.ctx.Err() == nil {
			r.report(err)
		}
		c.Close()
		return
	}
	splice.Splice(r.ctx, c, s)
}

// stop ends every joined stream and waits for them, once the caller has
// closed the listeners.
func (r *relay) stop() {
	r.cancel()
	r.wg.Wait()
}
