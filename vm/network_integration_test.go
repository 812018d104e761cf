package vm

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// netGuest is a running test guest with a network of its own.
type netGuest struct {
	name string
	ip   string
	gw   string
}

// startNetGuest creates and boots a test guest in mode with allow, and waits
// until its qemu-guest-agent answers and it has a DHCP lease.
func startNetGuest(t *testing.T, d *Driver, base Spec, name, mode string, allow []string) netGuest {
	t.Helper()
	ctx := context.Background()
	s := base
	s.Name, s.NetworkMode, s.Allow = name, mode, allow
	s.Meta.Workspace = name
	if err := d.Create(ctx, s); err != nil {
		t.Fatalf("create %s: %v", name, err)
	}
	if err := d.Start(ctx, name); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(WorkspacePaths(d.opts.StateDir, name).ConsoleLog)
			t.Logf("console of %s:\n%s", name, b)
		}
	})
	return netGuest{name: name}
}

var inetRE = regexp.MustCompile(`inet (10\.213\.\d+\.\d+)/`)

// waitLease waits for the guest's agent and its address on eth0.
func (g *netGuest) waitLease(t *testing.T, d *Driver) {
	t.Helper()
	ctx := context.Background()
	waitFor(t, g.name+"'s qemu-guest-agent", 3*time.Minute, func() bool { return d.GuestPing(ctx, g.name) == nil })
	waitFor(t, g.name+"'s DHCP lease", 2*time.Minute, func() bool {
		r, err := d.GuestExec(ctx, g.name, []string{"/bin/ip", "-4", "addr", "show", "eth0"})
		if err != nil {
			return false
		}
		m := inetRE.FindSubmatch(r.Stdout)
		if m == nil {
			return false
		}
		g.ip = string(m[1])
		g.gw = g.ip[:strings.LastIndexByte(g.ip, '.')] + ".1"
		return true
	})
}

// connect runs busybox nc in the guest against addr and returns what it
// read, or "" when it could not connect within 3 s.
func (g netGuest) connect(t *testing.T, d *Driver, ip string, port int) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := d.GuestExec(ctx, g.name, []string{"/bin/nc", "-w", "3", ip, fmt.Sprint(port)})
	if err != nil {
		t.Fatalf("nc in %s: %v", g.name, err)
	}
	return strings.TrimSpace(string(r.Stdout))
}

// TestLiveNetworkIsolation boots three test workspaces: A (nat, allowed to
// reach the host's own address), B (nat, nothing allowed) and C
// (isolated). It uses only this machine's addresses: a TCP server on the
// host's non-loopback address and on every workspace gateway, and a server
// inside B.
func TestLiveNetworkIsolation(t *testing.T) {
	d, _ := liveDriverPrefix(t, "wstest-net")
	img := testImage(t)
	ctx := context.Background()
	host := hostAddress(t)

	// One server on every host address: it answers with its name.
	ln, err := net.Listen("tcp4", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			fmt.Fprintln(c, "host-says-hi")
			c.Close()
		}
	}()

	uploadFile(t, d, "base.disk", "qcow2", filepath.Join(img, "disk.qcow2"))
	uploadFile(t, d, "base.kernel", "raw", filepath.Join(img, "vmlinuz"))
	uploadFile(t, d, "base.initrd", "raw", filepath.Join(img, "initrd.img"))
	cmdline, _ := os.ReadFile(filepath.Join(img, "cmdline"))
	base := Spec{VCPUs: 1, MemoryBytes: 384 << 20, DiskBytes: 1 << 30, BaseVolume: "base.disk", BaseFormat: "qcow2",
		KernelVolume: "base.kernel", InitrdVolume: "base.initrd", Cmdline: strings.TrimSpace(string(cmdline)),
		DisplayType: "none", Meta: Metadata{Image: "base", CreatedAt: time.Now()}}
	b := make([]byte, 2)
	_, _ = rand.Read(b)
	suffix := hex.EncodeToString(b)
	ga := startNetGuest(t, d, base, "wstest-net-a"+suffix, "nat", []string{host.String()})
	gb := startNetGuest(t, d, base, "wstest-net-b"+suffix, "nat", nil)
	gc := startNetGuest(t, d, base, "wstest-net-c"+suffix, "isolated", nil)
	for _, g := range []*netGuest{&ga, &gb, &gc} {
		g.waitLease(t, d)
	}
	t.Logf("host %s; A %s, B %s, C %s", host, ga.ip, gb.ip, gc.ip)

	// A server inside B; the host reaches it (replies may leave B).
	if _, err := d.GuestExec(ctx, gb.name, []string{"/bin/sh", "-c", "nc -ll -p 7000 -e /bin/hostname </dev/null >/dev/null 2>&1 &"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the server in B", 30*time.Second, func() bool {
		c, err := net.DialTimeout("tcp", gb.ip+":7000", time.Second)
		if err != nil {
			return false
		}
		defer c.Close()
		buf := make([]byte, 64)
		_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
		n, _ := c.Read(buf)
		return strings.Contains(string(buf[:n]), "wstest")
	})

	cases := []struct {
		from netGuest
		ip   string
		port int
		want string // "" means: must not connect
		why  string
	}{
		{ga, host.String(), port, "host-says-hi", "A's profile allows the host's address"},
		{gb, host.String(), port, "", "B's profile allows nothing: the host's address is dropped"},
		{ga, gb.ip, 7000, "", "A must not reach another workspace"},
		{gc, gb.ip, 7000, "", "C (isolated) must not reach another workspace"},
		{ga, ga.gw, port, "", "A reaches its gateway only for DHCP and DNS"},
		{gb, gb.gw, port, "", "B reaches its gateway only for DHCP and DNS"},
		{ga, gb.gw, port, "", "A must not reach B's gateway"},
		{gc, gc.gw, port, "host-says-hi", "C is host-only: its gateway is the host"},
		{gc, host.String(), port, "", "C (isolated) must not reach the host's other address"},
	}
	for _, tc := range cases {
		got := tc.from.connect(t, d, tc.ip, tc.port)
		if got != tc.want {
			t.Errorf("%s -> %s:%d read %q, want %q: %s", tc.from.name, tc.ip, tc.port, got, tc.want, tc.why)
			if out, err := exec.Command("iptables-save").CombinedOutput(); err == nil {
				t.Logf("iptables:\n%s", out)
			}
		}
	}

	// When the host's addresses change, the shared host filter is
	// rewritten and libvirt rebuilds every running workspace's rules: they
	// must come back whole, not fail open.
	l, _ := d.conn()
	host2 := []netip.Prefix{netip.PrefixFrom(host, 32), netip.MustParsePrefix("203.0.113.0/24")}
	if _, err := d.defineFilter(l, HostFilterName, func(uuid string) ([]byte, error) { return renderHostFilter(host2, uuid), nil }); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = d.refreshHostFilter(l) }()
	for _, tc := range cases[1:3] {
		if got := tc.from.connect(t, d, tc.ip, tc.port); got != tc.want {
			t.Errorf("after the host filter changed: %s -> %s:%d read %q, want %q: %s", tc.from.name, tc.ip, tc.port, got, tc.want, tc.why)
		}
	}

	// Bad input changes nothing: an allow entry that is no address.
	bad := base
	bad.Name, bad.NetworkMode, bad.Allow = "wstest-net-bad"+suffix, "nat", []string{"the-lan"}
	bad.Meta.Workspace = bad.Name
	err = d.Create(ctx, bad)
	if err == nil || !strings.Contains(err.Error(), `"the-lan" is not an IP address or CIDR prefix`) {
		t.Fatalf("create with a bad allow entry: %v", err)
	}
	if _, err := d.Info(ctx, bad.Name); err == nil {
		t.Fatal("a refused create left a domain behind")
	}
	if _, err := l.NetworkLookupByName(d.DomainName(bad.Name)); err == nil {
		t.Fatal("a refused create left a network behind")
	}
}

// hostAddress is a non-loopback IPv4 address of this machine, not one of a
// workspace network.
func hostAddress(t *testing.T) netip.Addr {
	t.Helper()
	ps, err := hostPrefixes()
	if err != nil {
		t.Fatal(err)
	}
	ws := netip.MustParsePrefix("10.213.0.0/16")
	for _, p := range ps {
		if p.Bits() == 32 && !ws.Contains(p.Addr()) && !strings.HasPrefix(p.Addr().String(), "192.168.122.") {
			return p.Addr()
		}
	}
	t.Skip("this machine has no non-loopback IPv4 address to test with")
	return netip.Addr{}
}
