package main

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// publicFiles are the only files of the state folder others may read: the
// diary's public keys, published to clients on purpose.
var publicFiles = map[string]bool{"keys/recipient.txt": true, "keys/signing.pub": true}

// checkPrivateFiles walks everything the daemon made in its state folder
// (image records, the storage pool with base images and overlays, the
// workspace folders with their sockets and console logs, the diary, the
// keys) and fails on any file that a user other than root and QEMU's could
// read: a regular file with a group or other permission bit, a socket
// others may reach, or a folder others may list or write. Folders others may only pass through
// (0711: the state folder, the pool, "workspaces", which QEMU must
// traverse) are fine: what is in them is private by its own mode. The
// API socket (0660, for the workspace group) lives outside the state
// folder.
func (e *e2eEnv) checkPrivateFiles() {
	e.t.Helper()
	state := filepath.Join(e.dir, "state")
	n := 0
	err := filepath.WalkDir(state, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(state, p)
		n++
		perm := fi.Mode().Perm()
		owner := ""
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			owner = fmt.Sprintf(" uid %d gid %d", st.Uid, st.Gid)
		}
		switch {
		case fi.IsDir():
			if perm&0o066 != 0 {
				e.t.Errorf("folder %s is %v%s: others may list or change it", rel, perm, owner)
			}
		case fi.Mode()&fs.ModeSymlink != 0:
			e.t.Errorf("symlink %s in the state folder", rel)
		case publicFiles[filepath.ToSlash(rel)]:
			if perm&0o022 != 0 {
				e.t.Errorf("public key %s is %v: writable by others", rel, perm)
			}
		case fi.Mode()&fs.ModeSocket != 0:
			// QEMU makes its sockets (agent, guest agent, display) with
			// its own umask; the workspace folder they are in (0700,
			// QEMU's user) is what keeps others out, so that is checked.
			pfi, err := os.Stat(filepath.Dir(p))
			if perm&0o077 != 0 && (err != nil || pfi.Mode().Perm()&0o077 != 0) {
				e.t.Errorf("socket %s is %v%s in a folder others may enter", rel, perm, owner)
			}
		default:
			if perm&0o077 != 0 {
				e.t.Errorf("file %s is %v%s: readable by group or others", rel, perm, owner)
			}
		}
		if strings.HasSuffix(rel, ".qcow2") || strings.Contains(rel, "pool/") {
			e.t.Logf("pool: %s %v%s", rel, perm, owner)
		}
		return nil
	})
	if err != nil {
		e.t.Fatalf("walk the state folder: %v", err)
	}
	if n < 10 {
		e.t.Fatalf("the state folder holds only %d entries: walked the wrong folder?", n)
	}
	e.t.Logf("checked the modes of %d entries in the state folder", n)
}
