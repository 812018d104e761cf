package daemon

import (
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/workspace-sandbox/workspace/api"
	"github.com/workspace-sandbox/workspace/internal/safetext"
	"github.com/workspace-sandbox/workspace/profiles"
)

// sharePolicy decides which host folders a profile may share. A profile is
// untrusted (a team's file); the daemon is root and the guest is hostile.
// A share must be an existing folder strictly below one of the share roots
// (--share-root; by default the home folder of the user asking, from the
// peer credentials of the API connection), named by its real path once
// symbolic links are resolved, never "/", a system folder or anything in
// one, a hidden folder, the daemon's state folder, anything in it or
// holding it; and unless root asks, it must belong to the user asking (who
// could not otherwise read it, let alone let a guest write it).
type sharePolicy struct {
	roots    []string // --share-root; none: the requester's home
	stateDir string
	home     func(uid uint32) (string, error)
}

// requester is who asked, from SO_PEERCRED; ok is false for a caller
// without peer credentials (an in-process test): the daemon's own user.
type requester struct {
	uid uint32
}

func requesterOf(pc peerCred, ok bool) requester {
	if !ok {
		return requester{uid: uint32(os.Getuid())}
	}
	return requester{uid: pc.uid}
}

func userHome(uid uint32) (string, error) {
	u, err := user.LookupId(strconv.FormatUint(uint64(uid), 10))
	if err != nil {
		return "", fmt.Errorf("uid %d has no home folder on this host: %w", uid, err)
	}
	if u.HomeDir == "" {
		return "", fmt.Errorf("uid %d has no home folder on this host", uid)
	}
	return u.HomeDir, nil
}

// check resolves every share's host path and returns the profile with the
// resolved paths (what QEMU will open), or every problem, each with where
// the path was written (positions from the CLI).
func (p sharePolicy) check(prof *profiles.Profile, who requester, positions map[string]string) (*profiles.Profile, error) {
	if len(prof.Shares) == 0 {
		return prof, nil
	}
	roots, why := p.rootsFor(who)
	out := *prof
	out.Shares = append([]profiles.Share(nil), prof.Shares...)
	var errs []error
	for i, sh := range prof.Shares {
		where := "share." + sh.Tag + ".host"
		if pos := positions[where]; pos != "" {
			where = safetext.Term(pos) + ": " + where
		}
		real, err := p.checkOne(sh, roots, why, who)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", where, err))
			continue
		}
		out.Shares[i].Host = real
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("%w: %w", api.ErrInvalid, err)
	}
	return &out, nil
}

func (p sharePolicy) rootsFor(who requester) ([]string, string) {
	if len(p.roots) > 0 {
		return p.roots, "the daemon's share roots (--share-root)"
	}
	if p.home == nil {
		return nil, "no share root"
	}
	home, err := p.home(who.uid)
	if err != nil {
		return nil, err.Error()
	}
	return []string{home}, fmt.Sprintf("your home folder %s (the daemon shares nothing else unless started with --share-root)", home)
}

func (p sharePolicy) checkOne(sh profiles.Share, roots []string, why string, who requester) (string, error) {
	host := sh.Host
	if !filepath.IsAbs(host) || filepath.Clean(host) != host {
		return "", fmt.Errorf("%q is not a clean absolute path", host)
	}
	if err := profiles.CheckShareFolder(host); err != nil {
		return "", err
	}
	real, err := filepath.EvalSymlinks(host)
	if err != nil {
		if u := errors.Unwrap(err); u != nil {
			err = u
		}
		return "", fmt.Errorf("%q: %w", host, err)
	}
	shown := fmt.Sprintf("%q", host)
	if real != host {
		shown = fmt.Sprintf("%q (a link to %q)", host, real)
		if err := profiles.CheckShareFolder(real); err != nil {
			return "", fmt.Errorf("%s: %w", shown, err)
		}
	}
	fi, err := os.Stat(real)
	if err != nil {
		return "", fmt.Errorf("%s: %w", shown, err)
	}
	if !fi.IsDir() {
		return "", fmt.Errorf("%s is not a folder", shown)
	}
	if p.stateDir != "" {
		state := p.stateDir
		if r, err := filepath.EvalSymlinks(state); err == nil {
			state = r
		}
		if within(real, state) || within(state, real) {
			return "", fmt.Errorf("%s is or holds the daemon's state folder %s (disks, diary, keys)", shown, state)
		}
	}
	below := false
	for _, root := range roots {
		if r, err := filepath.EvalSymlinks(root); err == nil {
			root = r
		}
		if real != root && within(real, root) {
			below = true
			break
		}
	}
	if !below {
		return "", fmt.Errorf("%s is not a folder below %s", shown, why)
	}
	if who.uid != 0 {
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok || st.Uid != who.uid {
			return "", fmt.Errorf("%s does not belong to you (uid %d): only your own folders may be shared", shown, who.uid)
		}
	}
	return real, nil
}

// within says whether path is dir or inside it.
func within(path, dir string) bool {
	if dir == "/" {
		return true
	}
	return path == dir || strings.HasPrefix(path, dir+"/")
}

// recheckShares runs before every start: QEMU opens each share by name, so
// each must still be the folder checked at create, with no symbolic link
// put on the way since.
func recheckShares(p *profiles.Profile) error {
	if p == nil {
		return nil
	}
	var errs []error
	for _, sh := range p.Shares {
		real, err := filepath.EvalSymlinks(sh.Host)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("share %q: host folder %s: %w", sh.Tag, sh.Host, err))
		case real != sh.Host:
			errs = append(errs, fmt.Errorf("share %q: host folder %s is now a link to %s: not started (recreate the workspace to share that)", sh.Tag, sh.Host, real))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: %w", api.ErrConflict, err)
	}
	return nil
}
