package vm

import (
	"strings"
	"testing"
	"time"
)

func TestDisposableDomainXML(t *testing.T) {
	in := goldenInput("none", "none", "qemu", true)
	in.Spec.Meta.Disposable = true
	x, err := renderDomain(in)
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "domain-disposable.xml", "domain", x)
	meta, _, err := parseDomain(x)
	if err != nil || !meta.Disposable || meta.Workspace != "acme" {
		t.Fatalf("parsed back: %+v %v", meta, err)
	}

	// A normal workspace has neither the element nor the metadata, so the
	// XML of existing workspaces stays as it was.
	plain, err := renderDomain(goldenInput("none", "none", "qemu", true))
	if err != nil {
		t.Fatal(err)
	}
	if s := string(plain); strings.Contains(s, "transient") || strings.Contains(s, "disposable") {
		t.Fatalf("a normal workspace's XML mentions disposability:\n%s", s)
	}
	if meta, _, _ := parseDomain(plain); meta.Disposable {
		t.Fatal("a normal workspace parsed as disposable")
	}
}

func TestParseSnapshot(t *testing.T) {
	x := `<domainsnapshot>
  <name>booted</name>
  <description>taken by workspace</description>
  <state>running</state>
  <parent><name>clean</name></parent>
  <creationTime>1795426331</creationTime>
  <memory snapshot='internal'/>
  <disks><disk name='vda' snapshot='internal'/></disks>
  <domain type='qemu'><name>ws-acme</name></domain>
</domainsnapshot>`
	s, err := parseSnapshot([]byte(x))
	if err != nil {
		t.Fatal(err)
	}
	want := Snapshot{Name: "booted", State: "running", Memory: true, Parent: "clean", CreatedAt: time.Unix(1795426331, 0).UTC()}
	if s != want {
		t.Fatalf("got %+v, want %+v", s, want)
	}
	s, err = parseSnapshot([]byte(`<domainsnapshot><name>off</name><state>shutoff</state><creationTime>1</creationTime><memory snapshot='no'/></domainsnapshot>`))
	if err != nil || s.State != "stopped" || s.Memory || s.Parent != "" {
		t.Fatalf("stopped snapshot: %+v %v", s, err)
	}
	if _, err := parseSnapshot([]byte("<domainsnapshot")); err == nil {
		t.Fatal("truncated XML parsed")
	}
	// Names reach libvirt escaped.
	if got := string(renderSnapshot(`a<b&"c`)); !strings.Contains(got, "<name>a&lt;b&amp;&#34;c</name>") {
		t.Fatalf("render: %s", got)
	}
}
