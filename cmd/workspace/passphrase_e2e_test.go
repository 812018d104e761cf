package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// checkPassphraseExport is the client without an age key, in the diary
// end-to-end test: a passphrase export (the passphrase from a file),
// verified with the passphrase from the environment with the same result
// as the key export; a reveal of the covered shot with the same
// passphrase; each file opened the wrong way says which way is right.
func checkPassphraseExport(t *testing.T, e *e2eEnv, name, day, covered string) {
	t.Helper()
	sock, key := e.socket, filepath.Join(e.dir, "client.key")
	passFile := filepath.Join(e.dir, "export-pass")
	os.WriteFile(passFile, []byte("a passphrase for the client\n"), 0o600)
	pexp := filepath.Join(e.dir, "acme-pass.diary")
	t.Setenv("WORKSPACE_EXPORT_PASSPHRASE", "a passphrase for the client")
	if r := cli(t, sock, "diary", "export", name, "--from", day, "--to", day, "--out", pexp, "--passphrase", "--recipient", "age1x"); r.code == 0 || !strings.Contains(r.stderr, "passphrase alone") {
		t.Fatalf("passphrase export with a recipient: %s", r)
	}
	if r := cli(t, sock, "diary", "export", name, "--from", day, "--to", day, "--out", pexp, "--passphrase-file", filepath.Join(e.dir, "nonexistent")); r.code == 0 || !strings.Contains(r.stderr, "passphrase file") {
		t.Fatalf("passphrase export with a missing passphrase file: %s", r)
	}
	mustCLI(t, sock, "diary", "export", name, "--from", day, "--to", day, "--out", pexp, "--passphrase-file", passFile)
	if r := mustCLI(t, "/nonexistent.sock", "diary", "verify", pexp, "--passphrase"); !strings.Contains(r.stdout, "6 (1 covered, 1 deleted)") || !strings.Contains(r.stdout, "1h 20m (manual 0h 30m, flagged)") {
		t.Fatalf("verify --passphrase:\n%s", r.stdout)
	}
	if r := cli(t, sock, "diary", "verify", pexp, "--identity", key); r.code != 1 || !strings.Contains(r.stderr, "verify it with --passphrase") {
		t.Fatalf("passphrase export opened with a key: %s", r)
	}
	exp := filepath.Join(e.dir, "acme.diary")
	if r := cli(t, sock, "diary", "verify", exp, "--passphrase"); r.code != 1 || !strings.Contains(r.stderr, "verify it with --identity") {
		t.Fatalf("key export opened with a passphrase: %s", r)
	}
	prev := filepath.Join(e.dir, "reveal-pass.age")
	mustCLI(t, sock, "diary", "reveal", covered, "--out", prev, "--passphrase")
	if r := mustCLI(t, "/nonexistent.sock", "diary", "verify-reveal", pexp, prev, "--passphrase"); !strings.Contains(r.stdout, "covered in the export") {
		t.Fatalf("verify-reveal --passphrase: %s", r)
	}
	t.Setenv("WORKSPACE_EXPORT_PASSPHRASE", "not the right passphrase")
	if r := cli(t, sock, "diary", "verify", pexp, "--passphrase"); r.code != 1 || !strings.Contains(r.stderr, "wrong passphrase") {
		t.Fatalf("verify with a wrong passphrase: %s", r)
	}
}
