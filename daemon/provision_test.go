package daemon

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/workspace-sandbox/workspace/api"
	"github.com/workspace-sandbox/workspace/profiles"
)

// TestCreateRefusesUnknownPackageAtItsLine: a package the archive does not
// have is refused at create, naming the file and line where it was written
// (in the base profile it came from), and nothing is made. apt-get is a
// stand-in answering as the real one does.
func TestCreateRefusesUnknownPackageAtItsLine(t *testing.T) {
	hv := newFakeHV()
	c, d := startDaemon(t, hv)
	fake := filepath.Join(t.TempDir(), "apt-get")
	os.WriteFile(fake, []byte("#!/bin/sh\ncase \"$*\" in\n*update*) exit 0;;\n*no-such-tool*) echo 'E: Unable to locate package no-such-tool'; exit 100;;\nesac\nexit 0\n"), 0o755)
	d.server.prov.archive.AptGet = fake
	ctx := context.Background()
	if _, err := importBytes(t, c, "desk", qcow2Bytes(1<<30, false, 4096)); err != nil {
		t.Fatal(err)
	}
	p, err := profiles.LoadFS(fstest.MapFS{
		"team/base.hcl": {Data: []byte("image = \"desk\"\nprovision {\n  packages = [\"git\",\n    \"no-such-tool\"]\n}\n")},
		"acme.hcl":      {Data: []byte("extends = \"team/base.hcl\"\nprovision {\n  packages = [\"vim\"]\n}\n")},
	}, "acme.hcl")
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Create(ctx, api.CreateRequest{Name: "acme", ProfilePath: "/acme.hcl", Profile: p, Positions: p.Positions})
	if !errors.Is(err, api.ErrInvalid) || !strings.Contains(err.Error(), `team/base.hcl:4:5: provision.packages: the Debian archive (bookworm) has no package "no-such-tool"`) {
		t.Fatalf("create: %v", err)
	}
	if ws, _ := c.Workspaces(ctx); len(ws) != 0 {
		t.Fatalf("a refused create made %+v", ws)
	}
	// Known packages pass; the workspace shows its provisioning pending.
	p.Provision.Packages = []string{"git", "vim"}
	if _, err := c.Create(ctx, api.CreateRequest{Name: "acme", ProfilePath: "/acme.hcl", Profile: p, Positions: p.Positions}); err != nil {
		t.Fatal(err)
	}
	w, err := c.Workspace(ctx, "acme")
	if err != nil || w.Provisioning == nil || w.Provisioning.Root.State != "pending" || w.Provisioning.User.State != "pending" {
		t.Fatalf("status: %+v %v", w.Provisioning, err)
	}
}
