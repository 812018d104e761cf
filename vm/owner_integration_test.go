package vm

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	libvirt "github.com/digitalocean/go-libvirt"
	"github.com/hashicorp/go-hclog"
)

// ownSpec is a small workspace that is never booted: ownership is about
// names and metadata.
func ownSpec(name, net string) Spec {
	return Spec{Name: name, VCPUs: 1, MemoryBytes: 128 << 20, DiskBytes: 1 << 30, BaseVolume: "base.raw", BaseFormat: "raw",
		NetworkMode: net, DisplayType: "none", Meta: Metadata{Workspace: name, Image: "base", CreatedAt: time.Now()}}
}

func listed(t *testing.T, d *Driver) map[string]Info {
	t.Helper()
	infos, err := d.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]Info{}
	for _, i := range infos {
		out[i.Meta.Workspace] = i
	}
	return out
}

// reopen is another driver on d's state folder and pool: the daemon
// restarted.
func reopen(t *testing.T, d *Driver, uri string) *Driver {
	t.Helper()
	log := hclog.New(&hclog.LoggerOptions{Output: os.Stderr, Level: hclog.Warn})
	d2, err := New(context.Background(), Options{URI: uri, StateDir: d.opts.StateDir, PoolName: d.opts.PoolName, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d2.Close() })
	return d2
}

// Two daemons on one libvirtd, each with its own state folder: both make a
// workspace of the same name (and network mode, so networks and filters
// too), and each sees, lists, receives events for and deletes only its own.
func TestLiveTwoDaemons(t *testing.T) {
	a, uri := liveDriverPrefix(t, "wstest-own")
	b, _ := liveDriverPrefix(t, "wstest-own")
	ctx := context.Background()
	if a.Identity() == b.Identity() || a.prefix() == b.prefix() {
		t.Fatalf("two state folders, one identity: %s %s", a.Identity(), b.Identity())
	}
	base := make([]byte, 1<<20)
	for _, d := range []*Driver{a, b} {
		if _, err := d.UploadVolume(ctx, "base.raw", "raw", uint64(len(base)), bytes.NewReader(base), int64(len(base))); err != nil {
			t.Fatal(err)
		}
	}
	events, err := a.Events(ctx)
	if err != nil {
		t.Fatal(err)
	}
	same := "wstest-own-" + randName(3)
	onlyB, onlyA := same+"-b", same+"-a"
	for _, c := range []struct {
		d    *Driver
		name string
	}{{a, same}, {b, same}, {b, onlyB}, {a, onlyA}} {
		if err := c.d.Create(ctx, ownSpec(c.name, "nat")); err != nil {
			t.Fatalf("create %s: %v", c.name, err)
		}
	}
	if a.DomainName(same) == b.DomainName(same) {
		t.Fatalf("both daemons named their workspace %s", a.DomainName(same))
	}
	for _, args := range [][]string{{"dumpxml", a.DomainName(same)}, {"dumpxml", b.DomainName(same)},
		{"net-dumpxml", a.DomainName(same)}, {"net-dumpxml", b.DomainName(same)},
		{"nwfilter-dumpxml", a.DomainName(same)}, {"nwfilter-dumpxml", b.DomainName(same)}} {
		if out := virsh(uri, args...); !strings.Contains(out, args[1]) {
			t.Errorf("virsh %v: %s", args, out)
		}
	}
	if x := virsh(uri, "dumpxml", b.DomainName(same)); !strings.Contains(x, ">"+b.Identity()+"</wso:owner>") {
		t.Errorf("b's domain is not stamped with b's identity:\n%s", x)
	}

	la, lb := listed(t, a), listed(t, b)
	if len(la) != 2 || la[same].Name != a.DomainName(same) || la[onlyA].Name == "" || la[same].Meta.Owner != a.Identity() {
		t.Errorf("a lists %+v", la)
	}
	if len(lb) != 2 || lb[same].Name != b.DomainName(same) || lb[onlyB].Name == "" {
		t.Errorf("b lists %+v", lb)
	}
	if _, err := a.Info(ctx, onlyB); !errors.Is(err, ErrNotFound) {
		t.Errorf("a's info of b's workspace: %v", err)
	}
	if err := a.Delete(ctx, onlyB); !errors.Is(err, ErrNotFound) {
		t.Errorf("a deleting b's workspace: %v", err)
	}
	if err := a.Start(ctx, onlyB); !errors.Is(err, ErrNotFound) {
		t.Errorf("a starting b's workspace: %v", err)
	}
	if _, err := b.Info(ctx, onlyB); err != nil {
		t.Errorf("b's workspace after a tried to delete it: %v", err)
	}

	// a's event stream carries a's workspaces only: b's define came
	// before a's, so it would have come first.
	timeout := time.After(15 * time.Second)
	for seenA := false; !seenA; {
		select {
		case ev := <-events:
			if ev.Workspace == onlyB {
				t.Errorf("a got an event of b's workspace: %+v", ev)
			}
			seenA = ev.Workspace == onlyA && ev.Type == "defined"
		case <-timeout:
			t.Fatal("a never got the event of its own workspace's definition")
		}
	}

	// Deleting and sweeping a's workspaces leaves b's of the same name.
	if err := a.Delete(ctx, same); err != nil {
		t.Fatal(err)
	}
	if err := a.Sweep(ctx, "wstest-own"); err != nil {
		t.Fatal(err)
	}
	if la := listed(t, a); len(la) != 0 {
		t.Errorf("a lists after its sweep: %+v", la)
	}
	if lb := listed(t, b); len(lb) != 2 {
		t.Errorf("b lists after a's delete and sweep: %+v", lb)
	}
	for _, args := range [][]string{{"net-dumpxml", b.DomainName(same)}, {"nwfilter-dumpxml", b.DomainName(same)}, {"vol-list", b.opts.PoolName}} {
		if out := virsh(uri, args...); !strings.Contains(out, b.DomainName(same)) {
			t.Errorf("b's %s is gone after a's delete: %s", args[0], out)
		}
	}
	if out := virsh(uri, "net-list", "--all"); strings.Contains(out, a.DomainName(same)) {
		t.Errorf("a's network is left:\n%s", out)
	}
}

// A storage pool of the name asked for that keeps its volumes elsewhere is
// another daemon's: refused, with the folders in the message. Without a
// name, a state folder gets a pool of its own, named after it.
func TestLivePoolOwnership(t *testing.T) {
	a, uri := liveDriverPrefix(t, "wstest-own")
	log := hclog.New(&hclog.LoggerOptions{Output: os.Stderr, Level: hclog.Warn})
	dir, err := os.MkdirTemp("", "wsvm") // swept if this run is killed
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	_ = os.Chmod(dir, 0o755)
	_, err = New(context.Background(), Options{URI: uri, StateDir: dir, PoolName: a.opts.PoolName, Logger: log})
	if err == nil || !strings.Contains(err.Error(), "keeps its volumes in "+a.poolDir()) || !strings.Contains(err.Error(), filepath.Join(dir, "pool")) {
		t.Fatalf("another daemon's pool: %v", err)
	}

	d, err := New(context.Background(), Options{URI: uri, StateDir: dir, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if l, p, err := d.pool(); err == nil {
			_ = l.StoragePoolDestroy(p)
			_ = l.StoragePoolUndefine(p)
		}
		d.Close()
	})
	if d.opts.PoolName != DefaultPoolName(dir) || d.opts.PoolName == a.opts.PoolName {
		t.Fatalf("default pool %q", d.opts.PoolName)
	}
	if x := virsh(uri, "pool-dumpxml", d.opts.PoolName); !strings.Contains(x, "<path>"+filepath.Join(dir, "pool")+"</path>") {
		t.Fatalf("default pool's folder:\n%s", x)
	}
	// A daemon restarted on that folder without a name finds its pool.
	d2 := reopen(t, d, uri)
	if d2.opts.PoolName != d.opts.PoolName || d2.Identity() != d.Identity() {
		t.Fatalf("restarted: pool %q identity %s", d2.opts.PoolName, d2.Identity())
	}
}

// A domain made by an earlier version (named ws-NAME, no owner) is adopted
// by the daemon whose state folder holds its files, and by no other.
func TestLiveAdoptsEarlierDomains(t *testing.T) {
	a, uri := liveDriverPrefix(t, "wstest-own")
	b, _ := liveDriverPrefix(t, "wstest-own")
	ctx := context.Background()
	l, pool, err := a.pool()
	if err != nil {
		t.Fatal(err)
	}
	name := "wstest-own-old" + randName(3)
	old := "ws-" + name
	t.Cleanup(func() { virsh(uri, "undefine", old) })
	ov, err := l.StorageVolCreateXML(pool, string(renderVolume(old+".qcow2", "qcow2", 1<<30, "", "")), 0)
	if err != nil {
		t.Fatal(err)
	}
	ovPath, _ := l.StorageVolGetPath(ov)
	x, err := renderDomain(domainInput{Spec: ownSpec(name, "none"), Name: old, Owner: "none", Type: a.domType,
		Paths: WorkspacePaths(a.opts.StateDir, name), Overlay: ovPath})
	if err != nil {
		t.Fatal(err)
	}
	x = bytes.Replace(x, []byte(renderOwner("none")), nil, 1)
	dom, err := l.DomainDefineXMLFlags(string(x), libvirt.DomainDefineValidate)
	if err != nil {
		t.Fatal(err)
	}
	// Running (nothing to boot: the firmware waits), as a user's workspace
	// would be when the daemon is upgraded.
	wsDir := WorkspacePaths(a.opts.StateDir, name).Dir
	if err := os.MkdirAll(wsDir, 0o770); err != nil {
		t.Fatal(err)
	}
	if uid, gid, ok := qemuOwner(); ok {
		_ = os.Chown(wsDir, uid, gid)
	}
	if err := l.DomainCreate(dom); err != nil {
		t.Fatal(err)
	}

	// Running daemons do not pick it up; b, restarted, does not adopt it:
	// its files are not in b's state folder.
	b2 := reopen(t, b, uri)
	for _, d := range []*Driver{a, b, b2} {
		if _, ok := listed(t, d)[name]; ok {
			t.Fatalf("%s lists a domain it has not adopted", d.Identity())
		}
	}
	if err := b2.Delete(ctx, name); !errors.Is(err, ErrNotFound) {
		t.Fatalf("b deleting the earlier version's domain: %v", err)
	}
	if x := virsh(uri, "dumpxml", old); !strings.Contains(x, "<name>"+old+"</name>") || strings.Contains(x, "owner>") {
		t.Fatalf("b changed the domain:\n%s", x)
	}

	// a, restarted, adopts it: stamped (the running and the persistent
	// definition), listed under its old name, still running.
	a2 := reopen(t, a, uri)
	got, ok := listed(t, a2)[name]
	if !ok || got.Name != old || got.Meta.Owner != a.Identity() || got.State != "running" {
		t.Fatalf("a after restart: %+v (listed %v)", got, ok)
	}
	for _, flag := range []string{"--inactive", "--security-info"} {
		if x := virsh(uri, "dumpxml", flag, old); !strings.Contains(x, ">"+a.Identity()+"</wso:owner>") {
			t.Fatalf("adopted domain not stamped (dumpxml %s):\n%s", flag, x)
		}
	}
	if _, ok := listed(t, reopen(t, b, uri))[name]; ok {
		t.Fatal("b lists a's adopted workspace")
	}
	if err := a2.Delete(ctx, name); err != nil {
		t.Fatal(err)
	}
	if out := virsh(uri, "list", "--all") + virsh(uri, "vol-list", a.opts.PoolName); strings.Contains(out, old) {
		t.Fatalf("delete left the adopted workspace:\n%s", out)
	}
	if a2.DomainName(name) != a2.prefix()+name {
		t.Fatalf("a new workspace of the deleted one's name would be %s", a2.DomainName(name))
	}
}
