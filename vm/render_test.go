package vm

import (
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var updateGoldens = flag.Bool("update", false, "rewrite vm/testdata golden files")

// testIdentity is a daemon identity for tests; its workspace acme's
// libvirt name is ws-0123abcd-acme.
const testIdentity = "0123abcd0123abcd0123abcd0123abcd"

func goldenSpec(net, display string) Spec {
	return Spec{Name: "acme", VCPUs: 2, MemoryBytes: 2 << 30, DiskBytes: 20 << 30, BaseVolume: "img-test.disk", BaseFormat: "qcow2",
		NetworkMode: net, DisplayType: display,
		Meta: Metadata{Workspace: "acme", Profile: "/p/acme.hcl", Image: "test", CreatedAt: time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC),
			ProfileJSON: `{"image":"test","description":"<a & \"b\">"}`}}
}

func goldenInput(net, display, typ string, kernel bool) domainInput {
	in := domainInput{Spec: goldenSpec(net, display), Name: "ws-0123abcd-acme", Owner: testIdentity, Type: typ, TBCacheMiB: 256,
		Paths: WorkspacePaths("/var/lib/workspace", "acme"), Overlay: "/var/lib/workspace/pool/ws-0123abcd-acme.qcow2"}
	if net == "nat" || net == "isolated" {
		in.Subnet = 7
	}
	if kernel {
		in.KernelPath, in.InitrdPath = "/var/lib/workspace/pool/img-test.kernel", "/var/lib/workspace/pool/img-test.initrd"
		in.Spec.Cmdline = "console=ttyS0 root=/dev/vda rw quiet"
	}
	return in
}

// checkGolden compares got with testdata/name and validates it against
// libvirt's schema with virt-xml-validate.
func checkGolden(t *testing.T, name, schema string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *updateGoldens {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./vm -run Golden -update)", err)
	}
	if string(want) != string(got) {
		t.Errorf("%s differs from golden:\n%s", name, got)
	}
	if _, err := exec.LookPath("virt-xml-validate"); err != nil {
		t.Logf("virt-xml-validate not installed: schema check of %s skipped", name)
		return
	}
	if out, err := exec.Command("virt-xml-validate", path, schema).CombinedOutput(); err != nil {
		t.Errorf("virt-xml-validate %s %s: %v\n%s", name, schema, err, out)
	}
}

func TestDomainGoldens(t *testing.T) {
	cases := []struct {
		name, net, display, typ string
		kernel                  bool
	}{
		{"domain-minimal.xml", "none", "none", "qemu", false},
		{"domain-nat-vnc-kernel.xml", "nat", "vnc", "qemu", true},
		{"domain-isolated-spice.xml", "isolated", "spice", "qemu", false},
		{"domain-kvm.xml", "nat", "vnc", "kvm", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := renderDomain(goldenInput(tc.net, tc.display, tc.typ, tc.kernel))
			if err != nil {
				t.Fatal(err)
			}
			checkGolden(t, tc.name, "domain", got)
		})
	}
}

func TestNetworkGoldens(t *testing.T) {
	for _, mode := range []string{"nat", "isolated"} {
		got, err := renderNetwork("ws-0123abcd-acme", mode, 7)
		if err != nil {
			t.Fatal(err)
		}
		checkGolden(t, "network-"+mode+".xml", "network", got)
	}
	if _, err := renderNetwork("ws-0123abcd-acme", "none", 1); err == nil {
		t.Error("mode none rendered a network")
	}
}

func TestDomainXMLProperties(t *testing.T) {
	got, _ := renderDomain(goldenInput("none", "none", "qemu", false))
	s := string(got)
	for _, want := range []string{"org.workspace.agent.0", "org.qemu.guest_agent.0", "/var/lib/workspace/workspaces/acme/agent.sock", `discard="unmap"`, `<model type="none"></model>`,
		// Free page reporting gives what an idle guest frees back to the host.
		`<memballoon model="virtio" autodeflate="on" freePageReporting="on">`} {
		if !strings.Contains(s, want) {
			t.Errorf("domain lacks %s", want)
		}
	}
	for _, bad := range []string{"<graphics", "<interface"} {
		if strings.Contains(s, bad) {
			t.Errorf("minimal domain has %s", bad)
		}
	}
	vnc, _ := renderDomain(goldenInput("nat", "vnc", "qemu", false))
	gfx := string(vnc)[strings.Index(string(vnc), "<graphics"):]
	gfx = gfx[:strings.Index(gfx, "</graphics>")]
	if strings.Contains(gfx, "port") || strings.Contains(gfx, "listen") || !strings.Contains(gfx, `socket="/var/lib/workspace/workspaces/acme/display.sock"`) {
		t.Errorf("display must be on a unix socket only:\n%s", vnc)
	}
}

func TestMetadataRoundTrip(t *testing.T) {
	in := goldenInput("isolated", "spice", "qemu", false)
	x, err := renderDomain(in)
	if err != nil {
		t.Fatal(err)
	}
	meta, display, err := parseDomain(x)
	if err != nil {
		t.Fatal(err)
	}
	if !meta.CreatedAt.Equal(in.Spec.Meta.CreatedAt) || meta.ProfileJSON != in.Spec.Meta.ProfileJSON || meta.Workspace != "acme" || meta.Owner != testIdentity || meta.Image != "test" || meta.Profile != "/p/acme.hcl" || display != "spice" {
		t.Fatalf("round trip: %+v %s", meta, display)
	}
}

func TestRenderErrors(t *testing.T) {
	for _, in := range []domainInput{
		func() domainInput { i := goldenInput("none", "none", "qemu", false); i.Spec.VCPUs = 0; return i }(),
		goldenInput("wifi", "none", "qemu", false),
		goldenInput("none", "rdp", "qemu", false),
		func() domainInput { i := goldenInput("none", "none", "qemu", false); i.Name = ""; return i }(),
		func() domainInput { i := goldenInput("none", "none", "qemu", false); i.Owner = ""; return i }(),
	} {
		if _, err := renderDomain(in); err == nil {
			t.Errorf("rendered %+v", in.Spec)
		}
	}
}

func TestRevertOrder(t *testing.T) {
	var got []string
	var r revert
	for _, s := range []string{"a", "b", "c"} {
		r.add(s, func() error { got = append(got, s); return nil })
	}
	r.run(nil)
	if strings.Join(got, "") != "cba" {
		t.Fatalf("order %v", got)
	}
}

func TestStateOf(t *testing.T) {
	for in, want := range map[int32]State{1: "running", 2: "running", 3: "paused", 5: "stopped", 6: "crashed", 7: "paused", 4: "stopped"} {
		if got := stateOf(in); got != want {
			t.Errorf("stateOf(%d) = %s, want %s", in, got, want)
		}
	}
}
