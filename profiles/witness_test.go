package profiles

import (
	"errors"
	"strings"
	"testing"

	"github.com/workspace-sandbox/workspace/witness"
)

func TestWitnessBlocks(t *testing.T) {
	_, k1, _ := witness.GenerateKey("witness.example/client")
	_, k2, _ := witness.GenerateKey("witness.example/team")
	_, k3, _ := witness.GenerateKey("witness.example/team2")
	p, err := loadMain(t, map[string]string{
		"base.hcl": `image = "test"
witness "team" {
  url = "https://witness.team.example"
  key = "` + k2 + `"
}
`,
		"main.hcl": `extends = "base.hcl"
witness "client" {
  url = "http://127.0.0.1:7380/"
  key = "` + k1 + `"
}
witness "team" {
  key = "` + k3 + `"
}
`})
	if err != nil {
		t.Fatal(err)
	}
	want := []Witness{{Name: "client", URL: "http://127.0.0.1:7380/", Key: k1}, {Name: "team", URL: "https://witness.team.example", Key: k3}}
	if len(p.Witnesses) != 2 || p.Witnesses[0] != want[0] || p.Witnesses[1] != want[1] {
		t.Fatalf("witnesses %+v", p.Witnesses)
	}
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestWitnessBlockErrors(t *testing.T) {
	_, k1, _ := witness.GenerateKey("w1")
	logKey := "example.com/log+5ea3c6f0+AQEbY9yX4cUEQ5Z7cCJ8nAJk3m1l4JpQe3V5o3u8Q2zG"
	_, err := loadMain(t, map[string]string{"main.hcl": `image = "test"
witness "a" {
  url = "ftp://witness.example"
  key = "` + k1 + `"
}
witness "b" {
  url = "https://user:pw@witness.example"
  key = "not a key"
}
witness "c" {
  url = "https://witness.example"
}
witness "d" {
  url = "https://witness.example"
  key = "` + k1 + `"
}
witness "bad name!" {
  url = "https://witness.example"
  key = "` + k1 + `"
}
witness "e" {
  url = "https://witness.example"
  key = "` + logKey + `"
}
`})
	var de *DiagnosticsError
	if !errors.As(err, &de) {
		t.Fatalf("want diagnostics, got %v", err)
	}
	msg := err.Error()
	for _, want := range []string{"main.hcl:3", "not \"ftp\"", "main.hcl:7", "carries credentials", "main.hcl:8", "not a note verifier key",
		"main.hcl:10", "Missing witness key", "main.hcl:15", "Duplicate witness key", "main.hcl:17", "Invalid witness name", "main.hcl:23"} {
		if !strings.Contains(msg, want) {
			t.Errorf("diagnostics lack %q:\n%s", want, msg)
		}
	}
	// The daemon's check of a profile decoded from JSON.
	p := &Profile{Image: "test", CPUs: 1, Memory: DefaultMemory, Disk: DefaultDisk, Network: Network{Mode: "nat"}, Display: Display{Type: "spice"}, Clipboard: "off", Tracking: DefaultTracking,
		Witnesses: []Witness{{Name: "a", URL: "https://w.example", Key: k1}, {Name: "a", URL: "gopher://x", Key: k1}}}
	err = p.Validate()
	if err == nil || !strings.Contains(err.Error(), "named twice") || !strings.Contains(err.Error(), "witness.a.url") {
		t.Fatalf("Validate: %v", err)
	}
}
