package profiles

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"testing/fstest"
	"time"
)

const acmeRecipient = "age1sq4mc7j5g0qa0s834tpyk0fwf9qjswap4aad74utehzp6ur7ydfq0ufv38"

func loadMain(t *testing.T, files map[string]string) (*Profile, error) {
	t.Helper()
	fsys := fstest.MapFS{}
	for name, src := range files {
		fsys[name] = &fstest.MapFile{Data: []byte(src)}
	}
	return LoadFS(fsys, "main.hcl")
}

func TestLoadDefaults(t *testing.T) {
	p, err := loadMain(t, map[string]string{"main.hcl": `image = "test"`})
	if err != nil {
		t.Fatal(err)
	}
	want := Profile{Source: "/main.hcl", Image: "test", CPUs: 2, Memory: 2 << 30, Disk: 20 << 30,
		Network: Network{Mode: "nat"}, Display: Display{Type: "spice"}, Clipboard: "off", Tracking: DefaultTracking,
		Positions: map[string]string{"image": "main.hcl:1:9"}}
	if !reflect.DeepEqual(*p, want) {
		t.Fatalf("got %+v\nwant %+v", *p, want)
	}
}

func TestLoadAllFields(t *testing.T) {
	src := `
description = "all"
image = "desktop"
cpus = 4
memory = "8GiB"
disk = "40GiB"
clipboard = "both"
network {
  mode = "isolated"
  allow = ["10.0.0.0/8", "192.0.2.1"]
}
display {
  type = "spice"
}
share "docs" {
  host = "/srv/docs"
  readonly = false
}
tracking {
  slot = "30s"
  screenshots_per_slot = 3
  idle_timeout = "2m"
  blur = true
  jpeg_quality = 60
  spool_limit = "64MiB"
  diary_limit = "2GiB"
}
client {
  name = "Acme"
  recipient = "` + acmeRecipient + `"
}
`
	p, err := loadMain(t, map[string]string{"main.hcl": src})
	if err != nil {
		t.Fatal(err)
	}
	if p.CPUs != 4 || p.Memory != 8<<30 || p.Disk != 40<<30 || p.Clipboard != "both" || p.Network.Mode != "isolated" ||
		len(p.Network.Allow) != 2 || p.Display.Type != "spice" || len(p.Shares) != 1 || p.Shares[0].ReadOnly ||
		p.Tracking.Slot != Duration(30*time.Second) || p.Tracking.ScreenshotsPerSlot != 3 || !p.Tracking.Blur ||
		p.Tracking.JPEGQuality != 60 || p.Tracking.SpoolLimit != 64<<20 || p.Tracking.DiaryLimit != 2<<30 || p.Client == nil || p.Client.Recipient != acmeRecipient {
		t.Fatalf("unexpected profile %+v", p)
	}
}

func TestLoadErrors(t *testing.T) {
	cases := []struct {
		name, src string
		want      []string
	}{
		{"unknown attribute", "image = \"t\"\nbogus = 1\n", []string{"main.hcl:2:1", "bogus"}},
		{"unknown block", "image = \"t\"\nfirewall {\n}\n", []string{"main.hcl:2:1", "firewall"}},
		{"wrong type", "image = \"t\"\ncpus = \"two\"\n", []string{"main.hcl:2:8", "cpus"}},
		{"memory lots", "image = \"t\"\nmemory = \"lots\"\n", []string{"main.hcl:2:10", "memory", `"lots" is not a size`}},
		{"cpus zero", "image = \"t\"\ncpus = 0\n", []string{"main.hcl:2:8", "cpus", "between 1 and 64"}},
		{"network mode", "image = \"t\"\nnetwork {\n  mode = \"wifi\"\n}\n", []string{"main.hcl:3:10", "network.mode"}},
		{"display", "image = \"t\"\ndisplay {\n  type = \"tcp\"\n}\n", []string{"main.hcl:3:10", "display.type"}},
		{"clipboard", "image = \"t\"\nclipboard = \"in\"\n", []string{"main.hcl:2:13", "clipboard"}},
		{"allow", "image = \"t\"\nnetwork {\n  allow = [\"lan\"]\n}\n", []string{"main.hcl:3:11", "network.allow"}},
		{"allow ipv6", "image = \"t\"\nnetwork {\n  allow = [\"fd00::/8\"]\n}\n", []string{"main.hcl:3:11", "network.allow", "IPv4 only"}},
		{"allow without network", "image = \"t\"\nnetwork {\n  mode = \"none\"\n  allow = [\"192.0.2.1\"]\n}\n", []string{"main.hcl:4:11", "network.allow", `network mode "none" has no network`}},
		{"clipboard over vnc", "image = \"t\"\nclipboard = \"both\"\ndisplay {\n  type = \"vnc\"\n}\n", []string{"main.hcl:2:13", "clipboard", `needs display { type = "spice" }`}},
		{"slot", "image = \"t\"\ntracking {\n  slot = \"7m\"\n}\n", []string{"main.hcl:3:10", "tracking.slot"}},
		{"shots", "image = \"t\"\ntracking {\n  screenshots_per_slot = 4\n}\n", []string{"main.hcl:3:26", "screenshots_per_slot"}},
		{"quality", "image = \"t\"\ntracking {\n  jpeg_quality = 5\n}\n", []string{"main.hcl:3:18", "jpeg_quality"}},
		{"diary limit", "image = \"t\"\ntracking {\n  diary_limit = \"2TiB\"\n}\n", []string{"main.hcl:3:17", "tracking.diary_limit", "at most 1TiB"}},
		{"diary limit small", "image = \"t\"\ntracking {\n  diary_limit = \"1MiB\"\n}\n", []string{"main.hcl:3:17", "tracking.diary_limit", "at least 16MiB"}},
		{"recipient", "image = \"t\"\nclient {\n  name = \"a\"\n  recipient = \"age1nope\"\n}\n", []string{"main.hcl:4:15", "client.recipient"}},
		{"client without name", "image = \"t\"\nclient {\n}\n", []string{"main.hcl:2:1", "client.name"}},
		{"relative share", "image = \"t\"\nshare \"x\" {\n  host = \"rel\"\n}\n", []string{"main.hcl:3:10", "absolute"}},
		{"duplicate block", "image = \"t\"\nnetwork {\n}\nnetwork {\n}\n", []string{"main.hcl:4:1", "Duplicate"}},
		{"missing image", "cpus = 2\n", []string{"Missing image"}},
		{"syntax", "image = \n", []string{"main.hcl:1"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := loadMain(t, map[string]string{"main.hcl": tc.src})
			var de *DiagnosticsError
			if !errors.As(err, &de) {
				t.Fatalf("want *DiagnosticsError, got %v", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%s", w, err)
				}
			}
		})
	}
}

func TestAllErrorsReported(t *testing.T) {
	_, err := loadMain(t, map[string]string{"main.hcl": "image = \"t\"\nmemory = \"lots\"\ncpus = 0\nbogus = 1\n"})
	if err == nil {
		t.Fatal("no error")
	}
	for _, w := range []string{"main.hcl:2:", "main.hcl:3:", "main.hcl:4:"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error lacks %q:\n%s", w, err)
		}
	}
	if n := len(err.(*DiagnosticsError).Diags); n != 3 {
		t.Errorf("want 3 diagnostics, got %d", n)
	}
}

func TestExtendsMerge(t *testing.T) {
	files := map[string]string{
		"root.hcl": "image = \"base\"\ncpus = 1\nnetwork {\n  mode = \"isolated\"\n  allow = [\"10.0.0.1\", \"10.0.0.2\"]\n}\ntracking {\n  slot = \"5m\"\n}\nshare \"a\" {\n  host = \"/a\"\n}\n",
		"team.hcl": "extends = \"root.hcl\"\ncpus = 2\ntracking {\n  blur = true\n}\n",
		"main.hcl": "extends = \"team.hcl\"\ncpus = 3\nnetwork {\n  allow = [\"10.0.0.9\"]\n}\nshare \"a\" {\n  readonly = false\n}\n",
	}
	p, err := loadMain(t, files)
	if err != nil {
		t.Fatal(err)
	}
	if p.CPUs != 3 || p.Image != "base" {
		t.Errorf("scalars: %+v", p)
	}
	if p.Network.Mode != "isolated" || !reflect.DeepEqual(p.Network.Allow, []string{"10.0.0.9"}) {
		t.Errorf("network block merge / list replace: %+v", p.Network)
	}
	if p.Tracking.Slot != Duration(5*time.Minute) || !p.Tracking.Blur {
		t.Errorf("tracking block merge: %+v", p.Tracking)
	}
	if len(p.Shares) != 1 || p.Shares[0].Host != "/a" || p.Shares[0].ReadOnly {
		t.Errorf("share merge by tag: %+v", p.Shares)
	}
	if !reflect.DeepEqual(p.Extends, []string{"/root.hcl", "/team.hcl"}) {
		t.Errorf("extends chain: %v", p.Extends)
	}
}

func TestExtendsErrors(t *testing.T) {
	_, err := loadMain(t, map[string]string{
		"main.hcl": "extends = \"b.hcl\"\n", "b.hcl": "extends = \"main.hcl\"\nimage = \"x\"\n",
	})
	if err == nil || !strings.Contains(err.Error(), "cycle") || !strings.Contains(err.Error(), "b.hcl:1:") {
		t.Errorf("cycle: %v", err)
	}
	_, err = loadMain(t, map[string]string{"main.hcl": "image = \"x\"\nextends = \"gone.hcl\"\n"})
	if err == nil || !strings.Contains(err.Error(), "main.hcl:2:11") {
		t.Errorf("missing parent: %v", err)
	}
	// A bad value inherited from the parent is reported in the parent.
	_, err = loadMain(t, map[string]string{"main.hcl": "extends = \"p.hcl\"\n", "p.hcl": "image = \"x\"\n\ncpus = 99\n"})
	if err == nil || !strings.Contains(err.Error(), "p.hcl:3:8") {
		t.Errorf("inherited error position: %v", err)
	}
}

func TestJSONRoundTripAndValidate(t *testing.T) {
	p, err := loadMain(t, map[string]string{"main.hcl": "image = \"t\"\nshare \"s\" {\n  host = \"/s\"\n}\nclient {\n  name = \"c\"\n  recipient = \"" + acmeRecipient + "\"\n}\n"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	var q Profile
	if err := json.Unmarshal(b, &q); err != nil {
		t.Fatal(err)
	}
	p.Positions = nil // where fields were set is not part of the profile
	if !reflect.DeepEqual(*p, q) {
		t.Fatalf("round trip:\n%+v\n%+v", *p, q)
	}
	if err := q.Validate(); err != nil {
		t.Fatal(err)
	}
	q.Tracking.JPEGQuality = 5
	q.CPUs = 0
	q.Clipboard = "both"
	q.Display.Type = "vnc"
	q.Network.Allow = []string{"::1"}
	err = q.Validate()
	for _, want := range []string{"tracking.jpeg_quality: must be between 10 and 100, got 5", "cpus:", "clipboard: clipboard = \"both\" needs display", "network.allow[0]: \"::1\" is IPv6"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("Validate: %v lacks %q", err, want)
		}
	}
}

func TestExamplesLoad(t *testing.T) {
	files, _ := filepath.Glob("examples/*.hcl")
	team, _ := filepath.Glob("examples/team/*.hcl")
	files = append(files, team...)
	if len(files) < 4 {
		t.Fatalf("examples: %v", files)
	}
	for _, f := range files {
		if _, err := Load(f); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
	p, err := Load("examples/team/acme.hcl")
	if err != nil || p.Client == nil || p.Memory != 4<<30 || !p.Tracking.Blur || len(p.Extends) != 1 {
		t.Fatalf("acme: %+v %v", p, err)
	}
	if _, err := Load("examples/nope.hcl"); err == nil || !strings.Contains(err.Error(), "nope.hcl") {
		t.Fatalf("missing file: %v", err)
	}
	if _, err := os.Stat("examples/minimal.hcl"); err != nil {
		t.Fatal(err)
	}
}

func TestSizes(t *testing.T) {
	for in, want := range map[string]Size{"4GiB": 4 << 30, "512MiB": 512 << 20, "1.5GiB": 3 << 29, "2GB": 2e9, "1500": 1500, "1500B": 1500} {
		got, err := ParseSize(in)
		if err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "lots", "-1GiB", "4 gib", "1e99GiB"} {
		if _, err := ParseSize(bad); err == nil {
			t.Errorf("ParseSize(%q) accepted", bad)
		}
	}
	for s, want := range map[Size]string{4 << 30: "4GiB", 512 << 20: "512MiB", 1500: "1500B", 3 << 29: "1536MiB"} {
		if s.String() != want {
			t.Errorf("%d.String() = %s, want %s", uint64(s), s, want)
		}
	}
}
