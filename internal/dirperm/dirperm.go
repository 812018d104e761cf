// Package dirperm makes folders that other users (QEMU, the workspace group)
// must pass through, whatever the process's umask.
package dirperm

import "os"

// Ensure makes path (and its parents) and gives it at least mode's bits
// whatever the umask (the daemon runs with 077, so nothing else it makes is
// readable by others). It only adds bits, never takes any away.
func Ensure(path string, mode os.FileMode) error {
	if err := os.MkdirAll(path, mode); err != nil {
		return err
	}
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if perm := fi.Mode().Perm(); perm&mode != mode {
		return os.Chmod(path, perm|mode)
	}
	return nil
}
