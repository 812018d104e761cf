package daemon

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/workspace-sandbox/workspace/api"
	"github.com/workspace-sandbox/workspace/profiles"
	"github.com/workspace-sandbox/workspace/vm"
)

// shareProfile is a valid profile sharing host (read-write), as the CLI
// sends it: with where the share's host was written.
func shareRequest(name, host string) api.CreateRequest {
	p := &profiles.Profile{Image: "test", CPUs: 1, Memory: 512 << 20, Disk: 2 << 30, Network: profiles.Network{Mode: "none"},
		Display: profiles.Display{Type: "none"}, Clipboard: "off", Tracking: profiles.DefaultTracking,
		Shares: []profiles.Share{{Tag: "src", Host: host}}}
	return api.CreateRequest{Name: name, ProfilePath: "/team/acme.hcl", Profile: p,
		Positions: map[string]string{"share.src.host": "/team/acme.hcl:7:10", "share.src": "/team/acme.hcl:6:1", "memory": "/team/acme.hcl:3:10", "cpus": "/team/acme.hcl:2:8", "disk": "/team/acme.hcl:4:8"}}
}

// TestCreateRefusesUnsafeShares: the daemon checks every share again on the
// real folders, whatever the CLI said: "/", a system folder, the daemon's
// state folder (and what holds it), a folder outside the share roots, a
// symbolic link out of them, a missing folder. Each error names the
// profile's file:line, and nothing is made.
func TestCreateRefusesUnsafeShares(t *testing.T) {
	hv := newFakeHV()
	roots := t.TempDir()
	outside := t.TempDir()
	var state string
	c, d := startDaemonWith(t, hv, func(cfg *Config) {
		// The state folder is below the share root, as a careless
		// --share-root would have it.
		state = filepath.Join(roots, "state")
		os.Mkdir(state, 0o711)
		cfg.StateDir = state
		cfg.ShareRoots = []string{roots}
	})
	_ = d
	if _, err := importBytes(t, c, "test", qcow2Bytes(1<<30, false, 4096)); err != nil {
		t.Fatal(err)
	}
	work := filepath.Join(roots, "acme", "src")
	os.MkdirAll(work, 0o755)
	os.Symlink(outside, filepath.Join(roots, "escape"))
	os.Symlink("/etc", filepath.Join(roots, "etc-link"))
	os.WriteFile(filepath.Join(roots, "file"), []byte("x"), 0o644)

	cases := map[string]string{
		"/":                               `"/" would give the guest the whole host`,
		"/etc":                            "is a system folder",
		state:                             "the daemon's state folder",
		filepath.Join(state, "images"):    "the daemon's state folder",
		outside:                           "is not a folder below the daemon's share roots",
		filepath.Join(roots, "escape"):    "(a link to \"" + outside + "\") is not a folder below",
		filepath.Join(roots, "etc-link"):  `(a link to "/etc"): "/etc" is a system folder`,
		filepath.Join(roots, "missing"):   "no such file or directory",
		filepath.Join(roots, "file"):      "is not a folder",
		roots:                             "holds the daemon's state folder",
		filepath.Join(roots, ".hidden/x"): "hidden folder",
	}
	for host, want := range cases {
		_, err := c.Create(context.Background(), shareRequest("acme", host))
		if !errors.Is(err, api.ErrInvalid) || !strings.Contains(err.Error(), want) {
			t.Errorf("share %s: want %q, got %v", host, want, err)
			continue
		}
		if !strings.Contains(err.Error(), "/team/acme.hcl:7:10: share.src.host") {
			t.Errorf("share %s: the error does not name the profile's line: %v", host, err)
		}
	}
	if len(hv.domains) != 0 {
		t.Fatalf("a refused create made %d domains", len(hv.domains))
	}
	// A folder below the root is shared by its real path.
	os.Symlink(work, filepath.Join(roots, "work-link"))
	if _, err := c.Create(context.Background(), shareRequest("acme", filepath.Join(roots, "work-link"))); err != nil {
		t.Fatal(err)
	}
	if got := hv.specs["acme"].Shares; len(got) != 1 || got[0].HostPath != work {
		t.Fatalf("the share given to the VM is %+v, not the real folder %s", got, work)
	}
	// A link put in the folder's place after create stops the next start.
	os.Rename(work, work+".moved")
	os.Symlink("/etc", work)
	if _, err := c.Start(context.Background(), "acme", api.StartRequest{}); !errors.Is(err, api.ErrConflict) || !strings.Contains(err.Error(), `is now a link to /etc`) {
		t.Fatalf("start with a share swapped for a link: %v", err)
	}
}

// TestShareRootDefaultIsTheRequestersHome: without --share-root, a user may
// share folders below their own home and nothing else, and only their own.
func TestShareRootDefaultIsTheRequestersHome(t *testing.T) {
	home := t.TempDir()
	p := sharePolicy{home: func(uid uint32) (string, error) {
		if uid == 1000 {
			return home, nil
		}
		return "", errors.New("no such user")
	}}
	mine := filepath.Join(home, "work")
	os.Mkdir(mine, 0o755)
	other := t.TempDir()
	req := shareRequest("x", mine)
	// The folder belongs to root here (the test runs as root): uid 1000
	// may not share it, root may not share below uid 1000's home by
	// default (root's home is /root, a system folder).
	if _, err := p.check(req.Profile, requester{uid: 1000}, req.Positions); err == nil || !strings.Contains(err.Error(), "does not belong to you (uid 1000)") {
		t.Errorf("a folder of another user: %v", err)
	}
	os.Chown(mine, 1000, 1000)
	if got, err := p.check(req.Profile, requester{uid: 1000}, req.Positions); err != nil || got.Shares[0].Host != mine {
		t.Errorf("uid 1000 sharing below its home: %+v %v", got, err)
	}
	req = shareRequest("x", other)
	if _, err := p.check(req.Profile, requester{uid: 1000}, req.Positions); err == nil || !strings.Contains(err.Error(), "is not a folder below your home folder "+home) {
		t.Errorf("a folder outside the home: %v", err)
	}
	if _, err := p.check(req.Profile, requester{uid: 2000}, req.Positions); err == nil || !strings.Contains(err.Error(), "no such user") {
		t.Errorf("a user without a home: %v", err)
	}
}

// TestCreateChecksHostResources: more CPUs or memory than the host has, or
// a disk larger than the pool's free space, is refused at create with the
// profile's line; the limits are libvirt's (NodeGetInfo, pool info).
func TestCreateChecksHostResources(t *testing.T) {
	hv := newFakeHV()
	hv.res = &vm.Resources{CPUs: 2, MemoryBytes: 4 << 30, PoolFree: 10 << 30}
	c, _ := startDaemon(t, hv)
	if _, err := importBytes(t, c, "test", qcow2Bytes(1<<30, false, 4096)); err != nil {
		t.Fatal(err)
	}
	req := shareRequest("big", "")
	req.Profile.Shares = nil
	req.Profile.CPUs, req.Profile.Memory, req.Profile.Disk = 4, 8<<30, 20<<30
	_, err := c.Create(context.Background(), req)
	for _, want := range []string{
		"/team/acme.hcl:2:8: cpus: 4 CPUs is more than this host's 2",
		"/team/acme.hcl:3:10: memory: 8GiB is more than this host's 4GiB of memory",
		"/team/acme.hcl:4:8: disk: 20GiB is more than the 10GiB free in the storage pool",
	} {
		if !errors.Is(err, api.ErrInvalid) || !strings.Contains(err.Error(), want) {
			t.Errorf("want %q in %v", want, err)
		}
	}
	if len(hv.domains) != 0 {
		t.Fatal("a refused create made a domain")
	}
	req.Profile.CPUs, req.Profile.Memory, req.Profile.Disk = 2, 4<<30, 10<<30
	if _, err := c.Create(context.Background(), req); err != nil {
		t.Fatalf("a profile within the host: %v", err)
	}
}

// TestCreateValidateNamesLines: what Validate refuses at create (a profile
// the CLI did not check, or a hand-made request) names the lines too.
func TestCreateValidateNamesLines(t *testing.T) {
	c, _ := startDaemon(t, newFakeHV())
	req := shareRequest("x", "/")
	req.Profile.Memory = profiles.Size(4 << 50)
	_, err := c.Create(context.Background(), req)
	for _, want := range []string{"/team/acme.hcl:7:10: share.src.host: \"/\" would give", "/team/acme.hcl:3:10: memory: must be at most 4TiB"} {
		if !errors.Is(err, api.ErrInvalid) || !strings.Contains(err.Error(), want) {
			t.Errorf("want %q in %v", want, err)
		}
	}
}
