package witness

import (
	"testing"
)

// The parsers of what a witness or a log sends: never panic, and what
// parses re-encodes to the same bytes.

func FuzzParseAddCheckpoint(f *testing.F) {
	f.Add([]byte("old 0\n\nexample.com/log\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\n— example.com/log AAAA\n"))
	f.Add([]byte("old 3\nPlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw=\njrJZDmY8Y7SyJE0MWLpLozkIVMSMZcD5kvuKxPC3swk=\n\nx"))
	f.Add([]byte("old 01\n\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseAddCheckpoint(b)
		if err != nil {
			return
		}
		if string(r.Marshal()) != string(b) {
			t.Fatalf("re-encoding differs:\n%q\n%q", r.Marshal(), b)
		}
	})
}

func FuzzParseConflict(f *testing.F) {
	f.Add([]byte("3\n"))
	f.Add([]byte("0\n"))
	f.Add([]byte("-1\n"))
	f.Add([]byte("007\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		n, err := ParseConflict(b)
		if err == nil && n < 0 {
			t.Fatalf("negative size %d", n)
		}
	})
}

func FuzzParseCosignatures(f *testing.F) {
	f.Add([]byte("— witness.example/w1 CMp+6LWBU0anHGH5aNDTJkH/gj79sG+T6+iP2ThYN5krrDJbR1HDnucjL39QsZTSvVjyQLrdk3DXDqI5G2HgLatVs0pWh6Up69HVOw==\n"))
	f.Add([]byte("— a AAAA\n— b AAAAAAAA\n"))
	f.Add([]byte("- a AAAA\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		lines, err := ParseCosignatures(b)
		if err != nil {
			return
		}
		total := 0
		for _, l := range lines {
			total += len(l)
		}
		if total != len(b) {
			t.Fatalf("lines cover %d of %d bytes", total, len(b))
		}
	})
}

func FuzzSplitNote(f *testing.F) {
	f.Add([]byte("example.com/log\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\n— example.com/log AAAAAAAA\n"))
	f.Add([]byte("x\n\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		text, sigs, err := SplitNote(b)
		if err != nil {
			return
		}
		n := len(text) + 1
		for _, s := range sigs {
			n += len(s)
		}
		if n != len(b) {
			t.Fatalf("text and signatures cover %d of %d bytes", n, len(b))
		}
	})
}

func FuzzNewVerifier(f *testing.F) {
	_, vkey, _ := GenerateKey("witness.example/w")
	f.Add(vkey)
	f.Add("w+00000000+BAAA")
	f.Add("example.com/log+abcdef01+AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
	f.Fuzz(func(t *testing.T, s string) {
		v, err := NewVerifier(s)
		if err == nil && v.String() == "" {
			t.Fatal("empty verifier")
		}
	})
}
