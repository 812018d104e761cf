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
// entry with a signed checkpoint) with the physical limit of this disk:
// os.WriteFile of the same bytes plus fsync, in the same run.
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
// slots, each a shot and ten activity minutes), as its reference; of the
// same day after a hostile guest stored 10,000 idle and gap spans reaching
// to year 9999 and to the end of time (what bounded ingestion now refuses;
// an older diary may hold them); and of the same day after 60 days of
// earlier work (28,800 activity minutes and 120 sessions) are in the
// diary. The view costs the day's entries and slots in all three, not what
// else is stored. Reported: ms per view of each, and their ratios.
func BenchmarkDayView(b *testing.B) {
	day := func(hostile, history bool) *fixture {
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
		if hostile {
			recs := make([]tracking.Record, 10000)
			for i := range recs {
				typ, end := tracking.RecordIdle, time.Date(9999, 12, 30, 0, 0, 0, 0, time.UTC)
				if i%2 == 1 {
					typ, end = tracking.RecordGap, time.Unix(math.MaxInt64-62135596800-1, 0)
				}
				recs[i] = tracking.Record{ID: fmt.Sprintf("h%d", i), Type: typ, Start: day0.Add(time.Duration(i%48) * 10 * time.Minute), End: end, Reason: "r"}
			}
			if _, err := f.s.AddRecords(ctx, "acme", recs); err != nil {
				b.Fatal(err)
			}
		}
		if history {
			for d := 1; d <= 60; d++ {
				start := day0.Add(-time.Duration(d) * 24 * time.Hour).Add(9 * time.Hour)
				session := fmt.Sprintf("s%d", d)
				recs := []tracking.Record{{ID: session + "-start", Type: tracking.RecordSessionStart, Session: session, Time: start}}
				for m := range 480 {
					recs = append(recs, tracking.Record{ID: fmt.Sprintf("p%d-%d", d, m), Type: tracking.RecordActivity, Minute: start.Add(time.Duration(m) * time.Minute), Activity: &tracking.Activity{Keys: 9, Active: 40}})
				}
				recs = append(recs, tracking.Record{ID: session + "-stop", Type: tracking.RecordSessionStop, Session: session, Time: start.Add(8 * time.Hour)})
				if _, err := f.s.AddRecords(ctx, "acme", recs); err != nil {
					b.Fatal(err)
				}
			}
		}
		return f
	}
	ref, hostile, history := day(false, false), day(true, false), day(false, true)
	view := func(f *fixture) time.Duration {
		t0 := time.Now()
		if _, err := f.s.View(ctx, "acme", day0, day0.Add(24*time.Hour), time.UTC); err != nil {
			b.Fatal(err)
		}
		return time.Since(t0)
	}
	var spent [3]time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		spent[0] += view(ref)
		spent[1] += view(hostile)
		spent[2] += view(history)
	}
	b.StopTimer()
	ms := func(d time.Duration) float64 { return float64(d) / float64(b.N) / 1e6 }
	b.ReportMetric(ms(spent[0]), "ms/view-ref")
	b.ReportMetric(ms(spent[1]), "ms/view-hostile")
	b.ReportMetric(ms(spent[2]), "ms/view-history")
	b.ReportMetric(float64(spent[1])/float64(spent[0]), "ratio-hostile")
	b.ReportMetric(float64(spent[2])/float64(spent[0]), "ratio-history")
}
