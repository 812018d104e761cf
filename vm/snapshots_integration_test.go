package vm

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	libvirt "github.com/digitalocean/go-libvirt"
)

// snapDriver is liveDriver with names of its own (wstest-snap*), after
// checking for the tools that read the guest's disk.
func snapDriver(t *testing.T) (*Driver, string) {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test skipped in -short mode")
	}
	for _, tool := range []string{"qemu-img", "debugfs"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed (apt-get install qemu-utils e2fsprogs): it reads the guest's disk", tool)
		}
	}
	return liveDriverPrefix(t, "wstest-snap")
}

func randName(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// snapImage is the test image folder: $WORKSPACE_TEST_IMAGE_DIR when set
// (a test image built elsewhere), else the repository's.
func snapImage(t *testing.T) string {
	t.Helper()
	if dir := os.Getenv("WORKSPACE_TEST_IMAGE_DIR"); dir != "" {
		return dir
	}
	return testImage(t)
}

// snapWorkspace uploads the test image and creates a small workspace on it.
func snapWorkspace(t *testing.T, d *Driver, disposable bool) string {
	t.Helper()
	img := snapImage(t)
	uploadFile(t, d, "base.disk", "qcow2", filepath.Join(img, "disk.qcow2"))
	uploadFile(t, d, "base.kernel", "raw", filepath.Join(img, "vmlinuz"))
	uploadFile(t, d, "base.initrd", "raw", filepath.Join(img, "initrd.img"))
	cmdline, _ := os.ReadFile(filepath.Join(img, "cmdline"))
	name := "wstest-snap-" + randName(3)
	spec := Spec{Name: name, VCPUs: 1, MemoryBytes: 256 << 20, DiskBytes: 512 << 20, BaseVolume: "base.disk", BaseFormat: "qcow2",
		KernelVolume: "base.kernel", InitrdVolume: "base.initrd", Cmdline: strings.TrimSpace(string(cmdline)),
		NetworkMode: "none", DisplayType: "none",
		Meta: Metadata{Workspace: name, Image: "base", CreatedAt: time.Now(), Disposable: disposable}}
	if err := d.Create(context.Background(), spec); err != nil {
		t.Fatal(err)
	}
	return name
}

func consoleOf(t *testing.T, d *Driver, name string) string {
	t.Helper()
	b, _ := os.ReadFile(WorkspacePaths(d.opts.StateDir, name).ConsoleLog)
	return string(b)
}

func waitConsole(t *testing.T, d *Driver, name, marker string) {
	t.Helper()
	waitFor(t, "console marker "+marker, 120*time.Second, func() bool { return strings.Contains(consoleOf(t, d, name), marker) })
}

func waitStopped(t *testing.T, d *Driver, name string) {
	t.Helper()
	waitFor(t, name+" to stop", 60*time.Second, func() bool {
		i, err := d.Info(context.Background(), name)
		return err == nil && i.State == "stopped"
	})
}

// guestLogs lists /var/log of the guest's root file system as the disk
// image at path (with its backing chain) holds it: the image is converted
// to raw and read with debugfs, without mounting anything.
func guestLogs(t *testing.T, path string) []string {
	t.Helper()
	raw := filepath.Join(t.TempDir(), "disk.raw")
	if out, err := exec.Command("qemu-img", "convert", "-U", "-O", "raw", path, raw).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img convert %s: %v\n%s", path, err, out)
	}
	defer os.Remove(raw)
	out, err := exec.Command("debugfs", "-R", "ls -p /var/log", raw).CombinedOutput()
	if err != nil {
		t.Fatalf("debugfs: %v\n%s", err, out)
	}
	var names []string
	for _, line := range strings.Split(string(out), "\n") {
		// /inode/mode/uid/gid/name/size/
		f := strings.Split(line, "/")
		if len(f) >= 7 && f[5] != "." && f[5] != ".." {
			names = append(names, f[5])
		}
	}
	return names
}

// topAllocated is how many bytes of the disk image at path hold data of
// its own (not of its backing chain), as qemu-img map reports.
func topAllocated(t *testing.T, path string) int64 {
	t.Helper()
	out, err := exec.Command("qemu-img", "map", "-U", "--output=json", path).Output()
	if err != nil {
		t.Fatalf("qemu-img map %s: %v", path, err)
	}
	var extents []struct {
		Length int64 `json:"length"`
		Depth  int   `json:"depth"`
		Data   bool  `json:"data"`
	}
	if err := json.Unmarshal(out, &extents); err != nil {
		t.Fatalf("qemu-img map %s: %v\n%s", path, err, out)
	}
	var n int64
	for _, e := range extents {
		if e.Depth == 0 && e.Data {
			n += e.Length
		}
	}
	return n
}

func hasLog(names []string, want string) bool {
	for _, n := range names {
		if n == want {
			return true
		}
	}
	return false
}

func fileHash(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func snapNames(t *testing.T, d *Driver, name string) (names []string, current string) {
	t.Helper()
	snaps, err := d.Snapshots(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range snaps {
		names = append(names, s.Name)
		if s.Current {
			current = s.Name
		}
	}
	return names, current
}

func TestLiveSnapshots(t *testing.T) {
	d, uri := snapDriver(t)
	ctx := context.Background()
	name := snapWorkspace(t, d, false)
	overlay, err := d.VolumePath(ctx, overlayName(d.DomainName(name)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.CreateSnapshot(ctx, "wstest-snap-nothere", "x"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("snapshot of a missing workspace: %v", err)
	}

	// Stopped: a disk-only snapshot of the fresh overlay.
	clean, err := d.CreateSnapshot(ctx, name, "clean")
	if err != nil {
		t.Fatal(err)
	}
	if clean.Name != "clean" || clean.State != "stopped" || clean.Memory || !clean.Current || time.Since(clean.CreatedAt) > time.Minute {
		t.Fatalf("stopped snapshot: %+v", clean)
	}
	if _, err := d.CreateSnapshot(ctx, name, "clean"); !errors.Is(err, ErrExists) || !strings.Contains(err.Error(), `snapshot "clean" already exists`) {
		t.Fatalf("second snapshot of the same name: %v", err)
	}
	if hasLog(guestLogs(t, overlay), "Xvfb.log") {
		t.Fatal("a fresh overlay already has the guest's Xvfb.log")
	}

	// Running: disk and memory, taken once the guest's X server is up.
	if err := d.Start(ctx, name); err != nil {
		t.Fatal(err)
	}
	waitConsole(t, d, name, "WORKSPACE-GUEST-XREADY")
	booted, err := d.CreateSnapshot(ctx, name, "booted")
	if err != nil {
		t.Fatal(err)
	}
	if booted.State != "running" || !booted.Memory || !booted.Current || booted.Parent != "clean" {
		t.Fatalf("running snapshot: %+v", booted)
	}
	if i, err := d.Info(ctx, name); err != nil || i.State != "running" {
		t.Fatalf("after a running snapshot the VM is %+v (%v), want it still running", i, err)
	}
	if err := d.Shutdown(ctx, name); err != nil {
		t.Fatal(err)
	}
	waitStopped(t, d, name)
	if logs := guestLogs(t, overlay); !hasLog(logs, "Xvfb.log") {
		t.Fatalf("after a boot the guest's disk has no Xvfb.log in /var/log: %v", logs)
	}

	// A snapshot that does not exist: a clear error, and nothing changes.
	before := fileHash(t, overlay)
	_, err = d.RestoreSnapshot(ctx, name, "nope")
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("restore of a missing snapshot: %v", err)
	}
	for _, want := range []string{`"nope"`, "clean", "booted"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("restore error %q does not name %s", err, want)
		}
	}
	if i, _ := d.Info(ctx, name); i.State != "stopped" {
		t.Errorf("failed restore changed the state to %s", i.State)
	}
	if _, cur := snapNames(t, d, name); cur != "booted" {
		t.Errorf("failed restore changed the current snapshot to %q", cur)
	}
	if fileHash(t, overlay) != before {
		t.Error("failed restore changed the overlay")
	}

	// Restoring the running snapshot resumes the guest: the VM runs without
	// a start, and its console (a new log, since QEMU restarted) never shows
	// a boot, yet the guest's power-button watcher, which only its boot
	// started, answers a shutdown.
	got, err := d.RestoreSnapshot(ctx, name, "booted")
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != "booted" || !got.Current {
		t.Fatalf("restored %+v", got)
	}
	if i, err := d.Info(ctx, name); err != nil || i.State != "running" {
		t.Fatalf("after restoring a running snapshot: %+v %v", i, err)
	}
	if err := d.Shutdown(ctx, name); err != nil {
		t.Fatal(err)
	}
	waitStopped(t, d, name)
	if c := consoleOf(t, d, name); !strings.Contains(c, "WORKSPACE-GUEST-POWEROFF") || strings.Contains(c, "WORKSPACE-GUEST-BOOTED") {
		t.Fatalf("after the restore the guest should have resumed (power-off without a boot), console:\n%s", c)
	}

	// Restoring the stopped snapshot brings the disk back to before the boot.
	if _, err := d.RestoreSnapshot(ctx, name, "clean"); err != nil {
		t.Fatal(err)
	}
	if i, _ := d.Info(ctx, name); i.State != "stopped" {
		t.Fatalf("after restoring a stopped snapshot the VM is %s", i.State)
	}
	if logs := guestLogs(t, overlay); hasLog(logs, "Xvfb.log") {
		t.Fatalf("after restoring \"clean\" the disk still has the boot's logs: %v", logs)
	}
	if names, cur := snapNames(t, d, name); strings.Join(names, ",") != "clean,booted" || cur != "clean" {
		t.Fatalf("snapshots %v, current %q", names, cur)
	}

	// A running VM restored to a stopped snapshot is powered off.
	if err := d.Start(ctx, name); err != nil {
		t.Fatal(err)
	}
	if _, err := d.RestoreSnapshot(ctx, name, "clean"); err != nil {
		t.Fatal(err)
	}
	if i, _ := d.Info(ctx, name); i.State != "stopped" {
		t.Fatalf("a running VM restored to a stopped snapshot is %s", i.State)
	}

	if err := d.DeleteSnapshot(ctx, name, "booted"); err != nil {
		t.Fatal(err)
	}
	if err := d.DeleteSnapshot(ctx, name, "booted"); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "its snapshots: clean") {
		t.Fatalf("second delete: %v", err)
	}
	if names, _ := snapNames(t, d, name); strings.Join(names, ",") != "clean" {
		t.Fatalf("after delete: %v", names)
	}

	// Destroying a workspace with snapshots leaves nothing.
	if err := d.Delete(ctx, name); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"list", "--all"}, {"vol-list", d.opts.PoolName}} {
		if out := virsh(uri, args...); strings.Contains(out, d.DomainName(name)) {
			t.Errorf("virsh %v still shows %s:\n%s", args, d.DomainName(name), out)
		}
	}
}

// transientOverlays are the throw-away overlays libvirt made for name.
func transientOverlays(t *testing.T, overlay string) []string {
	t.Helper()
	m, _ := filepath.Glob(overlay + ".TRANSIENT-*")
	return m
}

func TestLiveDisposable(t *testing.T) {
	d, uri := snapDriver(t)
	ctx := context.Background()
	name := snapWorkspace(t, d, true)
	info, err := d.Info(ctx, name)
	if err != nil || !info.Meta.Disposable {
		t.Fatalf("info of a disposable workspace: %+v %v", info, err)
	}
	if x := virsh(uri, "dumpxml", d.DomainName(name)); !strings.Contains(x, "<transient/>") || !strings.Contains(x, "<ws:disposable>true</ws:disposable>") {
		t.Fatalf("domain XML lacks the transient disk or the metadata:\n%s", x)
	}
	overlay, err := d.VolumePath(ctx, overlayName(d.DomainName(name)))
	if err != nil {
		t.Fatal(err)
	}
	clean := fileHash(t, overlay)
	if _, err := d.CreateSnapshot(ctx, name, "x"); !errors.Is(err, ErrDisposable) || !strings.Contains(err.Error(), "disposable") {
		t.Fatalf("snapshot of a stopped disposable workspace: %v", err)
	}

	// Running: the guest writes into a throw-away overlay, never into ours.
	if err := d.Start(ctx, name); err != nil {
		t.Fatal(err)
	}
	waitConsole(t, d, name, "WORKSPACE-GUEST-XREADY")
	tr := transientOverlays(t, overlay)
	if len(tr) != 1 {
		t.Fatalf("throw-away overlays while running: %v", tr)
	}
	// The guest's writes are in its journal, not yet in its file system
	// (debugfs does not replay journals): look at the overlay's own clusters.
	waitFor(t, "the guest's writes in the throw-away overlay", 60*time.Second, func() bool { return topAllocated(t, tr[0]) > 0 })
	if _, err := d.CreateSnapshot(ctx, name, "x"); !errors.Is(err, ErrDisposable) {
		t.Fatalf("snapshot of a running disposable workspace: %v", err)
	}

	// Stopped (libvirt does it, no daemon here): the writes are gone.
	if err := d.Shutdown(ctx, name); err != nil {
		t.Fatal(err)
	}
	waitStopped(t, d, name)
	if tr := transientOverlays(t, overlay); len(tr) != 0 {
		t.Fatalf("throw-away overlay left after stop: %v", tr)
	}
	if fileHash(t, overlay) != clean || topAllocated(t, overlay) != 0 {
		t.Fatal("the workspace's overlay changed")
	}
	if logs := guestLogs(t, overlay); hasLog(logs, "Xvfb.log") {
		t.Fatalf("the disk keeps the run's logs: %v", logs)
	}

	// A leftover from a run that did not end cleanly (host crash), holding
	// that run's writes, would make libvirt refuse to start: Start deletes
	// it and the guest boots from the clean base.
	leftover := overlay + ".TRANSIENT-" + d.DomainName(name)
	plant := func() {
		t.Helper()
		if out, err := exec.Command("qemu-img", "create", "-q", "-f", "qcow2", "-b", overlay, "-F", "qcow2", leftover).CombinedOutput(); err != nil {
			t.Fatalf("plant a leftover overlay: %v\n%s", err, out)
		}
	}
	plant()
	if err := d.Start(ctx, name); err != nil {
		t.Fatalf("start with a leftover overlay: %v", err)
	}
	waitConsole(t, d, name, "WORKSPACE-GUEST-BOOTED")
	if err := d.ForceStop(ctx, name); err != nil {
		t.Fatal(err)
	}
	if tr := transientOverlays(t, overlay); len(tr) != 0 {
		t.Fatalf("throw-away overlay left after a forced stop: %v", tr)
	}
	// The daemon calls DiscardLeftovers at its start.
	plant()
	if err := d.DiscardLeftovers(ctx, name); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(leftover); !os.IsNotExist(err) {
		t.Fatalf("DiscardLeftovers kept %s: %v", leftover, err)
	}
	if fileHash(t, overlay) != clean {
		t.Fatal("the workspace's overlay changed")
	}
	// And Delete takes any leftover with the workspace.
	plant()
	if err := d.Delete(ctx, name); err != nil {
		t.Fatal(err)
	}
	if m, _ := filepath.Glob(filepath.Join(filepath.Dir(overlay), d.DomainName(name)+"*")); len(m) > 0 {
		t.Fatalf("left in the pool: %v", m)
	}
}

// A virtiofs share makes the VM's memory unsaveable (vhost-user-fs blocks
// migration): a running snapshot is refused with a clear error and nothing
// made, and the stopped snapshot the error suggests works.
func TestLiveSnapshotMemoryRefused(t *testing.T) {
	found := false
	for _, p := range []string{"/usr/libexec/virtiofsd", "/usr/lib/qemu/virtiofsd", "/usr/bin/virtiofsd"} {
		if _, err := os.Stat(p); err == nil {
			found = true
		}
	}
	if !found {
		t.Skip("virtiofsd is not installed (apt-get install virtiofsd, or qemu-system-common before Debian 13)")
	}
	d, _ := snapDriver(t)
	ctx := context.Background()
	name := snapWorkspace(t, d, false)
	// Add a virtiofs share to the definition as libvirt wants it.
	l, dom, err := d.domain(name)
	if err != nil {
		t.Fatal(err)
	}
	x, err := l.DomainGetXMLDesc(dom, libvirt.DomainXMLInactive)
	if err != nil {
		t.Fatal(err)
	}
	share := t.TempDir()
	x = strings.Replace(x, "<vcpu", "<memoryBacking><source type='memfd'/><access mode='shared'/></memoryBacking><vcpu", 1)
	x = strings.Replace(x, "</devices>", "<filesystem type='mount' accessmode='passthrough'><driver type='virtiofs' queue='1024'/><source dir='"+share+"'/><target dir='share'/></filesystem></devices>", 1)
	if _, err := l.DomainDefineXML(x); err != nil {
		t.Fatalf("add a virtiofs share: %v", err)
	}
	if err := d.Start(ctx, name); err != nil {
		t.Fatal(err)
	}
	waitConsole(t, d, name, "WORKSPACE-GUEST-BOOTED")
	_, err = d.CreateSnapshot(ctx, name, "live")
	if !errors.Is(err, ErrMemoryState) || !strings.Contains(err.Error(), "while it is stopped") || !strings.Contains(err.Error(), "vhost-user-fs") {
		t.Fatalf("running snapshot with a virtiofs share: %v", err)
	}
	if names, _ := snapNames(t, d, name); len(names) != 0 {
		t.Fatalf("a refused snapshot left %v", names)
	}
	if i, _ := d.Info(ctx, name); i.State != "running" {
		t.Fatalf("a refused snapshot left the VM %s", i.State)
	}
	if err := d.ForceStop(ctx, name); err != nil {
		t.Fatal(err)
	}
	if s, err := d.CreateSnapshot(ctx, name, "stopped"); err != nil || s.Memory {
		t.Fatalf("stopped snapshot with a virtiofs share: %+v %v", s, err)
	}
}
