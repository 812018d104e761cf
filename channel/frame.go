// Package channel is the host↔guest protocol over the virtio-serial port
// org.workspace.agent.0: a resync handshake on every (re)connect, then a
// yamux session whose streams each carry one versioned request and its
// answer. Every frame has a size limit; both the daemon and the agent use
// this package.
package channel

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// Version is the protocol version. Version 2 added the error code of an
// error answer (Message.Code) and the tracking package's types as bodies.
const Version = 2

// Limits of one frame.
const (
	// MaxHeader bounds a request's or answer's JSON header.
	MaxHeader = 256 << 10
	// MaxBlob bounds one binary part (a screenshot).
	MaxBlob = 16 << 20
	// MaxBlobTotal bounds the binary parts of one message together (a
	// screenshot and its thumbnail): with MaxStreams requests read at a
	// time, a session holds at most MaxStreams × MaxBlobTotal of them.
	MaxBlobTotal = MaxBlob + 4<<20
	// MaxBlobs bounds the number of binary parts of one message.
	MaxBlobs = 4
)

// ErrTooLarge says a frame was over its limit; the session must be closed.
var ErrTooLarge = errors.New("frame over its size limit")

// WriteFrame writes a 4-byte big-endian length and the payload.
func WriteFrame(w io.Writer, b []byte) error {
	var hdr [4]byte
	binary.BigEndian.PutUint32(hdr[:], uint32(len(b)))
	if _, err := w.Write(hdr[:]); err != nil {
		return err
	}
	_, err := w.Write(b)
	return err
}

// readChunk is the most ReadFrame allocates for a frame before its bytes
// arrive.
const readChunk = 64 << 10

// ReadFrame reads one frame of at most max bytes. An oversized length is
// refused before anything is allocated, and the buffer of an allowed one
// grows as its bytes arrive (doubling from 64 KiB), so a peer that
// announces a large frame and sends nothing holds no more than that.
func ReadFrame(r io.Reader, max int) ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if int64(n) > int64(max) {
		return nil, fmt.Errorf("%w: %d bytes (limit %d)", ErrTooLarge, n, max)
	}
	size := int(n)
	b := make([]byte, 0, min(size, readChunk))
	for len(b) < size {
		if len(b) == cap(b) {
			nb := make([]byte, len(b), min(size, 2*cap(b)))
			copy(nb, b)
			b = nb
		}
		m, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+m]
		if err != nil && len(b) < size {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
	return b, nil
}

// Message is a request or an answer: a JSON header frame, then one frame
// per declared blob.
type Message struct {
	V    int    `json:"v"`
	Type string `json:"type,omitempty"`
	// Error is an error answer's message, Code its class (CodeInvalid,
	// CodeRefused or CodeUnavailable).
	Error string          `json:"error,omitempty"`
	Code  string          `json:"code,omitempty"`
	Body  json.RawMessage `json:"body,omitempty"`
	Blobs []int           `json:"blobs,omitempty"` // sizes of the binary parts
	data  [][]byte
}

// NewMessage makes a message with a JSON body and binary parts.
func NewMessage(typ string, body any, blobs ...[]byte) (*Message, error) {
	m := &Message{V: Version, Type: typ, data: blobs}
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("encode %s: %w", typ, err)
		}
		m.Body = b
	}
	for _, b := range blobs {
		m.Blobs = append(m.Blobs, len(b))
	}
	return m, nil
}

// Blob returns binary part i (nil when absent).
func (m *Message) Blob(i int) []byte {
	if i < 0 || i >= len(m.data) {
		return nil
	}
	return m.data[i]
}

// Decode decodes the body strictly into v.
func (m *Message) Decode(v any) error {
	if len(m.Body) == 0 {
		return fmt.Errorf("%s: no body", m.Type)
	}
	dec := json.NewDecoder(bytesReader(m.Body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%s body: %w", m.Type, err)
	}
	return nil
}

// WriteMessage writes m's header and blobs.
func WriteMessage(w io.Writer, m *Message) error {
	if m.V == 0 {
		m.V = Version
	}
	if len(m.data) > MaxBlobs {
		return fmt.Errorf("%w: %d blobs (limit %d)", ErrTooLarge, len(m.data), MaxBlobs)
	}
	hdr, err := json.Marshal(m)
	if err != nil {
		return err
	}
	if len(hdr) > MaxHeader {
		return fmt.Errorf("%w: header of %d bytes", ErrTooLarge, len(hdr))
	}
	if err := WriteFrame(w, hdr); err != nil {
		return err
	}
	for _, b := range m.data {
		if len(b) > MaxBlob {
			return fmt.Errorf("%w: blob of %d bytes", ErrTooLarge, len(b))
		}
		if err := WriteFrame(w, b); err != nil {
			return err
		}
	}
	return nil
}

// ReadMessage reads one message within the limits, checking the version
// and that the blobs are the sizes the header declared.
func ReadMessage(r io.Reader) (*Message, error) {
	hdr, err := ReadFrame(r, MaxHeader)
	if err != nil {
		return nil, err
	}
	m, err := parseHeader(hdr)
	if err != nil {
		return nil, err
	}
	for i, n := range m.Blobs {
		b, err := ReadFrame(r, MaxBlob)
		if err != nil {
			return nil, err
		}
		if len(b) != n {
			return nil, fmt.Errorf("%w: blob %d is %d bytes, the header said %d", ErrMalformed, i, len(b), n)
		}
		m.data = append(m.data, b)
	}
	return m, nil
}

// ErrMalformed says a frame could not be understood.
var ErrMalformed = errors.New("malformed message")

func parseHeader(hdr []byte) (*Message, error) {
	var m Message
	dec := json.NewDecoder(bytesReader(hdr))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if m.V != Version {
		return nil, fmt.Errorf("%w: version %d (this side speaks %d)", ErrMalformed, m.V, Version)
	}
	if len(m.Blobs) > MaxBlobs {
		return nil, fmt.Errorf("%w: %d blobs (limit %d)", ErrTooLarge, len(m.Blobs), MaxBlobs)
	}
	total := 0
	for _, n := range m.Blobs {
		if n < 0 || n > MaxBlob {
			return nil, fmt.Errorf("%w: blob of %d bytes", ErrTooLarge, n)
		}
		total += n
	}
	if total > MaxBlobTotal {
		return nil, fmt.Errorf("%w: blobs of %d bytes together (limit %d)", ErrTooLarge, total, MaxBlobTotal)
	}
	return &m, nil
}

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }
