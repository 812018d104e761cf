package vm

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/workspace-sandbox/workspace/internal/libvirttest"
)

func TestLoadIdentity(t *testing.T) {
	dir := t.TempDir()
	id, err := LoadIdentity(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !identityRE.MatchString(id) {
		t.Fatalf("identity %q", id)
	}
	fi, err := os.Stat(filepath.Join(dir, IdentityFile))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("identity file mode %v, want 0600", fi.Mode().Perm())
	}
	again, err := LoadIdentity(dir)
	if err != nil || again != id {
		t.Fatalf("second load: %q %v, want %q", again, err, id)
	}
	if other, _ := LoadIdentity(t.TempDir()); other == id {
		t.Fatal("two state folders got one identity")
	}
	if m, _ := filepath.Glob(filepath.Join(dir, ".daemon-id-*")); len(m) > 0 {
		t.Fatalf("temporary files left: %v", m)
	}

	// A damaged identity is refused, not replaced: a new one would orphan
	// the daemon's workspaces.
	os.WriteFile(filepath.Join(dir, IdentityFile), []byte("not hex\n"), 0o600)
	if _, err := LoadIdentity(dir); err == nil || !strings.Contains(err.Error(), "not 32 lower-case hex digits") {
		t.Fatalf("damaged identity: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, IdentityFile)); string(b) != "not hex\n" {
		t.Fatalf("damaged identity was changed: %q", b)
	}
}

// The tests' sweep of stale objects finds a dead test daemon's objects by
// its identity file and name prefix: it must agree with the driver.
func TestSweepKnowsOurNames(t *testing.T) {
	d := &Driver{id: testIdentity}
	if libvirttest.IdentityFile != IdentityFile || libvirttest.NamePrefix(testIdentity) != d.prefix() {
		t.Fatalf("libvirttest: %s %s, vm: %s %s", libvirttest.IdentityFile, libvirttest.NamePrefix(testIdentity), IdentityFile, d.prefix())
	}
}

func TestDefaultPoolName(t *testing.T) {
	if got := DefaultPoolName(DefaultStateDir); got != "workspace" {
		t.Errorf("default state folder: pool %q", got)
	}
	if got := DefaultPoolName(DefaultStateDir + "/"); got != "workspace" {
		t.Errorf("default state folder with a slash: pool %q", got)
	}
	a, b := DefaultPoolName("/srv/a/state"), DefaultPoolName("/srv/b/state")
	if a == b || !strings.HasPrefix(a, "workspace-") || len(a) != len("workspace-")+8 {
		t.Errorf("pools %q and %q", a, b)
	}
	if DefaultPoolName("/srv/a/state") != a {
		t.Error("pool name is not stable")
	}
}

func TestOwnedNames(t *testing.T) {
	d := &Driver{id: testIdentity, legacy: map[string]string{"old": "ws-old"}, legacyGone: map[string]string{}}
	if got := d.DomainName("acme"); got != "ws-0123abcd-acme" {
		t.Errorf("DomainName(acme) = %q", got)
	}
	if got := d.DomainName("old"); got != "ws-old" {
		t.Errorf("adopted workspace's name %q", got)
	}
	for name, want := range map[string]string{"ws-0123abcd-acme": "acme", "ws-old": "old", "ws-0123abcd-a-b": "a-b"} {
		if ws, ok := d.ownedWorkspace(name); !ok || ws != want {
			t.Errorf("ownedWorkspace(%s) = %q %v, want %q", name, ws, ok, want)
		}
	}
	for _, name := range []string{"ws-acme", "ws-9f8e7d6c-acme", "ws-0123abcd-", "other", "ws-0123abcdacme"} {
		if ws, ok := d.ownedWorkspace(name); ok {
			t.Errorf("ownedWorkspace(%s) = %q: not ours", name, ws)
		}
	}
	d.forgetLegacy("old")
	if got := d.DomainName("old"); got != "ws-0123abcd-old" {
		t.Errorf("a new workspace of a deleted adopted one's name: %q", got)
	}
	if ws, ok := d.ownedWorkspace("ws-old"); !ok || ws != "old" {
		t.Error("the deleted adopted workspace's late events are lost")
	}
}

func TestParseDomainFiles(t *testing.T) {
	in := goldenInput("nat", "vnc", "qemu", true)
	x, err := renderDomain(in)
	if err != nil {
		t.Fatal(err)
	}
	files, err := parseDomainFiles(x)
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(files, " ")
	for _, want := range []string{in.Overlay, in.Paths.AgentSocket, in.Paths.QGASocket} {
		if !strings.Contains(got, want) {
			t.Errorf("files %v lack %s", files, want)
		}
	}
	d := &Driver{id: testIdentity, opts: Options{StateDir: "/var/lib/workspace"}}
	if !d.holdsFiles(string(x), "ws-0123abcd-acme", "acme") {
		t.Error("a domain with its files in the state folder is not held")
	}
	other := &Driver{id: testIdentity, opts: Options{StateDir: "/srv/other"}}
	if other.holdsFiles(string(x), "ws-0123abcd-acme", "acme") {
		t.Error("another state folder holds the domain's files")
	}
}
