package vm

import (
	"context"
	"strconv"
	"time"
)

var eventTypes = []string{"defined", "undefined", "started", "suspended", "resumed", "stopped", "shutdown", "pmsuspended", "crashed"}

// Events streams lifecycle events of this daemon's domains (owner.go),
// resubscribing after a reconnect, until ctx ends.
func (d *Driver) Events(ctx context.Context) (<-chan Event, error) {
	if _, err := d.conn(); err != nil {
		return nil, err
	}
	out := make(chan Event, 64)
	go func() {
		defer close(out)
		for ctx.Err() == nil {
			d.mu.RLock()
			l, up := d.l, d.up
			d.mu.RUnlock()
			if l == nil {
				select {
				case <-ctx.Done():
					return
				case <-up:
					continue
				}
			}
			sub, cancel := context.WithCancel(ctx)
			ch, err := l.LifecycleEvents(sub)
			if err != nil {
				cancel()
				d.log.Warn("subscribe to lifecycle events", "error", err)
				select {
				case <-ctx.Done():
					return
				case <-time.After(time.Second):
				}
				continue
			}
			for ev := range ch {
				ws, ok := d.ownedWorkspace(ev.Dom.Name)
				if !ok {
					continue
				}
				typ := "unknown"
				if ev.Event >= 0 && int(ev.Event) < len(eventTypes) {
					typ = eventTypes[ev.Event]
				}
				e := Event{Workspace: ws, Type: typ, Detail: strconv.Itoa(int(ev.Detail)), Time: time.Now().UTC()}
				select {
				case out <- e:
				case <-ctx.Done():
				}
			}
			cancel()
		}
	}()
	return out, nil
}
