package daemon

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/workspace-sandbox/workspace/api"
	"github.com/workspace-sandbox/workspace/profiles"
)

// startDaemon serves a daemon around hv on a unix socket in a temp folder
// and returns a client for it.
func startDaemon(t *testing.T, hv Hypervisor) (*api.Client, *Daemon) {
	t.Helper()
	return startDaemonWith(t, hv, nil)
}

// startDaemonWith is startDaemon with the config changed by tweak first.
func startDaemonWith(t testing.TB, hv Hypervisor, tweak func(*Config)) (*api.Client, *Daemon) {
	t.Helper()
	dir, err := os.MkdirTemp("", "wsd")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	cfg := Config{StateDir: dir, Socket: filepath.Join(dir, "d.sock"), Version: "test", UIAddr: "127.0.0.1:0",
		Logger: hclog.New(&hclog.LoggerOptions{Output: os.Stderr, Level: hclog.Warn})}
	if tweak != nil {
		tweak(&cfg)
	}
	d, err := New(cfg, hv)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	d.server.m.poll = 10 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	c := api.NewClient(cfg.Socket)
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := c.Info(context.Background()); err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("daemon did not come up: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return c, d
}

func qcow2Bytes(virtual uint64, backing bool, size int) []byte {
	b := make([]byte, size)
	copy(b, qcow2Magic)
	binary.BigEndian.PutUint32(b[4:8], 3)
	if backing {
		binary.BigEndian.PutUint64(b[8:16], 512)
	}
	binary.BigEndian.PutUint64(b[24:32], virtual)
	return b
}

func importBytes(t testing.TB, c *api.Client, name string, disk []byte) (api.Image, error) {
	t.Helper()
	return c.ImportImage(context.Background(), api.ImportSource{
		Meta: api.ImportMeta{Name: name, DiskSize: int64(len(disk))},
		Disk: bytes.NewReader(disk),
	})
}

func testProfile(t testing.TB, src string) *profiles.Profile {
	t.Helper()
	p, err := profiles.LoadFS(fstest.MapFS{"p.hcl": {Data: []byte(src)}}, "p.hcl")
	if err != nil {
		t.Fatalf("test profile: %v", err)
	}
	return p
}

func TestImageImportListRemove(t *testing.T) {
	hv := newFakeHV()
	c, _ := startDaemon(t, hv)
	ctx := context.Background()

	img, err := importBytes(t, c, "test", qcow2Bytes(1<<30, false, 4096))
	if err != nil {
		t.Fatal(err)
	}
	if img.Format != "qcow2" || img.VirtualSize != 1<<30 || len(img.SHA256) != 64 || img.Size != 4096 {
		t.Fatalf("unexpected image %+v", img)
	}
	raw, err := importBytes(t, c, "rawdisk", bytes.Repeat([]byte{1}, 1000))
	if err != nil {
		t.Fatal(err)
	}
	if raw.Format != "raw" || raw.VirtualSize != 1000 {
		t.Fatalf("raw image: %+v", raw)
	}
	if _, err := importBytes(t, c, "test", qcow2Bytes(1<<30, false, 4096)); !errors.Is(err, api.ErrExists) {
		t.Fatalf("second import: want ErrExists, got %v", err)
	}
	imgs, err := c.Images(ctx)
	if err != nil || len(imgs) != 2 || imgs[1].Name != "test" {
		t.Fatalf("images = %+v, %v", imgs, err)
	}
	if err := c.RemoveImage(ctx, "rawdisk"); err != nil {
		t.Fatal(err)
	}
	if err := c.RemoveImage(ctx, "rawdisk"); !errors.Is(err, api.ErrNotFound) {
		t.Fatalf("second rm: want ErrNotFound, got %v", err)
	}
	if len(hv.volumes) != 1 {
		t.Fatalf("volumes left: %v", len(hv.volumes))
	}
}

func TestImageImportBadInputChangesNothing(t *testing.T) {
	hv := newFakeHV()
	c, d := startDaemon(t, hv)
	cases := map[string]struct {
		name string
		meta api.ImportMeta
		disk []byte
	}{
		"backing file": {name: "b", disk: qcow2Bytes(1<<30, true, 4096)},
		"bad name":     {name: "../etc", disk: []byte("x")},
		"short upload": {name: "short", meta: api.ImportMeta{DiskSize: 5000}, disk: make([]byte, 100)},
		"zero virtual": {name: "z", disk: qcow2Bytes(0, false, 100)},
	}
	for label, tc := range cases {
		t.Run(label, func(t *testing.T) {
			meta := tc.meta
			meta.Name = tc.name
			if meta.DiskSize == 0 {
				meta.DiskSize = int64(len(tc.disk))
			}
			_, err := c.ImportImage(context.Background(), api.ImportSource{Meta: meta, Disk: bytes.NewReader(tc.disk)})
			if err == nil {
				t.Fatal("import succeeded")
			}
			if len(hv.volumes) != 0 {
				t.Fatalf("volumes left behind: %d", len(hv.volumes))
			}
			entries, _ := os.ReadDir(d.server.images.dir)
			if len(entries) != 0 {
				t.Fatalf("image records left behind: %v", entries)
			}
		})
	}
}

func TestLifecycle(t *testing.T) {
	hv := newFakeHV()
	c, _ := startDaemon(t, hv)
	ctx := context.Background()
	if _, err := importBytes(t, c, "test", qcow2Bytes(1<<30, false, 4096)); err != nil {
		t.Fatal(err)
	}
	p := testProfile(t, `image = "test"`)
	w, err := c.Create(ctx, api.CreateRequest{Name: "acme", ProfilePath: "/p.hcl", Profile: p})
	if err != nil {
		t.Fatal(err)
	}
	if w.Name != "acme" || w.State != api.StateStopped || w.Image != "test" || w.Profile != "/p.hcl" || w.CreatedAt.IsZero() {
		t.Fatalf("created %+v", w)
	}
	if _, err := c.Create(ctx, api.CreateRequest{Name: "acme", Profile: p}); !errors.Is(err, api.ErrExists) || !strings.Contains(err.Error(), `"acme" already exists`) {
		t.Fatalf("duplicate create: %v", err)
	}
	if w, err = c.Start(ctx, "acme", api.StartRequest{}); err != nil || w.State != api.StateRunning {
		t.Fatalf("start: %+v %v", w, err)
	}
	ws, err := c.Workspaces(ctx)
	if err != nil || len(ws) != 1 || ws[0].State != api.StateRunning {
		t.Fatalf("list: %+v %v", ws, err)
	}
	if err := c.RemoveImage(ctx, "test"); !errors.Is(err, api.ErrConflict) || !strings.Contains(err.Error(), `"acme"`) {
		t.Fatalf("rm of used image: %v", err)
	}
	if w, err = c.Stop(ctx, "acme", api.StopRequest{}); err != nil || w.State != api.StateStopped {
		t.Fatalf("stop: %+v %v", w, err)
	}
	if w, err = c.Restart(ctx, "acme", api.StopRequest{}); err != nil || w.State != api.StateRunning {
		t.Fatalf("restart: %+v %v", w, err)
	}

	hv.ignoreACPI = true
	if _, err := c.Stop(ctx, "acme", api.StopRequest{Timeout: "50ms"}); !errors.Is(err, api.ErrConflict) || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("stop of a guest ignoring ACPI: want a conflict naming --force, got %v", err)
	}
	if w, err = c.Stop(ctx, "acme", api.StopRequest{Timeout: "50ms", Force: true}); err != nil || w.State != api.StateStopped {
		t.Fatalf("forced stop: %+v %v", w, err)
	}
	if err := c.Destroy(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	if len(hv.domains) != 0 {
		t.Fatal("domain left behind")
	}
}

func TestUnknownWorkspace(t *testing.T) {
	c, _ := startDaemon(t, newFakeHV())
	ctx := context.Background()
	calls := map[string]func() error{
		"status":  func() error { _, err := c.Workspace(ctx, "nope"); return err },
		"start":   func() error { _, err := c.Start(ctx, "nope", api.StartRequest{}); return err },
		"stop":    func() error { _, err := c.Stop(ctx, "nope", api.StopRequest{}); return err },
		"restart": func() error { _, err := c.Restart(ctx, "nope", api.StopRequest{}); return err },
		"destroy": func() error { return c.Destroy(ctx, "nope") },
	}
	for name, call := range calls {
		err := call()
		if !errors.Is(err, api.ErrNotFound) || err.Error() != `not found: no workspace named "nope"` {
			t.Errorf("%s: got %v", name, err)
		}
	}
}

func TestCreateBadInputChangesNothing(t *testing.T) {
	hv := newFakeHV()
	c, _ := startDaemon(t, hv)
	ctx := context.Background()
	if _, err := importBytes(t, c, "test", qcow2Bytes(1<<30, false, 4096)); err != nil {
		t.Fatal(err)
	}
	good := testProfile(t, `image = "test"`)
	missing := testProfile(t, `image = "nothere"`)
	badCPU := *good
	badCPU.CPUs = 0
	if _, err := importBytes(t, c, "big", qcow2Bytes(8<<30, false, 4096)); err != nil {
		t.Fatal(err)
	}
	small := testProfile(t, "image = \"big\"\ndisk = \"4GiB\"")
	cases := []struct {
		label string
		req   api.CreateRequest
		want  error
		text  string
	}{
		{"bad name", api.CreateRequest{Name: "Bad_Name", Profile: good}, api.ErrInvalid, "DNS label"},
		{"image not imported", api.CreateRequest{Name: "a", Profile: missing}, api.ErrNotFound, `image "nothere" is not imported`},
		{"cpus 0", api.CreateRequest{Name: "a", Profile: &badCPU}, api.ErrInvalid, "cpus"},
		{"disk below image", api.CreateRequest{Name: "a", Profile: small}, api.ErrInvalid, "smaller than image"},
		{"no profile", api.CreateRequest{Name: "a"}, api.ErrInvalid, "no profile"},
	}
	for _, tc := range cases {
		_, err := c.Create(ctx, tc.req)
		if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.text) {
			t.Errorf("%s: want %v containing %q, got %v", tc.label, tc.want, tc.text, err)
		}
	}
	if len(hv.domains) != 0 {
		t.Fatalf("domains made: %d", len(hv.domains))
	}
}

func TestLibvirtDown(t *testing.T) {
	hv := newFakeHV()
	c, _ := startDaemon(t, hv)
	hv.down = true
	_, err := c.Workspaces(context.Background())
	if !errors.Is(err, api.ErrUnavailable) || !strings.Contains(err.Error(), "cannot reach libvirt at fake:///") {
		t.Fatalf("want unavailable naming the URI, got %v", err)
	}
	info, err := c.Info(context.Background())
	if err != nil || info.Connected {
		t.Fatalf("info while down: %+v %v", info, err)
	}
}

func TestRejectsUnknownFieldsAndRoutes(t *testing.T) {
	c, d := startDaemon(t, newFakeHV())
	_ = c
	srv := d.Handler()
	for _, tc := range []struct {
		method, path, body string
		status             int
	}{
		{"POST", "/v1/workspaces", `{"name":"a","bogus":1}`, 400},
		{"GET", "/v1/nothing", "", 404},
		{"POST", "/v1/images", `not multipart`, 400},
	} {
		req, _ := http.NewRequest(tc.method, "http://x"+tc.path, strings.NewReader(tc.body))
		rec := &recorder{header: http.Header{}}
		srv.ServeHTTP(rec, req)
		if rec.status != tc.status || !strings.Contains(rec.body.String(), `"code"`) {
			t.Errorf("%s %s: status %d body %s", tc.method, tc.path, rec.status, rec.body.String())
		}
	}
}

type recorder struct {
	header http.Header
	body   bytes.Buffer
	status int
}

func (r *recorder) Header() http.Header         { return r.header }
func (r *recorder) Write(b []byte) (int, error) { return r.body.Write(b) }
func (r *recorder) WriteHeader(s int)           { r.status = s }

func TestEventsStream(t *testing.T) {
	hv := newFakeHV()
	c, _ := startDaemon(t, hv)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got := make(chan api.Event, 10)
	go func() {
		_ = c.Events(ctx, func(ev api.Event) error { got <- ev; return nil })
	}()
	time.Sleep(100 * time.Millisecond) // let the subscription register
	if _, err := importBytes(t, c, "test", qcow2Bytes(1<<30, false, 4096)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Create(ctx, api.CreateRequest{Name: "ev", Profile: testProfile(t, `image = "test"`)}); err != nil {
		t.Fatal(err)
	}
	select {
	case ev := <-got:
		if ev.Workspace != "ev" || ev.Type != "defined" {
			t.Fatalf("event %+v", ev)
		}
	case <-ctx.Done():
		t.Fatal("no event")
	}
}

func TestDaemonNotRunning(t *testing.T) {
	c := api.NewClient(filepath.Join(t.TempDir(), "none.sock"))
	_, err := c.Workspaces(context.Background())
	if !errors.Is(err, api.ErrDaemonNotRunning) || !strings.Contains(err.Error(), "workspace daemon") {
		t.Fatalf("got %v", err)
	}
}

func TestPeerAllowed(t *testing.T) {
	groups := func(pid int32) []int {
		if pid == 7 {
			return []int{5, 900}
		}
		return nil
	}
	cases := []struct {
		pc    peerCred
		gid   int
		allow bool
	}{
		{peerCred{uid: 0}, -1, true},
		{peerCred{uid: 1000}, -1, true}, // the daemon's own user
		{peerCred{uid: 1001, gid: 100}, -1, false},
		{peerCred{uid: 1001, gid: 900}, 900, true},
		{peerCred{uid: 1001, gid: 100, pid: 7}, 900, true},
		{peerCred{uid: 1001, gid: 100, pid: 8}, 900, false},
	}
	for i, tc := range cases {
		if got := peerAllowed(tc.pc, 1000, tc.gid, groups); got != tc.allow {
			t.Errorf("case %d: got %v want %v", i, got, tc.allow)
		}
	}
}

func TestSniffDisk(t *testing.T) {
	h, err := sniffDisk(qcow2Bytes(5<<30, false, 72), 72)
	if err != nil || h.format != "qcow2" || h.virtualSize != 5<<30 {
		t.Fatalf("%+v %v", h, err)
	}
	if _, err := sniffDisk(qcow2Bytes(5<<30, true, 72), 72); !errors.Is(err, api.ErrInvalid) {
		t.Fatalf("backing file accepted: %v", err)
	}
	if _, err := sniffDisk([]byte(qcow2Magic), 4); !errors.Is(err, api.ErrInvalid) {
		t.Fatalf("truncated header accepted: %v", err)
	}
	if h, err := sniffDisk([]byte("hello"), 5); err != nil || h.format != "raw" || h.virtualSize != 5 {
		t.Fatalf("raw: %+v %v", h, err)
	}
}

func FuzzSniffDisk(f *testing.F) {
	f.Add(qcow2Bytes(1<<30, false, 72), int64(72))
	f.Add([]byte("QFI\xfb"), int64(4))
	f.Add([]byte{}, int64(0))
	f.Fuzz(func(t *testing.T, head []byte, size int64) {
		h, err := sniffDisk(head, size)
		if err != nil {
			if !errors.Is(err, api.ErrInvalid) {
				t.Fatalf("error without class: %v", err)
			}
			return
		}
		if h.virtualSize == 0 || (h.format != "qcow2" && h.format != "raw") {
			t.Fatalf("accepted nonsense: %+v", h)
		}
	})
}

func TestImageGC(t *testing.T) {
	c, _ := startDaemon(t, newFakeHV())
	ctx := context.Background()
	for _, n := range []string{"used", "old", "older"} {
		if _, err := importBytes(t, c, n, qcow2Bytes(1<<30, false, 4096)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Create(ctx, api.CreateRequest{Name: "acme", Profile: testProfile(t, `image = "used"`)}); err != nil {
		t.Fatal(err)
	}
	dry, err := c.ImageGC(ctx, true)
	if err != nil || len(dry.Removed) != 2 || len(dry.Kept) != 1 || dry.Kept[0] != "used" {
		t.Fatalf("dry run: %+v %v", dry, err)
	}
	if imgs, _ := c.Images(ctx); len(imgs) != 3 {
		t.Fatal("a dry run removed images")
	}
	res, err := c.ImageGC(ctx, false)
	if err != nil || len(res.Removed) != 2 || res.Bytes != 2*4096 {
		t.Fatalf("gc: %+v %v", res, err)
	}
	imgs, _ := c.Images(ctx)
	if len(imgs) != 1 || imgs[0].Name != "used" {
		t.Fatalf("after gc: %+v", imgs)
	}
}

// A base cannot be collected while a workspace is being made on it: gc
// waits for the create, then keeps the image it now has a user.
func TestImageGCWaitsForACreate(t *testing.T) {
	hv := newFakeHV()
	c, _ := startDaemon(t, hv)
	ctx := context.Background()
	if _, err := importBytes(t, c, "base", qcow2Bytes(1<<30, false, 4096)); err != nil {
		t.Fatal(err)
	}
	gate := make(chan struct{})
	hv.mu.Lock()
	hv.createGate = gate
	hv.mu.Unlock()
	created := make(chan error, 1)
	go func() {
		_, err := c.Create(ctx, api.CreateRequest{Name: "acme", Profile: testProfile(t, `image = "base"`)})
		created <- err
	}()
	time.Sleep(200 * time.Millisecond) // the create is inside the hypervisor now
	collected := make(chan api.GCResult, 1)
	go func() {
		res, err := c.ImageGC(ctx, false)
		if err != nil {
			t.Error(err)
		}
		collected <- res
	}()
	select {
	case res := <-collected:
		t.Fatalf("gc ran during a create on its base: %+v", res)
	case <-time.After(300 * time.Millisecond):
	}
	close(gate)
	if err := <-created; err != nil {
		t.Fatal(err)
	}
	if res := <-collected; len(res.Removed) != 0 || len(res.Kept) != 1 {
		t.Fatalf("gc after the create: %+v", res)
	}
}
