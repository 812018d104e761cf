package domxml

import (
	"encoding/xml"
	"slices"
	"testing"
)

func TestPathsEmbedded(t *testing.T) {
	var d struct {
		Devices struct {
			Files
			Graphics []struct {
				Type string `xml:"type,attr"`
			} `xml:"graphics"`
		} `xml:"devices"`
	}
	x := `<domain><devices>
	<disk type="file"><source file="/pool/a.qcow2"/></disk>
	<disk type="block"><source dev="/dev/sdz"/></disk>
	<channel type="unix"><source mode="bind" path="/ws/agent.sock"/></channel>
	<graphics type="spice"/>
	</devices></domain>`
	if err := xml.Unmarshal([]byte(x), &d); err != nil {
		t.Fatal(err)
	}
	if got, want := d.Devices.Paths(), []string{"/pool/a.qcow2", "/ws/agent.sock"}; !slices.Equal(got, want) {
		t.Fatalf("Paths() = %q, want %q", got, want)
	}
	if len(d.Devices.Graphics) != 1 || d.Devices.Graphics[0].Type != "spice" {
		t.Fatalf("the embedding struct's own fields were not read: %+v", d.Devices.Graphics)
	}
}
