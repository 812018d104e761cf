package vm

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestLiveShares boots the test guest with a read-only and a read-write
// share. The guest mounts them by tag from the list the host passes in
// fw_cfg; it reads the read-only one but cannot write it, not even after
// remounting it read-write (QEMU enforces it on the host), and what it
// writes into the read-write one appears on the host, owned by the
// folder's owner. The guest's root makes a setuid and a setgid file,
// device nodes, a fifo and a symbolic link to /etc/shadow there, and
// chowns a file to root: the guest sees them so, but on the host they are
// plain private files of the folder's owner. The domain also has the
// clipboard on (a SPICE agent channel), which QEMU must accept.
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
		_ = os.Chmod(dir, 0o755)
	}
	// The read-write folder belongs to a user (nobody here, who owns
	// nothing else): QEMU runs as it.
	const owner = 65534
	if err := os.Chown(rw, owner, owner); err != nil {
		t.Fatal(err)
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
	// A read-write folder of root's (QEMU would run as root), and a path
	// through a symbolic link (QEMU would open whatever it points to at
	// the next start): refused, nothing made.
	rootOwned := filepath.Join(root, "rootowned")
	os.Mkdir(rootOwned, 0o755)
	link := filepath.Join(root, "link")
	os.Symlink(rw, link)
	for path, want := range map[string]string{rootOwned: "belongs to root", link: "is a symbolic link"} {
		bad := spec
		bad.Shares = []ShareSpec{{Tag: "bad", HostPath: path}}
		if err := d.Create(ctx, bad); err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("create with share %s: %v", path, err)
		}
		if _, err := d.Info(ctx, name); err == nil {
			t.Fatal("a refused create left a domain behind")
		}
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
	for _, want := range []string{"WORKSPACE-SHARE-MOUNTED handoff 9p ro", "WORKSPACE-SHARE-MOUNTED src 9p rw"} {
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

	// The guest's root tries to plant a setuid-root program, device nodes
	// and a way out of the folder on the host.
	r := run(`cd /mnt/shares/src && echo x > suid && chmod 4755 suid && echo x > sgid && chmod 2755 sgid &&
mknod mem c 1 1 && mknod disk b 8 0 && mkfifo fifo && ln -s /etc/shadow link && mkdir sub && chmod 1777 sub &&
chown 0:0 note.txt && sync && stat -c '%n %a %u %F' suid sgid mem disk fifo link note.txt`)
	if r.ExitCode != 0 {
		t.Fatalf("guest root in the read-write share: exit %d: %s %s", r.ExitCode, r.Stdout, r.Stderr)
	}
	t.Logf("what the guest sees:\n%s", r.Stdout)
	for _, want := range []string{"suid 4755 0 regular file", "mem 644 0 character special file", "disk 644 0 block special file", "link 777 0 symbolic link"} {
		if !strings.Contains(string(r.Stdout), want) {
			t.Errorf("the guest does not see %q (its own view is kept in extended attributes)", want)
		}
	}
	entries, err := os.ReadDir(rw)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) < 8 {
		t.Fatalf("the host sees only %d entries in the share", len(entries))
	}
	for _, e := range entries {
		fi, err := os.Lstat(filepath.Join(rw, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		t.Logf("host: %s %v uid %d gid %d", e.Name(), fi.Mode(), st.Uid, st.Gid)
		if fi.Mode()&(os.ModeSetuid|os.ModeSetgid|os.ModeSticky) != 0 {
			t.Errorf("%s has a setuid, setgid or sticky bit on the host: %v", e.Name(), fi.Mode())
		}
		if fi.Mode()&(os.ModeDevice|os.ModeCharDevice|os.ModeNamedPipe|os.ModeSymlink|os.ModeSocket) != 0 {
			t.Errorf("%s is a special file on the host: %v", e.Name(), fi.Mode())
		}
		if st.Uid != owner {
			t.Errorf("%s belongs to uid %d on the host, not to the folder's owner %d", e.Name(), st.Uid, owner)
		}
		if fi.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s is %v on the host: others may read it", e.Name(), fi.Mode().Perm())
		}
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

	// Suspending it is refused: QEMU cannot save the memory of a guest that
	// has a 9p share mounted. The refusal is a conflict that says why, no
	// saved state is left, and the guest runs on untouched.
	_, err = d.Suspend(ctx, name, "test")
	if !errors.Is(err, ErrMemoryState) || !strings.Contains(err.Error(), "shared folder mounted in the guest") {
		t.Fatalf("suspend with a 9p share mounted: %v", err)
	}
	t.Logf("suspend refused: %v", err)
	if _, err := os.Stat(d.SavedStatePath(name)); !os.IsNotExist(err) {
		t.Errorf("a refused suspend left a saved state behind: %v", err)
	}
	if info, err := d.Info(ctx, name); err != nil || info.State != "running" {
		t.Fatalf("after the refused suspend: %+v, %v", info, err)
	}
	if r := run("cat /mnt/shares/src/note.txt"); r.ExitCode != 0 {
		t.Errorf("the guest after the refused suspend: exit %d: %s", r.ExitCode, r.Stderr)
	}
}
