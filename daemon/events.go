package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/workspace-sandbox/workspace/api"
	"github.com/workspace-sandbox/workspace/internal/backoff"
)

// handleEvents streams lifecycle events as JSON lines until the client goes.
func (s *server) handleEvents(w http.ResponseWriter, r *http.Request) {
	flusher, ok := w.(http.Flusher)
	if !ok {
		s.writeError(w, r, errors.New("streaming is not supported by this connection"))
		return
	}
	ch, cancel := s.events.subscribe()
	defer cancel()
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	flusher.Flush()
	enc := json.NewEncoder(w)
	keepalive := time.NewTicker(30 * time.Second)
	defer keepalive.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case ev, ok := <-ch:
			if !ok {
				return
			}
			if err := enc.Encode(ev); err != nil {
				return
			}
			flusher.Flush()
		case <-keepalive.C:
			flusher.Flush()
		}
	}
}

// broker fans lifecycle events out to every subscriber.
type broker struct {
	log  hclog.Logger
	subs chan func(map[chan api.Event]struct{})
	done chan struct{}
}

func newBroker(log hclog.Logger) *broker {
	return &broker{log: log, subs: make(chan func(map[chan api.Event]struct{})), done: make(chan struct{})}
}

// run delivers events from in until ctx ends. A subscriber too slow to keep
// a 64-event buffer loses events (logged) rather than stalling the daemon.
func (b *broker) run(ctx context.Context, in <-chan api.Event) {
	set := map[chan api.Event]struct{}{}
	defer func() {
		for ch := range set {
			close(ch)
		}
		close(b.done)
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case f := <-b.subs:
			f(set)
		case ev, ok := <-in:
			if !ok {
				in = nil
				continue
			}
			for ch := range set {
				select {
				case ch <- ev:
				default:
					b.log.Warn("event subscriber too slow, dropped event", "workspace", ev.Workspace, "type", ev.Type)
				}
			}
		}
	}
}

func (b *broker) subscribe() (<-chan api.Event, func()) {
	ch := make(chan api.Event, 64)
	select {
	case b.subs <- func(set map[chan api.Event]struct{}) { set[ch] = struct{}{} }:
	case <-b.done:
		close(ch)
		return ch, func() {}
	}
	return ch, func() {
		select {
		case b.subs <- func(set map[chan api.Event]struct{}) {
			if _, ok := set[ch]; ok {
				delete(set, ch)
				close(ch)
			}
		}:
		case <-b.done:
		}
	}
}

// forwardEvents turns driver events into API events. Events() survives
// libvirt reconnects by itself; if it cannot start, retry with backoff.
func (d *Daemon) forwardEvents(ctx context.Context) <-chan api.Event {
	out := make(chan api.Event, 64)
	go func() {
		defer close(out)
		b := backoff.New(time.Second, 30*time.Second)
		for ctx.Err() == nil {
			ch, err := d.hv.Events(ctx)
			if err != nil {
				d.log.Warn("subscribe to libvirt events", "error", err, "retry_in", b.Next())
				if !b.Wait(ctx) {
					return
				}
				continue
			}
			b.Reset()
			for ev := range ch {
				select {
				case out <- api.Event{Time: ev.Time, Workspace: ev.Workspace, Type: ev.Type, Detail: ev.Detail}:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return out
}
