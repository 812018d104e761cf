// Package splice joins two byte streams: what one side sends, the other
// receives, until either side closes. The daemon uses it between a client's
// upgraded API connection and a workspace's display socket, and `workspace
// view` between the viewer and that API connection.
package splice

import (
	"context"
	"io"
	"sync"
)

// Splice copies a to b and b to a until either direction ends (a side
// closes or fails) or ctx ends, then closes both sides, waits for both
// copies to stop and returns the bytes copied each way. Display protocols
// (RFB, SPICE) have no use for a half-closed stream, so the end of one
// direction ends the session.
func Splice(ctx context.Context, a, b io.ReadWriteCloser) (aToB, bToA int64) {
	var once sync.Once
	closeBoth := func() {
		once.Do(func() {
			a.Close()
			b.Close()
		})
	}
	stop := context.AfterFunc(ctx, closeBoth)
	defer stop()

	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		aToB, _ = io.Copy(b, a)
		closeBoth()
	}()
	go func() {
		defer wg.Done()
		bToA, _ = io.Copy(a, b)
		closeBoth()
	}()
	wg.Wait()
	return aToB, bToA
}
