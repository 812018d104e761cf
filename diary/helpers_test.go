package diary

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"math/rand"
	"sync"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/workspace-sandbox/workspace/tracking"
)

// clock is an injected, settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// day0 is a fixed Monday 09:00 UTC all tests start from.
var day0 = time.Date(2026, 11, 16, 9, 0, 0, 0, time.UTC)

type fixture struct {
	t      testing.TB
	s      *Store
	dir    string
	keyDir string
	keys   *Keys
	client *age.X25519Identity
	clk    *clock
	small  bool // tiny screenshots (fuzz seeds stay small)
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	dir := t.TempDir()
	keyDir := dir + "/keys"
	keys, err := InitKeys(keyDir, "")
	if err != nil {
		t.Fatal(err)
	}
	clk := &clock{t: day0.Add(8 * time.Hour)}
	s, err := Open(context.Background(), dir+"/diary", Options{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	s.Unlock(keys)
	client, _ := age.GenerateX25519Identity()
	f := &fixture{t: t, s: s, dir: dir, keyDir: keyDir, keys: keys, client: client, clk: clk}
	f.ensure("acme", 600)
	return f
}

func (f *fixture) ensure(ws string, slot int) {
	f.t.Helper()
	if err := f.s.EnsureWorkspace(context.Background(), ws, WorkspaceOptions{Client: "ACME Corp", Recipient: f.client.Recipient().String(), SlotSeconds: slot}); err != nil {
		f.t.Fatal(err)
	}
}

// screenJPEG draws a fake desktop with rows of "text" (dark glyph-sized
// marks) so covering has something to destroy.
func screenJPEG(t testing.TB, w, h int, seed int64) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	r := rand.New(rand.NewSource(seed))
	bg := color.RGBA{240, 240, 235, 255}
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			img.SetRGBA(x, y, bg)
		}
	}
	for y := 8; y+10 < h; y += 16 {
		for x := 8; x+6 < w; x += 8 {
			if r.Intn(5) == 0 {
				continue
			}
			for dy := 0; dy < 10; dy++ {
				for dx := 0; dx < 5; dx++ {
					if r.Intn(3) > 0 {
						img.SetRGBA(x+dx, y+dy, color.RGBA{20, 20, 30, 255})
					}
				}
			}
		}
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 80}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// capture stores a synthetic capture taken at `at` and returns its id.
func (f *fixture) capture(ws string, at time.Time, seed int64) string {
	f.t.Helper()
	id := tracking.NewID(at)
	w, h := 320, 200
	if f.small {
		w, h = 24, 16
	}
	_, err := f.s.AddCapture(context.Background(), ws, tracking.Capture{ID: id, Session: "s1", Taken: at}, screenJPEG(f.t, w, h, seed), nil)
	if err != nil {
		f.t.Fatal(err)
	}
	return id
}

// activity stores one minute of activity.
func (f *fixture) activity(ws string, minute time.Time, active int) {
	f.t.Helper()
	_, err := f.s.AddRecords(context.Background(), ws, []tracking.Record{{
		ID: fmt.Sprintf("act-%d", minute.Unix()), Type: tracking.RecordActivity, Minute: minute,
		Activity: &tracking.Activity{Keys: 30, Clicks: 4, Moves: 100, Scrolls: 2, Active: active},
	}})
	if err != nil {
		f.t.Fatal(err)
	}
}

// workSlot records a slot with one shot and ten minutes of activity.
func (f *fixture) workSlot(ws string, start time.Time, seed int64) string {
	f.t.Helper()
	for m := 0; m < 10; m++ {
		f.activity(ws, start.Add(time.Duration(m)*time.Minute), 45)
	}
	return f.capture(ws, start.Add(3*time.Minute+17*time.Second), seed)
}

func (f *fixture) export(ws string, from, to time.Time) []byte {
	f.t.Helper()
	var buf bytes.Buffer
	if _, err := f.s.Export(context.Background(), ws, from, to, nil, &buf); err != nil {
		f.t.Fatal(err)
	}
	return buf.Bytes()
}

func (f *fixture) verify(b []byte) (*Verified, error) {
	return Verify(bytes.NewReader(b), []age.Identity{f.client}, VerifyOptions{Loc: time.UTC})
}

// reseal decrypts an export with the client's key, lets mutate change it,
// and encrypts it again to the client: what anyone holding the client's
// public recipient can do.
func (f *fixture) reseal(b []byte, mutate func(d *exportData)) []byte {
	f.t.Helper()
	pr, err := DecryptExport(bytes.NewReader(b), []age.Identity{f.client})
	if err != nil {
		f.t.Fatal(err)
	}
	d, err := parseExport(pr)
	if err != nil {
		f.t.Fatal(err)
	}
	mutate(d)
	return f.sealExport(d)
}

func (f *fixture) sealExport(d *exportData) []byte {
	f.t.Helper()
	var files []namedFile
	for name, data := range d.files {
		files = append(files, namedFile{name, data})
	}
	var out bytes.Buffer
	w, err := age.Encrypt(&out, f.client.Recipient())
	if err != nil {
		f.t.Fatal(err)
	}
	if err := writeTar(w, &d.m, files); err != nil {
		f.t.Fatal(err)
	}
	w.Close()
	return out.Bytes()
}

// plainExport returns the decrypted tar of an export (fuzz seeds).
func (f *fixture) plainExport(b []byte) []byte {
	f.t.Helper()
	pr, err := DecryptExport(bytes.NewReader(b), []age.Identity{f.client})
	if err != nil {
		f.t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(pr); err != nil {
		f.t.Fatal(err)
	}
	return buf.Bytes()
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
