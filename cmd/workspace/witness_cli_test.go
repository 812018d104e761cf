package main

import (
	"crypto/rand"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"

	"github.com/workspace-sandbox/workspace/witness"
)

// TestWitnessCommands drives the witness commands that need no daemon:
// init writes a private key (0600, never overwritten), serve refuses a key
// others can read, add-log checks the log key, logs lists what it knows.
func TestWitnessCommands(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "w.key")
	r := mustCLI(t, "/nonexistent.sock", "witness", "init", "--key", key, "--name", "witness.example/w")
	vkey := strings.TrimSpace(r.stdout)
	if v, err := witness.NewVerifier(vkey); err != nil || v.Name() != "witness.example/w" {
		t.Fatalf("init printed %q: %v", vkey, err)
	}
	if fi, _ := os.Stat(key); fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v", fi.Mode())
	}
	if r := cli(t, "/nonexistent.sock", "witness", "init", "--key", key); r.code == 0 || !strings.Contains(r.stderr, "never overwritten") {
		t.Fatalf("init over an existing key: %s", r)
	}
	os.Chmod(key, 0o644)
	db := filepath.Join(dir, "w.db")
	if r := cli(t, "/nonexistent.sock", "witness", "serve", "--addr", "127.0.0.1:0", "--key", key, "--db", db); r.code == 0 || !strings.Contains(r.stderr, "readable by others") {
		t.Fatalf("serve with a readable key: %s", r)
	}
	if r := cli(t, "/nonexistent.sock", "witness", "add-log", "--db", db, "--origin", "workspace-diary/0011223344556677/acme", "--key", "not a key"); r.code == 0 || !strings.Contains(r.stderr, "log key") {
		t.Fatalf("add-log with a bad key: %s", r)
	}
	origin := "workspace-diary/0011223344556677/acme"
	_, logKey, err := note.GenerateKey(rand.Reader, origin)
	if err != nil {
		t.Fatal(err)
	}
	mustCLI(t, "/nonexistent.sock", "witness", "add-log", "--db", db, "--origin", origin, "--key", logKey)
	if fi, err := os.Stat(db); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("witness database mode: %v %v", fi, err)
	}
	var logs []witness.LogState
	if err := json.Unmarshal([]byte(mustCLI(t, "/nonexistent.sock", "witness", "logs", "--db", db, "--json").stdout), &logs); err != nil ||
		len(logs) != 1 || logs[0].Origin != origin || logs[0].Size != 0 || len(logs[0].Keys) != 1 || logs[0].Keys[0] != logKey {
		t.Fatalf("logs: %+v %v", logs, err)
	}
}
