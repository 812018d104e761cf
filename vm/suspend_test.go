package vm

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/hashicorp/go-hclog"
)

func TestStaleReason(t *testing.T) {
	saved := SavedState{From: "image=a sha=1 profile=2", Definition: "d1"}
	for _, tc := range []struct {
		name, from, def string
		stale           bool
	}{
		{"same", "image=a sha=1 profile=2", "d1", false},
		{"image or profile changed", "image=a sha=9 profile=2", "d1", true},
		{"definition changed", "image=a sha=1 profile=2", "d2", true},
		{"both", "x", "y", true},
	} {
		if got := staleReason(saved, tc.from, tc.def); (got != "") != tc.stale {
			t.Errorf("%s: staleReason = %q, want stale %v", tc.name, got, tc.stale)
		}
	}
}

// TestSavedStateFiles: a saved state counts only with both its memory file
// and its record; removing it removes both, and a missing one is no error.
func TestSavedStateFiles(t *testing.T) {
	d := &Driver{opts: Options{StateDir: t.TempDir()}, id: testIdentity, log: hclog.NewNullLogger()}
	dom := d.DomainName("acme")
	state, record := d.savedStateFiles(dom)
	if filepath.Dir(state) != filepath.Join(d.opts.StateDir, "saved") || state != d.SavedStatePath("acme") || filepath.Base(record) != dom+".json" {
		t.Fatalf("files %s %s", state, record)
	}
	if _, ok := d.readSavedState(dom); ok {
		t.Fatal("a saved state without files")
	}
	os.MkdirAll(filepath.Dir(state), 0o700)
	os.WriteFile(state, make([]byte, 4096), 0o600)
	if _, ok := d.readSavedState(dom); ok {
		t.Fatal("a memory file without its record counts as a saved state")
	}
	b, _ := json.Marshal(SavedState{From: "f", Definition: "d"})
	os.WriteFile(record, b, 0o600)
	s, ok := d.readSavedState(dom)
	if !ok || s.Bytes != 4096 || s.From != "f" || s.Definition != "d" {
		t.Fatalf("saved state %+v %v", s, ok)
	}
	os.WriteFile(record, []byte("{"), 0o600)
	if _, ok := d.readSavedState(dom); ok {
		t.Fatal("a damaged record counts")
	}
	d.discardSavedState(dom, "test")
	for _, p := range []string{state, record} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s left: %v", p, err)
		}
	}
	if err := d.removeSavedState(dom); err != nil {
		t.Fatalf("removing nothing: %v", err)
	}
}
