package sshconn

import (
	"reflect"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Target
		err  string
	}{
		{in: "ssh://alice@lab.example.com", want: Target{User: "alice", Host: "lab.example.com"}},
		{in: "ssh://alice@lab.example.com:2222", want: Target{User: "alice", Host: "lab.example.com", Port: 2222}},
		{in: "ssh://lab", want: Target{Host: "lab"}},
		{in: "ssh://lab/", want: Target{Host: "lab"}},
		{in: "ssh://bob@[::1]:22", want: Target{User: "bob", Host: "::1", Port: 22}},
		{in: "ssh://bob@127.0.0.1:40022", want: Target{User: "bob", Host: "127.0.0.1", Port: 40022}},
		{in: "ssh://alice:secret@lab", err: "password"},
		{in: "ssh://alice:@lab", err: "password"},
		{in: "ssh://-oProxyCommand=x", err: "cannot start with '-'"},
		{in: "ssh://-oProxyCommand=x@lab", err: "cannot start with '-'"},
		{in: "ssh://lab/run/workspace.sock", err: "a path is not used"},
		{in: "ssh://lab?socket=/x", err: "query"},
		{in: "ssh://lab#x", err: "fragment"},
		{in: "ssh://lab:0", err: "port"},
		{in: "ssh://lab:70000", err: "port"},
		{in: "ssh://lab:", err: "empty port"},
		{in: "ssh://@lab", err: "user before '@' is empty"},
		{in: "ssh://", err: "no host"},
		{in: "ssh:lab", err: "two slashes"},
		{in: "http://lab", err: "want ssh://"},
		{in: "ssh://la b", err: "spaces"},
		{in: "ssh://lab\x1b[2J", err: "control"},
	} {
		got, err := Parse(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("Parse(%q) = %+v, %v; want an error with %q", tc.in, got, err, tc.err)
			}
			if err != nil && strings.Contains(err.Error(), "secret") {
				t.Errorf("Parse(%q): the error shows the password: %v", tc.in, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("Parse(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
}

func TestStringRoundTrip(t *testing.T) {
	for _, s := range []string{"ssh://alice@lab.example.com:2222", "ssh://lab", "ssh://bob@[::1]:22"} {
		tg, err := Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		if tg.String() != s {
			t.Errorf("Parse(%q).String() = %q", s, tg.String())
		}
	}
}

func TestArgs(t *testing.T) {
	got := Target{User: "alice", Host: "lab", Port: 2222}.Args("workspace", "system", "dial-stdio")
	want := []string{"-T", "-x", "-a", "-e", "none", "-o", "ClearAllForwardings=yes", "-o", "RemoteCommand=none",
		"-l", "alice", "-p", "2222", "--", "lab", "workspace", "system", "dial-stdio"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Args:\n got %q\nwant %q", got, want)
	}
	// No user, no port: ssh's config decides.
	got = Target{Host: "lab"}.Args("x")
	if strings.Contains(strings.Join(got, " "), "-l ") || strings.Contains(strings.Join(got, " "), "-p ") {
		t.Fatalf("Args without user or port: %q", got)
	}
}

func TestSplitCommand(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
		err  string
	}{
		{in: "ssh", want: []string{"ssh"}},
		{in: "  ssh   -F  /tmp/cfg ", want: []string{"ssh", "-F", "/tmp/cfg"}},
		{in: `ssh -F '/my dir/cfg'`, want: []string{"ssh", "-F", "/my dir/cfg"}},
		{in: `ssh -o "ProxyJump=a b" -i "C:\Users\me\key"`, want: []string{"ssh", "-o", "ProxyJump=a b", "-i", `C:\Users\me\key`}},
		{in: `C:\Windows\System32\OpenSSH\ssh.exe -v`, want: []string{`C:\Windows\System32\OpenSSH\ssh.exe`, "-v"}},
		{in: `ssh "say \"hi\" \\"`, want: []string{"ssh", `say "hi" \`}},
		{in: `ssh ''`, want: []string{"ssh", ""}},
		{in: `a'b'"c"`, want: []string{"abc"}},
		{in: `ssh 'open`, err: "single quote"},
		{in: `ssh "open`, err: "double quote"},
		{in: "   ", err: "empty"},
	} {
		got, err := SplitCommand(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("SplitCommand(%q) = %q, %v; want an error with %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("SplitCommand(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestEscape(t *testing.T) {
	got := Escape("line one\r\n\x1b[31mred\x1b[0m\tand\x07bell\xff")
	want := "line one\n\\x1b[31mred\\x1b[0m\\x09and\\x07bell\uFFFD"
	if got != want {
		t.Fatalf("Escape = %q, want %q", got, want)
	}
}

// FuzzParse: no input panics; what parses prints back to itself.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"ssh://alice@lab:2222", "ssh://[::1]", "ssh://a:b@c", "ssh://-x", "ssh://h/p?q#f", "ssh://%zz", "ssh://[fe80::1%25eth0]:22"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tg, err := Parse(s)
		if err != nil {
			return
		}
		if tg.Host == "" || strings.HasPrefix(tg.Host, "-") || strings.HasPrefix(tg.User, "-") || tg.Port < 0 || tg.Port > 65535 {
			t.Fatalf("Parse(%q) accepted %+v", s, tg)
		}
		back, err := Parse(tg.String())
		if err != nil || back != tg {
			t.Fatalf("Parse(%q) = %+v; its String %q parses to %+v, %v", s, tg, tg.String(), back, err)
		}
	})
}

// FuzzSplitCommand: no input panics; a split command quoted back in single
// quotes splits to the same words.
func FuzzSplitCommand(f *testing.F) {
	for _, s := range []string{"ssh -F cfg", `a "b c" 'd e'`, `"\"`, `'`, `x\ y`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		words, err := SplitCommand(s)
		if err != nil {
			return
		}
		var q []string
		for _, w := range words {
			if strings.Contains(w, "'") {
				return // not expressible in single quotes
			}
			q = append(q, "'"+w+"'")
		}
		again, err := SplitCommand(strings.Join(q, " "))
		if err != nil || !reflect.DeepEqual(again, words) {
			t.Fatalf("SplitCommand(%q) = %q; quoted back: %q, %v", s, words, again, err)
		}
	})
}
