package safetext

import (
	"bytes"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestTerm(t *testing.T) {
	cases := map[string]string{
		"Acme Corp":                          "Acme Corp",
		"Zürich 東京":                          "Zürich 東京",
		"a\nbillable: 99h 00m":               `a\nbillable: 99h 00m`,
		"tab\there":                          `tab\there`,
		"\x1b[2K\x1b[1Ared":                  `\x1b[2K\x1b[1Ared`,
		"cr\roverwrite":                      `cr\roverwrite`,
		"back\\slash":                        `back\\slash`,
		"del\x7f":                            `del\x7f`,
		"c1\u009b31m":                        `c1\u{009b}31m`,
		"rtl\u202egnp.exe":                   `rtl\u{202e}gnp.exe`,
		"iso\u2066x\u2069":                   `iso\u{2066}x\u{2069}`,
		"zw\u200bj":                          `zw\u{200b}j`,
		"bad\xffutf8":                        `bad\xffutf8`,
		"nul\x00":                            `nul\x00`,
		"":                                   "",
		"line\u2028sep":                      `line\u{2028}sep`,
		"\x1b]8;;http://evil/\x07link\x1b]8": `\x1b]8;;http://evil/\x07link\x1b]8`,
	}
	for in, want := range cases {
		if got := Term(in); got != want {
			t.Errorf("Term(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCSV(t *testing.T) {
	cases := map[string]string{
		"=HYPERLINK(\"http://x\")": `'=HYPERLINK("http://x")`,
		"+1":                       "'+1",
		"-2+3":                     "'-2+3",
		"@SUM(A1)":                 "'@SUM(A1)",
		"\t=1":                     `'\t=1`,
		"\r=1":                     `'\r=1`,
		"＝1":                       "'＝1",
		"fine":                     "fine",
		"a=b":                      "a=b",
		"":                         "",
	}
	for in, want := range cases {
		if got := CSV(in); got != want {
			t.Errorf("CSV(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestWriter(t *testing.T) {
	var b bytes.Buffer
	w := Writer(&b)
	if _, err := w.Write([]byte("ok line\n\tindented\n")); err != nil {
		t.Fatal(err)
	}
	in := []byte("reason=\x1b[31mred\x1b[0m\r\n")
	n, err := w.Write(in)
	if err != nil || n != len(in) {
		t.Fatalf("n=%d err=%v", n, err)
	}
	want := "ok line\n\tindented\nreason=\\x1b[31mred\\x1b[0m\\x0d\n"
	if b.String() != want {
		t.Fatalf("got %q want %q", b.String(), want)
	}
}

// FuzzTerm: the result is one line of printable text, and nothing that
// was not there gets lost (the same input always maps to the same output,
// different inputs to different outputs, checked by a round trip).
func FuzzTerm(f *testing.F) {
	for _, s := range []string{"", "plain", "a\nb", "\x1b[31m", "\u202e", "\xff", `\x1b`, "\\\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := Term(s)
		if !utf8.ValidString(got) {
			t.Fatalf("Term(%q) = %q is not valid UTF-8", s, got)
		}
		for _, r := range got {
			if r < 0x20 || r == 0x7f || unsafeRune(r) {
				t.Fatalf("Term(%q) = %q holds %U", s, got, r)
			}
		}
		if back := unescape(got); back != s {
			t.Fatalf("Term(%q) = %q does not read back (%q)", s, got, back)
		}
		c := CSV(s)
		if c != "" && strings.ContainsRune("=+-@\t\r", rune(c[0])) {
			t.Fatalf("CSV(%q) = %q starts a formula", s, c)
		}
	})
}

// unescape reverses Term, to show it loses nothing.
func unescape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			b.WriteByte(s[i])
			continue
		}
		i++
		switch s[i] {
		case '\\':
			b.WriteByte('\\')
		case 'n':
			b.WriteByte('\n')
		case 't':
			b.WriteByte('\t')
		case 'r':
			b.WriteByte('\r')
		case 'x':
			var v byte
			for _, c := range s[i+1 : i+3] {
				v = v*16 + hexv(byte(c))
			}
			b.WriteByte(v)
			i += 2
		case 'u':
			end := strings.IndexByte(s[i:], '}')
			var r rune
			for _, c := range s[i+2 : i+end] {
				r = r*16 + rune(hexv(byte(c)))
			}
			b.WriteRune(r)
			i += end
		}
	}
	return b.String()
}

func hexv(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	default:
		return c - 'a' + 10
	}
}
