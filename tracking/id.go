package tracking

import (
	"crypto/rand"
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
