package channel

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"
)

// The resync markers. A virtio-serial port keeps whatever was in flight
// when one side went away, so after every (re)connect the host sends SYNC
// with a fresh random token until the guest answers ACK with that token and
// its Hello; the host then sends GO once, and both sides start the session.
// Everything else read while waiting for a marker is discarded, as
// qemu-guest-agent's guest-sync-delimited does.
const (
	markSync = "\xffWS-SYNC:"
	markAck  = "\xffWS-ACK:"
	markGo   = "\xffWS-GO:"
	tokenLen = 32 // hex characters
)

// Hello is the guest's answer to a sync: who it is and what it can do.
type Hello struct {
	Version      int      `json:"version"`
	Agent        string   `json:"agent"`
	OS           string   `json:"os"`
	Capabilities []string `json:"capabilities"`
}

// NewToken returns a random sync token.
func NewToken() string {
	b := make([]byte, tokenLen/2)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func isToken(s string) bool {
	if len(s) != tokenLen {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

// scanFor reads from r until it has seen one of marks followed by a token
// and a newline, and returns which mark and the token. Everything else is
// dropped. Markers start with 0xff, which no marker or token contains
// elsewhere, so a 0xff always restarts the match.
func scanFor(r *bufio.Reader, marks ...string) (string, string, error) {
	longest := 0
	for _, mk := range marks {
		longest = max(longest, len(mk)+tokenLen+1)
	}
	buf := make([]byte, 0, longest)
	for {
		c, err := r.ReadByte()
		if err != nil {
			return "", "", err
		}
		if c == 0xff {
			buf = buf[:0]
		} else if len(buf) == 0 {
			continue
		}
		buf = append(buf, c)
		if c == '\n' {
			for _, mk := range marks {
				if len(buf) == len(mk)+tokenLen+1 && bytes.HasPrefix(buf, []byte(mk)) {
					if t := string(buf[len(mk) : len(mk)+tokenLen]); isToken(t) {
						return mk, t, nil
					}
				}
			}
			buf = buf[:0]
			continue
		}
		if len(buf) >= longest {
			buf = buf[:0]
		}
	}
}

// ErrUnsupportedVersion says the guest's Hello announced a protocol version
// this side does not speak.
var ErrUnsupportedVersion = errors.New("unsupported protocol version")

// HostHandshake runs the host side on conn: SYNC every resend until the
// guest's ACK with this token, then its Hello, then GO. The returned reader
// must be used for the session (it may hold bytes read past the Hello).
// A Hello of another protocol version is refused with
// ErrUnsupportedVersion (and the Hello, so the caller can say who it was);
// GO is not sent then, so the guest keeps waiting for a new sync.
func HostHandshake(ctx context.Context, conn io.ReadWriter, resend time.Duration) (Hello, *bufio.Reader, error) {
	return hostHandshake(ctx, conn, resend, NewToken())
}

func hostHandshake(ctx context.Context, conn io.ReadWriter, resend time.Duration, token string) (Hello, *bufio.Reader, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wmu sync.Mutex
	werr := make(chan error, 1)
	go func() {
		t := time.NewTicker(resend)
		defer t.Stop()
		for {
			wmu.Lock()
			_, err := io.WriteString(conn, markSync+token+"\n")
			wmu.Unlock()
			if err != nil {
				werr <- err
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	type result struct {
		hello Hello
		err   error
	}
	br := bufio.NewReader(conn)
	res := make(chan result, 1)
	go func() {
		for {
			_, tok, err := scanFor(br, markAck)
			if err != nil {
				res <- result{err: err}
				return
			}
			if tok != token {
				continue // an answer to an older sync
			}
			b, err := ReadFrame(br, MaxHeader)
			if err != nil {
				res <- result{err: fmt.Errorf("hello: %w", err)}
				return
			}
			var h Hello
			dec := json.NewDecoder(bytes.NewReader(b))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&h); err != nil {
				res <- result{err: fmt.Errorf("%w: hello: %v", ErrMalformed, err)}
				return
			}
			res <- result{hello: h}
			return
		}
	}()
	select {
	case <-ctx.Done():
		return Hello{}, nil, ctx.Err()
	case err := <-werr:
		return Hello{}, nil, fmt.Errorf("send sync: %w", err)
	case r := <-res:
		if r.err != nil {
			return Hello{}, nil, r.err
		}
		if r.hello.Version != Version {
			return r.hello, nil, fmt.Errorf("%w: the agent speaks protocol %d, this side speaks %d", ErrUnsupportedVersion, r.hello.Version, Version)
		}
		cancel()
		wmu.Lock()
		_, err := io.WriteString(conn, markGo+token+"\n")
		wmu.Unlock()
		if err != nil {
			return Hello{}, nil, fmt.Errorf("send go: %w", err)
		}
		return r.hello, br, nil
	}
}

// GuestHandshake runs the guest side: wait for a SYNC, answer ACK and
// hello, then wait for GO with the same token (a SYNC with a new token means
// the host started over: answer that one instead). It returns the reader to
// use for the session.
func GuestHandshake(r io.Reader, w io.Writer, hello Hello) (*bufio.Reader, error) {
	hb, err := json.Marshal(hello)
	if err != nil {
		return nil, err
	}
	br, ok := r.(*bufio.Reader)
	if !ok {
		br = bufio.NewReader(r)
	}
	_, tok, err := scanFor(br, markSync)
	if err != nil {
		return nil, err
	}
	for {
		var ack bytes.Buffer
		ack.WriteString(markAck + tok + "\n")
		if err := WriteFrame(&ack, hb); err != nil {
			return nil, err
		}
		if _, err := w.Write(ack.Bytes()); err != nil {
			return nil, fmt.Errorf("send ack: %w", err)
		}
		// Wait for GO (or a SYNC with a new token).
		for {
			kind, t, err := scanFor(br, markSync, markGo)
			if err != nil {
				return nil, err
			}
			if kind == markGo && t == tok {
				return br, nil
			}
			if kind == markSync && t != tok {
				tok = t
				break
			}
		}
	}
}
