// Package safetext shows strings that came from somewhere untrusted (a
// guest VM, an export, a profile) without letting them act on the reader:
// control characters, ANSI escape sequences, Unicode direction overrides and
// invalid UTF-8 are written as visible escapes, so a string cannot fake a
// line, move the cursor, recolour the terminal or reorder what follows it;
// and a spreadsheet cell cannot start a formula.
package safetext

import (
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// Term returns s as one line of plain text: printable characters as they
// are, a backslash doubled, and everything else (C0 and C1 controls
// including newline, tab, carriage return and ESC; DEL; direction marks,
// embeddings, overrides and isolates; zero-width and line/paragraph
// separators; invalid UTF-8) as \n, \t, \r, \xNN or \u{NNNN}. The result
// is the same as s when s holds nothing of that kind, and two different
// strings never give the same result.
func Term(s string) string {
	if clean(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\r':
			b.WriteString(`\r`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, r)
		case unsafeRune(r):
			fmt.Fprintf(&b, `\u{%04x}`, r)
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

// clean says whether Term would leave s as it is.
func clean(s string) bool {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c < 0x20 || c == 0x7f || c == '\\' {
				return false
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && n == 1) || unsafeRune(r) {
			return false
		}
		i += n
	}
	return true
}

// unsafeRune: non-ASCII runes that change how a terminal shows the text
// around them.
func unsafeRune(r rune) bool {
	switch {
	case r >= 0x80 && r <= 0x9f: // C1 controls (0x9b is a one-byte CSI)
		return true
	case r == 0x061c, r == 0x200e, r == 0x200f: // direction marks
		return true
	case r >= 0x202a && r <= 0x202e: // embeddings and overrides
		return true
	case r >= 0x2066 && r <= 0x2069: // isolates
		return true
	case r >= 0x200b && r <= 0x200d, r == 0x2060, r == 0xfeff: // zero width
		return true
	case r == 0x2028, r == 0x2029: // line and paragraph separators
		return true
	}
	return false
}

// CSV returns s for one spreadsheet cell: escaped as Term does, and with a
// leading apostrophe when it would start with a character a spreadsheet
// reads as a formula or strips before one (=, +, -, @, TAB, CR, as OWASP's
// CSV injection advice lists), or a full-width equals or plus sign.
func CSV(s string) string {
	t := Term(s)
	if s == "" {
		return t
	}
	switch s[0] {
	case '=', '+', '-', '@', '\t', '\r', '\n', '|', '%':
		return "'" + t
	}
	if r, _ := utf8.DecodeRuneInString(s); r == '＝' || r == '＋' || r == '－' || r == '＠' {
		return "'" + t
	}
	return t
}

// Writer returns a writer that passes text through but writes control
// bytes other than newline and tab (ESC first of all) as \xNN, so that a
// log line holding a guest's string cannot recolour or rewrite the
// terminal it is read on. It works on bytes: it never holds one back.
func Writer(w io.Writer) io.Writer { return &writer{w: w} }

type writer struct{ w io.Writer }

func (w *writer) Write(p []byte) (int, error) {
	dirty := false
	for _, c := range p {
		if (c < 0x20 && c != '\n' && c != '\t') || c == 0x7f {
			dirty = true
			break
		}
	}
	if !dirty {
		return w.w.Write(p)
	}
	out := make([]byte, 0, len(p)+16)
	for _, c := range p {
		if (c < 0x20 && c != '\n' && c != '\t') || c == 0x7f {
			out = fmt.Appendf(out, `\x%02x`, c)
			continue
		}
		out = append(out, c)
	}
	if _, err := w.w.Write(out); err != nil {
		return 0, err
	}
	return len(p), nil
}
