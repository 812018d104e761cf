package vm

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/digitalocean/go-libvirt"
	"github.com/digitalocean/go-libvirt/socket"
	"github.com/digitalocean/go-libvirt/socket/dialers"
)

// A screenshot is a libvirt stream call, and go-libvirt's stream calls
// assume that the call's reply arrives before the stream's data. libvirtd
// sends the reply from a worker thread and the data from its event loop,
// so the first chunk of a screenshot can come first: go-libvirt then takes
// that chunk for the reply (the image loses its head), returns when the
// real reply arrives mid-stream, and its reader blocks for good on the rest
// of the stream while holding its callback lock, which hangs every later
// call on that connection. So Screenshot speaks the few calls it needs
// itself, on a short-lived connection of its own, and tells packets apart
// by their header's type: the main connection never carries a stream that
// comes back from libvirtd.

// Libvirt's remote protocol, as far as a screenshot needs it
// (src/remote/remote_protocol.x and src/rpc/virnetprotocol.x).
const (
	rpcProgram = 0x20008086
	rpcVersion = 1

	procConnectOpen        = 1
	procConnectClose       = 2
	procDomainLookupByName = 23
	procAuthList           = 66
	procAuthPolkit         = 70
	procDomainScreenshot   = 211

	pktCall    = socket.Call
	pktReply   = socket.Reply
	pktMessage = socket.Message
	pktStream  = socket.Stream

	statusOK       = socket.StatusOK
	statusError    = socket.StatusError
	statusContinue = socket.StatusContinue

	authNone   = 0
	authPolkit = 2

	rpcHeaderLen = 28 // length word and header
	// maxPacket is libvirt's largest message (VIR_NET_MESSAGE_MAX).
	maxPacket = 32 << 20
	// MaxScreenshot bounds the image a screenshot may stream.
	MaxScreenshot = 64 << 20
	// screenshotTimeout bounds a screenshot whose context has no deadline.
	screenshotTimeout = 30 * time.Second
)

// ErrProtocol says libvirtd sent something the screenshot call cannot
// make sense of.
var ErrProtocol = errors.New("libvirt protocol error")

// rpcHeader is a packet's header.
type rpcHeader struct {
	program, version, proc, typ uint32
	serial                      int32
	status                      uint32
}

// rpcConn is one libvirt RPC connection that makes one call at a time and
// reads every packet itself, in order.
type rpcConn struct {
	conn   net.Conn
	serial int32
}

func (c *rpcConn) send(h rpcHeader, payload []byte) error {
	buf := make([]byte, rpcHeaderLen, rpcHeaderLen+len(payload))
	binary.BigEndian.PutUint32(buf[0:], uint32(rpcHeaderLen+len(payload)))
	binary.BigEndian.PutUint32(buf[4:], h.program)
	binary.BigEndian.PutUint32(buf[8:], h.version)
	binary.BigEndian.PutUint32(buf[12:], h.proc)
	binary.BigEndian.PutUint32(buf[16:], h.typ)
	binary.BigEndian.PutUint32(buf[20:], uint32(h.serial))
	binary.BigEndian.PutUint32(buf[24:], h.status)
	_, err := c.conn.Write(append(buf, payload...))
	return err
}

// read returns the next packet.
func (c *rpcConn) read() (rpcHeader, []byte, error) {
	var b [rpcHeaderLen]byte
	if _, err := io.ReadFull(c.conn, b[:]); err != nil {
		return rpcHeader{}, nil, err
	}
	n := binary.BigEndian.Uint32(b[0:])
	if n < rpcHeaderLen || n > maxPacket {
		return rpcHeader{}, nil, fmt.Errorf("%w: a packet of %d bytes", ErrProtocol, n)
	}
	h := rpcHeader{
		program: binary.BigEndian.Uint32(b[4:]),
		version: binary.BigEndian.Uint32(b[8:]),
		proc:    binary.BigEndian.Uint32(b[12:]),
		typ:     binary.BigEndian.Uint32(b[16:]),
		serial:  int32(binary.BigEndian.Uint32(b[20:])),
		status:  binary.BigEndian.Uint32(b[24:]),
	}
	p := make([]byte, n-rpcHeaderLen)
	if _, err := io.ReadFull(c.conn, p); err != nil {
		return rpcHeader{}, nil, err
	}
	return h, p, nil
}

// start sends a call and returns its serial.
func (c *rpcConn) start(proc uint32, args []byte) (int32, error) {
	c.serial++
	return c.serial, c.send(rpcHeader{program: rpcProgram, version: rpcVersion, proc: proc, typ: pktCall, serial: c.serial, status: statusOK}, args)
}

// ours says whether a packet belongs to the call; events and other
// programs' messages are skipped, anything else is a protocol error.
func ours(h rpcHeader, proc uint32, serial int32) (bool, error) {
	if h.typ == pktMessage {
		return false, nil // an event: nobody here asked for it
	}
	if h.program != rpcProgram || h.proc != proc || h.serial != serial {
		return false, fmt.Errorf("%w: a packet of procedure %d, serial %d, type %d during call %d (serial %d)", ErrProtocol, h.proc, h.serial, h.typ, proc, serial)
	}
	return true, nil
}

// call makes a call without a stream and returns its reply's payload.
func (c *rpcConn) call(proc uint32, args []byte) ([]byte, error) {
	serial, err := c.start(proc, args)
	if err != nil {
		return nil, err
	}
	for {
		h, p, err := c.read()
		if err != nil {
			return nil, err
		}
		if mine, err := ours(h, proc, serial); err != nil {
			return nil, err
		} else if !mine {
			continue
		}
		if h.typ != pktReply {
			return nil, fmt.Errorf("%w: a packet of type %d as the reply to call %d", ErrProtocol, h.typ, proc)
		}
		if h.status == statusError {
			return nil, decodeRPCError(p)
		}
		return p, nil
	}
}

// screenshot calls DomainScreenshot on dom (a remote_nonnull_domain, as a
// lookup returned it) and copies the stream to w. The reply and the
// stream's packets may come in any order; it returns when it has both.
func (c *rpcConn) screenshot(dom []byte, w io.Writer) (string, error) {
	args := append(append([]byte{}, dom...), 0, 0, 0, 0, 0, 0, 0, 0) // screen 0, flags 0
	serial, err := c.start(procDomainScreenshot, args)
	if err != nil {
		return "", err
	}
	var (
		mime            string
		replied, ended  bool
		written, chunks int64
	)
	for !replied || !ended {
		h, p, err := c.read()
		if err != nil {
			return "", err
		}
		if mine, err := ours(h, procDomainScreenshot, serial); err != nil {
			return "", err
		} else if !mine {
			continue
		}
		switch {
		case h.status == statusError:
			return "", decodeRPCError(p)
		case h.typ == pktReply && !replied:
			d := xdrReader{b: p}
			if mime, err = d.optString(); err != nil {
				return "", fmt.Errorf("%w: screenshot reply: %v", ErrProtocol, err)
			}
			replied = true
		case h.typ == pktStream && !ended && h.status == statusContinue && len(p) > 0:
			if written+int64(len(p)) > MaxScreenshot {
				return "", fmt.Errorf("%w: the screenshot is over %d MiB", ErrProtocol, MaxScreenshot>>20)
			}
			if _, err := w.Write(p); err != nil {
				return "", err
			}
			written += int64(len(p))
			chunks++
		case h.typ == pktStream && !ended && (h.status == statusOK || h.status == statusContinue):
			ended = true // the end of the stream: OK (or, from some libvirtd, an empty CONTINUE)
		default:
			return "", fmt.Errorf("%w: an unexpected packet (type %d, status %d) in a screenshot", ErrProtocol, h.typ, h.status)
		}
	}
	if written == 0 {
		return "", fmt.Errorf("%w: the screenshot stream was empty", ErrProtocol)
	}
	return mime, nil
}

// open authenticates (none or polkit) and opens uri on the server.
func (c *rpcConn) open(uri string) error {
	p, err := c.call(procAuthList, nil)
	if err != nil {
		return fmt.Errorf("auth list: %w", err)
	}
	d := xdrReader{b: p}
	n, err := d.uint32()
	if err != nil || n > 64 {
		return fmt.Errorf("%w: auth list of %d types: %v", ErrProtocol, n, err)
	}
	var types []uint32
	for range n {
		t, err := d.uint32()
		if err != nil {
			return fmt.Errorf("%w: auth list: %v", ErrProtocol, err)
		}
		types = append(types, t)
	}
	switch {
	case len(types) == 0 || types[0] == authNone:
	case types[0] == authPolkit:
		if _, err := c.call(procAuthPolkit, nil); err != nil {
			return fmt.Errorf("polkit: %w", err)
		}
	default:
		return fmt.Errorf("libvirtd asks for authentication of type %d, which the screenshot connection cannot do", types[0])
	}
	var a xdrWriter
	a.optString(uri)
	a.uint32(0) // flags
	if _, err := c.call(procConnectOpen, a.b.Bytes()); err != nil {
		return fmt.Errorf("open %s: %w", uri, err)
	}
	return nil
}

// lookup returns the domain's remote_nonnull_domain encoding.
func (c *rpcConn) lookup(name string) ([]byte, error) {
	var a xdrWriter
	a.string(name)
	return c.call(procDomainLookupByName, a.b.Bytes())
}

// decodeRPCError turns a remote_error into a libvirt.Error, which the
// driver classifies as it does go-libvirt's.
func decodeRPCError(p []byte) error {
	d := xdrReader{b: p}
	code, err := d.uint32()
	if err == nil {
		_, err = d.uint32() // domain
	}
	var msg string
	if err == nil {
		msg, err = d.optString()
	}
	if err != nil {
		return fmt.Errorf("%w: an error reply that does not decode: %v", ErrProtocol, err)
	}
	return libvirt.Error{Code: code, Message: msg}
}

// xdrReader reads the few XDR types a screenshot needs.
type xdrReader struct {
	b []byte
}

func (r *xdrReader) uint32() (uint32, error) {
	if len(r.b) < 4 {
		return 0, io.ErrUnexpectedEOF
	}
	v := binary.BigEndian.Uint32(r.b)
	r.b = r.b[4:]
	return v, nil
}

func (r *xdrReader) string() (string, error) {
	n, err := r.uint32()
	if err != nil {
		return "", err
	}
	padded := (uint64(n) + 3) &^ 3
	if uint64(len(r.b)) < padded {
		return "", io.ErrUnexpectedEOF
	}
	s := string(r.b[:n])
	r.b = r.b[padded:]
	return s, nil
}

func (r *xdrReader) optString() (string, error) {
	present, err := r.uint32()
	if err != nil || present == 0 {
		return "", err
	}
	return r.string()
}

// xdrWriter writes the few XDR types a screenshot needs.
type xdrWriter struct {
	b bytes.Buffer
}

func (w *xdrWriter) uint32(v uint32) {
	w.b.Write(binary.BigEndian.AppendUint32(nil, v))
}

func (w *xdrWriter) string(s string) {
	w.uint32(uint32(len(s)))
	w.b.WriteString(s)
	w.b.Write(make([]byte, (4-len(s)%4)%4))
}

func (w *xdrWriter) optString(s string) {
	w.uint32(1)
	w.string(s)
}

// dialerFor returns how to reach the libvirtd of uri, for the transports
// the screenshot connection supports: unix (with ?socket=), tcp and tls.
func dialerFor(u *url.URL) (socket.Dialer, error) {
	transport := "unix"
	if _, t, ok := strings.Cut(u.Scheme, "+"); ok {
		transport = t
	} else if u.Host != "" {
		transport = "tls"
	}
	switch transport {
	case "unix":
		var opts []dialers.LocalOption
		if s := u.Query().Get("socket"); s != "" {
			opts = append(opts, dialers.WithSocket(s))
		}
		return dialers.NewLocal(opts...), nil
	case "tcp":
		var opts []dialers.RemoteOption
		if p := u.Port(); p != "" {
			opts = append(opts, dialers.UsePort(p))
		}
		return dialers.NewRemote(u.Hostname(), opts...), nil
	case "tls":
		var opts []dialers.TLSOption
		if p := u.Port(); p != "" {
			opts = append(opts, dialers.UseTLSPort(p))
		}
		if p := u.Query().Get("pkipath"); p != "" {
			opts = append(opts, dialers.UsePKIPath(p))
		}
		if u.Query().Get("no_verify") == "1" {
			opts = append(opts, dialers.WithInsecureNoVerify())
		}
		return dialers.NewTLS(u.Hostname(), opts...), nil
	}
	return nil, fmt.Errorf("screenshots over the %q transport are not supported (unix, tcp and tls are)", transport)
}

// Screenshot writes the VM's screen (libvirt's host-side capture) to w and
// returns its MIME type as libvirt reports it: PNG from QEMU 7.1 on, PPM
// before. It uses a connection of its own (see above).
func (d *Driver) Screenshot(ctx context.Context, name string, w io.Writer) (string, error) {
	dom := d.DomainName(name)
	dialer, err := dialerFor(d.uri)
	if err != nil {
		return "", fmt.Errorf("screenshot %s: %w", dom, err)
	}
	conn, err := dialer.Dial()
	if err != nil {
		return "", fmt.Errorf("screenshot %s: %w: cannot reach libvirt at %s: %v", dom, ErrUnreachable, d.opts.URI, err)
	}
	defer conn.Close()
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(screenshotTimeout)
	}
	conn.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	defer stop()

	c := &rpcConn{conn: conn}
	mime, err := func() (string, error) {
		if err := c.open(string(libvirt.RemoteURI(d.uri))); err != nil {
			return "", err
		}
		ref, err := c.lookup(dom)
		if err != nil {
			return "", err
		}
		mime, err := c.screenshot(ref, w)
		if err == nil {
			// A polite close; the connection goes either way.
			conn.SetDeadline(time.Now().Add(2 * time.Second))
			_, _ = c.call(procConnectClose, nil)
		}
		return mime, err
	}()
	var le libvirt.Error
	var ne net.Error
	switch {
	case err == nil:
		return mime, nil
	case ctx.Err() != nil:
		err = fmt.Errorf("%w (%v)", ctx.Err(), err)
	case errors.As(err, &ne) && ne.Timeout():
		err = fmt.Errorf("%w: libvirt did not finish the screenshot in time (%v)", context.DeadlineExceeded, err)
	case errors.As(err, &le):
		err = d.lverr(err)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.As(err, &ne):
		err = fmt.Errorf("%w: lost libvirt at %s: %v", ErrUnreachable, d.opts.URI, err)
	}
	return "", fmt.Errorf("screenshot %s: %w", dom, err)
}
