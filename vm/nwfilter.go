package vm

import (
	"encoding/xml"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sort"

	libvirt "github.com/digitalocean/go-libvirt"
)

// Network isolation. Every NIC of a workspace references its own nwfilter,
// named as its domain and network (Driver.DomainName), which libvirt turns
// into ebtables/iptables rules on the VM's tap device. For traffic leaving
// the VM, in this order:
//
//  0. replies to connections made to the guest are accepted;
//  1. DHCP and DNS to the workspace's own gateway are accepted (in
//     "isolated" mode, anything to the gateway: host-only);
//  2. what the profile's network.allow lists is accepted;
//  3. private and link-local ranges (RFC 1918, RFC 3927, RFC 6598) are
//     dropped: other workspaces (10.213.0.0/16), the host's other
//     interfaces and the LAN;
//  4. the host's own addresses and the networks they are on are dropped
//     (the shared filter HostFilterName, rewritten at every create and
//     start, since a laptop's addresses change);
//  5. the rest (the internet, through libvirt's NAT) is accepted.
//
// clean-traffic (libvirt's own) is referenced too: no MAC, IP or ARP
// spoofing, and no L2 traffic but IPv4 and ARP, so no IPv6 either.

// HostFilterName is the filter, shared by all workspaces (of every daemon
// on this libvirtd: its rules are the host's, the same whoever writes
// them), that drops traffic to the host's own addresses and networks.
const HostFilterName = "workspace-host"

// Rule priorities: lower runs first.
const (
	prioReplies = 50
	prioGateway = 100
	prioAllow   = 200
	prioPrivate = 300
	prioHost    = 400
)

// privateRanges are dropped unless allowed.
var privateRanges = []netip.Prefix{
	netip.MustParsePrefix("10.0.0.0/8"),
	netip.MustParsePrefix("172.16.0.0/12"),
	netip.MustParsePrefix("192.168.0.0/16"),
	netip.MustParsePrefix("169.254.0.0/16"),
	netip.MustParsePrefix("100.64.0.0/10"),
}

type filterXML struct {
	XMLName    xml.Name       `xml:"filter"`
	Name       string         `xml:"name,attr"`
	Chain      string         `xml:"chain,attr"`
	UUID       string         `xml:"uuid,omitempty"`
	FilterRefs []filterRefXML `xml:"filterref"`
	Rules      []ruleXML      `xml:"rule"`
}

type filterRefXML struct {
	Filter string `xml:"filter,attr"`
}

type ruleXML struct {
	Action    string       `xml:"action,attr"`
	Direction string       `xml:"direction,attr"`
	Priority  int          `xml:"priority,attr"`
	All       *ipMatchXML  `xml:"all,omitempty"`
	UDP       *portMatchEl `xml:"udp,omitempty"`
	TCP       *portMatchEl `xml:"tcp,omitempty"`
}

type ipMatchXML struct {
	DstIPAddr string `xml:"dstipaddr,attr,omitempty"`
	DstIPMask int    `xml:"dstipmask,attr,omitempty"`
	State     string `xml:"state,attr,omitempty"`
	Comment   string `xml:"comment,attr,omitempty"`
}

type portMatchEl struct {
	DstIPAddr    string `xml:"dstipaddr,attr"`
	DstPortStart int    `xml:"dstportstart,attr"`
	Comment      string `xml:"comment,attr,omitempty"`
}

func dropOrAccept(action string, prio int, p netip.Prefix, comment string) ruleXML {
	return ruleXML{Action: action, Direction: "out", Priority: prio,
		All: &ipMatchXML{DstIPAddr: p.Addr().String(), DstIPMask: p.Bits(), Comment: comment}}
}

// ParseAllow parses network.allow entries: IPv4 addresses or CIDR prefixes.
// Workspaces have no IPv6, so an IPv6 entry is an error, not a no-op.
func ParseAllow(entries []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	var errs []error
	for i, e := range entries {
		p, err := netip.ParsePrefix(e)
		if err != nil {
			a, aerr := netip.ParseAddr(e)
			if aerr != nil {
				errs = append(errs, fmt.Errorf("network.allow[%d]: %q is not an IP address or CIDR prefix", i, e))
				continue
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		bits := p.Bits()
		if p.Addr().Is4In6() {
			bits -= 96
		}
		if !p.Addr().Unmap().Is4() || bits < 0 {
			errs = append(errs, fmt.Errorf("network.allow[%d]: %q is IPv6; workspaces have IPv4 only", i, e))
			continue
		}
		out = append(out, netip.PrefixFrom(p.Addr().Unmap(), bits).Masked())
	}
	return out, errors.Join(errs...)
}

// renderFilter builds a workspace's filter, named name (a pure function,
// golden-tested).
func renderFilter(name, mode string, gateway netip.Addr, allow []netip.Prefix, uuid string) ([]byte, error) {
	if !gateway.Is4() {
		return nil, fmt.Errorf("filter %s: gateway %s is not IPv4", name, gateway)
	}
	f := filterXML{Name: name, Chain: "root", UUID: uuid,
		FilterRefs: []filterRefXML{{Filter: "clean-traffic"}, {Filter: HostFilterName}}}
	gw := gateway.String()
	// Replies to connections made to the guest (by the host: other
	// workspaces and the LAN cannot open any) may leave; a connection the
	// guest opens starts with a packet that is NEW, which the rules below
	// judge.
	f.Rules = append(f.Rules, ruleXML{Action: "accept", Direction: "out", Priority: prioReplies,
		All: &ipMatchXML{State: "ESTABLISHED,RELATED", Comment: "replies"}})
	switch mode {
	case "nat":
		for _, port := range []int{53, 67} {
			f.Rules = append(f.Rules, ruleXML{Action: "accept", Direction: "out", Priority: prioGateway,
				UDP: &portMatchEl{DstIPAddr: gw, DstPortStart: port, Comment: "gateway dhcp/dns"}})
		}
		f.Rules = append(f.Rules, ruleXML{Action: "accept", Direction: "out", Priority: prioGateway,
			TCP: &portMatchEl{DstIPAddr: gw, DstPortStart: 53, Comment: "gateway dns"}})
	case "isolated":
		f.Rules = append(f.Rules, dropOrAccept("accept", prioGateway, netip.PrefixFrom(gateway, 32), "host-only"))
	default:
		return nil, fmt.Errorf("filter %s: mode %q has no network", name, mode)
	}
	for _, p := range allow {
		f.Rules = append(f.Rules, dropOrAccept("accept", prioAllow, p, "network.allow"))
	}
	for _, p := range privateRanges {
		f.Rules = append(f.Rules, dropOrAccept("drop", prioPrivate, p, "private"))
	}
	return xml.MarshalIndent(f, "", "  ")
}

// renderHostFilter builds the shared filter that drops traffic to the
// host's addresses and the networks they are on.
func renderHostFilter(host []netip.Prefix, uuid string) []byte {
	f := filterXML{Name: HostFilterName, Chain: "root", UUID: uuid}
	for _, p := range host {
		f.Rules = append(f.Rules, dropOrAccept("drop", prioHost, p, "host"))
	}
	b, _ := xml.MarshalIndent(f, "", "  ")
	return b
}

// hostPrefixes lists this host's IPv4 addresses (as /32) and the networks
// they are on, loopback excluded, sorted and without duplicates.
func hostPrefixes() ([]netip.Prefix, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, fmt.Errorf("list host interfaces: %w", err)
	}
	seen := map[netip.Prefix]bool{}
	for _, ifc := range ifs {
		if ifc.Flags&net.FlagLoopback != 0 {
			continue
		}
		addrs, err := ifc.Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			ipn, ok := a.(*net.IPNet)
			if !ok || ipn.IP.To4() == nil {
				continue
			}
			ip, _ := netip.AddrFromSlice(ipn.IP.To4())
			ones, _ := ipn.Mask.Size()
			seen[netip.PrefixFrom(ip, 32)] = true
			if ones > 0 {
				seen[netip.PrefixFrom(ip, ones).Masked()] = true
			}
		}
	}
	out := make([]netip.Prefix, 0, len(seen))
	for p := range seen {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool {
		if c := out[i].Addr().Compare(out[j].Addr()); c != 0 {
			return c < 0
		}
		return out[i].Bits() < out[j].Bits()
	})
	return out, nil
}

// defineFilter defines (or redefines, keeping its UUID) an nwfilter made
// by render, and returns whether it was new.
func (d *Driver) defineFilter(l *libvirt.Libvirt, name string, render func(uuid string) ([]byte, error)) (bool, error) {
	uuid := ""
	existing, err := l.NwfilterLookupByName(name)
	if err == nil {
		uuid = formatUUID(existing.UUID)
	}
	x, err := render(uuid)
	if err != nil {
		return false, err
	}
	if _, err := l.NwfilterDefineXML(string(x)); err != nil {
		return false, fmt.Errorf("define network filter %s: %w", name, d.lverr(err))
	}
	return uuid == "", nil
}

// refreshHostFilter rewrites the shared host filter when the host's
// addresses outside the private ranges (which every workspace drops
// anyway) have changed. Only for a local libvirt: a remote host's
// addresses are not ours to see.
//
// Redefining a filter makes libvirt rebuild the rules of every running
// workspace, so it is done only on a real change.
func (d *Driver) refreshHostFilter(l *libvirt.Libvirt) error {
	var host []netip.Prefix
	if d.uri.Host == "" {
		all, err := hostPrefixes()
		if err != nil {
			return err
		}
		host = publicOnly(all)
	}
	if f, err := l.NwfilterLookupByName(HostFilterName); err == nil {
		if x, err := l.NwfilterGetXMLDesc(f, 0); err == nil && samePrefixes(filterDrops(x), host) {
			return nil
		}
	}
	_, err := d.defineFilter(l, HostFilterName, func(uuid string) ([]byte, error) { return renderHostFilter(host, uuid), nil })
	return err
}

// publicOnly drops the prefixes inside a private range.
func publicOnly(ps []netip.Prefix) []netip.Prefix {
	var out []netip.Prefix
	for _, p := range ps {
		private := false
		for _, r := range privateRanges {
			if r.Bits() <= p.Bits() && r.Contains(p.Addr()) {
				private = true
				break
			}
		}
		if !private {
			out = append(out, p)
		}
	}
	return out
}

// filterDrops reads the destination prefixes of a filter's rules.
func filterDrops(x string) []netip.Prefix {
	var f filterXML
	if err := xml.Unmarshal([]byte(x), &f); err != nil {
		return nil
	}
	var out []netip.Prefix
	for _, r := range f.Rules {
		if r.All == nil {
			continue
		}
		if a, err := netip.ParseAddr(r.All.DstIPAddr); err == nil {
			out = append(out, netip.PrefixFrom(a, r.All.DstIPMask))
		}
	}
	return out
}

func samePrefixes(a, b []netip.Prefix) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func formatUUID(u libvirt.UUID) string {
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}
