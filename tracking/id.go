package tracking

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"time"
)

// NewID returns a UUIDv7 as text: time-ordered (so spool names sort by
// age) and random. Captures, records and sessions are named by one.
func NewID(now time.Time) string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (it panics first)
	var t [8]byte
	binary.BigEndian.PutUint64(t[:], uint64(now.UnixMilli())<<16)
	copy(b[:6], t[:6])
	b[6] = 0x70 | (b[6] & 0x0f)
	b[8] = 0x80 | (b[8] & 0x3f)
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// HostIDPrefix starts the id of every record the host writes itself
// (session starts and stops, refusal gaps). The daemon refuses it in any
// id a guest sends, so a guest can never take a host record's id first
// and make the host's record a duplicate that is never logged.
const HostIDPrefix = "host-"

// MaxIDLen is the longest id the diary stores (capture, record, session).
const MaxIDLen = 64

// HostID is the id of a host-written record of kind about key (a session,
// a slot): "host-KIND-KEY". A key too long for MaxIDLen is replaced by the
// start of its SHA-256 in hex, so the id stays deterministic (a repeat is a
// duplicate) and is never refused for its length.
func HostID(kind, key string) string {
	head := HostIDPrefix + kind + "-"
	if len(head)+len(key) <= MaxIDLen {
		return head + key
	}
	sum := sha256.Sum256([]byte(key))
	return head + hex.EncodeToString(sum[:])[:MaxIDLen-len(head)]
}
