package diary

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/workspace-sandbox/workspace/tracking"
)

var ctx = context.Background()

func TestKeysPassphrase(t *testing.T) {
	dir := t.TempDir()
	if _, err := LoadKeys(dir, ""); !errors.Is(err, ErrNotInitialized) {
		t.Fatalf("load before init: %v", err)
	}
	k, err := InitKeys(dir, "correct horse")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := InitKeys(dir, ""); !errors.Is(err, ErrInitialized) {
		t.Fatalf("second init: %v", err)
	}
	info, _ := ReadKeyInfo(dir)
	if !info.Initialized || !info.Protected || info.Recipient != k.Recipient().String() || info.Verifier != k.VerifierKey() {
		t.Fatalf("key info %+v", info)
	}
	st, _ := os.Stat(filepath.Join(dir, identityFile))
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("identity mode %v", st.Mode())
	}
	raw, _ := os.ReadFile(filepath.Join(dir, identityFile))
	if bytes.Contains(raw, []byte("AGE-SECRET-KEY")) {
		t.Fatal("protected identity is in the clear")
	}
	if _, err := LoadKeys(dir, ""); !errors.Is(err, ErrLocked) {
		t.Fatalf("load without passphrase: %v", err)
	}
	if _, err := LoadKeys(dir, "wrong"); !errors.Is(err, ErrBadPassphrase) {
		t.Fatalf("wrong passphrase: %v", err)
	}
	k2, err := LoadKeys(dir, "correct horse")
	if err != nil {
		t.Fatal(err)
	}
	if k2.Recipient().String() != k.Recipient().String() || k2.VerifierKey() != k.VerifierKey() {
		t.Fatal("reloaded keys differ")
	}
}

func TestSealBindsBlobID(t *testing.T) {
	key, _ := newDataKey()
	sealed, err := seal(key, []byte("picture"), "a/orig")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := open(key, sealed, "b/orig"); err == nil {
		t.Fatal("opened with another blob id")
	}
	sealed[30] ^= 1
	if _, err := open(key, sealed, "a/orig"); err == nil {
		t.Fatal("opened altered blob")
	}
}

func TestLockedStoreRefusesIngest(t *testing.T) {
	f := newFixture(t)
	s2, err := Open(ctx, f.dir+"/diary", Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	_, err = s2.AddCapture(ctx, "acme", tracking.Capture{ID: "x1", Taken: day0}, screenJPEG(t, 64, 40, 1), nil)
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("ingest while locked: %v", err)
	}
}

func TestIngestIsIdempotent(t *testing.T) {
	f := newFixture(t)
	img := screenJPEG(t, 320, 200, 1)
	m := tracking.Capture{ID: "0193aaaa-0000-7000-8000-000000000001", Taken: day0.Add(time.Minute)}
	r1, err := f.s.AddCapture(ctx, "acme", m, img, nil)
	if err != nil || len(r1.Duplicates) > 0 {
		t.Fatalf("first: %+v %v", r1, err)
	}
	r2, err := f.s.AddCapture(ctx, "acme", m, img, nil)
	if err != nil || len(r2.Duplicates) != 1 || r2.LogSize != r1.LogSize {
		t.Fatalf("second: %+v %v", r2, err)
	}
	rec := []tracking.Record{{ID: "a1", Type: tracking.RecordActivity, Minute: day0, Activity: &tracking.Activity{Active: 30}}}
	if ack, err := f.s.AddRecords(ctx, "acme", rec); err != nil || len(ack.Stored) != 1 {
		t.Fatalf("records: %+v %v", ack, err)
	}
	if ack, err := f.s.AddRecords(ctx, "acme", rec); err != nil || len(ack.Duplicates) != 1 || len(ack.Stored) != 0 {
		t.Fatalf("records again: %+v %v", ack, err)
	}
	f.ensure("other", 600)
	if _, err := f.s.AddCapture(ctx, "other", m, img, nil); !errors.Is(err, ErrConflict) {
		t.Fatalf("same id in another workspace: %v", err)
	}
	v, err := f.s.View(ctx, "acme", day0, day0.Add(24*time.Hour), time.UTC)
	if err != nil {
		t.Fatal(err)
	}
	if v.Totals.Shots != 1 {
		t.Fatalf("shots = %d, want 1", v.Totals.Shots)
	}
}

func TestIngestRejectsBadInput(t *testing.T) {
	f := newFixture(t)
	img := screenJPEG(t, 320, 200, 1)
	cases := map[string]struct {
		m    tracking.Capture
		orig []byte
		want string
	}{
		"bad id":       {tracking.Capture{ID: "../x", Taken: day0}, img, "capture id"},
		"no time":      {tracking.Capture{ID: "c1"}, img, "taken time"},
		"not an image": {tracking.Capture{ID: "c1", Taken: day0}, []byte("hello"), "not a JPEG"},
		"geometry":     {tracking.Capture{ID: "c1", Taken: day0, Width: 100, Height: 100}, img, "geometry"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := f.s.AddCapture(ctx, "acme", c.m, c.orig, nil)
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want %q", err, c.want)
			}
		})
	}
	if _, err := f.s.AddCapture(ctx, "nope", tracking.Capture{ID: "c1", Taken: day0}, img, nil); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown workspace: %v", err)
	}
	if _, err := f.s.AddRecords(ctx, "acme", []tracking.Record{{ID: "r1", Type: "keystrokes"}}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("unknown type: %v", err)
	}
	if _, err := f.s.AddRecords(ctx, "acme", []tracking.Record{{ID: "r1", Type: tracking.RecordActivity, Minute: day0, Activity: &tracking.Activity{Active: 61}}}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("61 active seconds in a minute: %v", err)
	}
	if n, _ := f.s.logSize(ctx, "acme"); n != 0 {
		t.Fatalf("bad input changed the log: size %d", n)
	}
}

func TestBillingRules(t *testing.T) {
	f := newFixture(t)
	ws := "acme"
	_, err := f.s.AddRecords(ctx, ws, []tracking.Record{{ID: "ss1", Type: tracking.RecordSessionStart, Session: "s1", Time: day0, Memo: "checkout bug"}})
	if err != nil {
		t.Fatal(err)
	}
	billed := f.workSlot(ws, day0, 1)                      // 09:00 shot + activity
	f.capture(ws, day0.Add(10*time.Minute+time.Minute), 2) // 09:10 shot, no activity
	f.activity(ws, day0.Add(20*time.Minute), 30)           // 09:20 activity, no shot
	deleted := f.workSlot(ws, day0.Add(30*time.Minute), 3) // 09:30 shot deleted
	covered := f.workSlot(ws, day0.Add(40*time.Minute), 4) // 09:40 covered: still billed
	if err := f.s.Delete(ctx, deleted); err != nil {
		t.Fatal(err)
	}
	if err := f.s.Cover(ctx, covered, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.AddManual(ctx, ws, day0.Add(-2*time.Hour), day0.Add(-90*time.Minute), "call with client"); err != nil {
		t.Fatal(err)
	}
	v, err := f.s.View(ctx, ws, day0.Add(-3*time.Hour), day0.Add(3*time.Hour), time.UTC)
	if err != nil {
		t.Fatal(err)
	}
	if len(v.Days) != 1 {
		t.Fatalf("days = %d", len(v.Days))
	}
	want := map[string]struct {
		billable bool
		reason   string
	}{
		"09:00": {true, ""}, "09:10": {false, "no activity"}, "09:20": {false, "no screenshot"},
		"09:30": {false, "a screenshot was deleted"}, "09:40": {true, ""},
	}
	slots := v.Days[0].Slots
	if len(slots) != len(want) {
		t.Fatalf("slots = %d, want %d", len(slots), len(want))
	}
	for _, s := range slots {
		w := want[s.Start.Format("15:04")]
		if s.Billable != w.billable || s.Reason != w.reason {
			t.Errorf("slot %s: billable %v (%q), want %v (%q)", s.Start.Format("15:04"), s.Billable, s.Reason, w.billable, w.reason)
		}
		if s.Memo != "checkout bug" {
			t.Errorf("slot %s memo %q", s.Start.Format("15:04"), s.Memo)
		}
	}
	if slots[0].ActivityPercent != 75 || slots[0].Shots[0].ID != billed {
		t.Errorf("first slot: %+v", slots[0])
	}
	if slots[3].Shots[0].State != tracking.ShotDeleted || slots[4].Shots[0].State != tracking.ShotCovered {
		t.Errorf("states: %s %s", slots[3].Shots[0].State, slots[4].Shots[0].State)
	}
	tot := v.Totals
	if tot.BillableSlots != 2 || tot.ManualSeconds != 1800 || tot.BillableSeconds != 2*600+1800 || tot.Covered != 1 || tot.Deleted != 1 || tot.TrackedSeconds != 5*600 {
		t.Fatalf("totals %+v", tot)
	}
	if len(v.Manual) != 1 || v.Manual[0].Memo != "call with client" {
		t.Fatalf("manual %+v", v.Manual)
	}
	// A range with nothing in it is empty, not an error.
	empty, err := f.s.View(ctx, ws, day0.Add(48*time.Hour), day0.Add(72*time.Hour), time.UTC)
	if err != nil || len(empty.Days) != 0 || empty.Totals.Slots != 0 {
		t.Fatalf("empty range: %+v %v", empty, err)
	}
}

func TestManualTimeRules(t *testing.T) {
	f := newFixture(t)
	for name, c := range map[string]struct {
		from, to time.Time
		memo     string
	}{
		"backwards": {day0, day0.Add(-time.Hour), "x"},
		"future":    {day0.Add(30 * time.Hour), day0.Add(31 * time.Hour), "x"},
		"no memo":   {day0, day0.Add(time.Hour), ""},
		"too long":  {day0.Add(-30 * time.Hour), day0, "x"},
	} {
		if _, err := f.s.AddManual(ctx, "acme", c.from, c.to, c.memo); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestCoverHidesTextAndRevealProvesIt(t *testing.T) {
	f := newFixture(t)
	id := f.workSlot("acme", day0, 7)
	orig, _, err := f.s.ShotImage(ctx, id, ImageOriginal)
	if err != nil {
		t.Fatal(err)
	}
	// Off the image: refused, nothing changed.
	n0, _ := f.s.logSize(ctx, "acme")
	if err := f.s.Cover(ctx, id, []tracking.Rect{{X: 300, Y: 0, W: 50, H: 10}}); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "not inside the 320x200 image") {
		t.Fatalf("rect off the image: %v", err)
	}
	if n, _ := f.s.logSize(ctx, "acme"); n != n0 {
		t.Fatal("a refused cover changed the log")
	}
	rect := tracking.Rect{X: 0, Y: 0, W: 160, H: 100}
	if err := f.s.Cover(ctx, id, []tracking.Rect{rect}); err != nil {
		t.Fatal(err)
	}
	cur, _, err := f.s.ShotImage(ctx, id, ImageCurrent)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(cur, orig) {
		t.Fatal("current image is still the original")
	}
	oi, _ := decodeImage(orig)
	ci, _ := decodeImage(cur)
	// Text is dark marks 1 px apart on light ground: the covered region
	// must keep no sharp edge (neighbouring pixels stay close), while the
	// uncovered part still has them.
	if e := edgeEnergy(ci, image.Rect(0, 0, 160, 100)); e > 6 {
		t.Fatalf("covered region still has edges: %.1f", e)
	}
	if e := edgeEnergy(oi, image.Rect(0, 0, 160, 100)); e < 20 {
		t.Fatalf("test picture has no text-like edges: %.1f", e)
	}
	if e := edgeEnergy(ci, image.Rect(170, 110, 320, 200)); e < 20 {
		t.Fatalf("uncovered region lost its detail: %.1f", e)
	}
	// The export holds the covered version and never the original.
	exp := f.export("acme", day0, day0.Add(time.Hour))
	plain := f.plainExport(exp)
	if bytes.Contains(plain, orig) {
		t.Fatal("export contains the covered original")
	}
	v, err := f.verify(exp)
	if err != nil {
		t.Fatal(err)
	}
	if v.View.Totals.Covered != 1 || !bytes.Equal(v.Images[id], cur) {
		t.Fatal("export does not show the covered shot")
	}
	var reveal bytes.Buffer
	if err := f.s.Reveal(ctx, id, nil, &reveal); err != nil {
		t.Fatal(err)
	}
	ids := []age.Identity{f.client}
	rv, err := VerifyReveal(bytes.NewReader(exp), bytes.NewReader(reveal.Bytes()), ids, VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !rv.Covered || !bytes.Equal(rv.Original, orig) {
		t.Fatal("reveal does not give back the original")
	}
	// A reveal of a different picture does not open the commitment.
	pr, _ := age.Decrypt(bytes.NewReader(reveal.Bytes()), f.client)
	raw, _ := readAll(pr)
	rf, _ := parseReveal(raw)
	d := mustParse(t, f, exp)
	vd, _ := verifyData(d, VerifyOptions{})
	rf.Original = screenJPEG(t, 320, 200, 99)
	if _, err := checkReveal(d, vd, rf); err == nil || !strings.Contains(err.Error(), "not the one that was captured") {
		t.Fatalf("forged reveal: %v", err)
	}
}

// A second cover adds to the first: covering region B after region A
// never uncovers A, and a whole-shot cover stays whole.
func TestSecondCoverKeepsTheFirst(t *testing.T) {
	f := newFixture(t)
	id := f.workSlot("acme", day0, 7)
	a, b := image.Rect(0, 0, 160, 100), image.Rect(160, 100, 320, 200)
	if err := f.s.Cover(ctx, id, []tracking.Rect{{X: 0, Y: 0, W: 160, H: 100}}); err != nil {
		t.Fatal(err)
	}
	if err := f.s.Cover(ctx, id, []tracking.Rect{{X: 160, Y: 100, W: 160, H: 100}}); err != nil {
		t.Fatal(err)
	}
	cur, _, err := f.s.ShotImage(ctx, id, ImageCurrent)
	if err != nil {
		t.Fatal(err)
	}
	ci, _ := decodeImage(cur)
	for _, r := range []image.Rectangle{a, b} {
		if e := edgeEnergy(ci, r); e > 6 {
			t.Errorf("region %v has edges after two covers: %.1f", r, e)
		}
	}
	if e := edgeEnergy(ci, image.Rect(170, 0, 320, 90)); e < 20 {
		t.Errorf("a region no cover named lost its detail: %.1f", e)
	}
	si, _ := f.s.shot(ctx, id)
	last, err := f.s.lastCover(ctx, si)
	if err != nil || len(last.Rects) != 2 {
		t.Fatalf("the second cover entry holds %+v, %v; want both rectangles", last.Rects, err)
	}
	// Whole, then a region: still whole.
	if err := f.s.Cover(ctx, id, nil); err != nil {
		t.Fatal(err)
	}
	if err := f.s.Cover(ctx, id, []tracking.Rect{{X: 0, Y: 0, W: 10, H: 10}}); err != nil {
		t.Fatal(err)
	}
	cur, _, _ = f.s.ShotImage(ctx, id, ImageCurrent)
	ci, _ = decodeImage(cur)
	if e := edgeEnergy(ci, image.Rect(170, 0, 320, 90)); e > 6 {
		t.Errorf("a whole-shot cover was narrowed by a later one: %.1f", e)
	}
	if _, err := f.s.Check(ctx, "acme"); err != nil {
		t.Fatalf("check after four covers: %v", err)
	}
}

func mustParse(t testing.TB, f *fixture, exp []byte) *exportData {
	t.Helper()
	d, err := parseExport(bytes.NewReader(f.plainExport(exp)))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func readAll(r interface{ Read([]byte) (int, error) }) ([]byte, error) {
	var b bytes.Buffer
	_, err := b.ReadFrom(r)
	return b.Bytes(), err
}

// edgeEnergy is the mean absolute difference between horizontally adjacent
// pixels' luma in r.
func edgeEnergy(img image.Image, r image.Rectangle) float64 {
	var sum, n float64
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x+1 < r.Max.X; x++ {
			a, _, _, _ := img.At(x, y).RGBA()
			b, _, _, _ := img.At(x+1, y).RGBA()
			d := float64(a>>8) - float64(b>>8)
			if d < 0 {
				d = -d
			}
			sum += d
			n++
		}
	}
	return sum / n
}

func TestDeleteShreds(t *testing.T) {
	f := newFixture(t)
	id := f.workSlot("acme", day0, 1)
	if err := f.s.Delete(ctx, id); err != nil {
		t.Fatal(err)
	}
	if left, _ := filepath.Glob(filepath.Join(f.s.Dir(), "blobs", "acme", id+".*")); len(left) > 0 {
		t.Fatalf("blobs still there: %v", left)
	}
	si, _ := f.s.shot(ctx, id)
	if si.secret != nil || si.state != tracking.ShotDeleted {
		t.Fatalf("shot row %+v", si)
	}
	if _, _, err := f.s.ShotImage(ctx, id, ImageOriginal); !errors.Is(err, ErrNotFound) {
		t.Fatalf("image of deleted shot: %v", err)
	}
	if err := f.s.Delete(ctx, id); !errors.Is(err, ErrConflict) {
		t.Fatalf("delete twice: %v", err)
	}
	if _, _, err := f.s.ShotImage(ctx, "no-such-shot", ImageOriginal); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown shot: %v", err)
	}
	// The tombstone is in the log and the export.
	v, err := f.verify(f.export("acme", day0, day0.Add(time.Hour)))
	if err != nil {
		t.Fatal(err)
	}
	if v.View.Totals.Deleted != 1 || v.View.Totals.BillableSlots != 0 || len(v.Images) != 0 {
		t.Fatalf("export after delete: %+v", v.View.Totals)
	}
	if res, err := f.s.Check(ctx, "acme"); err != nil || res.Shots != 1 {
		t.Fatalf("check: %+v %v", res, err)
	}
}

func TestPrune(t *testing.T) {
	f := newFixture(t)
	old := f.workSlot("acme", day0, 1)
	kept := f.workSlot("acme", day0.Add(2*time.Hour), 2)
	n, err := f.s.Prune(ctx, "acme", day0.Add(time.Hour))
	if err != nil || n != 1 {
		t.Fatalf("prune: %d %v", n, err)
	}
	if _, _, err := f.s.ShotImage(ctx, old, ImageOriginal); err == nil {
		t.Fatal("pruned shot still readable")
	}
	if _, _, err := f.s.ShotImage(ctx, kept, ImageOriginal); err != nil {
		t.Fatal(err)
	}
	v, err := f.verify(f.export("acme", day0, day0.Add(3*time.Hour)))
	if err != nil {
		t.Fatal(err)
	}
	if v.View.Totals.BillableSlots != 2 {
		t.Fatalf("pruned slot must stay billed: %+v", v.View.Totals)
	}
	if _, err := f.s.Prune(ctx, "acme", day0.Add(100*time.Hour)); !errors.Is(err, ErrInvalid) {
		t.Fatalf("prune in the future: %v", err)
	}
}

func TestExportRoundTrip(t *testing.T) {
	f := newFixture(t)
	for i := 0; i < 6; i++ {
		f.workSlot("acme", day0.Add(time.Duration(i)*10*time.Minute), int64(i))
	}
	f.workSlot("acme", day0.Add(24*time.Hour), 9) // next day: not in the export
	exp := f.export("acme", day0, day0.Add(8*time.Hour))
	v, err := f.verify(exp)
	if err != nil {
		t.Fatal(err)
	}
	local, _ := f.s.View(ctx, "acme", day0, day0.Add(8*time.Hour), time.UTC)
	if v.View.Totals != local.Totals {
		t.Fatalf("export totals %+v, local %+v", v.View.Totals, local.Totals)
	}
	if v.View.Totals.BillableSeconds != 3600 || len(v.Thumbs) != 6 || v.Signer != f.keys.VerifierKey() || v.Client != "ACME Corp" {
		t.Fatalf("verified %+v", v.View.Totals)
	}
	// The freelancer can read their own export too.
	if _, err := Verify(bytes.NewReader(exp), []age.Identity{f.keys.Identity()}, VerifyOptions{}); err != nil {
		t.Fatal(err)
	}
	// Pinning the signer.
	other, _ := InitKeys(t.TempDir(), "")
	if _, err := Verify(bytes.NewReader(exp), []age.Identity{f.client}, VerifyOptions{Signer: other.VerifierKey()}); err == nil {
		t.Fatal("accepted another signer")
	}
	// Reports.
	var html, csvb bytes.Buffer
	if err := WriteHTML(&html, v); err != nil {
		t.Fatal(err)
	}
	if err := WriteCSV(&csvb, v.View); err != nil {
		t.Fatal(err)
	}
	h := html.String()
	for _, want := range []string{"data:image/jpeg;base64,", "Verified", "1h 00m", "75%"} {
		if !strings.Contains(h, want) {
			t.Errorf("HTML report lacks %q", want)
		}
	}
	for _, bad := range []string{"http://", "https://", "src=\"/"} {
		if strings.Contains(h, bad) {
			t.Errorf("HTML report refers to an external asset: %q", bad)
		}
	}
	if lines := strings.Count(csvb.String(), "\n"); lines != 1+6+1 {
		t.Errorf("CSV has %d lines:\n%s", lines, csvb.String())
	}
	// Nothing in range: a clear error, no file.
	var buf bytes.Buffer
	if _, err := f.s.Export(ctx, "acme", day0.Add(-48*time.Hour), day0.Add(-24*time.Hour), nil, &buf); !errors.Is(err, ErrNotFound) || buf.Len() != 0 {
		t.Fatalf("empty export: %v", err)
	}
}

func TestExportNeedsRecipient(t *testing.T) {
	f := newFixture(t)
	if err := f.s.EnsureWorkspace(ctx, "solo", WorkspaceOptions{SlotSeconds: 600}); err != nil {
		t.Fatal(err)
	}
	f.workSlot("solo", day0, 1)
	var buf bytes.Buffer
	_, err := f.s.Export(ctx, "solo", day0, day0.Add(time.Hour), nil, &buf)
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "--recipient") {
		t.Fatalf("no recipient: %v", err)
	}
	if _, err := f.s.Export(ctx, "solo", day0, day0.Add(time.Hour), []string{"age1nope"}, &buf); !errors.Is(err, ErrInvalid) {
		t.Fatalf("bad recipient: %v", err)
	}
	if _, err := f.s.Export(ctx, "solo", day0, day0.Add(time.Hour), []string{f.client.Recipient().String()}, &buf); err != nil {
		t.Fatal(err)
	}
}

func TestVerifyWrongKeyAndForeignFiles(t *testing.T) {
	f := newFixture(t)
	f.workSlot("acme", day0, 1)
	exp := f.export("acme", day0, day0.Add(time.Hour))
	y, _ := age.GenerateX25519Identity() // client Y
	if _, err := Verify(bytes.NewReader(exp), []age.Identity{y}, VerifyOptions{}); err == nil || !strings.Contains(err.Error(), "not encrypted to the given identity") {
		t.Fatalf("client Y: %v", err)
	}
	for name, b := range map[string][]byte{
		"empty":     {},
		"text":      []byte("hello, this is not an export\n"),
		"truncated": exp[:len(exp)/2],
		"flipped":   flip(exp, len(exp)-100),
	} {
		_, err := f.verify(b)
		if err == nil {
			t.Errorf("%s: verified", name)
			continue
		}
		if !errors.Is(err, ErrNotExport) {
			t.Errorf("%s: %v", name, err)
		}
	}
	// An age file that is not an export.
	var other bytes.Buffer
	w, _ := age.Encrypt(&other, f.client.Recipient())
	w.Write([]byte("just some text"))
	w.Close()
	if _, err := f.verify(other.Bytes()); !errors.Is(err, ErrNotExport) {
		t.Errorf("foreign age file: %v", err)
	}
}

func flip(b []byte, i int) []byte {
	c := append([]byte{}, b...)
	c[i] ^= 0x40
	return c
}

// TestExportTamper changes an export the way anyone who knows the client's
// public recipient can (decrypt, change, encrypt again) and checks that
// verify fails and names the entry.
func TestExportTamper(t *testing.T) {
	f := newFixture(t)
	var shots []string
	for i := 0; i < 4; i++ {
		shots = append(shots, f.workSlot("acme", day0.Add(time.Duration(i)*10*time.Minute), int64(i)))
	}
	oldExp := f.export("acme", day0, day0.Add(time.Hour))
	f.workSlot("acme", day0.Add(40*time.Minute), 5)
	exp := f.export("acme", day0, day0.Add(time.Hour))
	if _, err := f.verify(exp); err != nil {
		t.Fatal(err)
	}
	oldData := mustParse(t, f, oldExp)
	idx := func(d *exportData, ref string) int {
		for i, e := range d.m.Entries {
			if strings.Contains(e.Header, `"ref":"`+ref+`"`) {
				return i
			}
		}
		t.Fatalf("no entry for %s", ref)
		return -1
	}
	cases := []struct {
		name   string
		mutate func(d *exportData)
		want   string // in the error
	}{
		{"byte of a screenshot", func(d *exportData) {
			n := shotFile(shots[1], blobOriginal)
			d.files[n] = flip(d.files[n], len(d.files[n])/2)
		}, "(capture " + shots[1] + "): the screenshot does not match its commitment"},
		{"byte of a thumbnail", func(d *exportData) {
			n := shotFile(shots[2], blobThumb)
			d.files[n] = flip(d.files[n], 200)
		}, "(capture " + shots[2] + "): the thumbnail does not match"},
		{"activity count in a body", func(d *exportData) {
			for i, e := range d.m.Entries {
				if strings.Contains(e.Body, `"active":45`) {
					d.m.Entries[i].Body = strings.Replace(e.Body, `"active":45`, `"active":60`, 1)
					return
				}
			}
		}, "its content does not match the logged hash"},
		{"header time", func(d *exportData) {
			i := idx(d, shots[3])
			d.m.Entries[i].Header = strings.Replace(d.m.Entries[i].Header, `"type":"capture"`, `"type":"capture" `, 1)
		}, "(capture " + shots[3] + "): is not in the signed log"},
		{"middle entry deleted", func(d *exportData) {
			i := idx(d, shots[1])
			d.m.Entries = append(d.m.Entries[:i], d.m.Entries[i+1:]...)
		}, "is missing from the export"},
		{"log truncated", func(d *exportData) {
			d.m.Entries = d.m.Entries[:len(d.m.Entries)-3]
		}, "truncated"},
		{"rolled back to an older checkpoint", func(d *exportData) {
			d.m.Checkpoint = oldData.m.Checkpoint
		}, "beyond the signed checkpoint"},
		{"covered shot shown uncovered (no cover entry)", func(d *exportData) {
			ms := d.m.Shots[shots[0]]
			ms.Covered = true
			ms.Salt = ""
			d.m.Shots[shots[0]] = ms
		}, "no cover entry"},
		{"extra file", func(d *exportData) {
			d.files["shots/zzz.jpg"] = []byte{1}
		}, "no entry accounts for"},
		{"checkpoint signature", func(d *exportData) {
			lines := strings.SplitN(d.m.Checkpoint, "\n", 4)
			lines[1] = "1" + lines[1] // another size under the same signature
			d.m.Checkpoint = strings.Join(lines, "\n")
		}, "signature does not verify"},
		{"checkpoint of another log", func(d *exportData) {
			d.m.Checkpoint = strings.Replace(d.m.Checkpoint, "acme", "acmf", 1)
		}, "is of log"},
		{"slot length in the manifest (more billable hours)", func(d *exportData) {
			d.m.SlotSeconds = 86400
		}, "600 s slots, but the export's totals use 86400 s slots"},
		{"client name", func(d *exportData) {
			d.m.Client = "Other Corp"
		}, "the export's client was altered"},
		{"range", func(d *exportData) {
			d.m.From = d.m.From.Add(-24 * time.Hour)
		}, "the export's from was altered"},
		{"statement removed", func(d *exportData) {
			d.m.Statement = ""
		}, "no signed statement"},
		{"statement of another export", func(d *exportData) {
			d.m.Statement = oldData.m.Statement
		}, "the export's checkpoint was altered"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := f.verify(f.reseal(exp, c.mutate))
			if err == nil {
				t.Fatal("tampered export verified")
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q does not say %q", err, c.want)
			}
			if !strings.Contains(c.want, "export's") && c.name != "extra file" && c.name != "checkpoint signature" && c.name != "checkpoint of another log" && c.name != "statement removed" {
				var ee *EntryError
				if !errors.As(err, &ee) {
					t.Fatalf("error does not name an entry: %v", err)
				}
			}
		})
	}
}

// TestStoreTamper damages the stored diary and checks that Check names
// the entry, and that export refuses the damaged diary.
func TestStoreTamper(t *testing.T) {
	setup := func(t *testing.T) (*fixture, []string) {
		f := newFixture(t)
		var shots []string
		for i := 0; i < 4; i++ {
			shots = append(shots, f.workSlot("acme", day0.Add(time.Duration(i)*10*time.Minute), int64(i)))
		}
		if _, err := f.s.Check(ctx, "acme"); err != nil {
			t.Fatal(err)
		}
		return f, shots
	}
	expectBad := func(t *testing.T, f *fixture, want string) {
		t.Helper()
		_, err := f.s.Check(ctx, "acme")
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("check: %v, want %q", err, want)
		}
		var buf bytes.Buffer
		if _, err := f.s.Export(ctx, "acme", day0, day0.Add(time.Hour), nil, &buf); err == nil || !strings.Contains(err.Error(), "damaged") {
			t.Fatalf("export of damaged diary: %v", err)
		}
	}
	t.Run("byte in a blob", func(t *testing.T) {
		f, shots := setup(t)
		p := f.s.blobPath("acme", shots[2], blobOriginal)
		b, _ := os.ReadFile(p)
		os.WriteFile(p, flip(b, 100), 0o600)
		expectBad(t, f, "(capture "+shots[2]+"): original of shot "+shots[2]+": authentication failed")
	})
	t.Run("byte in a row", func(t *testing.T) {
		f, _ := setup(t)
		if _, err := f.s.db.Exec(`UPDATE log SET body = replace(body, '"active":45', '"active":50') WHERE ws='acme' AND idx=3`); err != nil {
			t.Fatal(err)
		}
		expectBad(t, f, "entry 3 (activity")
	})
	t.Run("middle entry deleted", func(t *testing.T) {
		f, _ := setup(t)
		f.s.db.Exec(`DELETE FROM log WHERE ws='acme' AND idx=5`)
		expectBad(t, f, "entry 5: missing from the log")
	})
	t.Run("log truncated", func(t *testing.T) {
		f, _ := setup(t)
		f.s.db.Exec(`DELETE FROM log WHERE ws='acme' AND idx>=40`)
		expectBad(t, f, "entry 40: missing: the signed checkpoint")
	})
	t.Run("entries after the signed checkpoint", func(t *testing.T) {
		// Rows added to the end of the log (with their tree hashes) while
		// the signed checkpoint stays as it was.
		f, _ := setup(t)
		var size int64
		var note []byte
		if err := f.s.db.QueryRow(`SELECT size, note FROM checkpoints WHERE ws='acme'`).Scan(&size, &note); err != nil {
			t.Fatal(err)
		}
		copyNote, _ := os.ReadFile(f.s.checkpointPath("acme"))
		f.workSlot("acme", day0.Add(2*time.Hour), 9)
		if _, err := f.s.db.Exec(`UPDATE checkpoints SET size=?, note=? WHERE ws='acme'`, size, note); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(f.s.checkpointPath("acme"), copyNote, 0o600)
		expectBad(t, f, fmt.Sprintf("entry %d (", size))
		if _, err := f.s.Check(ctx, "acme"); !strings.Contains(err.Error(), "not covered by the signed checkpoint") {
			t.Fatalf("check: %v", err)
		}
	})
	t.Run("rolled back to an older state", func(t *testing.T) {
		f, _ := setup(t)
		// Keep the database as it is now, add more, then put the old
		// database back: the checkpoint copy beside it is newer.
		snap := filepath.Join(t.TempDir(), "old.db")
		if _, err := f.s.db.Exec(`VACUUM INTO ?`, snap); err != nil {
			t.Fatal(err)
		}
		f.workSlot("acme", day0.Add(2*time.Hour), 9)
		f.s.Close()
		dbp := filepath.Join(f.s.Dir(), "diary.db")
		os.Remove(dbp + "-wal")
		os.Remove(dbp + "-shm")
		b, _ := os.ReadFile(snap)
		os.WriteFile(dbp, b, 0o600)
		s2, err := Open(ctx, f.s.Dir(), Options{Now: f.clk.Now})
		if err != nil {
			t.Fatal(err)
		}
		defer s2.Close()
		s2.Unlock(f.keys)
		f.s = s2
		expectBad(t, f, "copy beside the database")
	})
}

func TestNoPlaintextImagesOnDisk(t *testing.T) {
	f := newFixture(t)
	var ids []string
	for i := 0; i < 5; i++ {
		ids = append(ids, f.workSlot("acme", day0.Add(time.Duration(i)*10*time.Minute), int64(i)))
	}
	if err := f.s.Cover(ctx, ids[0], []tracking.Rect{{X: 10, Y: 10, W: 100, H: 50}}); err != nil {
		t.Fatal(err)
	}
	if err := f.s.Delete(ctx, ids[1]); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := f.s.Backup(ctx, f.keyDir, "pw", &buf); err != nil {
		t.Fatal(err)
	}
	if hits := ScanForImages(t, f.dir); len(hits) > 0 {
		t.Fatalf("plaintext images on disk: %v", hits)
	}
}

// ScanForImages walks dir and reports files holding JPEG or PNG magic.
func ScanForImages(t testing.TB, dir string) []string {
	t.Helper()
	magics := [][]byte{
		{0xFF, 0xD8, 0xFF, 0xDB}, {0xFF, 0xD8, 0xFF, 0xE0}, {0xFF, 0xD8, 0xFF, 0xE1}, {0xFF, 0xD8, 0xFF, 0xEE}, {0xFF, 0xD8, 0xFF, 0xC0},
		{0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A},
	}
	var hits []string
	filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err != nil || !info.Mode().IsRegular() {
			return nil
		}
		b, _ := os.ReadFile(p)
		for _, m := range magics {
			if bytes.Contains(b, m) {
				hits = append(hits, p)
				break
			}
		}
		return nil
	})
	return hits
}

func TestBackupRestore(t *testing.T) {
	f := newFixture(t)
	id := f.workSlot("acme", day0, 1)
	var buf bytes.Buffer
	if _, err := f.s.Backup(ctx, f.keyDir, "backup pw", &buf); err != nil {
		t.Fatal(err)
	}
	state := t.TempDir()
	for name, c := range map[string]struct {
		data []byte
		pw   string
		want string
	}{
		"wrong passphrase": {buf.Bytes(), "nope", "wrong passphrase"},
		"flipped byte":     {flip(buf.Bytes(), buf.Len()-50), "backup pw", "modified, damaged or truncated"},
		"truncated":        {buf.Bytes()[:buf.Len()*2/3], "backup pw", "modified, damaged or truncated"},
		"not a backup":     {[]byte("hello"), "backup pw", "not a workspace backup"},
	} {
		_, err := StageRestore(bytes.NewReader(c.data), c.pw, state)
		if !errors.Is(err, ErrBadBackup) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if ents, _ := os.ReadDir(state); len(ents) != 0 {
		t.Fatalf("refused restores left %d files", len(ents))
	}
	stage, err := StageRestore(bytes.NewReader(buf.Bytes()), "backup pw", state)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := SwapRestore(stage, filepath.Join(state, "diary"), filepath.Join(state, "keys"), time.Now()); err != nil {
		t.Fatal(err)
	}
	keys, err := LoadKeys(filepath.Join(state, "keys"), "")
	if err != nil {
		t.Fatal(err)
	}
	s2, err := Open(ctx, filepath.Join(state, "diary"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	s2.Unlock(keys)
	if _, err := s2.Check(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	img, _, err := s2.ShotImage(ctx, id, ImageOriginal)
	want, _, _ := f.s.ShotImage(ctx, id, ImageOriginal)
	if err != nil || !bytes.Equal(img, want) {
		t.Fatalf("restored shot: %v", err)
	}
}

// The export's slot length is the one its captures were taken with, and a
// range in which the profile changed it is refused with a clear message.
func TestExportSlotLengthFollowsTheCaptures(t *testing.T) {
	f := newFixture(t)
	f.workSlot("acme", day0, 1)
	f.ensure("acme", 300) // the profile's slot changed since
	v, err := f.verify(f.export("acme", day0, day0.Add(time.Hour)))
	if err != nil || v.View.SlotSeconds != 600 {
		t.Fatalf("export after a slot change: %v, slots of %d s", err, v.View.SlotSeconds)
	}
	f.workSlot("acme", day0.Add(20*time.Minute), 2)
	var buf bytes.Buffer
	_, err = f.s.Export(ctx, "acme", day0, day0.Add(time.Hour), nil, &buf)
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "slot length changed inside this range") || buf.Len() != 0 {
		t.Fatalf("export across a slot change: %v (%d bytes)", err, buf.Len())
	}
}

// Idle periods count into the slots they overlap; a gap marks the slots it
// overlaps and no more (its end is exclusive), and is shown with its reason.
func TestIdleAndGapsInSlots(t *testing.T) {
	f := newFixture(t)
	f.workSlot("acme", day0, 1)
	_, err := f.s.AddRecords(ctx, "acme", []tracking.Record{
		{ID: "idle-1", Type: tracking.RecordIdle, Start: day0.Add(2 * time.Minute), End: day0.Add(5*time.Minute + 30*time.Second)},
		{ID: "idle-2", Type: tracking.RecordIdle, Start: day0.Add(9 * time.Minute), End: day0.Add(11 * time.Minute)},
		{ID: "gap-1", Type: tracking.RecordGap, Start: day0.Add(9 * time.Minute), End: day0.Add(10 * time.Minute), Reason: "no screenshot: no X display"},
	})
	if err != nil {
		t.Fatal(err)
	}
	v, err := f.s.View(ctx, "acme", day0, day0.Add(time.Hour), time.UTC)
	if err != nil {
		t.Fatal(err)
	}
	if len(v.Days) != 1 || len(v.Days[0].Slots) != 1 {
		t.Fatalf("days %+v", v.Days)
	}
	s := v.Days[0].Slots[0]
	if s.IdleSeconds != 210+60 {
		t.Fatalf("idle seconds %d, want 270 (3.5 min + the first minute of the second period)", s.IdleSeconds)
	}
	if len(s.Gaps) != 1 || s.Gaps[0] != "no screenshot: no X display" {
		t.Fatalf("gaps %q", s.Gaps)
	}
	if v.Totals.Slots != 1 || !s.Billable {
		t.Fatalf("a gap ending on the slot boundary made more slots or unbilled it: %+v", v.Totals)
	}
}
