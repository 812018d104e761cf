package vm

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"image/png"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/workspace-sandbox/workspace/internal/libvirttest"
)

var sweepOnce sync.Once

// liveDriver connects to the real libvirtd (started through
// scripts/libvirt-up.sh when it is not running) with a pool, state folder
// and names of its own, and sweeps them at the end.
func liveDriver(t *testing.T) (*Driver, string) {
	t.Helper()
	return liveDriverPrefix(t, "wstest-vm")
}

// liveDriverPrefix is liveDriver with a pool named prefix-RANDOM, whose
// cleanup sweeps its workspaces named prefix*. Each driver has a state
// folder, so an identity, of its own: it sees only its own workspaces.
func liveDriverPrefix(t *testing.T, prefix string) (*Driver, string) {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test skipped in -short mode")
	}
	uri := os.Getenv("WORKSPACE_TEST_LIBVIRT_URI")
	if uri == "" {
		uri = "qemu:///system"
	}
	if err := exec.Command("virsh", "-c", uri, "version").Run(); err != nil {
		if out, err2 := exec.Command("bash", "../scripts/libvirt-up.sh").CombinedOutput(); err2 != nil || os.Geteuid() != 0 {
			t.Skipf("libvirtd is not reachable at %s and could not be started (%v): %s", uri, err2, out)
		}
	}
	// What killed runs of these tests left (state folders wsvm*, and the
	// benchmark's wsbench*); a user's or the demo's daemon is never touched.
	sweepOnce.Do(func() { libvirttest.SweepStale(t, uri, "wsvm", "wsbench") })
	dir, err := os.MkdirTemp("", "wsvm")
	if err != nil {
		t.Fatal(err)
	}
	_ = os.Chmod(dir, 0o755)
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	pool := prefix + "-" + hex.EncodeToString(b)
	log := hclog.New(&hclog.LoggerOptions{Output: os.Stderr, Level: hclog.Warn})
	d, err := New(context.Background(), Options{URI: uri, StateDir: dir, PoolName: pool, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx := context.Background()
		_ = d.Sweep(ctx, prefix)
		if l, p, err := d.pool(); err == nil {
			_ = l.StoragePoolDestroy(p)
			_ = l.StoragePoolUndefine(p)
		}
		d.Close()
		// Also through virsh, in case the driver lost its connection.
		virsh(uri, "pool-destroy", pool)
		virsh(uri, "pool-undefine", pool)
		os.RemoveAll(dir)
	})
	return d, uri
}

func testImage(t *testing.T) string {
	dir := filepath.Join("..", "images", "test", "build")
	for _, f := range []string{"disk.qcow2", "vmlinuz", "initrd.img", "cmdline"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Skipf("test image not built (%v): run `make test-image`", err)
		}
	}
	return dir
}

func uploadFile(t *testing.T, d *Driver, vol, format, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	capacity := uint64(len(b))
	if format == "qcow2" {
		capacity = binary.BigEndian.Uint64(b[24:32])
	}
	if _, err := d.UploadVolume(context.Background(), vol, format, capacity, bytes.NewReader(b), int64(len(b))); err != nil {
		t.Fatal(err)
	}
}

func waitFor(t *testing.T, what string, timeout time.Duration, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func virsh(uri string, args ...string) string {
	out, _ := exec.Command("virsh", append([]string{"-c", uri}, args...)...).CombinedOutput()
	return string(out)
}

func TestLiveLifecycle(t *testing.T) {
	d, uri := liveDriver(t)
	img := testImage(t)
	ctx := context.Background()
	uploadFile(t, d, "base.disk", "qcow2", filepath.Join(img, "disk.qcow2"))
	uploadFile(t, d, "base.kernel", "raw", filepath.Join(img, "vmlinuz"))
	uploadFile(t, d, "base.initrd", "raw", filepath.Join(img, "initrd.img"))
	cmdline, _ := os.ReadFile(filepath.Join(img, "cmdline"))
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	name := "wstest-vm-" + hex.EncodeToString(b)
	spec := Spec{Name: name, VCPUs: 1, MemoryBytes: 512 << 20, DiskBytes: 1 << 30, BaseVolume: "base.disk", BaseFormat: "qcow2",
		KernelVolume: "base.kernel", InitrdVolume: "base.initrd", Cmdline: strings.TrimSpace(string(cmdline)),
		NetworkMode: "nat", DisplayType: "vnc", Meta: Metadata{Workspace: name, Image: "base", CreatedAt: time.Now()}}

	events, err := d.Events(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Create(ctx, spec); err != nil {
		t.Fatal(err)
	}
	if err := d.Create(ctx, spec); !errors.Is(err, ErrExists) {
		t.Fatalf("second create: %v", err)
	}
	// What libvirt holds passes libvirt's own schema.
	dir := t.TempDir()
	for kind, args := range map[string][]string{"domain": {"dumpxml", d.DomainName(name)}, "network": {"net-dumpxml", d.DomainName(name)}} {
		f := filepath.Join(dir, kind+".xml")
		os.WriteFile(f, []byte(virsh(uri, args...)), 0o644)
		if out, err := exec.Command("virt-xml-validate", f, kind).CombinedOutput(); err != nil {
			t.Errorf("virt-xml-validate %s: %v\n%s", kind, err, out)
		}
	}

	start := time.Now()
	if err := d.Start(ctx, name); err != nil {
		t.Fatal(err)
	}
	info, err := d.Info(ctx, name)
	if err != nil || info.State != "running" || info.Meta.Workspace != name || info.DisplayType != "vnc" {
		t.Fatalf("info: %+v %v", info, err)
	}
	waitFor(t, "the guest's X server", 90*time.Second, func() bool {
		b, _ := os.ReadFile(info.ConsoleLog)
		return bytes.Contains(b, []byte("WORKSPACE-GUEST-XREADY"))
	})
	t.Logf("guest X ready %s after start", time.Since(start).Round(100*time.Millisecond))
	// libvirtd may send a screenshot's reply before, amid or after its
	// data: every one of many screenshots in a row is a whole image, and
	// the driver's connection keeps working after them.
	for i := range 25 {
		var shot bytes.Buffer
		sctx, scancel := context.WithTimeout(ctx, 30*time.Second)
		mime, err := d.Screenshot(sctx, name, &shot)
		scancel()
		if err != nil || shot.Len() == 0 {
			t.Fatalf("screenshot %d: %d bytes, %v", i, shot.Len(), err)
		}
		if mime != "image/png" && mime != "image/x-portable-pixmap" {
			t.Fatalf("screenshot %d reported as %q", i, mime)
		}
		if mime == "image/png" {
			img, err := png.Decode(bytes.NewReader(shot.Bytes()))
			if err != nil {
				t.Fatalf("screenshot %d (%d bytes, starts %q): %v", i, shot.Len(), shot.Bytes()[:min(8, shot.Len())], err)
			}
			if b := img.Bounds(); b.Dx() < 640 || b.Dy() < 400 {
				t.Fatalf("screenshot %d: %v", i, b)
			}
		} else if !bytes.HasPrefix(shot.Bytes(), []byte("P6")) {
			t.Fatalf("screenshot %d reported as PPM, starts with %q", i, shot.Bytes()[:min(8, shot.Len())])
		}
	}
	if _, err := d.Info(ctx, name); err != nil {
		t.Fatalf("info after the screenshots: %v", err)
	}
	if _, err := d.Screenshot(ctx, "wstest-no-such-domain", io.Discard); !errors.Is(err, ErrNotFound) {
		t.Fatalf("screenshot of a missing domain: %v", err)
	}

	if err := d.Shutdown(ctx, name); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a clean shutdown", 60*time.Second, func() bool { i, err := d.Info(ctx, name); return err == nil && i.State == "stopped" })
	if err := d.Start(ctx, name); err != nil {
		t.Fatal(err)
	}
	if err := d.ForceStop(ctx, name); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	timeout := time.After(10 * time.Second)
	for !(seen["started"] && seen["stopped"] && seen["defined"]) {
		select {
		case ev := <-events:
			if ev.Workspace == name {
				seen[ev.Type] = true
			}
		case <-timeout:
			t.Fatalf("events seen: %v", seen)
		}
	}

	if err := d.Delete(ctx, name); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Info(ctx, name); !errors.Is(err, ErrNotFound) {
		t.Fatalf("info after delete: %v", err)
	}
	for _, args := range [][]string{{"list", "--all"}, {"net-list", "--all"}, {"vol-list", d.opts.PoolName}} {
		if out := virsh(uri, args...); strings.Contains(out, d.DomainName(name)) {
			t.Errorf("virsh %v still shows %s:\n%s", args, d.DomainName(name), out)
		}
	}
	if _, err := os.Stat(WorkspacePaths(d.opts.StateDir, name).Dir); !os.IsNotExist(err) {
		t.Errorf("workspace folder left: %v", err)
	}
	if err := d.Delete(ctx, name); !errors.Is(err, ErrNotFound) {
		t.Errorf("second delete: %v", err)
	}
}

func TestLiveCreateRollsBack(t *testing.T) {
	d, uri := liveDriver(t)
	ctx := context.Background()
	base := make([]byte, 1<<20)
	if _, err := d.UploadVolume(ctx, "rb.raw", "raw", uint64(len(base)), bytes.NewReader(base), int64(len(base))); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	name := "wstest-vm-rb" + hex.EncodeToString(b)
	spec := Spec{Name: name, VCPUs: 1, MemoryBytes: 256 << 20, DiskBytes: 1 << 30, BaseVolume: "missing.raw", BaseFormat: "raw",
		NetworkMode: "nat", DisplayType: "none", Meta: Metadata{Workspace: name, CreatedAt: time.Now()}}
	if err := d.Create(ctx, spec); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing base: %v", err)
	}
	// A network of that name that is not ours makes the network step fail
	// after the folder and overlay were made: both must be undone, and the
	// foreign network left alone.
	foreign := filepath.Join(t.TempDir(), "net.xml")
	os.WriteFile(foreign, []byte("<network><name>"+d.DomainName(name)+"</name></network>"), 0o644)
	if out := virsh(uri, "net-define", foreign); !strings.Contains(out, "defined") {
		t.Fatalf("define foreign network: %s", out)
	}
	defer virsh(uri, "net-undefine", d.DomainName(name))
	spec.BaseVolume = "rb.raw"
	if err := d.Create(ctx, spec); err == nil {
		t.Fatal("create over a foreign network succeeded")
	} else {
		t.Logf("create failed as expected: %v", err)
	}
	if !strings.Contains(virsh(uri, "net-list", "--all"), d.DomainName(name)) {
		t.Error("rollback removed a network it did not make")
	}
	virsh(uri, "net-undefine", d.DomainName(name))
	for _, args := range [][]string{{"list", "--all"}, {"net-list", "--all"}, {"vol-list", d.opts.PoolName}} {
		if out := virsh(uri, args...); strings.Contains(out, d.DomainName(name)) {
			t.Errorf("rollback left %s in virsh %v:\n%s", d.DomainName(name), args, out)
		}
	}
	if _, err := os.Stat(WorkspacePaths(d.opts.StateDir, name).Dir); !os.IsNotExist(err) {
		t.Errorf("rollback left the workspace folder: %v", err)
	}
}

func TestLiveReconnect(t *testing.T) {
	d, _ := liveDriver(t)
	if os.Geteuid() != 0 {
		t.Skip("restarting libvirtd needs root")
	}
	if _, err := os.Stat("/run/systemd/system"); err == nil {
		t.Skip("libvirtd is managed by systemd here; not killing it")
	}
	ctx := context.Background()
	if err := exec.Command("pkill", "-x", "libvirtd").Run(); err != nil {
		t.Skipf("cannot stop libvirtd: %v", err)
	}
	waitFor(t, "the driver to notice", 10*time.Second, func() bool { return !d.Connected() })
	if _, err := d.List(ctx); !errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), "cannot reach libvirt at") {
		t.Errorf("while down: %v", err)
	}
	if out, err := exec.Command("bash", "../scripts/libvirt-up.sh").CombinedOutput(); err != nil {
		t.Fatalf("restart libvirtd: %v\n%s", err, out)
	}
	waitFor(t, "the driver to reconnect", 30*time.Second, d.Connected)
	if _, err := d.List(ctx); err != nil {
		t.Fatalf("list after reconnect: %v", err)
	}
}
