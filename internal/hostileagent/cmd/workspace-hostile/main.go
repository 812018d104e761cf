// Command workspace-hostile is the hostile guest agent of the end-to-end
// test of the host's defences (internal/hostileagent). The test builds it
// and shares it into the test guest, whose init runs it instead of the
// real agent; it is in no image.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/workspace-sandbox/workspace/guestagent"
	"github.com/workspace-sandbox/workspace/internal/hostileagent"
)

func main() {
	dur := flag.Duration("for", time.Minute, "how long to flood")
	workers := flag.Int("workers", 8, "requests in flight")
	flag.Parse()
	// One flood per boot; after it, a quiet session (the host resyncs
	// and finds an agent that sends nothing more).
	for d := *dur; ; d = 0 {
		if err := run(d, *workers); err != nil {
			fmt.Fprintln(os.Stderr, "workspace-hostile:", err)
		}
		time.Sleep(time.Second)
	}
}

func run(dur time.Duration, workers int) error {
	p, err := guestagent.FindPort()
	if err != nil {
		return err
	}
	port, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer port.Close()
	console, err := os.OpenFile("/dev/console", os.O_WRONLY, 0)
	if err != nil {
		console = os.Stdout
	}
	f := &hostileagent.Flood{Workers: workers, For: dur, Log: console}
	fmt.Fprintln(console, "WORKSPACE-HOSTILE-STARTED")
	return f.Run(context.Background(), port)
}
