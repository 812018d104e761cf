package vm

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestLiveShares boots the test guest with a read-only and a read-write
// share. The guest mounts them by tag from the list the host passes in
// fw_cfg; it reads the read-only one but cannot write it, not even after
// remounting it read-write (QEMU enforces it on the host), and what it
// writes into the read-write one appears on the host. The domain also has
// the clipboard on (a SPICE agent channel), which QEMU must accept.
func TestLiveShares(t *testing.T) {
	d, _ := liveDriverPrefix(t, "wstest-share")
	img := testImage(t)
	ctx := context.Background()

	root, err := os.MkdirTemp("", "wsshare")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(root)
	ro, rw := filepath.Join(root, "handoff"), filepath.Join(root, "src")
	for _, dir := range []string{root, ro, rw} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		_ = os.Chmod(dir, 0o777) // QEMU runs as its own user
	}
	if err := os.WriteFile(filepath.Join(ro, "brief.txt"), []byte("the client's brief\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	uploadFile(t, d, "base.disk", "qcow2", filepath.Join(img, "disk.qcow2"))
	uploadFile(t, d, "base.kernel", "raw", filepath.Join(img, "vmlinuz"))
	uploadFile(t, d, "base.initrd", "raw", filepath.Join(img, "initrd.img"))
	cmdline, _ := os.ReadFile(filepath.Join(img, "cmdline"))
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	name := "wstest-share-" + hex.EncodeToString(b)
	spec := Spec{Name: name, VCPUs: 1, MemoryBytes: 384 << 20, DiskBytes: 1 << 30, BaseVolume: "base.disk", BaseFormat: "qcow2",
		KernelVolume: "base.kernel", InitrdVolume: "base.initrd", Cmdline: strings.TrimSpace(string(cmdline)),
		NetworkMode: "none", DisplayType: "spice", Clipboard: true,
		Shares: []ShareSpec{{Tag: "handoff", HostPath: ro, ReadOnly: true}, {Tag: "src", HostPath: rw}},
		Meta:   Metadata{Workspace: name, Image: "base", CreatedAt: time.Now()}}

	// A share whose folder does not exist: a clear error, nothing made.
	missing := spec
	missing.Shares = []ShareSpec{{Tag: "gone", HostPath: filepath.Join(root, "no-such-folder")}}
	err = d.Create(ctx, missing)
	if err == nil || !strings.Contains(err.Error(), `share "gone": host folder`) || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("create with a missing share folder: %v", err)
	}
	if _, err := d.Info(ctx, name); err == nil {
		t.Fatal("a refused create left a domain behind")
	}
	if _, err := os.Stat(WorkspacePaths(d.opts.StateDir, name).Dir); err == nil {
		t.Fatal("a refused create left the workspace folder behind")
	}

	if err := d.Create(ctx, spec); err != nil {
		t.Fatal(err)
	}
	if err := d.Start(ctx, name); err != nil {
		t.Fatal(err)
	}
	console := WorkspacePaths(d.opts.StateDir, name).ConsoleLog
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(console)
			t.Logf("console:\n%s", b)
		}
	})
	waitFor(t, "the guest's qemu-guest-agent", 3*time.Minute, func() bool { return d.GuestPing(ctx, name) == nil })
	log, _ := os.ReadFile(console)
	wantFS := "9p"
	if d.virtiofsAvailable() {
		wantFS = "virtiofs"
	}
	for _, want := range []string{"WORKSPACE-SHARE-MOUNTED handoff 9p ro", "WORKSPACE-SHARE-MOUNTED src " + wantFS + " rw"} {
		if !strings.Contains(string(log), want) {
			t.Errorf("console lacks %q", want)
		}
	}
	run := func(script string) ExecResult {
		t.Helper()
		r, err := d.GuestExec(ctx, name, []string{"/bin/sh", "-c", script})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}

	if r := run("cat /mnt/shares/handoff/brief.txt"); string(r.Stdout) != "the client's brief\n" {
		t.Errorf("read-only share: read %q (exit %d, %s)", r.Stdout, r.ExitCode, r.Stderr)
	}
	if r := run("echo tamper > /mnt/shares/handoff/brief.txt"); r.ExitCode == 0 {
		t.Error("the guest wrote into a read-only share")
	}
	if r := run("mount -o remount,rw /mnt/shares/handoff; echo new > /mnt/shares/handoff/new.txt && echo tamper > /mnt/shares/handoff/brief.txt"); r.ExitCode == 0 {
		t.Error("after remounting it read-write, the guest wrote into a read-only share")
	}
	if b, _ := os.ReadFile(filepath.Join(ro, "brief.txt")); string(b) != "the client's brief\n" {
		t.Errorf("the read-only share's file changed on the host: %q", b)
	}
	if _, err := os.Stat(filepath.Join(ro, "new.txt")); err == nil {
		t.Error("a file appeared in the read-only share's host folder")
	}

	if r := run("echo from-the-guest > /mnt/shares/src/note.txt && sync"); r.ExitCode != 0 {
		t.Fatalf("write into the read-write share: exit %d: %s", r.ExitCode, r.Stderr)
	}
	if b, err := os.ReadFile(filepath.Join(rw, "note.txt")); err != nil || string(b) != "from-the-guest\n" {
		t.Errorf("the host sees %q, %v in the read-write share", b, err)
	}
	// The clipboard channel exists in the running domain.
	l, dom, err := d.domain(name)
	if err != nil {
		t.Fatal(err)
	}
	x, err := l.DomainGetXMLDesc(dom, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(x, "com.redhat.spice.0") {
		t.Error("the running domain has no SPICE agent channel though the clipboard is on")
	}
}
