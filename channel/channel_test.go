package channel

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/workspace-sandbox/workspace/tracking"
)

func TestFrameLimits(t *testing.T) {
	var b bytes.Buffer
	if err := WriteFrame(&b, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	got, err := ReadFrame(&b, 10)
	if err != nil || string(got) != "hello" {
		t.Fatalf("%q %v", got, err)
	}
	var big bytes.Buffer
	binary.Write(&big, binary.BigEndian, uint32(1<<31))
	if _, err := ReadFrame(&big, MaxHeader); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("oversized length: %v", err)
	}
	short := []byte{0, 0, 0, 9, 'a'}
	if _, err := ReadFrame(bytes.NewReader(short), 100); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("short frame: %v", err)
	}
}

func TestMessageRoundTrip(t *testing.T) {
	m, err := NewMessage(TypeCapture, tracking.Capture{ID: "c1", Taken: time.Unix(100, 0).UTC(), Width: 2, Height: 1}, []byte("jpeg"), []byte("th"))
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := WriteMessage(&b, m); err != nil {
		t.Fatal(err)
	}
	got, err := ReadMessage(&b)
	if err != nil {
		t.Fatal(err)
	}
	var c tracking.Capture
	if err := got.Decode(&c); err != nil || c.ID != "c1" || string(got.Blob(0)) != "jpeg" || string(got.Blob(1)) != "th" {
		t.Fatalf("%+v %v", c, err)
	}
	// A header that declares one blob size and sends another.
	b.Reset()
	WriteFrame(&b, []byte(`{"v":2,"type":"capture","blobs":[3]}`))
	WriteFrame(&b, []byte("four"))
	if _, err := ReadMessage(&b); err == nil || !strings.Contains(err.Error(), "header said 3") {
		t.Fatalf("blob size mismatch: %v", err)
	}
	for _, bad := range []string{`{"v":1}`, `{"v":2,"what":1}`, `not json`, `{"v":2,"blobs":[1,1,1,1,1]}`, `{"v":2,"blobs":[999999999]}`} {
		b.Reset()
		WriteFrame(&b, []byte(bad))
		if _, err := ReadMessage(&b); err == nil {
			t.Errorf("accepted %s", bad)
		}
	}
}

// pipePair is a bidirectional in-memory link like the virtio port.
func pipePair() (net.Conn, net.Conn) { return net.Pipe() }

func TestHandshakeDiscardsGarbageAndOldSyncs(t *testing.T) {
	host, guest := pipePair()
	defer host.Close()
	defer guest.Close()
	hello := Hello{Version: Version, Agent: "test", OS: "linux", Capabilities: []string{CapScreenshots}}
	gerr := make(chan error, 1)
	go func() {
		// Stale bytes from an earlier session, then an ACK for an older
		// token, before the real handshake.
		guest.Write([]byte("garbage\xff\x00\x01yamux-leftovers" + markAck + strings.Repeat("0", tokenLen) + "\n"))
		br, err := GuestHandshake(guest, guest, hello)
		if err != nil {
			gerr <- err
			return
		}
		// After GO the stream is clean: the next bytes are the session's.
		line, err := br.ReadString('\n')
		if err == nil && line != "session\n" {
			err = errors.New("unexpected bytes after GO: " + line)
		}
		gerr <- err
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	h, _, err := HostHandshake(ctx, host, 50*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if h.Agent != "test" || h.Capabilities[0] != CapScreenshots {
		t.Fatalf("hello %+v", h)
	}
	host.Write([]byte("session\n"))
	if err := <-gerr; err != nil {
		t.Fatal(err)
	}
}

func TestGuestFollowsAHostThatStartsOver(t *testing.T) {
	host, guest := pipePair()
	defer host.Close()
	defer guest.Close()
	done := make(chan error, 1)
	go func() {
		_, err := GuestHandshake(guest, guest, Hello{Version: Version})
		done <- err
	}()
	// A first host syncs, reads the ACK, then dies without GO.
	first := NewToken()
	host.Write([]byte(markSync + first + "\n"))
	br := bufio.NewReader(host)
	if _, tok, err := scanFor(br, markAck); err != nil || tok != first {
		t.Fatalf("ack: %q %v", tok, err)
	}
	ReadFrame(br, MaxHeader)
	// A new host: its handshake must complete.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, _, err := HostHandshake(ctx, conn{br, host, host}, 50*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestSessionCallsAndMalformedFrames(t *testing.T) {
	host, guest := pipePair()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	type sess struct {
		br  *bufio.Reader
		err error
	}
	gs := make(chan sess, 1)
	go func() {
		br, err := GuestHandshake(guest, guest, Hello{Version: Version})
		gs <- sess{br, err}
	}()
	_, hbr, err := HostHandshake(ctx, host, 50*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	g := <-gs
	if g.err != nil {
		t.Fatal(g.err)
	}
	hs, err := HostSession(host, hbr, nil)
	if err != nil {
		t.Fatal(err)
	}
	gsess, err := GuestSession(guest, g.br, nil)
	if err != nil {
		t.Fatal(err)
	}
	go Serve(ctx, hs, func(_ context.Context, req *Message) (*Message, error) {
		switch req.Type {
		case "fail":
			return nil, errors.New("refused")
		case "never":
			return nil, Invalid(errors.New("never stored"))
		}
		return NewMessage("ok", tracking.Ack{LogSize: int64(len(req.Blob(0)))})
	})
	req, _ := NewMessage(TypeCapture, tracking.Capture{ID: "x"}, bytes.Repeat([]byte{1}, 100000))
	ans, err := Call(ctx, gsess, req)
	if err != nil {
		t.Fatal(err)
	}
	var ack tracking.Ack
	if err := ans.Decode(&ack); err != nil || ack.LogSize != 100000 {
		t.Fatalf("ack %+v %v", ack, err)
	}
	bad, _ := NewMessage("fail", nil)
	if _, err := Call(ctx, gsess, bad); err == nil || err.Error() != "refused" || errors.Is(err, ErrInvalid) {
		t.Fatalf("error answer: %v (want a retryable \"refused\")", err)
	}
	never, _ := NewMessage("never", nil)
	if _, err := Call(ctx, gsess, never); err == nil || err.Error() != "never stored" || !errors.Is(err, ErrInvalid) {
		t.Fatalf("error answer: %v (want an invalid \"never stored\")", err)
	}
	// An oversized frame closes the session.
	st, err := gsess.OpenStream()
	if err != nil {
		t.Fatal(err)
	}
	binary.Write(st, binary.BigEndian, uint32(MaxHeader+1))
	deadline := time.Now().Add(5 * time.Second)
	for !hs.IsClosed() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if !hs.IsClosed() {
		t.Fatal("an oversized frame did not close the session")
	}
}

// FuzzReadMessage feeds arbitrary bytes to the frame decoder.
func FuzzReadMessage(f *testing.F) {
	var b bytes.Buffer
	m, _ := NewMessage(TypeCapture, tracking.Capture{ID: "c"}, []byte("jpeg"))
	WriteMessage(&b, m)
	f.Add(b.Bytes())
	f.Add([]byte{0, 0, 0, 2, '{', '}'})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bytes.NewReader(data)
		for i := 0; i < 4; i++ {
			m, err := ReadMessage(r)
			if err != nil {
				return
			}
			var c tracking.Capture
			_ = m.Decode(&c)
		}
	})
}

// FuzzGuestHandshake feeds arbitrary bytes to the guest's handshake: it
// answers a well-formed SYNC or keeps waiting, never panics.
func FuzzGuestHandshake(f *testing.F) {
	tok := strings.Repeat("ab", tokenLen/2)
	f.Add([]byte(markSync + tok + "\n" + markGo + tok + "\n"))
	f.Add([]byte("\xff\xff" + markSync + "zz\n"))
	f.Add([]byte(markSync + tok + "\n" + markSync + strings.Repeat("cd", tokenLen/2) + "\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = GuestHandshake(bytes.NewReader(data), io.Discard, Hello{Version: Version})
	})
}
