// Package xvfbtest starts a real X server (Xvfb) for tests and benchmarks.
//
// Xvfb picks a free display itself and reports it through -displayfd, so
// tests never race each other (or stale sockets of killed servers) for a
// display number, and -noreset keeps the server and its root window as
// they are when a client disconnects: without it, Xvfb resets after the
// last client leaves and a connection made during the reset is dropped.
package xvfbtest

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/jezek/xgb"
)

// Start starts Xvfb with one screen of w×h at 24 bits with Xinerama and
// returns its display (":N") once it accepts connections. It skips the
// test when Xvfb is not installed; the server is killed at cleanup.
func Start(tb testing.TB, w, h int) string {
	tb.Helper()
	return StartWith(tb, w, h)
}

// StartWith is Start with more Xvfb arguments, such as
// "-extension", "MIT-SHM" for a server without shared memory.
func StartWith(tb testing.TB, w, h int, args ...string) string {
	tb.Helper()
	if _, err := exec.LookPath("Xvfb"); err != nil {
		tb.Skip("Xvfb is not installed (make test-image installs it)")
	}
	r, wr, err := os.Pipe()
	if err != nil {
		tb.Fatal(err)
	}
	defer r.Close()
	cmd := exec.Command("Xvfb", append([]string{"-displayfd", "3", "-screen", "0", fmt.Sprintf("%dx%dx24", w, h),
		"+xinerama", "-nolisten", "tcp", "-noreset"}, args...)...)
	cmd.ExtraFiles = []*os.File{wr}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		wr.Close()
		tb.Fatalf("start Xvfb: %v", err)
	}
	wr.Close()
	tb.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })

	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(r).ReadString('\n')
		line <- strings.TrimSpace(s)
	}()
	var n string
	select {
	case n = <-line:
	case <-time.After(30 * time.Second):
	}
	if n == "" {
		tb.Fatalf("Xvfb did not report a display: %s", stderr.String())
	}
	disp := ":" + n
	// The display number is written once the server listens; a round trip
	// proves it serves.
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := xgb.NewConnDisplay(disp)
		if err == nil {
			c.Close()
			return disp
		}
		if time.Now().After(deadline) {
			tb.Fatalf("Xvfb %s does not accept connections: %v\n%s", disp, err, stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}
