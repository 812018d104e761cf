package vm

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

// benchBaseSize is the base image of the create benchmark: 2 GiB of
// incompressible data, so a full copy cannot cheat with sparse files.
const benchBaseSize = 2 << 30

// BenchmarkCreateWorkspace compares, in the same run on the same libvirtd
// and pool, creating a workspace as we do (a qcow2 overlay on the base plus
// the domain definition) with the reference a hand-made setup pays: a full
// copy of the base (libvirt's own volume clone). Run with scripts/bench.sh.
func BenchmarkCreateWorkspace(b *testing.B) {
	uri := os.Getenv("WORKSPACE_TEST_LIBVIRT_URI")
	if uri == "" {
		uri = "qemu:///system"
	}
	if err := exec.Command("virsh", "-c", uri, "version").Run(); err != nil {
		b.Skipf("libvirtd not reachable at %s: run `sudo make libvirt`", uri)
	}
	dir, err := os.MkdirTemp("", "wsbench")
	if err != nil {
		b.Fatal(err)
	}
	defer os.RemoveAll(dir)
	_ = os.Chmod(dir, 0o755)
	suffix := make([]byte, 4)
	_, _ = rand.Read(suffix)
	pool := "wstest-bench-" + hex.EncodeToString(suffix)
	ctx := context.Background()
	d, err := New(ctx, Options{URI: uri, StateDir: dir, PoolName: pool, Logger: hclog.NewNullLogger()})
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		_ = d.Sweep(ctx, "wstest-bench")
		if l, p, err := d.pool(); err == nil {
			_ = l.StoragePoolDestroy(p)
			_ = l.StoragePoolUndefine(p)
		}
		d.Close()
	}()
	if _, err := d.UploadVolume(ctx, "base.raw", "raw", benchBaseSize, io.LimitReader(rand.Reader, benchBaseSize), benchBaseSize); err != nil {
		b.Fatal(err)
	}

	spec := func(i int) Spec {
		return Spec{Name: fmt.Sprintf("wstest-bench-%d", i), VCPUs: 1, MemoryBytes: 256 << 20, DiskBytes: benchBaseSize,
			BaseVolume: "base.raw", BaseFormat: "raw", NetworkMode: "none", DisplayType: "none",
			Meta: Metadata{Workspace: fmt.Sprintf("wstest-bench-%d", i), Image: "base", CreatedAt: time.Now()}}
	}
	b.Run("overlay", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if err := d.Create(ctx, spec(i)); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			if err := d.Delete(ctx, spec(i).Name); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
	})
	b.Run("full-copy", func(b *testing.B) {
		l, p, err := d.pool()
		if err != nil {
			b.Fatal(err)
		}
		base, err := l.StorageVolLookupByName(p, "base.raw")
		if err != nil {
			b.Fatal(err)
		}
		for i := 0; i < b.N; i++ {
			name := fmt.Sprintf("wstest-bench-copy-%d.raw", i)
			vol, err := l.StorageVolCreateXMLFrom(p, string(renderVolume(name, "raw", benchBaseSize, "", "")), base, 0)
			if err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			if err := l.StorageVolDelete(vol, 0); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
		b.ReportMetric(math.Round(float64(benchBaseSize)/(1<<20)), "MiB-copied/op")
	})
}
