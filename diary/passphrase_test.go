package diary

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
)

const testExportPassphrase = "correct horse battery staple"

// TestPassphraseExportVerifiesLikeAKeyExport: the same range exported to
// the client's age key and with a passphrase verifies to the same result,
// with the same checks (a changed entry is named), and each kind of file
// opened the wrong way says what to do instead.
func TestPassphraseExportVerifiesLikeAKeyExport(t *testing.T) {
	f := newFixture(t)
	var shots []string
	for i := 0; i < 3; i++ {
		shots = append(shots, f.workSlot("acme", day0.Add(time.Duration(i)*10*time.Minute), int64(i)))
	}
	keyExp := f.export("acme", day0, day0.Add(time.Hour))
	var buf bytes.Buffer
	if _, err := f.s.ExportWithPassphrase(ctx, "acme", day0, day0.Add(time.Hour), testExportPassphrase, 0, &buf); err != nil {
		t.Fatal(err)
	}
	passExp := buf.Bytes()

	byKey, err := f.verify(keyExp)
	if err != nil {
		t.Fatal(err)
	}
	ids, err := PassphraseIdentity(testExportPassphrase)
	if err != nil {
		t.Fatal(err)
	}
	byPass, err := Verify(bytes.NewReader(passExp), ids, VerifyOptions{Loc: time.UTC, Signer: f.keys.VerifierKey()})
	if err != nil {
		t.Fatal(err)
	}
	if byPass.View.Totals != byKey.View.Totals || byPass.Entries != byKey.Entries || byPass.Checkpoint != byKey.Checkpoint || len(byPass.Images) != len(shots) {
		t.Fatalf("passphrase export verified to %+v (%d entries), key export to %+v (%d entries)", byPass.View.Totals, byPass.Entries, byKey.View.Totals, byKey.Entries)
	}

	// Each file opened the wrong way.
	wrong, _ := PassphraseIdentity("not the passphrase at all")
	for _, c := range []struct {
		name string
		file []byte
		ids  []age.Identity
		want error
	}{
		{"wrong passphrase", passExp, wrong, ErrWrongPassphrase},
		{"passphrase export with a key", passExp, []age.Identity{f.client}, ErrPassphraseExport},
		{"key export with a passphrase", keyExp, ids, ErrNotPassphraseExport},
	} {
		if _, err := Verify(bytes.NewReader(c.file), c.ids, VerifyOptions{}); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}

	// Whoever holds the passphrase can decrypt, change and encrypt again:
	// the signed log still catches it and names the entry.
	pr, err := DecryptExport(bytes.NewReader(passExp), ids)
	if err != nil {
		t.Fatal(err)
	}
	d, err := parseExport(pr)
	if err != nil {
		t.Fatal(err)
	}
	changed := -1
	for i, e := range d.m.Entries {
		if e.Body != "" && strings.Contains(e.Body, `"active":45`) {
			d.m.Entries[i].Body = strings.Replace(e.Body, `"active":45`, `"active":60`, 1)
			changed = int(e.I)
			break
		}
	}
	if changed < 0 {
		t.Fatal("no activity entry with a body in the export")
	}
	var files []namedFile
	for name, data := range d.files {
		files = append(files, namedFile{name, data})
	}
	r, _ := PassphraseRecipient(testExportPassphrase)
	var forged bytes.Buffer
	w, _ := age.Encrypt(&forged, r)
	if err := writeTar(w, &d.m, files); err != nil {
		t.Fatal(err)
	}
	w.Close()
	_, err = Verify(bytes.NewReader(forged.Bytes()), ids, VerifyOptions{})
	var ee *EntryError
	if !errors.As(err, &ee) || ee.Index != int64(changed) {
		t.Fatalf("changed entry %d: %v", changed, err)
	}

	// A flipped byte: damaged, not verified.
	if _, err := Verify(bytes.NewReader(flip(passExp, len(passExp)-50)), ids, VerifyOptions{}); !errors.Is(err, ErrNotExport) {
		t.Fatalf("flipped passphrase export: %v", err)
	}
}

func TestPassphraseExportRefusesShortPassphrase(t *testing.T) {
	f := newFixture(t)
	f.workSlot("acme", day0, 1)
	var buf bytes.Buffer
	_, err := f.s.ExportWithPassphrase(ctx, "acme", day0, day0.Add(time.Hour), "short", 0, &buf)
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "at least 12") || buf.Len() != 0 {
		t.Fatalf("short passphrase: %v (%d bytes written)", err, buf.Len())
	}
	if _, err := PassphraseIdentity(""); err == nil {
		t.Fatal("empty passphrase accepted for verify")
	}
}

// TestPassphraseReveal: a client with a passphrase export checks a reveal
// made with the same passphrase.
func TestPassphraseReveal(t *testing.T) {
	f := newFixture(t)
	id := f.workSlot("acme", day0, 7)
	orig, _, err := f.s.ShotImage(ctx, id, ImageOriginal)
	if err != nil {
		t.Fatal(err)
	}
	var exp, rev bytes.Buffer
	if _, err := f.s.ExportWithPassphrase(ctx, "acme", day0, day0.Add(time.Hour), testExportPassphrase, 0, &exp); err != nil {
		t.Fatal(err)
	}
	if err := f.s.RevealWithPassphrase(ctx, id, testExportPassphrase, &rev); err != nil {
		t.Fatal(err)
	}
	ids, _ := PassphraseIdentity(testExportPassphrase)
	rv, err := VerifyReveal(bytes.NewReader(exp.Bytes()), bytes.NewReader(rev.Bytes()), ids, VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rv.Shot != id || !bytes.Equal(rv.Original, orig) {
		t.Fatal("the passphrase reveal does not give back the original")
	}
}
