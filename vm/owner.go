package vm

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// Ownership. Several daemons may share one libvirtd (a user's daemon and a
// test's, or two users' daemons with their own state folders), so a daemon
// must see and touch only what it made. Each daemon has an identity: 32
// random hex digits, made once and kept in STATE/daemon-id (mode 0600).
//
//   - Its domains carry the identity in their metadata (<ws:owner>); a
//     domain without our identity is not ours, whatever its name.
//   - Every libvirt object of a workspace is named ws-SHORT-NAME, SHORT
//     being the identity's first 8 digits: two daemons' workspaces "demo"
//     are ws-1a2b3c4d-demo and ws-9f8e7d6c-demo, and never collide.
//     Networks and nwfilters have no metadata in libvirt 9.0, so for them
//     the name is the stamp.
//   - The storage pool is ours when its folder is STATE/pool: a pool of the
//     same name that points elsewhere is refused (see pool.go).
//
// Domains made before identities existed are named ws-NAME and carry no
// owner. The daemon whose state folder holds their files (the overlay in
// STATE/pool, the agent socket in STATE/workspaces/NAME) adopts them at
// start: it writes its identity into their metadata and keeps their old
// names. No other daemon lists or touches them.

// IdentityFile is the file in the state folder that holds a daemon's
// identity.
const IdentityFile = "daemon-id"

// DefaultStateDir is the daemon's state folder unless told otherwise.
const DefaultStateDir = "/var/lib/workspace"

var identityRE = regexp.MustCompile(`^[0-9a-f]{32}$`)

// shortIDLen is how much of the identity goes into libvirt names.
const shortIDLen = 8

// LoadIdentity returns the daemon identity kept in stateDir, making it
// (readable by root only) the first time.
func LoadIdentity(stateDir string) (string, error) {
	path := filepath.Join(stateDir, IdentityFile)
	id, err := readIdentity(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return id, err
	}
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("daemon identity: %w", err)
	}
	tmp, err := os.CreateTemp(stateDir, ".daemon-id-*")
	if err != nil {
		return "", fmt.Errorf("daemon identity: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.WriteString(hex.EncodeToString(b) + "\n")
	if err == nil {
		err = tmp.Chmod(0o600)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("daemon identity %s: %w", path, err)
	}
	// A link fails when the file exists: of two daemons starting on one
	// state folder at once, the second reads the first one's identity.
	if err := os.Link(tmp.Name(), path); err != nil && !errors.Is(err, fs.ErrExist) {
		return "", fmt.Errorf("daemon identity %s: %w", path, err)
	}
	if dir, err := os.Open(stateDir); err == nil {
		_ = dir.Sync()
		dir.Close()
	}
	return readIdentity(path)
}

func readIdentity(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", err
		}
		return "", fmt.Errorf("daemon identity: %w", err)
	}
	id := strings.TrimSpace(string(b))
	if !identityRE.MatchString(id) {
		return "", fmt.Errorf("daemon identity %s: %q is not 32 lower-case hex digits (restore the file; a new identity would orphan this daemon's workspaces)", path, truncate(id, 40))
	}
	return id, nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// DefaultPoolName is the storage pool of a daemon with state folder
// stateDir when no pool is named: "workspace" for DefaultStateDir, else
// "workspace-" and 8 hex digits of the folder's path's SHA-256, so that a
// daemon with another state folder never uses another daemon's pool.
func DefaultPoolName(stateDir string) string {
	abs, err := filepath.Abs(stateDir)
	if err != nil {
		abs = stateDir
	}
	abs = filepath.Clean(abs)
	if abs == DefaultStateDir {
		return "workspace"
	}
	sum := sha256.Sum256([]byte(abs))
	return "workspace-" + hex.EncodeToString(sum[:4])
}

// Identity is the daemon identity this driver stamps its domains with.
func (d *Driver) Identity() string { return d.id }

// prefix starts the libvirt name of every object this driver makes.
func (d *Driver) prefix() string { return "ws-" + d.id[:shortIDLen] + "-" }

// DomainName is the libvirt name of workspace's domain, network, nwfilter
// and overlay (with ".qcow2"): ws-SHORT-NAME, or the old ws-NAME of a
// workspace adopted from an earlier version.
func (d *Driver) DomainName(workspace string) string {
	d.namesMu.Lock()
	defer d.namesMu.Unlock()
	if n, ok := d.legacy[workspace]; ok {
		return n
	}
	return d.prefix() + workspace
}

// ownedWorkspace returns the workspace of a domain name this driver owns
// (by name: events of undefined domains have nothing else to go by).
func (d *Driver) ownedWorkspace(domain string) (string, bool) {
	if ws, ok := strings.CutPrefix(domain, d.prefix()); ok && ws != "" {
		return ws, true
	}
	d.namesMu.Lock()
	defer d.namesMu.Unlock()
	for ws, n := range d.legacy {
		if n == domain {
			return ws, true
		}
	}
	ws, ok := d.legacyGone[domain]
	return ws, ok
}

func (d *Driver) setLegacy(workspace, domain string) {
	d.namesMu.Lock()
	defer d.namesMu.Unlock()
	d.legacy[workspace] = domain
}

// forgetLegacy drops an adopted workspace's old name when it is deleted
// (a new workspace of that name gets a new name); its events, which may
// come after, are still recognised.
func (d *Driver) forgetLegacy(workspace string) {
	d.namesMu.Lock()
	defer d.namesMu.Unlock()
	if n, ok := d.legacy[workspace]; ok {
		d.legacyGone[n] = workspace
		delete(d.legacy, workspace)
	}
}

func (d *Driver) legacyNames() map[string]string {
	d.namesMu.Lock()
	defer d.namesMu.Unlock()
	out := make(map[string]string, len(d.legacy))
	for ws, n := range d.legacy {
		out[ws] = n
	}
	return out
}
