//go:build unix

package contexts

import (
	"fmt"
	"io/fs"
	"os"
	"syscall"
)

// checkPrivate refuses a contexts file that another user may write or
// owns (root's is accepted: root can write it anyway).
func checkPrivate(path string, fi fs.FileInfo) error {
	if fi.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("contexts: %s is writable by other users (mode %04o): chmod 600 it, then check its contexts", path, fi.Mode().Perm())
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Getuid() && st.Uid != 0 {
		return fmt.Errorf("contexts: %s belongs to uid %d, not to you (uid %d)", path, st.Uid, os.Getuid())
	}
	return nil
}
