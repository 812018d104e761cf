package diary

import (
	"bytes"
	"context"
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/workspace-sandbox/workspace/witness"
)

// testWitness is a real witness (the witness package's server on SQLite)
// over real HTTP.
type testWitness struct {
	srv  *witness.Server
	url  string
	vkey string
	cl   *witness.Client
}

func startTestWitness(t testing.TB, name string) *testWitness {
	t.Helper()
	skey, vkey, err := witness.GenerateKey(name)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := witness.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := witness.OpenServer(context.Background(), filepath.Join(t.TempDir(), "witness.db"), signer, nil)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(func() { hs.Close(); srv.Close() })
	v, _ := witness.NewVerifier(vkey)
	return &testWitness{srv: srv, url: hs.URL, vkey: vkey, cl: &witness.Client{URL: hs.URL, Verifier: v}}
}

// register makes the store's log of ws known to the witness, as a client
// does with `workspace witness add-log`.
func (w *testWitness) register(t testing.TB, s *Store, ws string) {
	t.Helper()
	origin, lkey, err := s.LogID(ws)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.srv.AddLog(context.Background(), origin, lkey); err != nil {
		t.Fatal(err)
	}
}

// submit asks the witness to cosign ws's latest checkpoint, as the
// daemon's queue does (with one retry after a 409), and keeps the
// cosignature.
func (w *testWitness) submit(s *Store, ws string) error {
	ctx := context.Background()
	tip, err := s.Tip(ctx, ws)
	if err != nil {
		return err
	}
	old, _, err := s.WitnessProgress(ctx, ws, w.vkey)
	if err != nil {
		return err
	}
	for try := 0; ; try++ {
		proof, err := s.ConsistencyProof(ctx, ws, old, tip.Size)
		if err != nil {
			return err
		}
		c, err := w.cl.AddCheckpoint(ctx, old, proof, tip.Note)
		var ce *witness.ConflictError
		if errors.As(err, &ce) && try == 0 && ce.Known <= tip.Size {
			old = ce.Known
			continue
		}
		if err != nil {
			return err
		}
		_, err = s.AddCosignature(ctx, ws, tip.Size, w.vkey, c.Line)
		return err
	}
}

func (f *fixture) verifyWith(b []byte, opts VerifyOptions) (*Verified, error) {
	opts.Loc = time.UTC
	return Verify(bytes.NewReader(b), []age.Identity{f.client}, opts)
}

// realTimeFixture is a fixture whose clock is the real one: a witness
// stamps its cosignatures with the real time.
func realTimeFixture(t *testing.T) *fixture {
	f := newFixture(t)
	f.small = true
	f.clk.Set(time.Now())
	return f
}

func TestWitnessedExportVerifies(t *testing.T) {
	f := realTimeFixture(t)
	w := startTestWitness(t, "witness.example/client")
	w.register(t, f.s, "acme")
	now := time.Now()
	slot := now.Truncate(10 * time.Minute).Add(-10 * time.Minute)
	f.workSlot("acme", slot, 1)
	if err := w.submit(f.s, "acme"); err != nil {
		t.Fatal(err)
	}
	exp := f.export("acme", slot.Add(-time.Hour), now.Add(time.Hour))
	v, err := f.verifyWith(exp, VerifyOptions{Witnesses: []string{w.vkey}, MaxDelay: 30 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if v.Format != ExportFormat || !strings.HasPrefix(v.Origin, "workspace-diary/") || v.Witness == nil || len(v.Witness.Pinned) != 1 || v.Witness.Pinned[0].ExportCosigned.IsZero() {
		t.Fatalf("verified %+v %+v", v, v.Witness)
	}
	tot := v.View.Totals
	if tot.Witness == nil || tot.Witness.OnTimeSeconds != 600 || tot.Witness.OtherSeconds != 0 || tot.Witness.LateSlots != 0 {
		t.Fatalf("totals %+v %+v", tot, tot.Witness)
	}
	// Without pins the evidence is still checked, and names its cosigners.
	v, err = f.verifyWith(exp, VerifyOptions{})
	if err != nil || len(v.Witness.Cosigners) != 1 || v.Witness.Cosigners[0] != "witness.example/client" {
		t.Fatalf("unpinned: %+v %v", v.Witness, err)
	}
	// A witness key the export has no cosignature of fails it.
	other := startTestWitness(t, "witness.example/other")
	_, err = f.verifyWith(exp, VerifyOptions{Witnesses: []string{w.vkey, other.vkey}})
	if err == nil || !strings.Contains(err.Error(), "cosigned by 1 of the 2 pinned witnesses") || !strings.Contains(err.Error(), "witness.example/other") {
		t.Fatalf("a pinned witness that did not cosign: %v", err)
	}
	// A quorum of 1 accepts it.
	if _, err := f.verifyWith(exp, VerifyOptions{Witnesses: []string{w.vkey, other.vkey}, Quorum: 1}); err != nil {
		t.Fatalf("quorum 1: %v", err)
	}
}

// TestMintedLogFailsWitnessVerify is the attack of issue 12: a second store
// with the same keys mints a brand-new log with six busy slots. Its export
// verifies with the signer pinned, but not with the client's witness: the
// witness refused the inconsistent tree, so nothing cosigned covers it.
func TestMintedLogFailsWitnessVerify(t *testing.T) {
	f := realTimeFixture(t)
	w := startTestWitness(t, "witness.example/client")
	w.register(t, f.s, "acme")
	now := time.Now()
	day := now.Truncate(24 * time.Hour).Add(-24 * time.Hour)
	f.workSlot("acme", day.Add(9*time.Hour), 1) // the honest 10 minutes
	if err := w.submit(f.s, "acme"); err != nil {
		t.Fatal(err)
	}

	// The minted diary: the same keys, the same workspace, six slots.
	keys, err := LoadKeys(f.keyDir, "")
	if err != nil {
		t.Fatal(err)
	}
	s2, err := Open(context.Background(), t.TempDir(), Options{Now: time.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	s2.Unlock(keys)
	minted := &fixture{t: t, s: s2, keys: keys, client: f.client, clk: f.clk, small: true}
	minted.ensure("acme", 600)
	for i := 0; i < 6; i++ {
		minted.workSlot("acme", day.Add(9*time.Hour+time.Duration(i)*10*time.Minute), int64(10+i))
	}
	err = w.submit(s2, "acme")
	if err == nil || !witness.IsPermanent(err) {
		t.Fatalf("the witness cosigned the minted log: %v", err)
	}
	t.Logf("the witness refused the minted log: %v", err)
	exp := minted.export("acme", day, day.Add(24*time.Hour))
	v, err := minted.verifyWith(exp, VerifyOptions{Signer: f.keys.VerifierKey()})
	if err != nil || v.View.Totals.BillableSeconds != 3600 {
		t.Fatalf("without a witness the minted export verifies with 1 h billable (the attack): %v %+v", err, v)
	}
	_, err = minted.verifyWith(exp, VerifyOptions{Signer: f.keys.VerifierKey(), Witnesses: []string{w.vkey}})
	if err == nil || !strings.Contains(err.Error(), "no witness fixed this history") {
		t.Fatalf("the minted export verified with the witness pinned: %v", err)
	}
	// A minted log under another workspace name is not a log the witness
	// knows at all.
	minted.ensure("acme2", 600)
	minted.workSlot("acme2", day.Add(13*time.Hour), 20)
	if err := w.submit(s2, "acme2"); err == nil || !strings.Contains(err.Error(), "does not know this log") {
		t.Fatalf("an unknown log: %v", err)
	}
	// Cosignatures lifted from the honest diary's evidence do not help: the
	// honest checkpoint is not consistent with the minted one.
	honest := f.export("acme", day, day.Add(24*time.Hour))
	hv, err := f.verifyWith(honest, VerifyOptions{Witnesses: []string{w.vkey}})
	if err != nil || hv.View.Totals.BillableSeconds != 600 {
		t.Fatalf("the honest export: %v", err)
	}
	pr, _ := DecryptExport(bytes.NewReader(honest), []age.Identity{f.client})
	hd, _ := parseExport(pr)
	forged := minted.reseal(exp, func(d *exportData) { d.m.Witness = hd.m.Witness })
	if _, err := minted.verifyWith(forged, VerifyOptions{Witnesses: []string{w.vkey}}); err == nil || !strings.Contains(err.Error(), "does not verify") {
		t.Fatalf("lifted evidence: %v", err)
	}
}

// TestBackdatedCaptureIsLate: a capture whose time is three days before its
// first cosignature is "witnessed late" and its slot's billable time is
// not in the on-time total.
func TestBackdatedCaptureIsLate(t *testing.T) {
	f := realTimeFixture(t)
	w := startTestWitness(t, "witness.example/client")
	w.register(t, f.s, "acme")
	now := time.Now()
	late := now.Add(-72 * time.Hour).Truncate(10 * time.Minute)
	onTime := now.Truncate(10 * time.Minute)
	f.workSlot("acme", late, 1)
	// The slot of now: a capture a few seconds old and its minutes so far.
	f.activity("acme", onTime, 40)
	f.capture("acme", now.Add(-2*time.Second), 2)
	if err := w.submit(f.s, "acme"); err != nil {
		t.Fatal(err)
	}
	exp := f.export("acme", late.Add(-time.Hour), now.Add(time.Hour))
	v, err := f.verifyWith(exp, VerifyOptions{Witnesses: []string{w.vkey}})
	if err != nil {
		t.Fatal(err)
	}
	var sawLate, sawOnTime bool
	for _, d := range v.View.Days {
		for _, s := range d.Slots {
			if s.Witness == nil {
				t.Fatalf("slot %s has no witness mark", s.Start)
			}
			switch s.Start.Unix() {
			case late.Unix():
				sawLate = true
				if !s.Witness.Late || s.Witness.DelaySeconds < 71*3600 || !s.Billable {
					t.Errorf("the backdated slot: %+v billable %v", s.Witness, s.Billable)
				}
			case onTime.Unix():
				sawOnTime = true
				if s.Witness.Late || s.Witness.DelaySeconds > 11*60 {
					t.Errorf("the live slot: %+v", s.Witness)
				}
			}
		}
	}
	wt := v.View.Totals.Witness
	if !sawLate || !sawOnTime || wt == nil || wt.LateSlots != 1 || wt.OnTimeSeconds != 600 || wt.OtherSeconds != 600 || v.View.Totals.BillableSeconds != 1200 {
		t.Fatalf("late %v on time %v totals %+v %+v", sawLate, sawOnTime, v.View.Totals, wt)
	}
	// The reports say it too.
	var csvb, html bytes.Buffer
	WriteCSV(&csvb, v.View)
	WriteHTML(&html, v)
	if !strings.Contains(csvb.String(), "witnessed late") || !strings.Contains(html.String(), "witnessed late") || !strings.Contains(html.String(), "Witnessed on time") {
		t.Fatalf("reports lack the late mark:\n%s", csvb.String())
	}
	// A generous --max-delay makes it on time.
	v, err = f.verifyWith(exp, VerifyOptions{Witnesses: []string{w.vkey}, MaxDelay: 96 * time.Hour})
	if err != nil || v.View.Totals.Witness.LateSlots != 0 {
		t.Fatalf("max delay 96h: %v %+v", err, v.View.Totals.Witness)
	}
}

// TestRewrittenLogFailsPrevious: the client keeps an export; the next one,
// from a diary whose history was rewritten after it, fails --previous and
// names the first entry that differs. An honest later export passes.
func TestRewrittenLogFailsPrevious(t *testing.T) {
	f := realTimeFixture(t)
	now := time.Now()
	day := now.Truncate(24 * time.Hour).Add(-24 * time.Hour)
	for i := 0; i < 3; i++ {
		f.workSlot("acme", day.Add(9*time.Hour+time.Duration(i)*10*time.Minute), int64(i))
	}
	first := f.export("acme", day, day.Add(24*time.Hour))
	v1, err := f.verifyWith(first, VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	statePath := filepath.Join(t.TempDir(), "verify-state.json")
	st, _ := LoadState(statePath)
	if err := st.Check(v1); err != nil {
		t.Fatal(err)
	}
	st.Update(v1, now)
	if err := st.Save(statePath); err != nil {
		t.Fatal(err)
	}

	// Honest: more work, a new export proves it extends the first.
	f.workSlot("acme", day.Add(11*time.Hour), 7)
	second := f.export("acme", day, day.Add(24*time.Hour))
	v2, err := f.verifyWith(second, VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckPrevious(v2, v1); err != nil {
		t.Fatalf("an honest later export: %v", err)
	}
	st, _ = LoadState(statePath)
	if err := st.Check(v2); err != nil {
		t.Fatalf("state: %v", err)
	}

	// Rewritten: a copy of the diary cut back to before the second slot's
	// screenshot (entry 21), with the checkpoint removed so that the copy
	// checks out, then another screenshot there and the rest of the work
	// again on top: history changed after the client saw it.
	keys, _ := LoadKeys(f.keyDir, "")
	dir2 := t.TempDir()
	if _, err := f.s.db.Exec(`VACUUM INTO ?`, filepath.Join(dir2, "diary.db")); err != nil {
		t.Fatal(err)
	}
	copyTree(t, filepath.Join(f.s.dir, "blobs"), filepath.Join(dir2, "blobs"))
	s2, err := Open(context.Background(), dir2, Options{Now: f.clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	s2.Unlock(keys)
	for _, q := range []string{`DELETE FROM log WHERE idx >= 21`, `DELETE FROM records WHERE idx >= 21`, `DELETE FROM shots WHERE idx >= 21`,
		`DELETE FROM view_activity WHERE idx >= 21`, `DELETE FROM view_spans WHERE idx >= 21`,
		`DELETE FROM checkpoints`, `DELETE FROM signed_checkpoints`, `DELETE FROM exports`} {
		if _, err := s2.db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s2.db.Exec(`DELETE FROM hashes WHERE id >= ?`, tlog.StoredHashIndex(0, 21)); err != nil {
		t.Fatal(err)
	}
	rw := &fixture{t: t, s: s2, keys: keys, client: f.client, clk: f.clk, small: true}
	rw.capture("acme", day.Add(9*time.Hour+13*time.Minute), 99)
	rw.workSlot("acme", day.Add(9*time.Hour+20*time.Minute), 2)
	rw.workSlot("acme", day.Add(11*time.Hour), 7)
	if _, err := s2.Check(context.Background(), "acme"); err != nil {
		t.Fatalf("the rewritten diary does not check out: %v", err)
	}
	third := rw.export("acme", day, day.Add(24*time.Hour))
	v3, err := rw.verifyWith(third, VerifyOptions{Signer: f.keys.VerifierKey()})
	if err != nil {
		t.Fatalf("the rewritten export verifies on its own: %v", err)
	}
	err = CheckPrevious(v3, v1)
	var re *RewrittenError
	// Each slot is ten minutes of activity and a capture: the second
	// slot's capture, entry 21, is the first that differs.
	if !errors.As(err, &re) || re.Index != 21 || !strings.Contains(re.What, "capture") {
		t.Fatalf("--previous: %v", err)
	}
	if !strings.Contains(err.Error(), "the log was rewritten") || !strings.Contains(err.Error(), "first entry that differs is entry 21 (capture") {
		t.Fatalf("message: %v", err)
	}
	t.Logf("--previous: %v", err)
	st, _ = LoadState(statePath)
	if err := st.Check(v3); !errors.As(err, &re) {
		t.Fatalf("state file: %v", err)
	}
	// A state file that is not one is refused, saying so.
	os.WriteFile(statePath, []byte(`{"version":2}`), 0o600)
	if _, err := LoadState(statePath); err == nil || !strings.Contains(err.Error(), "version 2") {
		t.Fatalf("bad state file: %v", err)
	}
}

// TestLegacyExportStillVerifies: an export in the format from before
// witnessing (its checkpoint signed as "workspace-diary/v1") verifies as
// it did, and is refused clearly when witnesses are pinned.
func TestLegacyExportStillVerifies(t *testing.T) {
	f := realTimeFixture(t)
	now := time.Now()
	slot := now.Truncate(10 * time.Minute).Add(-20 * time.Minute)
	f.workSlot("acme", slot, 1)
	exp := f.export("acme", slot, now)
	legacy := f.reseal(exp, func(d *exportData) {
		cp, err := parseCheckpointNote(d.m.Checkpoint)
		if err != nil {
			t.Fatal(err)
		}
		text := legacyPrefix + "acme\n" + itoa(cp.Size) + "\n" + b64(cp.Root[:]) + "\n"
		signed, err := noteSign(text, f.keys)
		if err != nil {
			t.Fatal(err)
		}
		d.m.Format, d.m.Checkpoint, d.m.Witness = LegacyExportFormat, string(signed), nil
		if d.m.Statement, err = signStatement(&d.m, f.keys.Signer()); err != nil {
			t.Fatal(err)
		}
	})
	v, err := f.verifyWith(legacy, VerifyOptions{Signer: f.keys.VerifierKey()})
	if err != nil || v.Format != LegacyExportFormat || v.View.Totals.BillableSeconds != 600 {
		t.Fatalf("legacy export: %v %+v", err, v)
	}
	if _, err := f.verifyWith(legacy, VerifyOptions{Witnesses: []string{startTestWitness(t, "w").vkey}}); err == nil || !strings.Contains(err.Error(), "made before witnessing") {
		t.Fatalf("legacy export with a witness: %v", err)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func noteSign(text string, k *Keys) ([]byte, error) {
	return note.Sign(&note.Note{Text: text}, k.Signer())
}

func copyTree(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.Walk(from, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		if fi.IsDir() {
			return os.MkdirAll(filepath.Join(to, rel), 0o700)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(to, rel), b, 0o600)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestLegacyFixtureVerifies reads an export written by the diary as it was
// before witnessing (testdata/legacy-v2.*: made with that code, format 2,
// its checkpoint a "workspace-diary/v1" note): it verifies with its signer
// pinned, bills what it billed, and a witness pin is refused by name.
func TestLegacyFixtureVerifies(t *testing.T) {
	idText, err := os.ReadFile("testdata/legacy-v2.identity")
	if err != nil {
		t.Fatal(err)
	}
	ids, err := age.ParseIdentities(bytes.NewReader(idText))
	if err != nil {
		t.Fatal(err)
	}
	signer, _ := os.ReadFile("testdata/legacy-v2.signer")
	exp, _ := os.ReadFile("testdata/legacy-v2.diary")
	v, err := Verify(bytes.NewReader(exp), ids, VerifyOptions{Signer: strings.TrimSpace(string(signer)), Loc: time.UTC})
	if err != nil {
		t.Fatal(err)
	}
	if v.Format != LegacyExportFormat || v.Origin != "" || v.Witness != nil || v.View.Totals.BillableSeconds != 1200 || v.View.Totals.Shots != 2 {
		t.Fatalf("legacy export: %s %q %+v", v.Format, v.Origin, v.View.Totals)
	}
	_, vkey, _ := witness.GenerateKey("w")
	if _, err := Verify(bytes.NewReader(exp), ids, VerifyOptions{Witnesses: []string{vkey}}); err == nil || !strings.Contains(err.Error(), LegacyExportFormat+", made before witnessing") {
		t.Fatalf("legacy export with a witness pinned: %v", err)
	}
}

// TestLegacyStoreIsResigned: a diary whose latest checkpoint is still in
// the format from before witnessing checks out, and is re-signed in the
// witnessable format (same size and root) before a submission or export.
func TestLegacyStoreIsResigned(t *testing.T) {
	f := realTimeFixture(t)
	now := time.Now()
	f.workSlot("acme", now.Truncate(10*time.Minute).Add(-10*time.Minute), 1)
	tip, err := f.s.Tip(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	cp, _ := parseCheckpointNote(string(tip.Note))
	legacy, err := noteSign(legacyPrefix+"acme\n"+itoa(cp.Size)+"\n"+b64(cp.Root[:])+"\n", f.keys)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.db.Exec(`UPDATE checkpoints SET note=? WHERE ws=?`, legacy, "acme"); err != nil {
		t.Fatal(err)
	}
	f.s.writeCheckpointFile("acme", legacy)
	if _, err := f.s.Check(ctx, "acme"); err != nil {
		t.Fatalf("a diary with a legacy checkpoint: %v", err)
	}
	w := startTestWitness(t, "witness.example/client")
	w.register(t, f.s, "acme")
	if err := w.submit(f.s, "acme"); err != nil {
		t.Fatal(err)
	}
	var stored []byte
	f.s.db.QueryRow(`SELECT note FROM checkpoints WHERE ws=?`, "acme").Scan(&stored)
	if bytes.HasPrefix(stored, []byte(legacyPrefix)) || !bytes.Equal(readFileOrNil(f.s.checkpointPath("acme")), stored) {
		t.Fatalf("not re-signed:\n%s", stored)
	}
	if _, err := f.s.Check(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.verifyWith(f.export("acme", now.Add(-time.Hour), now.Add(time.Hour)), VerifyOptions{Witnesses: []string{w.vkey}}); err != nil {
		t.Fatal(err)
	}
}
