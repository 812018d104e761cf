package dirperm

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func TestEnsureAddsBitsOnly(t *testing.T) {
	old := syscall.Umask(0o077)
	defer syscall.Umask(old)
	dir := filepath.Join(t.TempDir(), "a", "b")
	if err := Ensure(dir, 0o711); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o711 {
		t.Fatalf("mode %o after Ensure(0711) under umask 077, want 711", got)
	}
	if err := os.Chmod(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := Ensure(dir, 0o711); err != nil {
		t.Fatal(err)
	}
	fi, _ = os.Stat(dir)
	if got := fi.Mode().Perm(); got != 0o751 {
		t.Fatalf("mode %o, want 751: Ensure must add the missing bits and keep the others", got)
	}
}
