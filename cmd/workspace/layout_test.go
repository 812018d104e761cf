package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestPackageDependencies pins the dependency direction of DESIGN.md:
// vm, profiles and diary import neither each other nor daemon; api does
// not import daemon, vm or diary.
func TestPackageDependencies(t *testing.T) {
	const mod = "github.com/workspace-sandbox/workspace/"
	forbidden := map[string][]string{
		"vm":       {"profiles", "daemon", "api", "cmd"},
		"profiles": {"vm", "daemon", "api", "cmd"},
		"api":      {"vm", "daemon", "diary", "cmd"},
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

// TestDiaryImports pins diary's direct imports: it uses api's wire types
// (which reach profiles for CreateRequest) but never vm, profiles, daemon
// or channel itself.
func TestDiaryImports(t *testing.T) {
	const mod = "github.com/workspace-sandbox/workspace/"
	out, err := exec.Command("go", "list", "-f", `{{join .Imports "\n"}}`, "../../diary").Output()
	if err != nil {
		t.Fatalf("go list diary: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		if strings.HasPrefix(dep, mod) && dep != mod+"api" {
			t.Errorf("diary imports %s", dep)
		}
	}
}
