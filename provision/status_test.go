package provision

import (
	"strings"
	"testing"
)

func TestParseStatus(t *testing.T) {
	s, err := ParseStatus([]byte("version=1\nboot=abc\nroot=failed\nroot_exit=3\nroot_step=script 1 of 1 (a.hcl:4)\nroot_line=one\nroot_line=two\nuser=skipped\nfuture=1\n"))
	if err != nil {
		t.Fatal(err)
	}
	if s.Root.State != Failed || s.Root.Exit == nil || *s.Root.Exit != 3 || strings.Join(s.Root.Lines, "|") != "one|two" ||
		s.User.State != Skipped || s.Boot != "abc" || !s.Final() || s.Root.Step != "script 1 of 1 (a.hcl:4)" {
		t.Fatalf("%+v", s)
	}
	s, _ = ParseStatus(nil)
	if s.Root.State != Pending || s.Final() {
		t.Fatalf("empty: %+v", s)
	}
	for _, bad := range []string{"root=exploded\n", "root_exit=x\n", "root_exit=999\n", "garbage\n", strings.Repeat("x", MaxStatusSize+1)} {
		if _, err := ParseStatus([]byte(bad)); err == nil {
			t.Errorf("accepted %.40q", bad)
		}
	}
}

func FuzzParseStatus(f *testing.F) {
	f.Add([]byte("root=done\nroot_exit=0\nuser=waiting\nuser_step=the desktop session\n"))
	f.Add([]byte("root=failed\nroot_exit=1\nroot_line=" + strings.Repeat("é", 400) + "\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParseStatus(b)
		if err != nil {
			return
		}
		for _, p := range []Phase{s.Root, s.User} {
			if len(p.Lines) > maxLines || len(p.Step) > maxLineLen {
				t.Fatalf("unbounded: %+v", p)
			}
			for _, l := range p.Lines {
				if len(l) > maxLineLen {
					t.Fatalf("long line %d", len(l))
				}
			}
		}
	})
}
