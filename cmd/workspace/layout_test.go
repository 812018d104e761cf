package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestPackageDependencies pins the dependency direction of DESIGN.md:
// vm and profiles import neither each other nor daemon; api does not
// import daemon or vm.
func TestPackageDependencies(t *testing.T) {
	const mod = "github.com/workspace-sandbox/workspace/"
	forbidden := map[string][]string{
		"vm":       {"profiles", "daemon", "api", "cmd"},
		"profiles": {"vm", "daemon", "api", "cmd"},
		"api":      {"vm", "daemon", "cmd"},
		"daemon":   {"cmd"},
	}
	for pkg, bad := range forbidden {
		out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", "../../"+pkg).Output()
		if err != nil {
			t.Fatalf("go list %s: %v", pkg, err)
		}
		for _, dep := range strings.Fields(string(out)) {
			for _, b := range bad {
				if strings.HasPrefix(dep, mod+b) {
					t.Errorf("%s depends on %s", pkg, dep)
				}
			}
		}
	}
}
