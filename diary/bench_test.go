package diary

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/workspace-sandbox/workspace/internal/thumbnail"
	"github.com/workspace-sandbox/workspace/tracking"
)

// benchShot is a JPEG of about 200 KB (a busy 1280x800 screen) and its
// thumbnail, as the agent sends them.
func benchShot(b *testing.B) (orig, thumb []byte) {
	b.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 1280, 800))
	r := rand.New(rand.NewSource(1))
	for y := 0; y < 800; y++ {
		for x := 0; x < 1280; x++ {
			v := uint8(r.Intn(256))
			if (x/8+y/16)%3 == 0 {
				v = 240
			}
			img.SetRGBA(x, y, color.RGBA{v, v / 2, 255 - v, 255})
		}
	}
	var buf bytes.Buffer
	q := 60
	for {
		buf.Reset()
		jpeg.Encode(&buf, img, &jpeg.Options{Quality: q})
		if buf.Len() <= 220_000 || q <= 5 {
			break
		}
		q -= 5
	}
	orig = append([]byte{}, buf.Bytes()...)
	thumb, err := thumbnail.Make(img)
	if err != nil {
		b.Fatal(err)
	}
	return orig, thumb
}

// BenchmarkIngest compares durable ingestion of a capture (sealed blobs
// written and fsynced, then a WAL commit with synchronous=FULL and a log
// entry with a signed checkpoint), and of a call of ten records, with the
// physical limit of this disk: os.WriteFile of the capture's bytes plus
// fsync, in the same run.
func BenchmarkIngest(b *testing.B) {
	orig, thumb := benchShot(b)
	b.Run("store", func(b *testing.B) {
		f := newFixture(b)
		b.SetBytes(int64(len(orig) + len(thumb)))
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			m := tracking.Capture{ID: fmt.Sprintf("b%d", i), Taken: day0.Add(time.Duration(i) * time.Second)}
			if _, err := f.s.AddCapture(ctx, "acme", m, orig, thumb); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "captures/s")
		b.ReportMetric(float64(len(orig)), "jpeg-bytes")
	})
	// A guest's call of records (five activity minutes and five gaps): a
	// durable commit of ten entries, their view index rows and a signed
	// checkpoint.
	b.Run("records", func(b *testing.B) {
		f := newFixture(b)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			recs := make([]tracking.Record, 0, 10)
			for j := range 5 {
				at := day0.Add(time.Duration(i*5+j) * time.Minute)
				recs = append(recs,
					tracking.Record{ID: fmt.Sprintf("a%d-%d", i, j), Type: tracking.RecordActivity, Minute: at, Activity: &tracking.Activity{Keys: 9, Active: 40}},
					tracking.Record{ID: fmt.Sprintf("g%d-%d", i, j), Type: tracking.RecordGap, Start: at, End: at.Add(time.Minute), Reason: "paused"})
			}
			if _, err := f.s.AddRecords(ctx, "acme", recs); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		b.ReportMetric(float64(b.N*10)/b.Elapsed().Seconds(), "records/s")
	})
	b.Run("writefile-fsync", func(b *testing.B) {
		dir := b.TempDir()
		b.SetBytes(int64(len(orig) + len(thumb)))
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			for j, data := range [][]byte{orig, thumb} {
				p := filepath.Join(dir, fmt.Sprintf("%d.%d", i, j))
				if err := os.WriteFile(p, data, 0o600); err != nil {
					b.Fatal(err)
				}
				fh, err := os.Open(p)
				if err != nil {
					b.Fatal(err)
				}
				if err := fh.Sync(); err != nil {
					b.Fatal(err)
				}
				fh.Close()
			}
		}
		b.StopTimer()
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "captures/s")
	})
}

// BenchmarkVerify measures the client's verify of an export of a working
// week: 5 days × 8 h of 10-minute slots, one capture and ten activity
// minutes per slot (small images: the cost measured is the log's).
func BenchmarkVerify(b *testing.B) {
	f := newFixture(b)
	f.small = true
	for d := 0; d < 5; d++ {
		for s := 0; s < 48; s++ {
			start := day0.AddDate(0, 0, d).Add(time.Duration(s) * 10 * time.Minute)
			recs := make([]tracking.Record, 10)
			for m := range recs {
				recs[m] = tracking.Record{ID: fmt.Sprintf("a%d-%d-%d", d, s, m), Type: tracking.RecordActivity, Minute: start.Add(time.Duration(m) * time.Minute), Activity: &tracking.Activity{Keys: 9, Active: 40}}
			}
			if _, err := f.s.AddRecords(ctx, "acme", recs); err != nil {
				b.Fatal(err)
			}
			f.capture("acme", start.Add(time.Minute), int64(s))
		}
	}
	f.clk.Set(day0.AddDate(0, 0, 6))
	exp := f.export("acme", day0, day0.AddDate(0, 0, 5))
	var entries int
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		v, err := Verify(bytes.NewReader(exp), []age.Identity{f.client}, VerifyOptions{Loc: time.UTC})
		if err != nil {
			b.Fatal(err)
		}
		entries = v.Entries
	}
	b.StopTimer()
	b.ReportMetric(float64(entries*b.N)/b.Elapsed().Seconds(), "entries/s")
	b.ReportMetric(float64(len(exp)), "export-bytes")
}

// BenchmarkDayView is the day view of a workspace with a day of work (48
// slots, each a shot and ten activity minutes), as its reference; and of
// that day
//   - hostile: after a guest stored 10,000 idle and gap spans reaching to
//     year 9999 and to the end of time (what bounded ingestion now refuses;
//     an older diary may hold them);
//   - full: filled to the per-slot quotas the daemon now keeps a guest to
//     (every one of the day's 144 slots with 12 activity records, 26 idle
//     and gap spans to the end of the day and 2 shots: 5,760 entries);
//   - history: after 60 days of earlier work (28,800 activity minutes and
//     120 sessions).
//
// The view costs the day's entries and slots, not what else is stored.
// Reported: ms per view of each, and each one's ratio to the reference.
func BenchmarkDayView(b *testing.B) {
	day := func(kind string) *fixture {
		f := newFixture(b)
		f.small = true
		for s := 0; s < 48; s++ {
			start := day0.Add(time.Duration(s) * 10 * time.Minute)
			recs := make([]tracking.Record, 10)
			for m := range recs {
				recs[m] = tracking.Record{ID: fmt.Sprintf("a%d-%d", s, m), Type: tracking.RecordActivity, Minute: start.Add(time.Duration(m) * time.Minute), Activity: &tracking.Activity{Keys: 9, Active: 40}}
			}
			if _, err := f.s.AddRecords(ctx, "acme", recs); err != nil {
				b.Fatal(err)
			}
			f.capture("acme", start.Add(time.Minute), int64(s))
		}
		var recs []tracking.Record
		switch kind {
		case "hostile":
			for i := range 10000 {
				typ, end := tracking.RecordIdle, time.Date(9999, 12, 30, 0, 0, 0, 0, time.UTC)
				if i%2 == 1 {
					typ, end = tracking.RecordGap, time.Unix(math.MaxInt64-62135596800-1, 0)
				}
				recs = append(recs, tracking.Record{ID: fmt.Sprintf("h%d", i), Type: typ, Start: day0.Add(time.Duration(i%48) * 10 * time.Minute), End: end, Reason: "r"})
			}
		case "full":
			for s := 0; s < 144; s++ {
				start := day0.Add(time.Duration(s) * 10 * time.Minute)
				for m := range 12 {
					recs = append(recs, tracking.Record{ID: fmt.Sprintf("f%d-%d", s, m), Type: tracking.RecordActivity, Minute: start.Add(time.Duration(m) * 50 * time.Second), Activity: &tracking.Activity{Keys: 9, Active: 40}})
				}
				for i := range 26 {
					typ := tracking.RecordIdle
					if i%2 == 1 {
						typ = tracking.RecordGap
					}
					recs = append(recs, tracking.Record{ID: fmt.Sprintf("g%d-%d", s, i), Type: typ, Start: start.Add(time.Duration(i) * 20 * time.Second), End: day0.Add(24 * time.Hour), Reason: fmt.Sprintf("reason %d", i%4)})
				}
				if s >= 48 {
					f.capture("acme", start.Add(time.Minute), int64(s))
				}
				f.capture("acme", start.Add(2*time.Minute), int64(1000+s))
			}
		case "history":
			for d := 1; d <= 60; d++ {
				start := day0.Add(-time.Duration(d) * 24 * time.Hour).Add(9 * time.Hour)
				session := fmt.Sprintf("s%d", d)
				recs = append(recs, tracking.Record{ID: session + "-start", Type: tracking.RecordSessionStart, Session: session, Time: start})
				for m := range 480 {
					recs = append(recs, tracking.Record{ID: fmt.Sprintf("p%d-%d", d, m), Type: tracking.RecordActivity, Minute: start.Add(time.Duration(m) * time.Minute), Activity: &tracking.Activity{Keys: 9, Active: 40}})
				}
				recs = append(recs, tracking.Record{ID: session + "-stop", Type: tracking.RecordSessionStop, Session: session, Time: start.Add(8 * time.Hour)})
			}
		}
		for len(recs) > 0 {
			n := min(len(recs), 10000)
			if _, err := f.s.AddRecords(ctx, "acme", recs[:n]); err != nil {
				b.Fatal(err)
			}
			recs = recs[n:]
		}
		return f
	}
	kinds := []string{"ref", "hostile", "full", "history"}
	fixtures := make([]*fixture, len(kinds))
	for i, k := range kinds {
		fixtures[i] = day(k)
	}
	view := func(f *fixture) time.Duration {
		t0 := time.Now()
		if _, err := f.s.View(ctx, "acme", day0, day0.Add(24*time.Hour), time.UTC); err != nil {
			b.Fatal(err)
		}
		return time.Since(t0)
	}
	spent := make([]time.Duration, len(kinds))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for k, f := range fixtures {
			spent[k] += view(f)
		}
	}
	b.StopTimer()
	for k, kind := range kinds {
		b.ReportMetric(float64(spent[k])/float64(b.N)/1e6, "ms/view-"+kind)
		if k > 0 {
			b.ReportMetric(float64(spent[k])/float64(spent[0]), "ratio-"+kind)
		}
	}
}
