package images

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// runMountShares runs the guest's share-mount script in dry-run mode on a
// list as the host would put it in fw_cfg.
func runMountShares(t *testing.T, list *string) (stdout, stderr string, code int) {
	t.Helper()
	dir := t.TempDir()
	env := append(os.Environ(), "WORKSPACE_SHARES_ROOT=/mnt/shares", "WORKSPACE_SHARES_DRY_RUN=1")
	file := filepath.Join(dir, "raw")
	if list != nil {
		os.WriteFile(file, []byte(*list), 0o644)
	}
	env = append(env, "WORKSPACE_SHARES_FILE="+file)
	cmd := exec.Command("sh", filepath.Join("desktop", "files", "mount-shares"))
	cmd.Env = env
	var o, e strings.Builder
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return o.String(), e.String(), code
}

func TestMountSharesList(t *testing.T) {
	list := "handoff 9p ro\n\n# comment\nwork virtiofs rw\nlast 9p rw" // no final newline
	out, errs, code := runMountShares(t, &list)
	if code != 0 || errs != "" {
		t.Fatalf("exit %d, stderr %s", code, errs)
	}
	for _, want := range []string{
		"mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144,ro handoff /mnt/shares/handoff\n",
		"mount -t virtiofs -o defaults work /mnt/shares/work\n",
		"mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 last /mnt/shares/last\n",
		"mkdir -p /mnt/shares/handoff\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}
	ro := "docs virtiofs ro\n"
	if out, _, _ := runMountShares(t, &ro); !strings.Contains(out, "mount -t virtiofs -o defaults,ro docs /mnt/shares/docs") {
		t.Errorf("virtiofs ro: %s", out)
	}
}

func TestMountSharesNoList(t *testing.T) {
	out, errs, code := runMountShares(t, nil)
	if code != 0 || errs != "" || !strings.Contains(out, "no shared folders") {
		t.Fatalf("exit %d\n%s\n%s", code, out, errs)
	}
	empty := ""
	if out, errs, code := runMountShares(t, &empty); code != 0 || errs != "" || strings.Contains(out, "mount") {
		t.Fatalf("empty list: exit %d\n%s\n%s", code, out, errs)
	}
}

// TestMountSharesBadLines: each bad line is named by its number and
// skipped, the good ones are still mounted, and the exit status says so.
func TestMountSharesBadLines(t *testing.T) {
	list := strings.Join([]string{
		"good 9p ro",                       // 1
		"short 9p",                         // 2
		"x 9p rx",                          // 3
		"../up 9p ro",                      // 4
		"y nfs ro",                         // 5
		"good 9p rw",                       // 6
		"a;reboot 9p ro",                   // 7
		strings.Repeat("t", 37) + " 9p ro", // 8
		"extra 9p ro more",                 // 9
		"fine virtiofs rw",                 // 10
	}, "\n")
	out, errs, code := runMountShares(t, &list)
	if code != 1 {
		t.Fatalf("exit %d", code)
	}
	for _, want := range []string{
		`line 2: want "TAG FSTYPE MODE"`, `line 3: share "x": mode "rx" is not ro or rw`,
		`line 4: bad tag "../up"`, `line 5: share "y": file system "nfs" is not 9p or virtiofs`,
		`line 6: share "good" is listed twice`, `line 7: bad tag "a;reboot"`, `line 8: bad tag`, `line 9: want`,
	} {
		if !strings.Contains(errs, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errs)
		}
	}
	if !strings.Contains(out, "good /mnt/shares/good") || !strings.Contains(out, "fine /mnt/shares/fine") || strings.Count(out, "mount -t") != 2 {
		t.Errorf("good lines not mounted exactly:\n%s", out)
	}
}
