package daemon

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/workspace-sandbox/workspace/tracking"
)

// TestTrackStateFile: no file is "not tracking", a saved state reads back,
// and a damaged file is an error that names it, never "not tracking" (the
// running session would be lost and a second one started over it).
func TestTrackStateFile(t *testing.T) {
	h := &agentHub{dir: filepath.Join(t.TempDir(), "tracking"), log: hclog.NewNullLogger()}
	ts, err := h.trackState("acme")
	if err != nil || ts.On {
		t.Fatalf("no file: %+v %v", ts, err)
	}
	want := tracking.State{On: true, Session: "s1", Memo: "m", Since: time.Unix(1700000000, 0).UTC()}
	if err := h.setTrackState("acme", want); err != nil {
		t.Fatal(err)
	}
	if got, err := h.trackState("acme"); err != nil || got != want {
		t.Fatalf("read back %+v %v, want %+v", got, err, want)
	}
	fi, err := os.Stat(filepath.Join(h.dir, "acme.json"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("state file mode: %v %v", fi.Mode(), err)
	}
	if err := os.WriteFile(filepath.Join(h.dir, "acme.json"), []byte(`{"on":tru`), 0o600); err != nil {
		t.Fatal(err)
	}
	if ts, err := h.trackState("acme"); err == nil || !strings.Contains(err.Error(), "acme.json is damaged") {
		t.Fatalf("damaged file read as %+v, %v", ts, err)
	}
}
