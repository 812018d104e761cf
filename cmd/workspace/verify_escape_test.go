package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"image"
	"image/jpeg"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/workspace-sandbox/workspace/diary"
	"github.com/workspace-sandbox/workspace/tracking"
)

// hostileName is a client name (it comes from a profile) written to fake a
// second "billable" line on the client's terminal and hide the real one.
const hostileName = "Acme\n\x1b[1Abillable:\t99h 00m\x1b[0m\x1b[2K\r"

// TestVerifyEscapesExportStrings: the client verifies an export whose
// client name, memo and gap reason hold newlines, tabs and ANSI escape
// codes. Every line printed is one the CLI wrote: the strings show up
// escaped, the only "billable" line is the real one, no ESC reaches the
// terminal, and the CSV and HTML reports carry the same strings escaped
// (no cell starts a formula). Without --signer it says the signer was not
// pinned, and --json carries "signer_pinned": false.
func TestVerifyEscapesExportStrings(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	keys, err := diary.InitKeys(filepath.Join(dir, "keys"), "")
	if err != nil {
		t.Fatal(err)
	}
	day := time.Date(2026, 11, 16, 9, 0, 0, 0, time.UTC)
	now := day.Add(8 * time.Hour)
	st, err := diary.Open(ctx, filepath.Join(dir, "diary"), diary.Options{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	st.Unlock(keys)
	client, _ := age.GenerateX25519Identity()
	if err := st.EnsureWorkspace(ctx, "acme", diary.WorkspaceOptions{Client: hostileName, Recipient: client.Recipient().String(), SlotSeconds: 600}); err != nil {
		t.Fatal(err)
	}
	var jb bytes.Buffer
	if err := jpeg.Encode(&jb, image.NewRGBA(image.Rect(0, 0, 32, 20)), nil); err != nil {
		t.Fatal(err)
	}
	recs := []tracking.Record{{ID: "start-1", Type: tracking.RecordSessionStart, Session: "s1", Time: day, Memo: "=HYPERLINK(\"http://evil\")\n\x1b[31mfix\tbug"}}
	for m := 0; m < 10; m++ {
		recs = append(recs, tracking.Record{ID: "act-" + string(rune('a'+m)), Type: tracking.RecordActivity, Session: "s1", Minute: day.Add(time.Duration(m) * time.Minute),
			Activity: &tracking.Activity{Keys: 30, Clicks: 4, Moves: 100, Active: 45}})
	}
	recs = append(recs, tracking.Record{ID: "gap-1", Type: tracking.RecordGap, Session: "s1", Start: day.Add(12 * time.Minute), End: day.Add(14 * time.Minute), Reason: "\tdisplay\x1b[8m gone\r\nbillable: 99h"})
	if _, err := st.AddRecords(ctx, "acme", recs); err != nil {
		t.Fatal(err)
	}
	if _, err := st.AddCapture(ctx, "acme", tracking.Capture{ID: tracking.NewID(day.Add(3 * time.Minute)), Session: "s1", Taken: day.Add(3 * time.Minute)}, jb.Bytes(), nil); err != nil {
		t.Fatal(err)
	}
	exp := filepath.Join(dir, "week.diary")
	f, err := os.Create(exp)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Export(ctx, "acme", day, day.Add(24*time.Hour), nil, f); err != nil {
		t.Fatal(err)
	}
	f.Close()
	idFile := filepath.Join(dir, "client.key")
	if err := os.WriteFile(idFile, []byte(client.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	htmlOut, csvOut := filepath.Join(dir, "r.html"), filepath.Join(dir, "t.csv")
	var stdout, stderr bytes.Buffer
	if code := run([]string{"diary", "verify", exp, "--identity", idFile, "--html", htmlOut, "--csv", csvOut}, &stdout, &stderr); code != 0 {
		t.Fatalf("verify: exit %d: %s", code, stderr.String())
	}
	out := stdout.String()
	t.Logf("verify printed:\n%s", out)
	if strings.ContainsAny(out, "\x1b\r") {
		t.Errorf("an escape or carriage return reached the terminal: %q", out)
	}
	var billable []string
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "billable") {
			billable = append(billable, line)
		}
	}
	if len(billable) != 1 || strings.Contains(billable[0], "99h") {
		t.Errorf("billable lines: %q", billable)
	}
	if !strings.Contains(out, `client:`) || !strings.Contains(out, `Acme\n\x1b[1Abillable:\t99h 00m\x1b[0m\x1b[2K\r`) {
		t.Errorf("the client name is not shown escaped:\n%s", out)
	}
	if !strings.Contains(out, "the signer was not pinned") || !strings.Contains(out, "NOT pinned") {
		t.Errorf("no word that the signer was not pinned:\n%s", out)
	}

	b, err := os.ReadFile(csvOut)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	for _, row := range rows {
		for _, cell := range row {
			if cell != "" && strings.ContainsRune("=+-@\t\r", rune(cell[0])) {
				t.Errorf("CSV cell starts a formula: %q", cell)
			}
			if strings.ContainsAny(cell, "\x1b\r\n\t") {
				t.Errorf("CSV cell holds a control character: %q", cell)
			}
		}
	}
	if !bytes.Contains(b, []byte(`'=HYPERLINK(""http://evil"")\n\x1b[31mfix\tbug`)) {
		t.Errorf("the memo is not in the CSV, escaped:\n%s", b)
	}
	h, _ := os.ReadFile(htmlOut)
	if bytes.ContainsAny(h, "\x1b") || !bytes.Contains(h, []byte(`Acme\n\x1b[1Abillable:\t99h 00m`)) {
		t.Errorf("HTML report does not show the client name escaped")
	}
	if !bytes.Contains(h, []byte("The signer was not pinned")) {
		t.Errorf("HTML report does not say the signer was not pinned")
	}

	stdout.Reset()
	if code := run([]string{"diary", "verify", exp, "--identity", idFile, "--json"}, &stdout, &stderr); code != 0 {
		t.Fatalf("verify --json: exit %d: %s", code, stderr.String())
	}
	if !strings.Contains(stdout.String(), `"signer_pinned": false`) {
		t.Errorf("--json lacks \"signer_pinned\": false")
	}
	stdout.Reset()
	if code := run([]string{"diary", "verify", exp, "--identity", idFile, "--json", "--signer", keys.VerifierKey()}, &stdout, &stderr); code != 0 {
		t.Fatalf("verify --signer: exit %d: %s", code, stderr.String())
	}
	if !strings.Contains(stdout.String(), `"signer_pinned": true`) {
		t.Errorf("--json with --signer lacks \"signer_pinned\": true")
	}
}
