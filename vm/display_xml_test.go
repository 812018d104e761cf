package vm

import (
	"encoding/xml"
	"fmt"
	"testing"
)

// anyGraphics reads every attribute of <graphics> and of its <listen>
// children, whatever they are, so no TCP setting can slip by unnamed.
type anyGraphics struct {
	Devices struct {
		Graphics []struct {
			Type   string     `xml:"type,attr"`
			Attrs  []xml.Attr `xml:",any,attr"`
			Listen []struct {
				Attrs []xml.Attr `xml:",any,attr"`
			} `xml:"listen"`
		} `xml:"graphics"`
	} `xml:"devices"`
}

// displayProblems lists what in a domain's XML is not "one graphics
// element of type display, on the unix socket sock only".
func displayProblems(x []byte, display, sock string) []string {
	var d anyGraphics
	if err := xml.Unmarshal(x, &d); err != nil {
		return []string{err.Error()}
	}
	if len(d.Devices.Graphics) != 1 || d.Devices.Graphics[0].Type != display {
		return []string{fmt.Sprintf("want one %s graphics element", display)}
	}
	var out []string
	g := d.Devices.Graphics[0]
	onSocket := false
	for _, a := range g.Attrs {
		switch {
		case a.Name.Local == "socket" && a.Value == sock:
			onSocket = true
		default:
			out = append(out, fmt.Sprintf("graphics has %s=%q", a.Name.Local, a.Value))
		}
	}
	for _, l := range g.Listen {
		var lt, ls string
		for _, a := range l.Attrs {
			switch a.Name.Local {
			case "type":
				lt = a.Value
			case "socket":
				ls = a.Value
			default:
				out = append(out, fmt.Sprintf("listen has %s=%q", a.Name.Local, a.Value))
			}
		}
		if lt != "socket" || ls != sock {
			out = append(out, fmt.Sprintf("listen type=%q socket=%q", lt, ls))
		}
		onSocket = true
	}
	if !onSocket {
		out = append(out, "graphics is not on the unix socket")
	}
	return out
}

// TestDisplayNeverListensOnTCP: for every display type and every other
// setting the renderer knows, the graphics element is on the workspace's
// unix socket only: no port, autoport, tlsPort, websocket or listen
// address, and every <listen> is of type socket on that same path.
func TestDisplayNeverListensOnTCP(t *testing.T) {
	sock := WorkspacePaths("/var/lib/workspace", "acme").DisplaySocket
	for _, display := range []string{"vnc", "spice"} {
		for _, net := range []string{"none", "nat", "isolated"} {
			for _, typ := range []string{"qemu", "kvm"} {
				for _, kernel := range []bool{false, true} {
					x, err := renderDomain(goldenInput(net, display, typ, kernel))
					if err != nil {
						t.Fatalf("%s/%s/%s: %v", display, net, typ, err)
					}
					if p := displayProblems(x, display, sock); len(p) > 0 {
						t.Errorf("%s display (network %s, %s, kernel %v): %v\n%s", display, net, typ, kernel, p, x)
					}
				}
			}
		}
	}
}

// TestDisplayProblemsSeesTCP: the check above does fail on the TCP
// displays libvirt would accept.
func TestDisplayProblemsSeesTCP(t *testing.T) {
	const sock = "/s/display.sock"
	for _, bad := range []string{
		`<domain><devices><graphics type="vnc" port="5900"/></devices></domain>`,
		`<domain><devices><graphics type="vnc" autoport="yes" listen="0.0.0.0"/></devices></domain>`,
		`<domain><devices><graphics type="vnc" socket="/s/display.sock" websocket="5700"/></devices></domain>`,
		`<domain><devices><graphics type="spice" autoport="yes"><listen type="address" address="127.0.0.1"/></graphics></devices></domain>`,
		`<domain><devices><graphics type="spice" tlsPort="5901"><listen type="socket" socket="/s/display.sock"/></graphics></devices></domain>`,
		`<domain><devices><graphics type="spice"><listen type="network" network="default"/></graphics></devices></domain>`,
		`<domain><devices><graphics type="spice"/></devices></domain>`,
	} {
		var d anyGraphics
		xml.Unmarshal([]byte(bad), &d)
		display := d.Devices.Graphics[0].Type
		if p := displayProblems([]byte(bad), display, sock); len(p) == 0 {
			t.Errorf("no problem seen in %s", bad)
		}
	}
	good := `<domain><devices><graphics type="spice"><listen type="socket" socket="/s/display.sock"/></graphics></devices></domain>`
	if p := displayProblems([]byte(good), "spice", sock); len(p) > 0 {
		t.Errorf("problems in a socket-only display: %v", p)
	}
}
