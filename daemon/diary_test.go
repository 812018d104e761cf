package daemon

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/color"
	"image/jpeg"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/hashicorp/go-hclog"

	"github.com/workspace-sandbox/workspace/api"
	"github.com/workspace-sandbox/workspace/diary"
	"github.com/workspace-sandbox/workspace/tracking"
)

func testJPEG(t testing.TB, seed uint8) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 160, 100))
	for y := 0; y < 100; y++ {
		for x := 0; x < 160; x++ {
			img.SetRGBA(x, y, color.RGBA{uint8(x) + seed, uint8(y * 2), seed, 255})
		}
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, nil); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// diaryDaemon starts a daemon with a workspace "acme" whose profile names
// client's recipient.
func diaryDaemon(t *testing.T, client *age.X25519Identity) (*api.Client, *Daemon) {
	t.Helper()
	c, d := startDaemon(t, newFakeHV())
	ctx := context.Background()
	if _, err := importBytes(t, c, "test", qcow2Bytes(1<<30, false, 4096)); err != nil {
		t.Fatal(err)
	}
	p := testProfile(t, `image = "test"
tracking {
  slot = "10m"
}
client {
  name      = "ACME"
  recipient = "`+client.Recipient().String()+`"
}`)
	if _, err := c.Create(ctx, api.CreateRequest{Name: "acme", ProfilePath: "/p.hcl", Profile: p}); err != nil {
		t.Fatal(err)
	}
	return c, d
}

func TestDiaryAPI(t *testing.T) {
	ctx := context.Background()
	client, _ := age.GenerateX25519Identity()
	c, d := diaryDaemon(t, client)
	start := time.Now().Add(-2 * time.Hour).Truncate(10 * time.Minute)
	capture := func(id string, at time.Time, seed uint8) (tracking.Ack, error) {
		return addCapture(ctx, d, "acme", tracking.Capture{ID: id, Taken: at, Session: "s1"}, testJPEG(t, seed), nil)
	}

	// Before `workspace init` nothing can be recorded, and the error says why.
	if st, err := c.DiaryStatus(ctx); err != nil || st.Initialized {
		t.Fatalf("status before init: %+v %v", st, err)
	}
	if _, err := capture("c0", start, 1); !errors.Is(err, api.ErrUnavailable) || !strings.Contains(err.Error(), "workspace init") {
		t.Fatalf("capture before init: %v", err)
	}
	st, err := c.Init(ctx, api.InitRequest{})
	if err != nil || !st.Initialized || st.Locked || !strings.HasPrefix(st.Recipient, "age1") || st.Signer == "" {
		t.Fatalf("init: %+v %v", st, err)
	}
	if _, err := c.Init(ctx, api.InitRequest{}); !errors.Is(err, api.ErrConflict) {
		t.Fatalf("second init: %v", err)
	}

	// Ingestion: idempotent, acknowledged once stored.
	ack, err := capture("c1", start.Add(2*time.Minute), 1)
	if err != nil || len(ack.Stored) != 1 {
		t.Fatalf("capture: %+v %v", ack, err)
	}
	if ack, err = capture("c1", start.Add(2*time.Minute), 1); err != nil || len(ack.Duplicates) != 1 {
		t.Fatalf("capture again: %+v %v", ack, err)
	}
	if _, err := capture("c2", start.Add(12*time.Minute), 2); err != nil {
		t.Fatal(err)
	}
	var recs []tracking.Record
	for m := 0; m < 20; m++ {
		recs = append(recs, tracking.Record{ID: "a" + string(rune('a'+m)), Type: tracking.RecordActivity, Minute: start.Add(time.Duration(m) * time.Minute), Activity: &tracking.Activity{Keys: 10, Active: 30}})
	}
	if ack, err := addRecords(ctx, d, "acme", recs); err != nil || len(ack.Stored) != 20 {
		t.Fatalf("records: %+v %v", ack, err)
	}
	if _, err := capture("c3", start.Add(25*time.Minute), 3); err != nil {
		t.Fatal(err)
	}
	if _, err := addCapture(ctx, d, "nosuch", tracking.Capture{ID: "c9", Taken: start}, testJPEG(t, 1), nil); !errors.Is(err, api.ErrNotFound) {
		t.Fatalf("capture for unknown workspace: %v", err)
	}
	if _, err := addCapture(ctx, d, "acme", tracking.Capture{ID: "c9", Taken: start}, []byte("not a picture"), nil); !errors.Is(err, api.ErrInvalid) {
		t.Fatalf("capture of garbage: %v", err)
	}

	view, err := c.Diary(ctx, "acme", start, start.Add(time.Hour), "UTC")
	if err != nil {
		t.Fatal(err)
	}
	if view.Totals.Shots != 3 || view.Totals.BillableSlots != 2 || view.Totals.ActivityPercent != 33 {
		t.Fatalf("view totals %+v", view.Totals)
	}

	// Review: cover, image, delete, manual.
	if err := c.Cover(ctx, "c1", api.CoverRequest{Rects: []tracking.Rect{{X: 0, Y: 0, W: 500, H: 10}}}); !errors.Is(err, api.ErrInvalid) || !strings.Contains(err.Error(), "not inside") {
		t.Fatalf("cover off the image: %v", err)
	}
	if err := c.Cover(ctx, "c1", api.CoverRequest{}); err != nil {
		t.Fatal(err)
	}
	img, err := c.ShotImage(ctx, "c1", "current")
	if err != nil || !bytes.HasPrefix(img, []byte{0xFF, 0xD8}) {
		t.Fatalf("shot image: %v", err)
	}
	if _, err := c.ShotImage(ctx, "nope", "current"); !errors.Is(err, api.ErrNotFound) {
		t.Fatalf("unknown shot: %v", err)
	}
	if err := c.DeleteShot(ctx, "c3"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.AddManual(ctx, "acme", api.ManualRequest{From: start.Add(-time.Hour), To: start.Add(-30 * time.Minute), Memo: "planning call"}); err != nil {
		t.Fatal(err)
	}
	if res, err := c.CheckDiary(ctx, "acme"); err != nil || !res.OK {
		t.Fatalf("check: %+v %v", res, err)
	}

	// Export to the client, who verifies it offline.
	var exp bytes.Buffer
	if err := c.Export(ctx, "acme", api.ExportRequest{From: start.Add(-2 * time.Hour), To: start.Add(time.Hour)}, &exp); err != nil {
		t.Fatal(err)
	}
	v, err := diary.Verify(bytes.NewReader(exp.Bytes()), []age.Identity{client}, diary.VerifyOptions{Signer: st.Signer})
	if err != nil {
		t.Fatal(err)
	}
	if v.View.Totals.Covered != 1 || v.View.Totals.Deleted != 1 || v.View.Totals.ManualSeconds != 1800 {
		t.Fatalf("verified totals %+v", v.View.Totals)
	}
	// Reports for the freelancer are made from a verified export.
	var html, csvb bytes.Buffer
	if err := c.Report(ctx, "acme", "html", api.ExportRequest{From: start.Add(-2 * time.Hour), To: start.Add(time.Hour)}, &html); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(html.String(), "Verified") || !strings.Contains(html.String(), "data:image/jpeg;base64,") {
		t.Fatal("HTML report")
	}
	if err := c.Report(ctx, "acme", "csv", api.ExportRequest{From: start.Add(-2 * time.Hour), To: start.Add(time.Hour)}, &csvb); err != nil || !strings.Contains(csvb.String(), "planning call") {
		t.Fatalf("CSV report: %v", err)
	}
	if err := c.Report(ctx, "acme", "pdf", api.ExportRequest{From: start, To: start.Add(time.Hour)}, &csvb); !errors.Is(err, api.ErrInvalid) {
		t.Fatalf("report format pdf: %v", err)
	}
	var empty bytes.Buffer
	if err := c.Export(ctx, "acme", api.ExportRequest{From: start.Add(-72 * time.Hour), To: start.Add(-48 * time.Hour)}, &empty); !errors.Is(err, api.ErrNotFound) || empty.Len() != 0 {
		t.Fatalf("export of an empty range: %v", err)
	}

	// Backup, then restore over a diary that has data needs --force.
	var backup bytes.Buffer
	if err := c.Backup(ctx, "backup pass", &backup); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Restore(ctx, "backup pass", bytes.NewReader(backup.Bytes()), false); !errors.Is(err, api.ErrConflict) {
		t.Fatalf("restore without force: %v", err)
	}
	bad := append([]byte{}, backup.Bytes()...)
	bad[len(bad)-40] ^= 1
	if _, err := c.Restore(ctx, "backup pass", bytes.NewReader(bad), true); !errors.Is(err, api.ErrInvalid) || !strings.Contains(err.Error(), "modified") {
		t.Fatalf("restore of tampered backup: %v", err)
	}
	if res, err := c.CheckDiary(ctx, "acme"); err != nil || !res.OK {
		t.Fatalf("a refused restore changed the diary: %+v %v", res, err)
	}
	res, err := c.Restore(ctx, "backup pass", bytes.NewReader(backup.Bytes()), true)
	if err != nil || len(res.Workspaces) != 1 || len(res.Replaced) != 2 {
		t.Fatalf("restore: %+v %v", res, err)
	}
	if res, err := c.CheckDiary(ctx, "acme"); err != nil || !res.OK || res.Shots != 3 {
		t.Fatalf("check after restore: %+v %v", res, err)
	}
	_ = d
}

func TestDiaryLockedUntilUnlock(t *testing.T) {
	ctx := context.Background()
	client, _ := age.GenerateX25519Identity()
	c, d := diaryDaemon(t, client)
	if _, err := c.Init(ctx, api.InitRequest{Passphrase: "s3cret"}); err != nil {
		t.Fatal(err)
	}
	// A new daemon on the same state starts locked.
	cfg := d.cfg
	cfg.Socket = filepath.Join(cfg.StateDir, "d2.sock")
	cfg.Logger = hclog.NewNullLogger()
	d2, err := New(cfg, d.hv)
	if err != nil {
		t.Fatal(err)
	}
	defer d2.Close()
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go d2.Serve(sctx)
	c2 := api.NewClient(cfg.Socket)
	for i := 0; i < 100; i++ {
		if _, err := c2.Info(ctx); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	st, err := c2.DiaryStatus(ctx)
	if err != nil || !st.Locked || !st.Protected {
		t.Fatalf("status: %+v %v", st, err)
	}
	_, err = addCapture(ctx, d2, "acme", tracking.Capture{ID: "c1", Taken: time.Now()}, testJPEG(t, 1), nil)
	if !errors.Is(err, api.ErrUnavailable) || !strings.Contains(err.Error(), "workspace unlock") {
		t.Fatalf("capture while locked: %v", err)
	}
	if _, err := c2.Unlock(ctx, "wrong"); !errors.Is(err, api.ErrForbidden) {
		t.Fatalf("wrong passphrase: %v", err)
	}
	if st, err := c2.Unlock(ctx, "s3cret"); err != nil || st.Locked {
		t.Fatalf("unlock: %+v %v", st, err)
	}
	if _, err := addCapture(ctx, d2, "acme", tracking.Capture{ID: "c1", Taken: time.Now()}, testJPEG(t, 1), nil); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(filepath.Join(cfg.StateDir, "keys", "identity.age"))
	if bytes.Contains(raw, []byte("AGE-SECRET-KEY")) {
		t.Fatal("identity stored in the clear despite a passphrase")
	}
}
