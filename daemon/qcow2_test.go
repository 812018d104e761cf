package daemon

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/workspace-sandbox/workspace/api"
)

// qemuImg makes a real image with qemu-img (qemu-utils, installed by
// scripts/deps.sh) and returns its bytes.
func qemuImg(t *testing.T, opts, size string) []byte {
	t.Helper()
	if _, err := exec.LookPath("qemu-img"); err != nil {
		t.Skip("qemu-img is not installed (apt install qemu-utils; scripts/deps.sh installs it)")
	}
	dir := t.TempDir()
	out := filepath.Join(dir, "disk.qcow2")
	args := []string{"create", "-q", "-f", "qcow2"}
	if opts != "" {
		args = append(args, "-o", strings.ReplaceAll(opts, "DIR", dir))
	}
	cmd := exec.Command("qemu-img", append(args, out, size)...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("qemu-img %v: %v\n%s", args, err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestImportRefusesExternalDataFile: a qcow2 made by `qemu-img create -o
// data_file=...` would make QEMU read and write a host file of the
// uploader's choosing; the daemon refuses it and keeps nothing.
func TestImportRefusesExternalDataFile(t *testing.T) {
	plain := qemuImg(t, "compat=1.1,compression_type=zstd", "1G")
	hostFile := qemuImg(t, "data_file=DIR/data.raw", "1G")
	hostRaw := qemuImg(t, "data_file=DIR/data.raw,data_file_raw=on", "1G")
	l2 := qemuImg(t, "extended_l2=on,cluster_size=128k", "1G")
	v2 := qemuImg(t, "compat=0.10", "1G")
	hv := newFakeHV()
	c, d := startDaemon(t, hv)
	imp := func(name string, disk []byte) error {
		_, err := importBytes(t, c, name, disk)
		return err
	}
	for name, disk := range map[string][]byte{"datafile": hostFile, "datafileraw": hostRaw} {
		err := imp(name, append(disk, make([]byte, 1<<16)...))
		if !errors.Is(err, api.ErrInvalid) || !strings.Contains(err.Error(), "external data file") {
			t.Errorf("%s: import of a qcow2 with an external data file: %v", name, err)
		}
	}
	if len(hv.volumes) != 0 {
		t.Fatalf("a refused import left %d volumes", len(hv.volumes))
	}
	if entries, _ := os.ReadDir(d.server.images.dir); len(entries) != 0 {
		t.Fatalf("a refused import left records: %v", entries)
	}
	// What qemu-img makes without one imports, in both versions and with
	// the features the daemon knows (zstd compression, subclusters).
	for name, disk := range map[string][]byte{"plain": plain, "l2": l2, "v2": v2} {
		img, err := importBytes(t, c, name, disk)
		if err != nil || img.Format != "qcow2" {
			t.Errorf("%s: import of a plain qcow2: %+v %v", name, img, err)
		}
	}
}

func TestSniffQcow2Bounds(t *testing.T) {
	plain := qemuImg(t, "compat=1.1", "1G")
	if h, err := sniffDisk(plain, int64(len(plain))); err != nil || h.virtualSize != 1<<30 {
		t.Fatalf("plain 1G: %+v %v", h, err)
	}
	huge := qemuImg(t, "", "32T")
	if _, err := sniffDisk(huge, int64(len(huge))); !errors.Is(err, api.ErrInvalid) || !strings.Contains(err.Error(), "larger than the 16TiB") {
		t.Errorf("a 32 TiB image: %v", err)
	}
	unknown := bytes.Clone(plain)
	binary.BigEndian.PutUint64(unknown[72:80], 1<<7)
	if _, err := sniffDisk(unknown, int64(len(unknown))); !errors.Is(err, api.ErrInvalid) || !strings.Contains(err.Error(), "incompatible feature bits 0x80") {
		t.Errorf("an unknown incompatible feature: %v", err)
	}
	corrupt := bytes.Clone(plain)
	binary.BigEndian.PutUint64(corrupt[72:80], qcow2IncCorrupt)
	if _, err := sniffDisk(corrupt, int64(len(corrupt))); !errors.Is(err, api.ErrInvalid) {
		t.Errorf("a corrupt image: %v", err)
	}
	// The data file extension alone (feature bit cleared) is refused too.
	ext := qemuImg(t, "data_file=DIR/d.raw", "1G")
	binary.BigEndian.PutUint64(ext[72:80], 0)
	if _, err := sniffDisk(ext, int64(len(ext))); !errors.Is(err, api.ErrInvalid) || !strings.Contains(err.Error(), "DATA") {
		t.Errorf("a data file extension without its feature bit: %v", err)
	}
	if _, err := sniffDisk([]byte("x"), maxVirtualSize+1); !errors.Is(err, api.ErrInvalid) {
		t.Errorf("a raw disk beyond the bound: %v", err)
	}
}
