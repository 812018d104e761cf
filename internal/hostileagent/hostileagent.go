// Package hostileagent is a compromised guest agent, for the end-to-end
// test of the host's defences (docs/threat-model.md): it speaks the
// channel's protocol correctly and sends, for a while, everything a guest
// can make up to hurt the daemon: decode bombs, junk, trailing bytes,
// spans to year 9999, times before and after the session, ids of the
// host's namespace and duplicates. It sends as fast as the host answers:
// what bounds its rate is the host's refusal delay, never its own
// politeness. It is built only by that test and reaches the test guest
// through a shared folder; no image contains it.
package hostileagent

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"io"
	"math/rand"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/yamux"

	"github.com/workspace-sandbox/workspace/channel"
	"github.com/workspace-sandbox/workspace/internal/thumbnail"
	"github.com/workspace-sandbox/workspace/tracking"
)

// Counts are what the flood sent and how the host answered.
type Counts struct {
	Sent, Refused, Invalid, Stored, Failed atomic.Int64
}

func (c *Counts) String() string {
	return fmt.Sprintf("sent %d: refused %d, invalid %d, stored %d, failed %d",
		c.Sent.Load(), c.Refused.Load(), c.Invalid.Load(), c.Stored.Load(), c.Failed.Load())
}

// Flood is one hostile session.
type Flood struct {
	// Workers send at once (the host reads channel.MaxStreams at a time).
	Workers int
	// For is how long the flood lasts.
	For time.Duration
	Log io.Writer

	mu    sync.Mutex
	track tracking.State
	n     Counts
}

// Counts returns the counts so far.
func (f *Flood) Counts() *Counts { return &f.n }

// Run handshakes on port, serves the host's requests (it takes the policy
// and tracking state, answers status) and floods it for f.For; then it
// keeps the session open, quiet, until ctx ends.
func (f *Flood) Run(ctx context.Context, port io.ReadWriteCloser) error {
	br, err := channel.GuestHandshake(port, port, channel.Hello{Version: channel.Version, Agent: "hostile-1.0\x1b[31m\nINJECTED", OS: "linux",
		Capabilities: []string{channel.CapScreenshots, channel.CapActivity}})
	if err != nil {
		return fmt.Errorf("handshake: %w", err)
	}
	sess, err := channel.GuestSession(port, br, nil)
	if err != nil {
		return err
	}
	defer sess.Close()
	go func() {
		_ = channel.Serve(ctx, sess, func(_ context.Context, req *channel.Message) (*channel.Message, error) {
			switch req.Type {
			case channel.TypeTrack:
				var ts tracking.State
				if err := req.Decode(&ts); err == nil {
					f.mu.Lock()
					f.track = ts
					f.mu.Unlock()
				}
			case channel.TypeStatus:
				return channel.NewMessage(channel.TypeStatus, tracking.AgentStatus{Version: "hostile", Tracking: true})
			}
			return nil, nil
		})
	}()
	// Wait for tracking: what it sends then passes the first checks.
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		f.mu.Lock()
		on := f.track.On
		f.mu.Unlock()
		if on {
			break
		}
	}
	fctx, cancel := context.WithTimeout(ctx, f.For)
	defer cancel()
	var wg sync.WaitGroup
	for w := range max(f.Workers, 1) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f.worker(fctx, sess, w)
		}()
	}
	wg.Wait()
	fmt.Fprintf(f.Log, "WORKSPACE-HOSTILE-DONE %s\n", &f.n)
	select {
	case <-ctx.Done():
	case <-sess.CloseChan():
	}
	return nil
}

func (f *Flood) worker(ctx context.Context, sess *yamux.Session, w int) {
	rng := rand.New(rand.NewSource(int64(w) + time.Now().UnixNano()))
	good := picture(320, 200)
	goodThumb := mustThumb(good, 320, 200)
	dupID := tracking.NewID(time.Now())
	for i := 0; ctx.Err() == nil; i++ {
		f.mu.Lock()
		ts := f.track
		f.mu.Unlock()
		now := time.Now()
		var m *channel.Message
		var err error
		switch (i + w) % 9 {
		case 0: // a decode bomb: a small JPEG that declares 8192×8192
			m, err = capture(tracking.NewID(now), ts.Session, now, declare(good, 8192, 8192), thumbOf(goodThumb, 8192, 8192), 8192, 8192)
		case 1: // within the size bounds but not what it declares
			m, err = capture(tracking.NewID(now), ts.Session, now, declare(good, 4000, 3000), thumbOf(goodThumb, 4000, 3000), 4000, 3000)
		case 2: // junk
			junk := make([]byte, 256<<10)
			rng.Read(junk)
			m, err = capture(tracking.NewID(now), ts.Session, now, junk, goodThumb, 320, 200)
		case 3: // a valid JPEG carrying something after its end
			m, err = capture(tracking.NewID(now), ts.Session, now, append(append([]byte{}, good...), bytes.Repeat([]byte("payload"), 4096)...), goodThumb, 320, 200)
		case 4: // spans to year 9999
			recs := make([]tracking.Record, 2000)
			for k := range recs {
				recs[k] = tracking.Record{ID: tracking.NewID(now), Type: tracking.RecordIdle, Start: now, End: time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)}
			}
			m, err = channel.NewMessage(channel.TypeRecords, channel.Records{Records: recs})
		case 5: // the future and the past
			if i%2 == 0 {
				m, err = capture(tracking.NewID(now), ts.Session, now.Add(48*time.Hour), good, goodThumb, 320, 200)
			} else {
				m, err = channel.NewMessage(channel.TypeRecords, channel.Records{Records: []tracking.Record{{ID: tracking.NewID(now),
					Type: tracking.RecordActivity, Minute: now.AddDate(-1, 0, 0).Truncate(time.Minute), Activity: &tracking.Activity{Keys: 1 << 30}}}})
			}
		case 6: // the host's namespace: its session stop, pre-empted
			m, err = channel.NewMessage(channel.TypeRecords, channel.Records{Records: []tracking.Record{{ID: tracking.HostID("stop", ts.Session),
				Type: tracking.RecordGap, Start: now, End: now.Add(time.Second), Reason: "\x1b[2J fake: billable 99h"}}})
		case 7: // a valid capture over and over under one id
			m, err = capture(dupID, ts.Session, now, good, goodThumb, 320, 200)
		default: // valid captures with fresh ids: past the slot's quota
			m, err = capture(tracking.NewID(now), ts.Session, now, good, goodThumb, 320, 200)
		}
		if err != nil {
			continue
		}
		f.n.Sent.Add(1)
		cctx, cancel := context.WithTimeout(ctx, time.Minute)
		_, err = channel.Call(cctx, sess, m)
		cancel()
		switch {
		case err == nil:
			f.n.Stored.Add(1)
		case isCode(err, channel.CodeRefused):
			f.n.Refused.Add(1)
		case isCode(err, channel.CodeInvalid):
			f.n.Invalid.Add(1)
		default:
			f.n.Failed.Add(1)
			if sess.IsClosed() {
				return
			}
		}
	}
}

func isCode(err error, code string) bool {
	re, ok := err.(*channel.ErrRemote)
	return ok && re.Code == code
}

func capture(id, session string, taken time.Time, orig, thumb []byte, w, h int) (*channel.Message, error) {
	return channel.NewMessage(channel.TypeCapture, tracking.Capture{ID: id, Session: session, Taken: taken, Width: w, Height: h}, orig, thumb)
}

// picture is a w×h JPEG of a pattern.
func picture(w, h int) []byte {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.SetRGBA(x, y, color.RGBA{uint8(x * 3), uint8(y * 5), uint8(x ^ y), 255})
		}
	}
	var b bytes.Buffer
	_ = jpeg.Encode(&b, img, &jpeg.Options{Quality: 75})
	return b.Bytes()
}

func mustThumb(orig []byte, w, h int) []byte {
	img, err := jpeg.Decode(bytes.NewReader(orig))
	if err != nil {
		return nil
	}
	b, _ := thumbnail.Make(img)
	return b
}

// thumbOf declares a thumbnail of the size the host expects for w×h.
func thumbOf(thumb []byte, w, h int) []byte {
	tw, th := thumbnail.Size(w, h)
	return declare(thumb, tw, th)
}

// declare rewrites the size a JPEG's baseline frame declares.
func declare(b []byte, w, h int) []byte {
	out := append([]byte{}, b...)
	if i := bytes.Index(out, []byte{0xff, 0xc0}); i >= 0 && i+8 < len(out) {
		out[i+5], out[i+6], out[i+7], out[i+8] = byte(h>>8), byte(h), byte(w>>8), byte(w)
	}
	return out
}
