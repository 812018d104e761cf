package vm

import "os"

// ensureDir makes a folder QEMU must pass through (the pool, the parent of
// the workspace folders) and gives it at least mode's bits, whatever the
// umask (the daemon runs with 077, so nothing else it makes is readable by
// others). It only adds bits, never takes any away.
func ensureDir(path string, mode os.FileMode) error {
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
