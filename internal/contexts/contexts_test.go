package contexts

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func TestSaveLoad(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "config", "workspace")
	st := NewStore(dir)
	f, err := st.Load()
	if err != nil || f.Current != "" || len(f.Contexts) != 0 {
		t.Fatalf("no file: %+v, %v", f, err)
	}
	in := File{Current: "lab", Contexts: []Context{{Name: "lab", Host: "ssh://alice@lab:2222", Description: "team server"}, {Name: "home", Host: "ssh://me@box"}}}
	if err := st.Save(in); err != nil {
		t.Fatal(err)
	}
	out, err := st.Load()
	if err != nil {
		t.Fatal(err)
	}
	if out.Current != "lab" || len(out.Contexts) != 2 || out.Contexts[0].Name != "home" || out.Contexts[1].Description != "team server" {
		t.Fatalf("loaded %+v", out)
	}
	if runtime.GOOS != "windows" {
		for p, want := range map[string]os.FileMode{dir: 0o700, st.Path(): 0o600} {
			fi, err := os.Stat(p)
			if err != nil || fi.Mode().Perm() != want {
				t.Errorf("%s: mode %v, %v; want %04o", p, fi.Mode().Perm(), err, want)
			}
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("temporary files left: %v", entries)
	}
}

func TestLoadRefusesAFileOthersMayWrite(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("file modes say nothing about other users on Windows")
	}
	st := NewStore(t.TempDir())
	if err := st.Save(File{Contexts: []Context{{Name: "lab", Host: "ssh://lab"}}}); err != nil {
		t.Fatal(err)
	}
	os.Chmod(st.Path(), 0o622)
	if _, err := st.Load(); err == nil || !strings.Contains(err.Error(), "writable by other users") {
		t.Fatalf("group-writable file: %v", err)
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct{ in, err string }{
		{`{"contexts": [{"name": "lab", "host": "ssh://lab", "password": "x"}]}`, "unknown field"},
		{`{"contexts": [{"name": "lab", "host": "ssh://lab"}, {"name": "lab", "host": "ssh://b"}]}`, "twice"},
		{`{"contexts": [{"name": "-x", "host": "ssh://lab"}]}`, "context 1"},
		{`{"contexts": [{"name": "default", "host": "ssh://lab"}]}`, "taken"},
		{`{"contexts": [{"name": "lab"}]}`, "no host"},
		{`{"current": "gone", "contexts": []}`, `"gone" is not in the file`},
		{`{"contexts": []} {}`, "data after"},
		{`[`, "unexpected EOF"},
	} {
		_, err := Parse("contexts.json", []byte(tc.in))
		if err == nil || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), "contexts.json") {
			t.Errorf("Parse(%s) = %v, want an error naming the file with %q", tc.in, err, tc.err)
		}
	}
}

func TestValidName(t *testing.T) {
	for _, ok := range []string{"lab", "Lab-2", "a", "team.server_1"} {
		if err := ValidName(ok); err != nil {
			t.Errorf("ValidName(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"", "default", "-lab", ".lab", "la b", "lab/x", strings.Repeat("a", 64)} {
		if ValidName(bad) == nil {
			t.Errorf("ValidName(%q) accepted", bad)
		}
	}
}

// FuzzParse: no input panics, and what parses saves and loads back.
func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"current": "lab", "contexts": [{"name": "lab", "host": "ssh://alice@lab:2222", "description": "d"}]}`))
	f.Add([]byte(`{"contexts": null}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		file, err := Parse("f", b)
		if err != nil {
			return
		}
		st := NewStore(t.TempDir())
		if err := st.Save(file); err != nil {
			t.Fatal(err)
		}
		back, err := st.Load()
		if err != nil || back.Current != file.Current || len(back.Contexts) != len(file.Contexts) {
			t.Fatalf("saved %+v, loaded %+v, %v", file, back, err)
		}
	})
}
