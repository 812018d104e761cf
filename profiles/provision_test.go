package profiles

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// TestProvisionMergeThroughExtends: packages are a union in order (the
// base's first, a repeat dropped), scripts run base's first then each
// child's, script_file is read next to the profile that names it, and each
// package's position is where it was written.
func TestProvisionMergeThroughExtends(t *testing.T) {
	files := map[string]string{
		"team/base.hcl": "image = \"desk\"\nprovision {\n  packages = [\"git\", \"vim\"]\n  script_file = \"setup.sh\"\n  user_script = \"echo base-user\"\n}\n",
		"team/setup.sh": "#!/bin/sh\necho base\n",
		"main.hcl":      "extends = \"team/base.hcl\"\nprovision {\n  packages = [\n    \"firefox-esr\",\n    \"git\",\n  ]\n  script = \"echo child\"\n}\n",
	}
	p, err := loadMain(t, files)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"git", "vim", "firefox-esr"}; !reflect.DeepEqual(p.Provision.Packages, want) {
		t.Errorf("packages %v, want %v", p.Provision.Packages, want)
	}
	wantScripts := []Script{{From: "team/setup.sh", Text: "#!/bin/sh\necho base\n"}, {From: "main.hcl:7", Text: "echo child"}}
	if !reflect.DeepEqual(p.Provision.Scripts, wantScripts) {
		t.Errorf("scripts %+v, want %+v", p.Provision.Scripts, wantScripts)
	}
	if want := []Script{{From: "team/base.hcl:5", Text: "echo base-user"}}; !reflect.DeepEqual(p.Provision.UserScripts, want) {
		t.Errorf("user scripts %+v, want %+v", p.Provision.UserScripts, want)
	}
	for name, want := range map[string]string{"git": "team/base.hcl:3:15", "vim": "team/base.hcl:3:22", "firefox-esr": "main.hcl:4:5"} {
		if got := p.Positions[PackagePosition(name)]; got != want {
			t.Errorf("position of %s: %q, want %q", name, got, want)
		}
	}
	b, _ := json.Marshal(p)
	var q Profile
	if err := json.Unmarshal(b, &q); err != nil || !reflect.DeepEqual(q.Provision, p.Provision) {
		t.Fatalf("JSON round trip: %v %+v", err, q.Provision)
	}
	if err := q.Validate(); err != nil {
		t.Fatal(err)
	}
	// A child that says nothing of provision keeps its base's.
	files["main.hcl"] = "extends = \"team/base.hcl\"\ncpus = 1\n"
	p, err = loadMain(t, files)
	if err != nil || len(p.Provision.Packages) != 2 || len(p.Provision.Scripts) != 1 {
		t.Fatalf("inherited provision: %+v %v", p.Provision, err)
	}
	// No provision block: nothing, and nothing in the JSON.
	p, _ = loadMain(t, map[string]string{"main.hcl": "image = \"t\"\n"})
	if b, _ := json.Marshal(p); strings.Contains(string(b), "provision") || !p.Provision.Empty() {
		t.Errorf("empty provision: %s", b)
	}
}

func TestProvisionErrors(t *testing.T) {
	big := strings.Repeat("x", MaxScriptSize+1)
	cases := []struct {
		name string
		src  string
		want []string
	}{
		{"bad package", "image = \"t\"\nprovision {\n  packages = [\"ok\", \"Bad;rm\"]\n}\n", []string{"main.hcl:3:21", "provision.packages", `"Bad;rm" is not a Debian package name`}},
		{"option as package", "image = \"t\"\nprovision {\n  packages = [\"--allow-unauthenticated\"]\n}\n", []string{"main.hcl:3:15", "not a Debian package name"}},
		{"packages not a list", "image = \"t\"\nprovision {\n  packages = 3\n}\n", []string{"main.hcl:3:14", "provision.packages must be list of string"}},
		{"both script and file", "image = \"t\"\nprovision {\n  script = \"a\"\n  script_file = \"s.sh\"\n}\n", []string{"not both"}},
		{"missing file", "image = \"t\"\nprovision {\n  user_script_file = \"gone.sh\"\n}\n", []string{"main.hcl:3:22", "cannot read the script"}},
		{"empty script", "image = \"t\"\nprovision {\n  script = \"  \"\n}\n", []string{"main.hcl:3:12", "provision.script", "is empty"}},
		{"big script", "image = \"t\"\nprovision {\n  script = \"" + big + "\"\n}\n", []string{"main.hcl:3:12", "at most 65536"}},
		{"unknown field", "image = \"t\"\nprovision {\n  apt = [\"x\"]\n}\n", []string{"main.hcl:3:3", "apt"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := loadMain(t, map[string]string{"main.hcl": tc.src, "s.sh": "echo\n"})
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%s", w, err)
				}
			}
		})
	}
	// The daemon's side: the same rules on a decoded profile, with positions.
	p := Profile{Image: "t", CPUs: 1, Memory: DefaultMemory, Disk: DefaultDisk, Network: Network{Mode: "none"}, Display: Display{Type: "vnc"},
		Clipboard: "off", Tracking: DefaultTracking, Provision: Provision{Packages: []string{"git", "-o", "git"}, Scripts: []Script{{Text: ""}}}}
	err := p.ValidateAt(map[string]string{"provision.packages": "a.hcl:3:14"})
	for _, w := range []string{"a.hcl:3:14: provision.packages[1]: \"-o\" is not", "provision.packages[2]: \"git\" is listed twice", "provision.script[0]: is empty"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("ValidateAt: %v lacks %q", err, w)
		}
	}
}
