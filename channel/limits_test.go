package channel

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/yamux"
)

// sessionPair runs the handshake over an in-memory link and returns the
// host's and the guest's yamux sessions.
func sessionPair(t *testing.T, ctx context.Context) (host, guest *yamux.Session) {
	t.Helper()
	hc, gc := pipePair()
	t.Cleanup(func() { hc.Close(); gc.Close() })
	type res struct {
		s   *yamux.Session
		err error
	}
	gs := make(chan res, 1)
	go func() {
		br, err := GuestHandshake(gc, gc, Hello{Version: Version})
		if err != nil {
			gs <- res{err: err}
			return
		}
		s, err := GuestSession(gc, br, nil)
		gs <- res{s, err}
	}()
	_, hbr, err := HostHandshake(ctx, hc, 50*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	hs, err := HostSession(hc, hbr, nil)
	if err != nil {
		t.Fatal(err)
	}
	g := <-gs
	if g.err != nil {
		t.Fatal(g.err)
	}
	t.Cleanup(func() { hs.Close(); g.s.Close() })
	return hs, g.s
}

// trickle announces a frame of n bytes, then gives only the bytes it has
// and ends.
type trickle struct{ r io.Reader }

func (t trickle) Read(p []byte) (int, error) { return t.r.Read(p) }

func TestReadFrameAllocatesAsBytesArrive(t *testing.T) {
	var b bytes.Buffer
	binary.Write(&b, binary.BigEndian, uint32(MaxBlob))
	b.WriteString("only a few bytes")
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := ReadFrame(trickle{&b}, MaxBlob)
	runtime.ReadMemStats(&after)
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("cut-short frame: %v", err)
	}
	if got := after.TotalAlloc - before.TotalAlloc; got > 1<<20 {
		t.Fatalf("reading 16 bytes of an announced %d-byte frame allocated %d bytes", MaxBlob, got)
	}
	// A frame that does arrive in pieces is read whole.
	want := bytes.Repeat([]byte("0123456789abcdef"), 20000) // 320,000 bytes: several growths
	b.Reset()
	WriteFrame(&b, want)
	got, err := ReadFrame(io.MultiReader(bytes.NewReader(b.Bytes()[:1000]), bytes.NewReader(b.Bytes()[1000:])), MaxBlob)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("frame read back: %d bytes, %v", len(got), err)
	}
	if cap(got) > len(want) {
		t.Errorf("buffer of %d bytes for a %d-byte frame", cap(got), len(want))
	}
}

func TestServeCapsConcurrentStreams(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	hs, gs := sessionPair(t, ctx)
	var cur, peak atomic.Int32
	release := make(chan struct{})
	go Serve(ctx, hs, func(ctx context.Context, req *Message) (*Message, error) {
		n := cur.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		<-release
		cur.Add(-1)
		return nil, nil
	})
	const n = 3 * MaxStreams
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m, _ := NewMessage(TypeStatus, nil)
			_, err := Call(ctx, gs, m)
			errs <- err
		}()
	}
	waitCond(t, "the first requests reach the handler", func() bool { return cur.Load() >= MaxStreams })
	time.Sleep(300 * time.Millisecond) // time for any more to get in
	if p := peak.Load(); p != MaxStreams {
		t.Fatalf("%d requests handled at once, want at most %d", p, MaxStreams)
	}
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("a waiting request failed: %v", err)
		}
	}
}

// A guest that opens many streams, each announcing the largest frames and
// sending nothing more, makes the host hold almost nothing.
func TestServeHugeAnnouncedFramesHoldLittleMemory(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	hs, gs := sessionPair(t, ctx)
	go Serve(ctx, hs, func(ctx context.Context, req *Message) (*Message, error) { return nil, nil })
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	hdr := []byte(fmt.Sprintf(`{"v":2,"type":"capture","blobs":[%d,%d]}`, MaxBlob, MaxBlobTotal-MaxBlob))
	var streams []*yamux.Stream
	for i := 0; i < 16; i++ {
		st, err := gs.OpenStream()
		if err != nil {
			t.Fatal(err)
		}
		streams = append(streams, st)
		WriteFrame(st, hdr)
		binary.Write(st, binary.BigEndian, uint32(MaxBlob))
	}
	time.Sleep(time.Second) // the host reads what was sent
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	if got := int64(after.TotalAlloc - before.TotalAlloc); got > 32<<20 {
		t.Fatalf("16 streams announcing %d-byte blobs made the host allocate %d MiB", MaxBlob, got>>20)
	}
	if hs.IsClosed() {
		t.Fatal("announcing an allowed size closed the session")
	}
	for _, st := range streams {
		st.Close()
	}
}

func TestServeReturnsTheFrameError(t *testing.T) {
	for _, tc := range []struct {
		name string
		send func(st *yamux.Stream)
		want error
	}{
		{"oversized", func(st *yamux.Stream) { binary.Write(st, binary.BigEndian, uint32(MaxHeader+1)) }, ErrTooLarge},
		{"not json", func(st *yamux.Stream) { WriteFrame(st, []byte("noise")) }, ErrMalformed},
		{"wrong blob size", func(st *yamux.Stream) {
			WriteFrame(st, []byte(`{"v":2,"type":"capture","blobs":[3]}`))
			WriteFrame(st, []byte("four"))
		}, ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			hs, gs := sessionPair(t, ctx)
			serr := make(chan error, 1)
			go func() {
				serr <- Serve(ctx, hs, func(ctx context.Context, req *Message) (*Message, error) { return nil, nil })
			}()
			st, err := gs.OpenStream()
			if err != nil {
				t.Fatal(err)
			}
			tc.send(st)
			select {
			case err := <-serr:
				if !errors.Is(err, ErrBadRequest) || !errors.Is(err, tc.want) || !strings.Contains(err.Error(), "stream") {
					t.Fatalf("Serve returned %v, want %v wrapped in %v", err, tc.want, ErrBadRequest)
				}
			case <-ctx.Done():
				t.Fatal("Serve did not return")
			}
			if !hs.IsClosed() {
				t.Fatal("the session is still open")
			}
		})
	}
	// A session that just closes is not a bad request.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	hs, gs := sessionPair(t, ctx)
	serr := make(chan error, 1)
	go func() {
		serr <- Serve(ctx, hs, func(ctx context.Context, req *Message) (*Message, error) { return nil, nil })
	}()
	gs.Close()
	if err := <-serr; errors.Is(err, ErrBadRequest) {
		t.Fatalf("a closed session reported as %v", err)
	}
}

// TestHostHandshakeRefusesOtherVersions: an agent of an older protocol
// (version 1, before error codes) or a newer one is refused at the
// handshake with its version and ours, and its Hello is returned.
func TestHostHandshakeRefusesOtherVersions(t *testing.T) {
	for _, v := range []int{Version - 1, Version + 1} {
		host, guest := pipePair()
		agent := fmt.Sprintf("agent-of-protocol-%d", v)
		go GuestHandshake(guest, guest, Hello{Version: v, Agent: agent})
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		h, br, err := HostHandshake(ctx, host, 50*time.Millisecond)
		cancel()
		host.Close()
		guest.Close()
		want := fmt.Sprintf("the agent speaks protocol %d, this side speaks %d", v, Version)
		if !errors.Is(err, ErrUnsupportedVersion) || !strings.Contains(err.Error(), want) || br != nil {
			t.Fatalf("hello of protocol %d: %v", v, err)
		}
		if h.Agent != agent || h.Version != v {
			t.Fatalf("the refused hello is not returned: %+v", h)
		}
	}
}

func waitCond(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// fuzzToken is the sync token FuzzHostHandshake's host sends, so seeds can
// answer it.
var fuzzToken = strings.Repeat("ab", tokenLen/2)

// guestBytes is what a test guest writes: stdin for the host's handshake.
type guestBytes struct {
	io.Reader
	io.Writer
}

// FuzzHostHandshake feeds arbitrary guest output to the host's side of the
// handshake: it finds the ACK with its token and parses the Hello, or
// fails with an error; it never panics or hangs, and accepts only a Hello
// of its own protocol version. Seeds are in testdata/fuzz.
func FuzzHostHandshake(f *testing.F) {
	var ok bytes.Buffer
	ok.WriteString(markAck + fuzzToken + "\n")
	WriteFrame(&ok, []byte(`{"version":1,"agent":"a","os":"linux","capabilities":["screenshots"]}`))
	f.Add(ok.Bytes())
	f.Fuzz(func(t *testing.T, data []byte) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		h, br, err := hostHandshake(ctx, guestBytes{bytes.NewReader(data), io.Discard}, time.Hour, fuzzToken)
		if ctx.Err() != nil {
			t.Fatal("the handshake hung on a finite input")
		}
		if err == nil && (h.Version != Version || br == nil) {
			t.Fatalf("accepted hello %+v (reader %v)", h, br != nil)
		}
	})
}
