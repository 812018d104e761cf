package vm

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"net"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/digitalocean/go-libvirt"
)

// fakeLibvirtd answers the calls a screenshot makes on one connection, in
// the order its script says: the point is to send a screenshot's stream
// data before, around and after the call's reply, as libvirtd may.
type fakeLibvirtd struct {
	t       *testing.T
	domains map[string]bool
	// order is how the screenshot's packets go out: "r" the reply, "d" a
	// data chunk, "e" the end of the stream, "v" an event.
	order  string
	chunks [][]byte
	auth   uint32 // the auth type it lists
	polkit bool   // whether AuthPolkit was called
	opened string // the URI ConnectOpen named
	closed bool   // whether ConnectClose was called
	bad    func(c *rpcConn, h rpcHeader) bool
}

func (f *fakeLibvirtd) serve(conn net.Conn) {
	defer conn.Close()
	c := &rpcConn{conn: conn}
	reply := func(h rpcHeader, status uint32, p []byte) {
		h.typ, h.status = pktReply, status
		c.send(h, p)
	}
	for {
		h, p, err := c.read()
		if err != nil {
			return
		}
		if f.bad != nil && f.bad(c, h) {
			continue
		}
		switch h.proc {
		case procAuthList:
			var w xdrWriter
			w.uint32(1)
			w.uint32(f.auth)
			reply(h, statusOK, w.b.Bytes())
		case procAuthPolkit:
			f.polkit = true
			reply(h, statusOK, []byte{0, 0, 0, 1})
		case procConnectOpen:
			r := xdrReader{b: p}
			f.opened, _ = r.optString()
			reply(h, statusOK, nil)
		case procDomainLookupByName:
			r := xdrReader{b: p}
			name, _ := r.string()
			if !f.domains[name] {
				reply(h, statusError, rpcError(int(libvirt.ErrNoDomain), "Domain not found: no domain with matching name '"+name+"'"))
				continue
			}
			var w xdrWriter
			w.string(name)
			w.b.Write(make([]byte, 16)) // uuid
			w.uint32(7)                 // id
			reply(h, statusOK, w.b.Bytes())
		case procDomainScreenshot:
			r := xdrReader{b: p}
			name, _ := r.string()
			if !f.domains[name] || len(p) != 4+(len(name)+3)/4*4+16+4+4+4 {
				f.t.Errorf("screenshot args %x", p)
			}
			chunks := f.chunks
			for _, step := range f.order {
				switch step {
				case 'r':
					var w xdrWriter
					w.optString("image/png")
					reply(h, statusOK, w.b.Bytes())
				case 'd':
					s := h
					s.typ, s.status = pktStream, statusContinue
					c.send(s, chunks[0])
					chunks = chunks[1:]
				case 'e':
					s := h
					s.typ, s.status = pktStream, statusOK
					c.send(s, nil)
				case 'v':
					c.send(rpcHeader{program: rpcProgram, version: 1, proc: 318, typ: pktMessage, status: statusOK}, []byte("an event"))
				}
			}
		case procConnectClose:
			f.closed = true
			reply(h, statusOK, nil)
		default:
			reply(h, statusError, rpcError(1, "unknown procedure"))
		}
	}
}

func rpcError(code int, msg string) []byte {
	var w xdrWriter
	w.uint32(uint32(code))
	w.uint32(10) // domain
	w.optString(msg)
	w.uint32(2) // level
	return w.b.Bytes()
}

// fakeDriver is a Driver that reaches f on a unix socket.
func fakeDriver(t *testing.T, f *fakeLibvirtd) *Driver {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "libvirt-sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go f.serve(c)
		}
	}()
	uri := "qemu:///system?socket=" + url.QueryEscape(sock)
	u, _ := url.Parse(uri)
	return &Driver{opts: Options{URI: uri}, uri: u, id: testIdentity}
}

func TestScreenshotWhateverOrderLibvirtdSendsIn(t *testing.T) {
	chunks := [][]byte{[]byte("\x89PNG\r\n\x1a\nfirst"), []byte("second"), []byte("third")}
	want := bytes.Join(chunks, nil)
	for _, order := range []string{
		"rddde",    // the documented order
		"dddre",    // all data before the reply
		"drdde",    // the reply mid-stream (go-libvirt loses the first chunk and then hangs)
		"ddder",    // the reply after the end
		"vdvrdvde", // events between
	} {
		t.Run(order, func(t *testing.T) {
			f := &fakeLibvirtd{t: t, domains: map[string]bool{"ws-0123abcd-acme": true}, order: order, chunks: chunks}
			d := fakeDriver(t, f)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			var out bytes.Buffer
			mime, err := d.Screenshot(ctx, "acme", &out)
			if err != nil {
				t.Fatal(err)
			}
			if mime != "image/png" || !bytes.Equal(out.Bytes(), want) {
				t.Fatalf("got %s %q, want image/png %q", mime, out.Bytes(), want)
			}
			if f.opened != "qemu:///system" || !f.closed {
				t.Fatalf("opened %q, closed %v", f.opened, f.closed)
			}
		})
	}
}

func TestScreenshotRefusals(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	chunks := [][]byte{[]byte("\x89PNG\r\n\x1a\n")}

	// An unknown domain is ErrNotFound, with libvirt's words.
	f := &fakeLibvirtd{t: t, domains: map[string]bool{}, order: "rde", chunks: chunks}
	var out bytes.Buffer
	_, err := fakeDriver(t, f).Screenshot(ctx, "gone", &out)
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "ws-0123abcd-gone") {
		t.Fatalf("unknown domain: %v", err)
	}

	// Polkit is asked for when libvirtd lists it.
	f = &fakeLibvirtd{t: t, domains: map[string]bool{"ws-0123abcd-acme": true}, order: "rde", chunks: chunks, auth: authPolkit}
	if _, err := fakeDriver(t, f).Screenshot(ctx, "acme", &out); err != nil || !f.polkit {
		t.Fatalf("polkit: called %v, %v", f.polkit, err)
	}

	// An authentication it cannot do is a clear error.
	f = &fakeLibvirtd{t: t, domains: map[string]bool{"ws-0123abcd-acme": true}, auth: 1}
	if _, err := fakeDriver(t, f).Screenshot(ctx, "acme", &out); err == nil || !strings.Contains(err.Error(), "authentication of type 1") {
		t.Fatalf("sasl: %v", err)
	}

	// An empty stream is not a screenshot.
	f = &fakeLibvirtd{t: t, domains: map[string]bool{"ws-0123abcd-acme": true}, order: "re"}
	if _, err := fakeDriver(t, f).Screenshot(ctx, "acme", &out); !errors.Is(err, ErrProtocol) {
		t.Fatalf("empty stream: %v", err)
	}

	// An oversized packet ends it with a protocol error, not an allocation.
	f = &fakeLibvirtd{t: t, domains: map[string]bool{"ws-0123abcd-acme": true}, bad: func(c *rpcConn, h rpcHeader) bool {
		if h.proc != procDomainScreenshot {
			return false
		}
		b := binary.BigEndian.AppendUint32(nil, 1<<30)
		c.conn.Write(append(b, make([]byte, 24)...))
		return true
	}}
	if _, err := fakeDriver(t, f).Screenshot(ctx, "acme", &out); !errors.Is(err, ErrProtocol) {
		t.Fatalf("oversized packet: %v", err)
	}

	// A libvirtd that never answers ends at the context's deadline.
	f = &fakeLibvirtd{t: t, domains: map[string]bool{"ws-0123abcd-acme": true}, bad: func(c *rpcConn, h rpcHeader) bool {
		return h.proc == procDomainScreenshot
	}}
	sctx, scancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer scancel()
	if _, err := fakeDriver(t, f).Screenshot(sctx, "acme", &out); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("no answer: %v", err)
	}

	// A transport it does not speak is named.
	d := &Driver{id: testIdentity, opts: Options{URI: "qemu+ssh://host/system"}, uri: &url.URL{Scheme: "qemu+ssh", Host: "host", Path: "/system"}}
	if _, err := d.Screenshot(ctx, "acme", &out); err == nil || !strings.Contains(err.Error(), `"ssh" transport`) {
		t.Fatalf("ssh: %v", err)
	}
}

func FuzzXDRReader(f *testing.F) {
	var w xdrWriter
	w.optString("image/png")
	f.Add(w.b.Bytes())
	f.Add(rpcError(42, "Domain not found"))
	f.Add([]byte{0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		r := xdrReader{b: b}
		s, err := r.optString()
		if err == nil && len(s) > len(b) {
			t.Fatalf("a string of %d bytes from %d", len(s), len(b))
		}
		_ = decodeRPCError(b)
	})
}
