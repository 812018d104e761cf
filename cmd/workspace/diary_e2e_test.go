package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/workspace-sandbox/workspace/tracking"
)

// synthJPEG is a synthetic screenshot: a gradient with a seed-dependent
// pattern, so every capture differs.
func synthJPEG(t *testing.T, w, h int, seed int) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			v := uint8((x*7 + y*3 + seed*31) % 256)
			if (x/6+y/9+seed)%3 == 0 {
				v = 20
			}
			img.SetRGBA(x, y, color.RGBA{v, v, 200, 255})
		}
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 80}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// writeIdentity writes an age identity file as age-keygen does.
func writeIdentity(t *testing.T, path string) *age.X25519Identity {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	body := fmt.Sprintf("# created: %s\n# public key: %s\n%s\n", time.Now().Format(time.RFC3339), id.Recipient(), id)
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return id
}

func (e *e2eEnv) killDaemon() {
	_ = e.daemon.Process.Kill()
	_ = e.daemon.Wait()
	e.daemon = nil
	e.logFile.Close()
}

// diaryWorkspace prepares a daemon with an identity and a defined (not
// started) workspace whose profile names the client's recipient.
func diaryWorkspace(t *testing.T, passphrase bool) (*e2eEnv, string, *age.X25519Identity) {
	e := newE2EEnv(t)
	args := []string{"init"}
	if passphrase {
		pw := filepath.Join(e.dir, "pass")
		os.WriteFile(pw, []byte("a long diary passphrase\n"), 0o600)
		args = append(args, "--passphrase", "--passphrase-file", pw)
	}
	r := mustCLI(t, e.socket, args...)
	if !strings.Contains(r.stdout, "signer") {
		t.Fatalf("init: %s", r)
	}
	if r := cli(t, e.socket, "init"); r.code == 0 || !strings.Contains(r.stderr, "already exists") {
		t.Fatalf("second init: %s", r)
	}
	client := writeIdentity(t, filepath.Join(e.dir, "client.key"))
	e.importTestImage("testimg")
	prof := filepath.Join(e.dir, "acme.hcl")
	os.WriteFile(prof, []byte(fmt.Sprintf(`image = "testimg"
cpus = 1
memory = "512MiB"
disk = "2GiB"
tracking {
  slot = "10m"
}
client {
  name      = "ACME Corp"
  recipient = "%s"
}
`, client.Recipient())), 0o644)
	name := "wstest-" + randHex(3)
	mustCLI(t, e.socket, "create", name, "--profile", prof)
	return e, name, client
}

func TestDiaryEndToEnd(t *testing.T) {
	e, name, _ := diaryWorkspace(t, true)
	ctx := context.Background()
	sock := e.socket
	day := time.Now().AddDate(0, 0, -1)
	y, m, d := day.Date()
	base := time.Date(y, m, d, 9, 0, 0, 0, time.Local)
	dayArg := base.Format("2006-01-02")

	// A daemon restarted with a protected identity records nothing until unlock.
	e.stopDaemon()
	e.startDaemon()
	if _, err := addCapture(ctx, e.socket, name, tracking.Capture{ID: "early", Taken: base}, synthJPEG(t, 64, 40, 0), nil); err == nil || !strings.Contains(err.Error(), "workspace unlock") {
		t.Fatalf("capture while locked: %v", err)
	}
	mustCLI(t, sock, "unlock", "--passphrase-file", filepath.Join(e.dir, "pass"))

	// Synthetic captures and activity through the ingestion API the agent uses.
	var shots []string
	for i := 0; i < 6; i++ {
		slot := base.Add(time.Duration(i) * 10 * time.Minute)
		id := fmt.Sprintf("shot-%d-%s", i, randHex(4))
		if _, err := addCapture(ctx, e.socket, name, tracking.Capture{ID: id, Session: "s1", Taken: slot.Add(4 * time.Minute)}, synthJPEG(t, 320, 200, i), nil); err != nil {
			t.Fatal(err)
		}
		shots = append(shots, id)
		var recs []tracking.Record
		for m := 0; m < 10; m++ {
			recs = append(recs, tracking.Record{ID: fmt.Sprintf("act-%d-%d", i, m), Type: tracking.RecordActivity, Minute: slot.Add(time.Duration(m) * time.Minute), Activity: &tracking.Activity{Keys: 40, Clicks: 5, Moves: 200, Active: 48}})
		}
		if _, err := addRecords(ctx, e.socket, name, recs); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := addRecords(ctx, e.socket, name, []tracking.Record{{ID: "sess-start", Type: tracking.RecordSessionStart, Session: "s1", Time: base, Memo: "checkout rewrite"}}); err != nil {
		t.Fatal(err)
	}

	var v tracking.DiaryView
	r := mustCLI(t, sock, "diary", name, "--day", dayArg, "--json")
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil {
		t.Fatal(err)
	}
	if v.Totals.Slots != 6 || v.Totals.BillableSlots != 6 || v.Totals.ActivityPercent != 80 || v.Days[0].Slots[0].Memo != "checkout rewrite" {
		t.Fatalf("diary: %+v", v.Totals)
	}
	r = mustCLI(t, sock, "diary", name, "--day", dayArg)
	if !strings.Contains(r.stdout, shots[0]) || !strings.Contains(r.stdout, "billable 1h 00m") {
		t.Fatalf("diary text:\n%s", r.stdout)
	}
	if r := mustCLI(t, sock, "diary", name, "--day", "2001-01-01"); !strings.Contains(r.stdout, "Nothing recorded") {
		t.Fatalf("empty range: %s", r)
	}

	// Review: show, cover (bad rectangle first), delete, manual time.
	shotFile := filepath.Join(e.dir, "shot.jpg")
	mustCLI(t, sock, "diary", "show", shots[0], "--out", shotFile)
	if b, _ := os.ReadFile(shotFile); !bytes.HasPrefix(b, []byte{0xFF, 0xD8, 0xFF}) {
		t.Fatal("show did not write a JPEG")
	}
	if r := cli(t, sock, "diary", "show", "no-such-shot", "--out", shotFile); r.code == 0 || !strings.Contains(r.stderr, `no shot "no-such-shot"`) {
		t.Fatalf("unknown shot: %s", r)
	}
	before := mustCLI(t, sock, "diary", "check", name, "--json").stdout
	if r := cli(t, sock, "diary", "cover", shots[1], "--rect", "300,180,50,50"); r.code == 0 || !strings.Contains(r.stderr, "not inside the 320x200 image") {
		t.Fatalf("cover outside the image: %s", r)
	}
	if after := mustCLI(t, sock, "diary", "check", name, "--json").stdout; after != before {
		t.Fatalf("a refused cover changed the diary:\n%s\n%s", before, after)
	}
	mustCLI(t, sock, "diary", "cover", shots[1], "--rect", "0,0,160,100", "--rect", "200,150,100,50")
	if r := cli(t, sock, "diary", "delete", shots[2]); r.code == 0 || !strings.Contains(r.stderr, "--yes") {
		t.Fatalf("delete without --yes: %s", r)
	}
	mustCLI(t, sock, "diary", "delete", shots[2], "--yes")
	mustCLI(t, sock, "diary", "add", name, "--from", dayArg+" 07:00", "--to", dayArg+" 07:30", "--memo", "planning call")
	if r := mustCLI(t, sock, "diary", "check", name); !strings.Contains(r.stdout, "OK") {
		t.Fatalf("check: %s", r)
	}

	// Export; the client verifies offline and gets reports.
	exp := filepath.Join(e.dir, "acme.diary")
	mustCLI(t, sock, "diary", "export", name, "--from", dayArg, "--to", dayArg, "--out", exp)
	html, csvf := filepath.Join(e.dir, "report.html"), filepath.Join(e.dir, "timesheet.csv")
	key := filepath.Join(e.dir, "client.key")
	r = mustCLI(t, "/nonexistent.sock", "diary", "verify", exp, "--identity", key, "--html", html, "--csv", csvf)
	// 5 billable slots (one shot deleted) and half an hour of manual time.
	if !strings.Contains(r.stdout, "OK:") || !strings.Contains(r.stdout, "6 (1 covered, 1 deleted)") || !strings.Contains(r.stdout, "1h 20m (manual 0h 30m, flagged)") {
		t.Fatalf("verify:\n%s", r.stdout)
	}
	hb, _ := os.ReadFile(html)
	if !bytes.Contains(hb, []byte("data:image/jpeg;base64,")) || bytes.Contains(hb, []byte("https://")) {
		t.Fatal("HTML report is not self-contained with thumbnails")
	}
	if cb, _ := os.ReadFile(csvf); !bytes.Contains(cb, []byte("planning call")) {
		t.Fatalf("CSV timesheet:\n%s", cb)
	}

	// A reveal proves what was under the cover.
	rev := filepath.Join(e.dir, "reveal.age")
	mustCLI(t, sock, "diary", "reveal", shots[1], "--out", rev)
	if r := mustCLI(t, "/nonexistent.sock", "diary", "verify-reveal", exp, rev, "--identity", key); !strings.Contains(r.stdout, "covered in the export") {
		t.Fatalf("verify-reveal: %s", r)
	}

	checkPassphraseExport(t, e, name, dayArg, shots[1])

	// Bad input to verify: wrong key, truncated file, a foreign file.
	other := filepath.Join(e.dir, "other.key")
	writeIdentity(t, other)
	if r := cli(t, sock, "diary", "verify", exp, "--identity", other); r.code != 1 || !strings.Contains(r.stderr, "not encrypted to the given identity") {
		t.Fatalf("verify with client Y's key: %s", r)
	}
	eb, _ := os.ReadFile(exp)
	trunc := filepath.Join(e.dir, "trunc.diary")
	os.WriteFile(trunc, eb[:len(eb)/2], 0o644)
	if r := cli(t, sock, "diary", "verify", trunc, "--identity", key); r.code != 1 || !strings.Contains(r.stderr, "FAILED") {
		t.Fatalf("verify of a truncated export: %s", r)
	}
	if r := cli(t, sock, "diary", "verify", key, "--identity", key); r.code != 1 || !strings.Contains(r.stderr, "not a workspace diary export") {
		t.Fatalf("verify of a foreign file: %s", r)
	}
	if r := cli(t, sock, "diary", "verify", exp); r.code == 0 || !strings.Contains(r.stderr, "--identity KEYFILE or --passphrase") {
		t.Fatalf("verify without identity: %s", r)
	}

	// No plaintext picture anywhere in the daemon's state (VM disks aside:
	// they hold the guest's own file system).
	if hits := scanImages(t, filepath.Join(e.dir, "state"), "pool"); len(hits) > 0 {
		t.Fatalf("plaintext images in the state dir: %v", hits)
	}

	// Backup and restore; a tampered backup is refused and changes nothing.
	bk := filepath.Join(e.dir, "backup.age")
	pw := filepath.Join(e.dir, "pass")
	mustCLI(t, sock, "backup", "--out", bk, "--passphrase-file", pw)
	bb, _ := os.ReadFile(bk)
	bad := append([]byte{}, bb...)
	bad[len(bad)/2] ^= 1
	badf := filepath.Join(e.dir, "bad-backup.age")
	os.WriteFile(badf, bad, 0o600)
	if r := cli(t, sock, "restore", badf, "--force", "--passphrase-file", pw); r.code == 0 || !strings.Contains(r.stderr, "backup refused") {
		t.Fatalf("restore of a tampered backup: %s", r)
	}
	mustCLI(t, sock, "restore", bk, "--force", "--passphrase-file", pw)
	mustCLI(t, sock, "unlock", "--passphrase-file", pw)
	if r := mustCLI(t, sock, "diary", "check", name); !strings.Contains(r.stdout, "OK") {
		t.Fatalf("check after restore: %s", r)
	}

	// Retention.
	r = mustCLI(t, sock, "diary", "prune", name, "--before", base.AddDate(0, 0, 1).Format("2006-01-02"))
	if !strings.Contains(r.stdout, "Shredded 5 shots") {
		t.Fatalf("prune: %s", r)
	}
	if r := cli(t, sock, "diary", "show", shots[0], "--out", shotFile); r.code == 0 || !strings.Contains(r.stderr, "pruned") {
		t.Fatalf("show after prune: %s", r)
	}
}

// scanImages lists files under dir (skipping the named subfolders) that
// hold JPEG or PNG magic bytes.
func scanImages(t *testing.T, dir string, skip ...string) []string {
	t.Helper()
	magics := [][]byte{{0xFF, 0xD8, 0xFF, 0xDB}, {0xFF, 0xD8, 0xFF, 0xE0}, {0xFF, 0xD8, 0xFF, 0xE1}, {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A}}
	var hits []string
	filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return nil
		}
		for _, s := range skip {
			if info.IsDir() && info.Name() == s && filepath.Dir(p) == dir {
				return filepath.SkipDir
			}
		}
		if !info.Mode().IsRegular() {
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

// TestDiaryCrashDurability kills the daemon with SIGKILL during a burst of
// captures: every capture it acknowledged is there after a restart, the
// log verifies, and replaying the burst stores nothing twice.
func TestDiaryCrashDurability(t *testing.T) {
	e, name, _ := diaryWorkspace(t, false)
	ctx := context.Background()
	base := time.Now().Add(-3 * time.Hour).Truncate(time.Hour)
	img := synthJPEG(t, 320, 200, 1)

	var mu sync.Mutex
	acked := map[string]bool{}
	var wg sync.WaitGroup
	const workers, perWorker = 4, 400
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < perWorker; i++ {
				id := fmt.Sprintf("burst-%d-%d", w, i)
				_, err := addCapture(ctx, e.socket, name, tracking.Capture{ID: id, Taken: base.Add(time.Duration(w*perWorker+i) * time.Second)}, img, nil)
				if err != nil {
					return // the daemon is gone
				}
				mu.Lock()
				acked[id] = true
				mu.Unlock()
			}
		}(w)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n >= 60 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	e.killDaemon()
	wg.Wait()
	t.Logf("%d captures acknowledged before SIGKILL", len(acked))
	if len(acked) == 0 || len(acked) == workers*perWorker {
		t.Fatalf("the kill did not land during the burst (%d acknowledged)", len(acked))
	}

	e.startDaemon()
	var v tracking.DiaryView
	r := mustCLI(t, e.socket, "diary", name, "--from", base.Add(-time.Minute).Format(time.RFC3339), "--to", base.Add(2*time.Hour).Format(time.RFC3339), "--json")
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil {
		t.Fatal(err)
	}
	stored := map[string]bool{}
	for _, d := range v.Days {
		for _, s := range d.Slots {
			for _, sh := range s.Shots {
				stored[sh.ID] = true
			}
		}
	}
	for id := range acked {
		if !stored[id] {
			t.Errorf("acknowledged capture %s is missing after the crash", id)
		}
	}
	if r := mustCLI(t, e.socket, "diary", "check", name); !strings.Contains(r.stdout, "OK") {
		t.Fatalf("check after crash: %s", r)
	}
	// The agent replays what it has not seen acknowledged: no duplicates.
	for id := range acked {
		ack, err := addCapture(ctx, e.socket, name, tracking.Capture{ID: id, Taken: base}, img, nil)
		if err != nil || len(ack.Duplicates) != 1 {
			t.Fatalf("replay of %s: %+v %v", id, ack, err)
		}
	}
}
