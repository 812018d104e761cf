// Package atomicfile replaces files so that a crash leaves either the old
// content or the new one, never a torn file: the bytes go to a temporary
// file beside the target, which is fsynced, renamed over the target, and
// the folder is fsynced so the rename itself survives a crash. Temporary
// files are named ".NAME.RANDOM.tmp", so a folder's owner can sweep what a
// crash left by the ".tmp" suffix.
package atomicfile

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
)

// Write replaces path with data, of mode perm.
func Write(path string, data []byte, perm os.FileMode) error {
	return WriteFrom(path, perm, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// WriteFrom replaces path with what fill writes, of mode perm. When fill
// fails, path is left as it was and fill's error is returned as it is.
func WriteFrom(path string, perm os.FileMode, fill func(io.Writer) error) error {
	if err := replace(path, perm, fill); err != nil {
		return err
	}
	return SyncDir(filepath.Dir(path))
}

// WriteAll replaces the files of dir named by files' keys, each of mode
// perm, and fsyncs dir once at the end. A failure leaves the files not yet
// renamed as they were; the ones renamed before it stay new.
func WriteAll(dir string, files map[string][]byte, perm os.FileMode) error {
	for name, data := range files {
		err := replace(filepath.Join(dir, name), perm, func(w io.Writer) error {
			_, err := w.Write(data)
			return err
		})
		if err != nil {
			return err
		}
	}
	return SyncDir(dir)
}

// replace writes through a synced temporary file and renames it over path.
func replace(path string, perm os.FileMode, fill func(io.Writer) error) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	fail := func(err error) error {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Chmod(perm); err != nil {
		return fail(fmt.Errorf("write %s: %w", path, err))
	}
	if err := fill(f); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(fmt.Errorf("write %s: %w", path, err))
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// SyncDir fsyncs a folder, so the names made or renamed in it last. On
// Windows a folder opened for reading cannot be flushed (FlushFileBuffers
// refuses it), so there it does nothing rather than fail the client's
// reports, which are written through here.
func SyncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync folder %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync folder %s: %w", dir, err)
	}
	return nil
}
