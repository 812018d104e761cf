//go:build !windows

package guestagent

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// xiListener counts input from the X server's XInput2 raw events (key
// presses, button presses, pointer motion): counts only, the key is never
// looked at. xgb cannot read XInput2's generic events, so this speaks the
// few requests it needs itself, on its own connection.
type xiListener struct {
	display string
}

func newInputSource() inputSource { return &xiListener{display: os.Getenv("DISPLAY")} }

// XI2 raw event types and the requests used.
const (
	xiRawKeyPress    = 13
	xiRawButtonPress = 15
	xiRawMotion      = 17
	opQueryExtension = 98
	xiQueryVersion   = 47
	xiSelectEvents   = 46
	xiAllMasterDevs  = 1
)

// Run connects and calls ev for each input event until the connection
// fails (the caller reconnects).
func (l *xiListener) Run(stop <-chan struct{}, ev func(kind InputKind)) error {
	conn, root, err := x11Connect(l.display)
	if err != nil {
		return err
	}
	defer conn.Close()
	go func() { <-stop; conn.Close() }()
	br := bufio.NewReader(conn)
	// QueryExtension "XInputExtension".
	name := "XInputExtension"
	req := make([]byte, 8+pad4(len(name)))
	req[0] = opQueryExtension
	binary.LittleEndian.PutUint16(req[2:], uint16(len(req)/4))
	binary.LittleEndian.PutUint16(req[4:], uint16(len(name)))
	copy(req[8:], name)
	if _, err := conn.Write(req); err != nil {
		return err
	}
	rep, err := readReply(br)
	if err != nil {
		return fmt.Errorf("query XInput: %w", err)
	}
	if rep[8] == 0 {
		return errors.New("the X server has no XInput extension")
	}
	major := rep[9]
	// XIQueryVersion 2.2, then select raw events on the root window.
	qv := make([]byte, 8)
	qv[0], qv[1] = major, xiQueryVersion
	binary.LittleEndian.PutUint16(qv[2:], 2)
	binary.LittleEndian.PutUint16(qv[4:], 2)
	binary.LittleEndian.PutUint16(qv[6:], 2)
	if _, err := conn.Write(qv); err != nil {
		return err
	}
	if rep, err = readReply(br); err != nil {
		return fmt.Errorf("XInput version: %w", err)
	}
	if v := binary.LittleEndian.Uint16(rep[8:]); v < 2 {
		return fmt.Errorf("the X server has XInput %d, not 2", v)
	}
	se := make([]byte, 20)
	se[0], se[1] = major, xiSelectEvents
	binary.LittleEndian.PutUint16(se[2:], 5)
	binary.LittleEndian.PutUint32(se[4:], root)
	binary.LittleEndian.PutUint16(se[8:], 1)
	binary.LittleEndian.PutUint16(se[12:], xiAllMasterDevs)
	binary.LittleEndian.PutUint16(se[14:], 1)
	binary.LittleEndian.PutUint32(se[16:], 1<<xiRawKeyPress|1<<xiRawButtonPress|1<<xiRawMotion)
	if _, err := conn.Write(se); err != nil {
		return err
	}
	buf := make([]byte, 32)
	for {
		if _, err := io.ReadFull(br, buf); err != nil {
			return err
		}
		switch buf[0] & 0x7f {
		case 0: // an error: our select failed
			return fmt.Errorf("x11 error %d on request %d.%d", buf[1], buf[10], binary.LittleEndian.Uint16(buf[8:]))
		case 1: // a reply: skip its extra data
			if err := skip(br, binary.LittleEndian.Uint32(buf[4:])*4); err != nil {
				return err
			}
		case 35: // GenericEvent
			extra := binary.LittleEndian.Uint32(buf[4:]) * 4
			if extra > 1<<20 {
				return fmt.Errorf("generic event of %d bytes", extra)
			}
			if buf[1] != major {
				if err := skip(br, extra); err != nil {
					return err
				}
				continue
			}
			evtype := binary.LittleEndian.Uint16(buf[8:])
			detail := binary.LittleEndian.Uint32(buf[16:])
			if err := skip(br, extra); err != nil {
				return err
			}
			switch evtype {
			case xiRawKeyPress:
				ev(InputKey)
			case xiRawButtonPress:
				if detail >= 4 && detail <= 7 {
					ev(InputScroll)
				} else {
					ev(InputClick)
				}
			case xiRawMotion:
				ev(InputMove)
			}
		}
	}
}

func pad4(n int) int { return (n + 3) &^ 3 }

func skip(r io.Reader, n uint32) error {
	_, err := io.CopyN(io.Discard, r, int64(n))
	return err
}

// readReply reads the next reply (skipping events), or fails on an error.
func readReply(r io.Reader) ([]byte, error) {
	buf := make([]byte, 32)
	for {
		if _, err := io.ReadFull(r, buf); err != nil {
			return nil, err
		}
		switch buf[0] & 0x7f {
		case 0:
			return nil, fmt.Errorf("x11 error %d", buf[1])
		case 1:
			extra := binary.LittleEndian.Uint32(buf[4:]) * 4
			if extra > 1<<20 {
				return nil, errors.New("reply too large")
			}
			out := make([]byte, 32+extra)
			copy(out, buf)
			_, err := io.ReadFull(r, out[32:])
			return out, err
		case 35:
			if err := skip(r, binary.LittleEndian.Uint32(buf[4:])*4); err != nil {
				return nil, err
			}
		}
	}
}

// x11Connect opens DISPLAY (a local ":N" display) and returns the root
// window of its first screen.
func x11Connect(display string) (net.Conn, uint32, error) {
	if display == "" {
		return nil, 0, errors.New("no X display: DISPLAY is not set")
	}
	host, num, ok := strings.Cut(display, ":")
	num, _, _ = strings.Cut(num, ".")
	if !ok || (host != "" && host != "unix") {
		return nil, 0, fmt.Errorf("display %q: only local displays (:N) are supported", display)
	}
	if _, err := strconv.Atoi(num); err != nil {
		return nil, 0, fmt.Errorf("display %q: bad display number", display)
	}
	conn, err := net.DialTimeout("unix", "/tmp/.X11-unix/X"+num, 5*time.Second)
	if err != nil {
		return nil, 0, fmt.Errorf("no X display %s: %w", display, err)
	}
	authName, authData := xauthCookie(num)
	setup := make([]byte, 12+pad4(len(authName))+pad4(len(authData)))
	setup[0] = 'l'
	binary.LittleEndian.PutUint16(setup[2:], 11)
	binary.LittleEndian.PutUint16(setup[6:], uint16(len(authName)))
	binary.LittleEndian.PutUint16(setup[8:], uint16(len(authData)))
	copy(setup[12:], authName)
	copy(setup[12+pad4(len(authName)):], authData)
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := conn.Write(setup); err != nil {
		conn.Close()
		return nil, 0, err
	}
	head := make([]byte, 8)
	if _, err := io.ReadFull(conn, head); err != nil {
		conn.Close()
		return nil, 0, fmt.Errorf("x11 setup: %w", err)
	}
	rest := make([]byte, int(binary.LittleEndian.Uint16(head[6:]))*4)
	if _, err := io.ReadFull(conn, rest); err != nil {
		conn.Close()
		return nil, 0, fmt.Errorf("x11 setup: %w", err)
	}
	if head[0] != 1 {
		conn.Close()
		return nil, 0, fmt.Errorf("the X server refused the connection: %s", strings.TrimRight(string(rest), "\x00"))
	}
	_ = conn.SetDeadline(time.Time{})
	if len(rest) < 32 {
		conn.Close()
		return nil, 0, errors.New("x11 setup: short reply")
	}
	vendorLen := int(binary.LittleEndian.Uint16(rest[16:]))
	numFormats := int(rest[21])
	off := 32 + pad4(vendorLen) + 8*numFormats
	if len(rest) < off+4 {
		conn.Close()
		return nil, 0, errors.New("x11 setup: no screen")
	}
	return conn, binary.LittleEndian.Uint32(rest[off:]), nil
}

// xauthCookie finds the MIT-MAGIC-COOKIE-1 for display number num in
// $XAUTHORITY or ~/.Xauthority; none when there is no file (Xvfb without
// -auth needs none).
func xauthCookie(num string) (string, []byte) {
	path := os.Getenv("XAUTHORITY")
	if path == "" {
		home, _ := os.UserHomeDir()
		path = filepath.Join(home, ".Xauthority")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", nil
	}
	field := func() ([]byte, bool) {
		if len(b) < 2 {
			return nil, false
		}
		n := int(binary.BigEndian.Uint16(b))
		if len(b) < 2+n {
			return nil, false
		}
		f := b[2 : 2+n]
		b = b[2+n:]
		return f, true
	}
	for len(b) >= 2 {
		b = b[2:] // family
		_, ok1 := field()
		number, ok2 := field()
		name, ok3 := field()
		data, ok4 := field()
		if !(ok1 && ok2 && ok3 && ok4) {
			break
		}
		if string(number) == num && string(name) == "MIT-MAGIC-COOKIE-1" {
			return string(name), data
		}
	}
	return "", nil
}
