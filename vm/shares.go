package vm

import (
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
)

// Shares are 9p with accessmode "mapped" (QEMU's security_model=mapped-
// xattr), read-only and read-write alike. QEMU serves the folder itself, as
// the user it runs as, and keeps what the guest says about owners, modes and
// special files in extended attributes: a guest's root can make a file
// "setuid root" or a "device node" only in its own view, while on the host
// it is a plain file with mode 0600 (folders 0700) belonging to QEMU's user,
// and a guest's symbolic link is a plain file too, so nothing it makes can
// lead the host out of the folder. A workspace with a read-write share runs
// its QEMU as that folder's owner (a static DAC label), so what the guest
// writes belongs to the folder's owner, never to root or another user (and
// one with only read-only shares of one user, as that user, who can enter
// the home folder they are in). Its
// group stays libvirt's QEMU group (the one of /var/lib/libvirt/qemu, where
// libvirt keeps each domain's private folder), and the files get no group
// permission.
//
// virtiofs would be faster, but Debian 12's virtiofsd (QEMU 7.2's) runs as
// root and writes with the guest's uids (root-owned and setuid files on the
// host), and has no id mapping; it is not used.

// Owner is a user and group QEMU runs as.
type Owner struct {
	UID, GID int
}

// checkShares makes sure every shared host folder exists, is a folder and
// is named by its real path (no symbolic link on the way: QEMU opens the
// folder by name at every start, so the name must be the folder that was
// checked), and returns whom QEMU will run as: the owner of the read-write
// ones (one user, not root), else the one user (not root) owning the
// read-only ones, who can read them in a home folder others may not enter
// (Debian 12 makes homes 0700); nil means libvirt's QEMU user. A remote
// host's folders are not ours to see.
func (d *Driver) checkShares(shares []ShareSpec) (*Owner, error) {
	if d.uri.Host != "" {
		for _, sh := range shares {
			if !sh.ReadOnly {
				return nil, fmt.Errorf("share %q: read-write shares need a local libvirt (QEMU runs as the folder's owner)", sh.Tag)
			}
		}
		return nil, nil
	}
	var errs []error
	var owner *Owner
	roOwners := map[int]bool{}
	for _, sh := range shares {
		fi, err := os.Lstat(sh.HostPath)
		switch {
		case errors.Is(err, os.ErrNotExist):
			errs = append(errs, fmt.Errorf("share %q: host folder %s does not exist", sh.Tag, sh.HostPath))
			continue
		case err != nil:
			errs = append(errs, fmt.Errorf("share %q: host folder %s: %w", sh.Tag, sh.HostPath, err))
			continue
		case fi.Mode()&os.ModeSymlink != 0:
			errs = append(errs, fmt.Errorf("share %q: host path %s is a symbolic link: name the folder itself", sh.Tag, sh.HostPath))
			continue
		case !fi.IsDir():
			errs = append(errs, fmt.Errorf("share %q: host path %s is not a folder", sh.Tag, sh.HostPath))
			continue
		}
		if real, err := filepath.EvalSymlinks(sh.HostPath); err != nil || real != sh.HostPath {
			errs = append(errs, fmt.Errorf("share %q: host path %s goes through a symbolic link (to %s): name the folder itself", sh.Tag, sh.HostPath, real))
			continue
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			errs = append(errs, fmt.Errorf("share %q: cannot read the owner of %s", sh.Tag, sh.HostPath))
			continue
		}
		if sh.ReadOnly {
			if st.Uid != 0 {
				roOwners[int(st.Uid)] = true
			}
			continue
		}
		o := Owner{UID: int(st.Uid), GID: qemuGroup()}
		switch {
		case o.UID == 0:
			errs = append(errs, fmt.Errorf("share %q: read-write folder %s belongs to root: QEMU runs as a read-write share's owner, never as root; share a folder of a user", sh.Tag, sh.HostPath))
		case owner != nil && owner.UID != o.UID:
			errs = append(errs, fmt.Errorf("share %q: read-write folder %s belongs to uid %d, another read-write share to uid %d: QEMU runs as one user", sh.Tag, sh.HostPath, o.UID, owner.UID))
		case owner == nil:
			owner = &o
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if owner == nil && len(roOwners) == 1 {
		for uid := range roOwners {
			owner = &Owner{UID: uid, GID: qemuGroup()}
		}
	}
	if owner != nil && d.domType == "kvm" {
		if err := canUseKVM(owner.UID); err != nil {
			return nil, err
		}
	}
	return owner, nil
}

// qemuGroup is the group libvirt runs QEMU with: the group of its QEMU state
// folder (libvirt-qemu on Debian), else that of qemu.conf's user.
func qemuGroup() int {
	if fi, err := os.Stat("/var/lib/libvirt/qemu"); err == nil {
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			return int(st.Gid)
		}
	}
	_, gid, _ := qemuOwner()
	return gid
}

// canUseKVM: QEMU running as uid gets uid's groups; with KVM it must open
// /dev/kvm, which belongs to a group (kvm).
func canUseKVM(uid int) error {
	fi, err := os.Stat("/dev/kvm")
	if err != nil {
		return nil
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || fi.Mode().Perm()&0o006 == 0o006 {
		return nil
	}
	u, err := user.LookupId(strconv.Itoa(uid))
	if err != nil {
		return fmt.Errorf("a read-write share's owner (uid %d) is no user of this host: %w", uid, err)
	}
	gids, _ := u.GroupIds()
	want := strconv.Itoa(int(st.Gid))
	for _, g := range append(gids, u.Gid) {
		if g == want {
			return nil
		}
	}
	name := want
	if g, err := user.LookupGroupId(want); err == nil {
		name = g.Name
	}
	return fmt.Errorf("a read-write share's owner %s must be in group %s to run the VM with KVM (QEMU runs as the folder's owner): sudo adduser %s %s", u.Username, name, u.Username, name)
}
