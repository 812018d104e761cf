package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The daemon's size flags are checked before it touches anything: a bad
// one is named, with what it takes, and the state folder stays unmade.
func TestDaemonRefusesBadSizeFlags(t *testing.T) {
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	for _, tc := range []struct {
		flag, value, want string
	}{
		{"--tcg-cache", "1MiB", `--tcg-cache "1MiB": a size from 32MiB to 4GiB`},
		{"--tcg-cache", "64GiB", `--tcg-cache "64GiB"`},
		{"--tcg-cache", "lots", `--tcg-cache "lots"`},
		{"--diary-min-free", "lots", "--diary-min-free"},
	} {
		r := cli(t, filepath.Join(dir, "none.sock"), "daemon", "--state-dir", state, tc.flag, tc.value)
		if r.code == 0 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("daemon %s %s: want an error with %q, got %s", tc.flag, tc.value, tc.want, r)
		}
	}
	if _, err := os.Stat(state); !os.IsNotExist(err) {
		t.Errorf("bad flags made the state folder: %v", err)
	}
}
