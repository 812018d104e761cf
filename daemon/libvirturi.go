package daemon

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
)

// checkLibvirtURI refuses a libvirt URI that names another host
// (qemu+ssh://admin@kvm1/system, qemu+tls://kvm1/system, qemu://kvm1/...):
// each workspace's agent channel and display are unix sockets on the host
// its VM runs on, so the daemon runs there, one per host, and the CLI
// reaches it over SSH. A URI with no host, or naming this host (its
// loopback addresses, "localhost", its host name or one of its own
// addresses), is left to libvirt. isThisHost says whether a host is this
// machine.
func checkLibvirtURI(uri string, isThisHost func(host string) bool) error {
	u, err := url.Parse(uri)
	if err != nil || u.Host == "" {
		return nil // no host: local; a bad URI: libvirt's connect says so
	}
	host := u.Hostname()
	if host == "" || isThisHost(host) {
		return nil
	}
	user := "USER@"
	return fmt.Errorf("--libvirt-uri %q names another host (%s): the daemon runs where libvirt and the VMs run, because each workspace's agent channel and display are sockets on that host. "+
		"Run `workspace daemon` on %s (with its own qemu:///system) and use it from here over SSH: workspace --host ssh://%s%s ..., or workspace context add NAME ssh://%s%s",
		uri, host, host, user, host, user, host)
}

// isThisHost tells whether host names this machine, without asking DNS:
// "localhost" (and *.localhost), a loopback address, the machine's host
// name (or its first label), or an address of one of its interfaces.
func isThisHost(host string) bool {
	h := strings.ToLower(strings.TrimSuffix(host, "."))
	if h == "localhost" || strings.HasSuffix(h, ".localhost") || h == "localhost.localdomain" {
		return true
	}
	if ip := net.ParseIP(h); ip != nil {
		if ip.IsLoopback() {
			return true
		}
		addrs, err := net.InterfaceAddrs()
		if err != nil {
			return false
		}
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && n.IP.Equal(ip) {
				return true
			}
		}
		return false
	}
	name, err := os.Hostname()
	if err != nil {
		return false
	}
	name = strings.ToLower(name)
	short, _, _ := strings.Cut(name, ".")
	return h == name || h == short
}
