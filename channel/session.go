package channel

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/hashicorp/yamux"
)

// Heartbeat is how often each side pings; a session that misses them for
// longer than the write timeout is closed and the host resyncs.
const Heartbeat = 5 * time.Second

func yamuxConfig(logw io.Writer) *yamux.Config {
	c := yamux.DefaultConfig()
	c.EnableKeepAlive = true
	c.KeepAliveInterval = Heartbeat
	c.ConnectionWriteTimeout = 15 * time.Second
	c.StreamOpenTimeout = 30 * time.Second
	c.AcceptBacklog = 32
	c.MaxStreamWindowSize = 1 << 20
	if logw == nil {
		logw = io.Discard
	}
	c.LogOutput = logw
	return c
}

// conn joins the handshake's buffered reader with the connection.
type conn struct {
	r io.Reader
	io.Writer
	io.Closer
}

func (c conn) Read(p []byte) (int, error) { return c.r.Read(p) }

// HostSession starts the host's side of the session after HostHandshake.
func HostSession(rwc io.ReadWriteCloser, br *bufio.Reader, logw io.Writer) (*yamux.Session, error) {
	return yamux.Client(conn{br, rwc, rwc}, yamuxConfig(logw))
}

// GuestSession starts the guest's side of the session after GuestHandshake.
func GuestSession(rwc io.ReadWriteCloser, br *bufio.Reader, logw io.Writer) (*yamux.Session, error) {
	return yamux.Server(conn{br, rwc, rwc}, yamuxConfig(logw))
}

// Handler answers one request; an error becomes an error answer.
type Handler func(ctx context.Context, req *Message) (*Message, error)

// Error codes of an error answer: what the sender of the request should do.
const (
	// CodeInvalid: the request can never succeed (the sender drops it).
	CodeInvalid = "invalid"
	// CodeUnavailable: not now (the sender tries again later).
	CodeUnavailable = "unavailable"
	// CodeRefused: the host will not take it (over a quota, outside the
	// tracking session, an image it will not decode): the sender drops it,
	// as an invalid one, and waits longer before sending more (it doubles
	// its wait after every refusal). An older agent reads an unknown code
	// as CodeUnavailable and retries, which the host slows down too.
	CodeRefused = "refused"
)

// ErrInvalid classes a handler's error as CodeInvalid (wrap it with %w);
// every other error answers CodeUnavailable. An ErrRemote of CodeInvalid
// is ErrInvalid to errors.Is.
var ErrInvalid = errors.New("invalid request")

// ErrRefused classes a handler's error as CodeRefused; an ErrRemote of
// CodeRefused is both ErrRefused and ErrInvalid to errors.Is (the sender
// drops the request either way).
var ErrRefused = errors.New("refused")

// Refused classes err as CodeRefused, its message unchanged.
func Refused(err error) error { return refusedError{err} }

type refusedError struct{ error }

func (e refusedError) Unwrap() []error { return []error{ErrRefused, ErrInvalid, e.error} }

// Invalid classes err as CodeInvalid, its message unchanged.
func Invalid(err error) error { return invalidError{err} }

type invalidError struct{ error }

func (e invalidError) Unwrap() []error { return []error{ErrInvalid, e.error} }

// ErrRemote is an error answer from the other side.
type ErrRemote struct {
	Code string
	Msg  string
}

func (e *ErrRemote) Error() string { return e.Msg }

// Is reports whether target is the class of e's code.
func (e *ErrRemote) Is(target error) bool {
	switch target {
	case ErrInvalid:
		return e.Code == CodeInvalid || e.Code == CodeRefused
	case ErrRefused:
		return e.Code == CodeRefused
	}
	return false
}

// errorAnswer is the answer to a request whose handler failed with err.
func errorAnswer(err error) *Message {
	code := CodeUnavailable
	switch {
	case errors.Is(err, ErrRefused):
		code = CodeRefused
	case errors.Is(err, ErrInvalid):
		code = CodeInvalid
	}
	return &Message{V: Version, Type: "error", Error: err.Error(), Code: code}
}

// MaxStreams is how many requests of one session Serve reads and answers at
// a time. Further streams wait in yamux's accept backlog (which resets
// streams beyond it), so a peer that opens many streams cannot make this
// side hold more than MaxStreams partly read requests.
const MaxStreams = 8

// ErrBadRequest says Serve closed a session because a request on it was
// malformed, oversized or cut short; it wraps the frame error.
var ErrBadRequest = errors.New("bad request")

// Serve answers requests on sess until it closes, at most MaxStreams at a
// time. A malformed or oversized request closes the whole session and Serve
// returns that error (wrapping ErrBadRequest), so the host can log it
// before it resyncs; no other session is touched.
func Serve(ctx context.Context, sess *yamux.Session, h Handler) error {
	var (
		mu  sync.Mutex
		bad error
	)
	slots := make(chan struct{}, MaxStreams)
	for {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		case <-sess.CloseChan():
			mu.Lock()
			defer mu.Unlock()
			if bad != nil {
				return bad
			}
			return yamux.ErrSessionShutdown
		}
		st, err := sess.AcceptStreamWithContext(ctx)
		if err != nil {
			mu.Lock()
			defer mu.Unlock()
			if bad != nil {
				return bad
			}
			return err
		}
		go func() {
			defer func() { <-slots }()
			defer st.Close()
			_ = st.SetReadDeadline(time.Now().Add(2 * time.Minute))
			req, err := ReadMessage(st)
			if err != nil {
				if isFrameError(err) {
					mu.Lock()
					if bad == nil {
						bad = fmt.Errorf("%w on stream %d: %w", ErrBadRequest, st.StreamID(), err)
					}
					mu.Unlock()
					sess.Close()
				}
				return
			}
			_ = st.SetReadDeadline(time.Time{})
			ans, herr := h(ctx, req)
			if herr != nil {
				ans = errorAnswer(herr)
			} else if ans == nil {
				ans = &Message{V: Version, Type: "ok"}
			}
			_ = st.SetWriteDeadline(time.Now().Add(2 * time.Minute))
			_ = WriteMessage(st, ans)
		}()
	}
}

// isFrameError says whether a request's read failed because of what the
// other side sent (or did not send in time), rather than because it closed
// or reset its stream or the session went away.
func isFrameError(err error) bool {
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, yamux.ErrStreamClosed),
		errors.Is(err, yamux.ErrSessionShutdown), errors.Is(err, yamux.ErrConnectionReset):
		return false
	}
	return true
}

// Call sends req on a new stream and waits for the answer.
func Call(ctx context.Context, sess *yamux.Session, req *Message) (*Message, error) {
	st, err := sess.OpenStream()
	if err != nil {
		return nil, fmt.Errorf("%s: open stream: %w", req.Type, err)
	}
	defer st.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = st.SetDeadline(dl)
	}
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-ctx.Done():
			st.Close()
		case <-done:
		}
	}()
	if err := WriteMessage(st, req); err != nil {
		return nil, fmt.Errorf("%s: send: %w", req.Type, err)
	}
	ans, err := ReadMessage(st)
	if err != nil {
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return nil, fmt.Errorf("%s: answer: %w", req.Type, err)
	}
	if ans.Error != "" {
		return ans, &ErrRemote{Code: ans.Code, Msg: ans.Error}
	}
	return ans, nil
}
