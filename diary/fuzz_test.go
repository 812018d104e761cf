package diary

import (
	"bytes"
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
