package vm

import (
	"net/netip"
	"strings"
	"testing"
)

func sharingInput(clipboard bool, virtiofs bool) domainInput {
	in := goldenInput("nat", "spice", "qemu", true)
	in.Spec.Clipboard = clipboard
	in.Spec.Shares = []ShareSpec{
		{Tag: "handoff", HostPath: "/srv/clients/acme/handoff", ReadOnly: true},
		{Tag: "src", HostPath: "/home/me/acme/src", ReadOnly: false},
	}
	in.Virtiofs = virtiofs
	return in
}

func TestSharingGoldens(t *testing.T) {
	for name, in := range map[string]domainInput{
		"domain-shares-clipboard.xml": sharingInput(true, true),
		"domain-shares-9p-only.xml":   sharingInput(false, false),
	} {
		t.Run(name, func(t *testing.T) {
			got, err := renderDomain(in)
			if err != nil {
				t.Fatal(err)
			}
			checkGolden(t, name, "domain", got)
		})
	}
}

// section returns the XML of every element named el in x.
func section(x, el string) string {
	var out []string
	for {
		i := strings.Index(x, "<"+el)
		if i < 0 {
			return strings.Join(out, "\n")
		}
		x = x[i:]
		j := strings.Index(x, "</"+el+">")
		if j < 0 {
			return strings.Join(append(out, x), "\n")
		}
		out = append(out, x[:j+len(el)+3])
		x = x[j:]
	}
}

func TestClipboardChannel(t *testing.T) {
	off, err := renderDomain(sharingInput(false, true))
	if err != nil {
		t.Fatal(err)
	}
	// Clipboard off: no SPICE agent channel at all, and SPICE itself told
	// not to copy and paste.
	if strings.Contains(string(off), "spicevmc") || strings.Contains(string(off), "com.redhat.spice.0") {
		t.Errorf("clipboard off, yet a SPICE agent channel:\n%s", section(string(off), "channel"))
	}
	gfx := section(string(off), "graphics")
	if !strings.Contains(gfx, `<clipboard copypaste="no">`) || !strings.Contains(gfx, `<filetransfer enable="no">`) {
		t.Errorf("clipboard off: graphics must refuse copy/paste and file transfer:\n%s", gfx)
	}

	on, err := renderDomain(sharingInput(true, true))
	if err != nil {
		t.Fatal(err)
	}
	ch := section(string(on), "channel")
	if !strings.Contains(ch, `<channel type="spicevmc">`) || !strings.Contains(ch, `name="com.redhat.spice.0"`) {
		t.Errorf("clipboard both: no SPICE agent channel:\n%s", ch)
	}
	gfx = section(string(on), "graphics")
	if strings.Contains(gfx, "copypaste") || !strings.Contains(gfx, `<filetransfer enable="no">`) {
		t.Errorf("clipboard both: copy/paste on, file transfer off:\n%s", gfx)
	}

	vnc := sharingInput(true, true)
	vnc.Spec.DisplayType = "vnc"
	if _, err := renderDomain(vnc); err == nil || !strings.Contains(err.Error(), "needs a spice display") {
		t.Errorf("clipboard with vnc: %v", err)
	}
}

func TestSharesRender(t *testing.T) {
	x, err := renderDomain(sharingInput(false, true))
	if err != nil {
		t.Fatal(err)
	}
	fs := section(string(x), "filesystem")
	ro := fs[:strings.Index(fs, "</filesystem>")]
	if !strings.Contains(ro, `<driver type="path">`) || !strings.Contains(ro, "<readonly>") || !strings.Contains(ro, `dir="handoff"`) {
		t.Errorf("a read-only share must be 9p with <readonly/>:\n%s", ro)
	}
	if !strings.Contains(fs, `<driver type="virtiofs"`) || !strings.Contains(string(x), `<source type="memfd">`) {
		t.Errorf("a read-write share with virtiofsd present must be virtiofs on shared memory:\n%s", x)
	}
	if !strings.Contains(string(x), `<entry name="opt/org.workspace/shares">handoff 9p ro&#xA;src virtiofs rw&#xA;</entry>`) {
		t.Errorf("fw_cfg share list:\n%s", section(string(x), "sysinfo"))
	}

	nofs, err := renderDomain(sharingInput(false, false))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(nofs), "virtiofs") || strings.Contains(string(nofs), "memoryBacking") {
		t.Errorf("without virtiofsd every share is 9p:\n%s", nofs)
	}

	none, _ := renderDomain(goldenInput("nat", "vnc", "qemu", true))
	for _, el := range []string{"<filesystem", "<sysinfo", "<memoryBacking"} {
		if strings.Contains(string(none), el) {
			t.Errorf("no shares, yet %s", el)
		}
	}

	for _, bad := range [][]ShareSpec{
		{{Tag: "a b", HostPath: "/x"}},
		{{Tag: "x", HostPath: "relative"}},
		{{Tag: "x", HostPath: "/a"}, {Tag: "x", HostPath: "/b"}},
	} {
		in := goldenInput("none", "none", "qemu", false)
		in.Spec.Shares = bad
		if _, err := renderDomain(in); err == nil {
			t.Errorf("rendered shares %+v", bad)
		}
	}
}

func TestNICHasFixedAddressAndFilter(t *testing.T) {
	x, err := renderDomain(goldenInput("nat", "vnc", "qemu", false))
	if err != nil {
		t.Fatal(err)
	}
	nic := section(string(x), "interface")
	for _, want := range []string{`<mac address="52:54:00:0a:d5:07">`, `<filterref filter="ws-0123abcd-acme">`, `<parameter name="IP" value="10.213.7.10">`} {
		if !strings.Contains(nic, want) {
			t.Errorf("interface lacks %s:\n%s", want, nic)
		}
	}
	in := goldenInput("nat", "vnc", "qemu", false)
	in.Subnet = 0
	if _, err := renderDomain(in); err == nil {
		t.Error("a nat NIC without a subnet rendered")
	}
}

func TestFilterGoldens(t *testing.T) {
	allow, err := ParseAllow([]string{"192.168.1.20", "203.0.113.0/24"})
	if err != nil {
		t.Fatal(err)
	}
	for _, mode := range []string{"nat", "isolated"} {
		got, err := renderFilter("ws-0123abcd-acme", mode, gatewayIP(7), allow, "")
		if err != nil {
			t.Fatal(err)
		}
		checkGolden(t, "nwfilter-"+mode+".xml", "nwfilter", got)
	}
	host := renderHostFilter([]netip.Prefix{netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("192.0.2.2/32")}, "")
	checkGolden(t, "nwfilter-host.xml", "nwfilter", host)
	if _, err := renderFilter("ws-0123abcd-acme", "none", gatewayIP(7), nil, ""); err == nil {
		t.Error("mode none rendered a filter")
	}
}

func TestFilterOrder(t *testing.T) {
	allow, _ := ParseAllow([]string{"192.168.1.20"})
	x, _ := renderFilter("ws-0123abcd-acme", "nat", gatewayIP(7), allow, "")
	s := string(x)
	// Accepts come before the drops that would otherwise catch them.
	for _, pair := range [][2]string{
		{`priority="100"`, `priority="300"`},
		{`dstipaddr="192.168.1.20" dstipmask="32"`, `dstipaddr="192.168.0.0" dstipmask="16"`},
	} {
		i, j := strings.Index(s, pair[0]), strings.Index(s, pair[1])
		if i < 0 || j < 0 || i > j {
			t.Errorf("%s must come before %s:\n%s", pair[0], pair[1], s)
		}
	}
	for _, want := range []string{`<filterref filter="clean-traffic">`, `<filterref filter="workspace-host">`, `dstipaddr="10.0.0.0" dstipmask="8"`, `dstipaddr="169.254.0.0" dstipmask="16"`} {
		if !strings.Contains(s, want) {
			t.Errorf("filter lacks %s", want)
		}
	}
}

func TestParseAllow(t *testing.T) {
	got, err := ParseAllow([]string{"192.168.1.20", "10.1.2.3/16", "::ffff:192.0.2.7"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"192.168.1.20/32", "10.1.0.0/16", "192.0.2.7/32"}
	for i, p := range got {
		if p.String() != want[i] {
			t.Errorf("allow[%d] = %s, want %s", i, p, want[i])
		}
	}
	_, err = ParseAllow([]string{"lan", "fd00::/8", "10.0.0.0/33"})
	for _, want := range []string{`network.allow[0]: "lan" is not an IP address or CIDR prefix`, `network.allow[1]: "fd00::/8" is IPv6`, `network.allow[2]: "10.0.0.0/33"`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v lacks %q", err, want)
		}
	}
}

func TestPublicOnly(t *testing.T) {
	in := []netip.Prefix{
		netip.MustParsePrefix("10.213.1.1/32"), netip.MustParsePrefix("10.213.1.0/24"),
		netip.MustParsePrefix("192.168.1.5/32"), netip.MustParsePrefix("192.0.2.2/32"),
		netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("100.100.1.1/32"),
		netip.MustParsePrefix("8.0.0.0/7"),
	}
	got := publicOnly(in)
	want := "[192.0.2.2/32 192.0.2.0/24 8.0.0.0/7]"
	if s := strings.Join(strings.Fields(strings.Trim(strings.ReplaceAll(strings.Trim(fmtPrefixes(got), "[]"), ",", " "), " ")), " "); "["+s+"]" != want {
		t.Errorf("publicOnly = %v, want %s", got, want)
	}
	if !samePrefixes(filterDrops(string(renderHostFilter(got, "u"))), got) {
		t.Error("host filter does not read back")
	}
}

func fmtPrefixes(ps []netip.Prefix) string {
	var s []string
	for _, p := range ps {
		s = append(s, p.String())
	}
	return "[" + strings.Join(s, " ") + "]"
}
