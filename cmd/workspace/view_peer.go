package main

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
)

// loopbackPeerUID returns the uid owning the other end of c, a TCP
// connection accepted on 127.0.0.1: both ends live on this machine, so the
// kernel's socket table (/proc/net/tcp) lists the peer's socket, with its
// owner, under the peer's address.
func loopbackPeerUID(c net.Conn) (int, error) {
	local, ok1 := c.LocalAddr().(*net.TCPAddr)
	remote, ok2 := c.RemoteAddr().(*net.TCPAddr)
	if !ok1 || !ok2 {
		return -1, fmt.Errorf("not a TCP connection: %s", c.RemoteAddr())
	}
	f, err := os.Open("/proc/net/tcp")
	if err != nil {
		return -1, fmt.Errorf("read the socket table: %w", err)
	}
	defer f.Close()
	return peerUIDIn(bufio.NewScanner(f), remote.AddrPort(), local.AddrPort())
}

// peerUIDIn finds the socket whose local end is peer and whose remote end
// is us in a /proc/net/tcp listing and returns its uid.
func peerUIDIn(sc *bufio.Scanner, peer, us netip.AddrPort) (int, error) {
	want4 := func(ap netip.AddrPort) (string, bool) {
		a := ap.Addr().Unmap()
		if !a.Is4() {
			return "", false
		}
		// /proc/net/tcp prints the address as the host-order (little
		// endian here) 32-bit word, the port as 4 hex digits.
		b := a.As4()
		return fmt.Sprintf("%08X:%04X", binary.LittleEndian.Uint32(b[:]), ap.Port()), true
	}
	p, ok1 := want4(peer)
	u, ok2 := want4(us)
	if !ok1 || !ok2 {
		return -1, fmt.Errorf("peer %s is not an IPv4 loopback address", peer)
	}
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		// sl local rem st queues timer retrnsmt uid ...; 01 is
		// ESTABLISHED (a closed peer's TIME_WAIT entry has no owner).
		if len(f) < 8 || f[1] != p || f[2] != u || f[3] != "01" {
			continue
		}
		uid, err := strconv.Atoi(f[7])
		if err != nil {
			return -1, fmt.Errorf("socket table: bad uid %q", f[7])
		}
		return uid, nil
	}
	if err := sc.Err(); err != nil {
		return -1, fmt.Errorf("read the socket table: %w", err)
	}
	return -1, errors.New("the peer's socket is not in the socket table")
}
