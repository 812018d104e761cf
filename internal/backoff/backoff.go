// Package backoff spaces out the tries of a loop that reconnects or
// restarts something: a first wait, doubled after every failed try up to a
// most, and back to the first after a success. It imports only the
// standard library (the guest agent uses it too).
package backoff

import (
	"context"
	"time"
)

// Backoff is the wait before the next try.
type Backoff struct {
	first, most, next time.Duration
}

// New returns a backoff that first waits first, at most most.
func New(first, most time.Duration) *Backoff {
	return &Backoff{first: first, most: most, next: first}
}

// Next is how long the next Wait waits.
func (b *Backoff) Next() time.Duration { return b.next }

// Wait waits Next (false when ctx ends first) and doubles the wait after.
func (b *Backoff) Wait(ctx context.Context) bool {
	t := time.NewTimer(b.next)
	defer t.Stop()
	b.next = min(2*b.next, b.most)
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// Reset starts over from the first wait (after a try that worked).
func (b *Backoff) Reset() { b.next = b.first }
