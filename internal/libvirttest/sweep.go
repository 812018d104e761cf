// Package libvirttest cleans up, on the one libvirtd that tests share with
// the user, what earlier test runs left behind, and nothing else.
//
// A test killed by its timeout runs no cleanup: its daemon's domains,
// networks, nwfilters and storage pool stay in libvirtd. Test daemons and
// drivers keep their state in folders they make with os.MkdirTemp("",
// PREFIX) (a daemon's state folder is that folder or one inside it), so
// what a test made is recognised by where its files are, not by its name:
// a user's daemon whose workspace happens to be called "wstest-x", or the
// demo's, has its state folder elsewhere and is never touched.
package libvirttest

import (
	"encoding/xml"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/workspace-sandbox/workspace/internal/domxml"
)

// IdentityFile and NamePrefix mirror the vm package's (owner.go): a
// daemon's identity is kept in STATE/daemon-id, and the libvirt objects it
// makes are named NamePrefix(identity)+NAME. A vm test pins that both
// agree (this package cannot import vm, whose tests use it).
const IdentityFile = "daemon-id"

// NamePrefix is how the libvirt names of a daemon's objects begin.
func NamePrefix(identity string) string {
	if len(identity) < 8 {
		return ""
	}
	return "ws-" + identity[:8] + "-"
}

// SweepStale removes from the libvirtd at uri what test runs left whose
// state folders are in os.TempDir() with a name starting with one of
// dirPrefixes: domains with a file (disk, socket) in such a folder, the
// networks and nwfilters they use or that are named after the identity of
// a daemon kept in such a folder, and the storage pools (wstest-*, or
// workspace-* when a test used the default name) whose folder is in one. Call it once per test binary before its first daemon
// starts (packages run one at a time: go test -p 1), so that every such
// folder it finds belongs to a run that is over.
func SweepStale(tb testing.TB, uri string, dirPrefixes ...string) {
	tb.Helper()
	virsh := func(args ...string) string {
		out, _ := exec.Command("virsh", append([]string{"-c", uri}, args...)...).Output()
		return string(out)
	}
	var roots []string
	var prefixes []string // libvirt name prefixes of stale test daemons
	for _, p := range dirPrefixes {
		roots = append(roots, filepath.Join(os.TempDir(), p))
		for _, pattern := range []string{p + "*/" + IdentityFile, p + "*/*/" + IdentityFile} {
			ids, _ := filepath.Glob(filepath.Join(os.TempDir(), pattern))
			for _, f := range ids {
				if b, err := os.ReadFile(f); err == nil {
					if np := NamePrefix(strings.TrimSpace(string(b))); np != "" {
						prefixes = append(prefixes, np)
					}
				}
			}
		}
	}
	inTestDir := func(path string) bool {
		for _, r := range roots {
			if strings.HasPrefix(path, r) {
				return true
			}
		}
		return false
	}
	named := func(name string) bool {
		for _, p := range prefixes {
			if strings.HasPrefix(name, p) {
				return true
			}
		}
		return false
	}

	nets, filters := map[string]bool{}, map[string]bool{}
	for _, dom := range strings.Fields(virsh("list", "--all", "--name")) {
		if !strings.HasPrefix(dom, "ws-") {
			continue
		}
		x := parseDomain(virsh("dumpxml", "--inactive", dom))
		if !named(dom) && !x.uses(inTestDir) {
			continue
		}
		virsh("destroy", dom)
		virsh("undefine", dom, "--snapshots-metadata")
		tb.Logf("removed the stale test domain %s", dom)
		for _, i := range x.Devices.Interfaces {
			nets[i.Source.Network] = true
			filters[i.FilterRef.Filter] = true
		}
	}
	for _, n := range strings.Fields(virsh("net-list", "--all", "--name")) {
		if strings.HasPrefix(n, "ws-") && (nets[n] || named(n)) {
			virsh("net-destroy", n)
			virsh("net-undefine", n)
		}
	}
	for _, line := range strings.Split(virsh("nwfilter-list"), "\n") {
		if f := strings.Fields(line); len(f) == 2 && strings.HasPrefix(f[1], "ws-") && (filters[f[1]] || named(f[1])) {
			virsh("nwfilter-undefine", f[1])
		}
	}
	for _, p := range strings.Fields(virsh("pool-list", "--all", "--name")) {
		if !strings.HasPrefix(p, "wstest-") && !strings.HasPrefix(p, "workspace-") {
			continue
		}
		var pool struct {
			Target struct {
				Path string `xml:"path"`
			} `xml:"target"`
		}
		if xml.Unmarshal([]byte(virsh("pool-dumpxml", p)), &pool) == nil && inTestDir(pool.Target.Path) {
			virsh("pool-destroy", p)
			virsh("pool-undefine", p)
			tb.Logf("removed the stale test pool %s", p)
		}
	}
}

type domainXML struct {
	Devices struct {
		domxml.Files
		Interfaces []struct {
			Source struct {
				Network string `xml:"network,attr"`
			} `xml:"source"`
			FilterRef struct {
				Filter string `xml:"filter,attr"`
			} `xml:"filterref"`
		} `xml:"interface"`
	} `xml:"devices"`
}

func parseDomain(x string) domainXML {
	var d domainXML
	_ = xml.Unmarshal([]byte(x), &d)
	return d
}

// uses says whether one of the domain's files passes in.
func (d domainXML) uses(in func(string) bool) bool {
	for _, p := range d.Devices.Paths() {
		if in(p) {
			return true
		}
	}
	return false
}
