package images

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// checkOutputs refuses to start a build whose outputs exist already or
// cannot be written, before any work is done.
func checkOutputs(o Outputs) error {
	for _, p := range o.list() {
		if _, err := os.Lstat(p); err == nil {
			return fmt.Errorf("output file %s exists already: remove it or choose another --out", p)
		} else if !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("output file %s: %w", p, err)
		}
	}
	dir := filepath.Dir(o.Disk)
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("output folder %s: %w", dir, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("output folder %s is not a folder", dir)
	}
	f, err := os.CreateTemp(dir, ".workspace-image-check-")
	if err != nil {
		return fmt.Errorf("output folder %s is not writable: %w", dir, err)
	}
	f.Close()
	os.Remove(f.Name())
	return nil
}

// placeOutputs moves the built files from the work folder to their names:
// first each to a hidden temporary name beside its final one, then all are
// renamed. On failure none of them is left.
func placeOutputs(outDir string, o Outputs) (err error) {
	srcs := []string{"disk.qcow2", "vmlinuz", "initrd.img", "cmdline"}
	dsts := o.list()
	var temps, placed []string
	defer func() {
		if err != nil {
			for _, p := range append(temps, placed...) {
				os.Remove(p)
			}
		}
	}()
	for i, s := range srcs {
		tmp := filepath.Join(filepath.Dir(dsts[i]), ".partial-"+filepath.Base(dsts[i]))
		temps = append(temps, tmp)
		if err := moveFile(filepath.Join(outDir, s), tmp); err != nil {
			return fmt.Errorf("write %s: %w", dsts[i], err)
		}
	}
	for i, tmp := range temps {
		if err := os.Rename(tmp, dsts[i]); err != nil {
			return fmt.Errorf("write %s: %w", dsts[i], err)
		}
		placed = append(placed, dsts[i])
	}
	temps = nil
	return nil
}

// moveFile renames src to dst, or copies it when they are on different
// file systems.
func moveFile(src, dst string) error {
	if err := os.Rename(src, dst); err == nil {
		return os.Chmod(dst, 0o644)
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		os.Remove(dst)
		return err
	}
	if err := out.Close(); err != nil {
		os.Remove(dst)
		return err
	}
	return nil
}

func copyFile(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// removeWork deletes a build's work folder. It refuses while anything is
// still mounted inside it (mmdebstrap mounts /dev, /proc and /sys in the
// chroot, in its own mount namespace, so this only guards against the
// unexpected); without root the tree belongs to a subuid range and is
// removed from inside that namespace.
func removeWork(dir string) error {
	if m, err := mountsUnder(dir); err != nil {
		return err
	} else if len(m) > 0 {
		return fmt.Errorf("not removing %s: still mounted inside it: %s", dir, strings.Join(m, ", "))
	}
	var helperErr error
	if os.Geteuid() != 0 {
		// The namespace's root may empty the tree but not unlink the tree's
		// own folder from ours: that last step is done out here.
		root := filepath.Join(dir, "root")
		if _, err := os.Lstat(root); err == nil {
			if out, err := exec.Command("mmdebstrap", "--unshare-helper", "rm", "-rf", "--one-file-system", root).CombinedOutput(); err != nil {
				helperErr = fmt.Errorf("%w: %s", err, strings.TrimSpace(string(out)))
			}
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		if helperErr != nil {
			return fmt.Errorf("remove %s: %w (emptying the tree in its user namespace: %v)", dir, err, helperErr)
		}
		return fmt.Errorf("remove %s: %w", dir, err)
	}
	return nil
}

func mountsUnder(dir string) ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("read mounts: %w", err)
	}
	defer f.Close()
	prefix := filepath.Clean(dir) + "/"
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 && strings.HasPrefix(unescapeMount(fields[4])+"/", prefix) {
			out = append(out, fields[4])
		}
	}
	return out, sc.Err()
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space...).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			var v int
			if _, err := fmt.Sscanf(s[i+1:i+4], "%03o", &v); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
