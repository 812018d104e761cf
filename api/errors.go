package api

import (
	"errors"
	"net/http"
)

// Error classes. The daemon wraps its errors with these and they are mapped
// to wire codes only at the HTTP boundary (see CodeFor and StatusFor); the
// client maps a code back so callers can use errors.Is.
var (
	ErrNotFound    = errors.New("not found")
	ErrExists      = errors.New("already exists")
	ErrInvalid     = errors.New("invalid request")
	ErrConflict    = errors.New("conflict")
	ErrUnavailable = errors.New("unavailable")
	ErrForbidden   = errors.New("forbidden")
	// ErrDaemonNotRunning is returned by the client when nothing listens on
	// the socket.
	ErrDaemonNotRunning = errors.New("workspace daemon is not running")
)

var classes = []struct {
	err    error
	code   string
	status int
}{
	{ErrNotFound, CodeNotFound, http.StatusNotFound},
	{ErrExists, CodeExists, http.StatusConflict},
	{ErrInvalid, CodeInvalid, http.StatusBadRequest},
	{ErrConflict, CodeConflict, http.StatusConflict},
	{ErrUnavailable, CodeUnavailable, http.StatusServiceUnavailable},
	{ErrForbidden, CodeForbidden, http.StatusForbidden},
}

// CodeFor returns the wire code and HTTP status for err.
func CodeFor(err error) (code string, status int) {
	for _, c := range classes {
		if errors.Is(err, c.err) {
			return c.code, c.status
		}
	}
	return CodeInternal, http.StatusInternalServerError
}

// errorFor returns the sentinel error for a wire code, or nil.
func errorFor(code string) error {
	for _, c := range classes {
		if c.code == code {
			return c.err
		}
	}
	return nil
}

// RemoteError is an error reported by the daemon. Its message is the
// daemon's; Is matches the error class of its code.
type RemoteError struct {
	Code    string
	Message string
	Status  int
}

func (e *RemoteError) Error() string { return e.Message }

// Is reports whether target is the sentinel error class of e's code.
func (e *RemoteError) Is(target error) bool {
	class := errorFor(e.Code)
	return class != nil && class == target
}
