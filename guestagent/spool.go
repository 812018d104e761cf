package guestagent

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/workspace-sandbox/workspace/channel"
	"github.com/workspace-sandbox/workspace/internal/atomicfile"
)

// ErrSpoolFull says an item did not fit the spool's limit.
var ErrSpoolFull = errors.New("spool full")

// gapReserve is room kept beyond the limit for gap records, so a full spool
// can still say that it dropped something.
const gapReserve = 256 << 10

// Spool is the bounded on-disk queue of captures and records waiting for
// the host: one file per message (the channel's own framing), written with
// fsync, named by a time-ordered id, deleted only once the host has
// acknowledged it. It survives reboots and host downtime.
type Spool struct {
	dir   string
	mu    sync.Mutex
	limit int64
	items int
	bytes int64
}

// OpenSpool opens (creating) the spool in dir and counts what is there.
func OpenSpool(dir string, limit int64) (*Spool, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	s := &Spool{dir: dir, limit: limit}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".tmp") {
			os.Remove(filepath.Join(dir, e.Name()))
			continue
		}
		if info, err := e.Info(); err == nil && strings.HasSuffix(e.Name(), ".msg") {
			s.items++
			s.bytes += info.Size()
		}
	}
	return s, nil
}

// SetLimit changes the limit (from a new policy).
func (s *Spool) SetLimit(n int64) {
	s.mu.Lock()
	s.limit = n
	s.mu.Unlock()
}

// Usage returns the number of items and bytes waiting.
func (s *Spool) Usage() (int, int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.items, s.bytes
}

// Put writes a message durably under id; a gap may use the reserve.
func (s *Spool) Put(id string, m *channel.Message, gap bool) error {
	var buf bytes.Buffer
	if err := channel.WriteMessage(&buf, m); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	limit := s.limit
	if gap {
		limit += gapReserve
	}
	if s.bytes+int64(buf.Len()) > limit {
		return fmt.Errorf("%w: %d of %d bytes used, %d more needed", ErrSpoolFull, s.bytes, s.limit, buf.Len())
	}
	if err := atomicfile.Write(filepath.Join(s.dir, id+".msg"), buf.Bytes(), 0o600); err != nil {
		return err
	}
	s.items++
	s.bytes += int64(buf.Len())
	return nil
}

// List returns the waiting items, oldest first.
func (s *Spool) List() ([]string, error) {
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".msg") {
			out = append(out, strings.TrimSuffix(e.Name(), ".msg"))
		}
	}
	sort.Strings(out)
	return out, nil
}

// Read reads an item.
func (s *Spool) Read(id string) (*channel.Message, error) {
	b, err := os.ReadFile(filepath.Join(s.dir, id+".msg"))
	if err != nil {
		return nil, err
	}
	return channel.ReadMessage(bytes.NewReader(b))
}

// Remove deletes an acknowledged (or undeliverable) item.
func (s *Spool) Remove(id string) error {
	p := filepath.Join(s.dir, id+".msg")
	info, err := os.Stat(p)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil {
		return err
	}
	s.mu.Lock()
	s.items--
	s.bytes -= info.Size()
	s.mu.Unlock()
	return nil
}
