package diary

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"
)

// FuzzParseExport feeds arbitrary decrypted export contents to the parser
// and the verifier: they may refuse, never panic or hang.
func FuzzParseExport(f *testing.F) {
	fx := newFixture(f)
	fx.small = true
	id := fx.workSlot("acme", day0, 1)
	fx.workSlot("acme", day0.Add(10*time.Minute), 2)
	if err := fx.s.Cover(ctx, id, nil); err != nil {
		f.Fatal(err)
	}
	plain := fx.plainExport(fx.export("acme", day0, day0.Add(time.Hour)))
	f.Add(plain)
	f.Add(plain[:len(plain)/2])
	f.Add([]byte{})
	f.Add([]byte("manifest.json"))
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := parseExport(bytes.NewReader(b))
		if err != nil {
			return
		}
		_, _ = verifyData(d, VerifyOptions{Loc: time.UTC})
	})
}

// FuzzParseReveal feeds arbitrary decrypted reveal files to the parser and
// the check against a real export.
func FuzzParseReveal(f *testing.F) {
	fx := newFixture(f)
	fx.small = true
	id := fx.workSlot("acme", day0, 1)
	exp := fx.export("acme", day0, day0.Add(time.Hour))
	d := mustParse(f, fx, exp)
	v, err := verifyData(d, VerifyOptions{})
	if err != nil {
		f.Fatal(err)
	}
	orig, _, _ := fx.s.ShotImage(ctx, id, ImageOriginal)
	f.Add([]byte(`{"format":"workspace-diary-reveal/1","workspace":"acme","shot":"` + id + `","salt":"` + d.m.Shots[id].Salt + `","original":"` + b64(orig) + `","thumbnail":"AAAA"}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"format":"workspace-diary-reveal/1"`))
	f.Fuzz(func(t *testing.T, b []byte) {
		rf, err := parseReveal(b)
		if err != nil {
			return
		}
		_, _ = checkReveal(d, v, rf)
	})
}

// FuzzWitnessEvidence feeds arbitrary witness evidence (the manifest's
// "witness" member) to the checks a verify with a pinned witness runs,
// against a real witnessed export: refused or accepted, never a panic.
func FuzzWitnessEvidence(f *testing.F) {
	fx := newFixture(f)
	fx.small = true
	fx.clk.Set(time.Now())
	w := startTestWitness(f, "witness.example/fuzz")
	w.register(f, fx.s, "acme")
	now := time.Now()
	fx.workSlot("acme", now.Truncate(10*time.Minute).Add(-10*time.Minute), 1)
	if err := w.submit(fx.s, "acme"); err != nil {
		f.Fatal(err)
	}
	exp := fx.export("acme", now.Add(-time.Hour), now.Add(time.Hour))
	d := mustParse(f, fx, exp)
	ev, _ := json.Marshal(d.m.Witness)
	f.Add(ev)
	f.Add([]byte(`{"checkpoints":[]}`))
	f.Add([]byte(`{"checkpoints":[{"note":"x\n\n— a AAAA\n","proof":["AAAA"]}],"previous":[{"note":""}]}`))
	opts := VerifyOptions{Loc: time.UTC, Witnesses: []string{w.vkey}}
	f.Fuzz(func(t *testing.T, b []byte) {
		var e evidence
		if json.Unmarshal(b, &e) != nil {
			return
		}
		dd := *d
		dd.m.Witness = &e
		_, _ = verifyData(&dd, opts)
	})
}

// FuzzParseState feeds arbitrary bytes to the client state file parser.
func FuzzParseState(f *testing.F) {
	f.Add([]byte(`{"version":1,"logs":{"workspace-diary/0011223344556677/acme":{"workspace":"acme","signer":"s","size":3,"root":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=","verified":"2026-11-20T10:00:00Z"}}}`))
	f.Add([]byte(`{"version":2}`))
	f.Add([]byte(`{"version":1,"logs":{"x":{"size":-1,"root":""}}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := parseState(b)
		if err != nil {
			return
		}
		for _, l := range st.Logs {
			if l.Size < 0 {
				t.Fatalf("negative size accepted")
			}
		}
	})
}

// FuzzParseCheckpointNote feeds arbitrary signed checkpoints to the
// parsers of both formats and to the signature check.
func FuzzParseCheckpointNote(f *testing.F) {
	fx := newFixture(f)
	fx.small = true
	fx.workSlot("acme", day0, 1)
	tip, err := fx.s.Tip(ctx, "acme")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(tip.Note)
	f.Add([]byte(legacyPrefix + "acme\n3\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\n— workspace-diary AAAA\n"))
	f.Add([]byte("x\n-1\n\n\n"))
	vkey := fx.keys.VerifierKey()
	f.Fuzz(func(t *testing.T, b []byte) {
		if c, err := parseCheckpointNote(string(b)); err == nil && c.Size < 0 {
			t.Fatalf("negative size %d", c.Size)
		}
		_, _ = OpenCheckpoint(b, vkey, "acme")
	})
}
