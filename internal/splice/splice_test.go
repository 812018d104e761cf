package splice

import (
	"bytes"
	"context"
	"io"
	"net"
	"testing"
	"time"
)

// pair returns both ends of a connected unix socket pair.
func pair(t *testing.T) (net.Conn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("unix", t.TempDir()+"/s")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	acc := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		acc <- c
	}()
	c, err := net.Dial("unix", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s := <-acc
	if s == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { c.Close(); s.Close() })
	return c, s
}

type result struct{ ab, ba int64 }

// spliced joins client↔(a ~ b)↔server and returns the outer ends and a
// channel with Splice's result.
func spliced(t *testing.T, ctx context.Context) (client, server net.Conn, done chan result) {
	client, a := pair(t)
	b, server := pair(t)
	done = make(chan result, 1)
	go func() {
		ab, ba := Splice(ctx, a, b)
		done <- result{ab, ba}
	}()
	return client, server, done
}

func readN(t *testing.T, c net.Conn, n int) []byte {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, n)
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatalf("read %d bytes: %v", n, err)
	}
	return buf
}

func expectEOF(t *testing.T, c net.Conn) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := c.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("want EOF once the other side is gone, got %d bytes, %v", n, err)
	}
}

func wait(t *testing.T, done chan result) result {
	t.Helper()
	select {
	case r := <-done:
		return r
	case <-time.After(5 * time.Second):
		t.Fatal("Splice did not return")
		return result{}
	}
}

func TestSpliceCopiesBothWaysUntilOneSideCloses(t *testing.T) {
	client, server, done := spliced(t, context.Background())
	// A server that speaks first (like an RFB server), a large client
	// message, and a reply.
	if _, err := server.Write([]byte("RFB 003.008\n")); err != nil {
		t.Fatal(err)
	}
	if got := readN(t, client, 12); string(got) != "RFB 003.008\n" {
		t.Fatalf("client got %q", got)
	}
	big := bytes.Repeat([]byte("0123456789abcdef"), 64<<10) // 1 MiB
	go client.Write(big)
	if got := readN(t, server, len(big)); !bytes.Equal(got, big) {
		t.Fatal("server got other bytes than the client sent")
	}
	server.Write([]byte("ok"))
	if got := readN(t, client, 2); string(got) != "ok" {
		t.Fatalf("client got %q", got)
	}
	client.Close()
	expectEOF(t, server)
	r := wait(t, done)
	if r.ab != int64(len(big)) || r.ba != 14 {
		t.Fatalf("counted %d client→server and %d server→client bytes, want %d and 14", r.ab, r.ba, len(big))
	}
}

func TestSpliceEndsWhenServerCloses(t *testing.T) {
	client, server, done := spliced(t, context.Background())
	server.Close()
	expectEOF(t, client)
	wait(t, done)
}

func TestSpliceEndsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	client, server, done := spliced(t, ctx)
	cancel()
	expectEOF(t, client)
	expectEOF(t, server)
	wait(t, done)
}
