package vm

import (
	"errors"
	"fmt"
	"os"
)

// virtiofsdPaths are where Debian and Fedora put virtiofsd (QEMU's C one
// up to QEMU 7.2, the Rust one after).
var virtiofsdPaths = []string{"/usr/libexec/virtiofsd", "/usr/lib/qemu/virtiofsd", "/usr/bin/virtiofsd"}

// virtiofsAvailable says whether libvirt can start virtiofsd for a share.
// For a remote libvirt it cannot be known here: 9p is the safe choice.
func (d *Driver) virtiofsAvailable() bool {
	if d.uri.Host != "" {
		return false
	}
	for _, p := range virtiofsdPaths {
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return true
		}
	}
	return false
}

// checkShares makes sure every shared host folder exists and is a folder
// (for a local libvirt; a remote host's folders are not ours to see).
func (d *Driver) checkShares(shares []ShareSpec) error {
	if d.uri.Host != "" {
		return nil
	}
	var errs []error
	for _, sh := range shares {
		fi, err := os.Stat(sh.HostPath)
		switch {
		case errors.Is(err, os.ErrNotExist):
			errs = append(errs, fmt.Errorf("share %q: host folder %s does not exist", sh.Tag, sh.HostPath))
		case err != nil:
			errs = append(errs, fmt.Errorf("share %q: host folder %s: %w", sh.Tag, sh.HostPath, err))
		case !fi.IsDir():
			errs = append(errs, fmt.Errorf("share %q: host path %s is not a folder", sh.Tag, sh.HostPath))
		}
	}
	return errors.Join(errs...)
}
