package profiles

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestShareFolderRefused: "/", system folders, anything in them and hidden
// folders are refused at validate, each with file:line:col of its host.
func TestShareFolderRefused(t *testing.T) {
	for host, want := range map[string]string{
		"/":                  `"/" would give the guest the whole host`,
		"/etc":               "is a system folder",
		"/etc/cron.d":        "is a system folder (or in one, /etc)",
		"/usr/local/src":     "/usr",
		"/var/lib/workspace": "/var",
		"/root/work":         "/root",
		"/proc/1":            "/proc",
		"/home/u/.ssh":       `hidden folder ".ssh"`,
		"/home/u/.config/x":  `hidden folder ".config"`,
		"/home/u/work/../..": "is not a clean path",
		"/home/u/work/":      "is not a clean path",
	} {
		src := "image = \"t\"\n\nshare \"s\" {\n  host = \"" + host + "\"\n  readonly = false\n}\n"
		_, err := loadMain(t, map[string]string{"main.hcl": src})
		var de *DiagnosticsError
		if !errors.As(err, &de) || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "main.hcl:4:10: Invalid share.s.host") {
			t.Errorf("share %s: %v", host, err)
		}
		// The daemon's own check of a decoded profile says the same.
		p := &Profile{Image: "t", CPUs: 1, Memory: DefaultMemory, Disk: DefaultDisk, Network: Network{Mode: "nat"},
			Display: Display{Type: "spice"}, Clipboard: "off", Tracking: DefaultTracking, Shares: []Share{{Tag: "s", Host: host}}}
		if err := p.Validate(); err == nil || !strings.Contains(err.Error(), "share.s.host") {
			t.Errorf("Validate share %s: %v", host, err)
		}
	}
	if _, err := loadMain(t, map[string]string{"main.hcl": "image = \"t\"\nshare \"s\" {\n  host = \"/home/u/work/src\"\n}\n"}); err != nil {
		t.Errorf("a plain folder of a user: %v", err)
	}
}

// TestShareSymlinkIntoSystemFolder: on this machine, a share whose path is a
// symbolic link into a system folder is refused at validate (the daemon
// resolves and checks again at create).
func TestShareSymlinkIntoSystemFolder(t *testing.T) {
	dir := t.TempDir()
	link := filepath.Join(dir, "innocent")
	if err := os.Symlink("/etc", link); err != nil {
		t.Fatal(err)
	}
	prof := filepath.Join(dir, "p.hcl")
	os.WriteFile(prof, []byte("image = \"t\"\nshare \"s\" {\n  host = \""+link+"\"\n  readonly = false\n}\n"), 0o644)
	_, err := Load(prof)
	if err == nil || !strings.Contains(err.Error(), `is a symbolic link to "/etc"`) || !strings.Contains(err.Error(), prof+":3:10") {
		t.Fatalf("a share linking to /etc: %v", err)
	}
	p, err := Load(prof + ".missing")
	if err == nil {
		t.Fatalf("loaded %v", p)
	}
	// Positions are kept for the daemon's later errors.
	os.WriteFile(prof, []byte("image = \"t\"\nshare \"s\" {\n  host = \""+dir+"\"\n}\n"), 0o644)
	p, err = Load(prof)
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Positions["share.s.host"]; got != prof+":3:10" {
		t.Errorf("position of share.s.host: %q", got)
	}
}

// TestAbsurdSizes: sizes no host has are refused at validate with their
// position, in the units people write them.
func TestAbsurdSizes(t *testing.T) {
	for src, want := range map[string]string{
		`memory = "4PiB"`:   "main.hcl:2:10: Invalid memory: must be at most 4TiB, got 4096TiB",
		`disk = "3.8EiB"`:   "main.hcl:2:8: Invalid disk: must be at most 16TiB",
		`disk = "17TiB"`:    "must be at most 16TiB, got 17TiB",
		`memory = "8EiB"`:   "is too large",
		`disk = "99999EB"`:  "is too large",
		`memory = "5TiB"`:   "must be at most 4TiB",
		`cpus = 1000000000`: "must be a whole number",
	} {
		_, err := loadMain(t, map[string]string{"main.hcl": "image = \"t\"\n" + src + "\n"})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v", src, err)
		}
	}
	if _, err := loadMain(t, map[string]string{"main.hcl": "image = \"t\"\nmemory = \"4TiB\"\ndisk = \"16TiB\"\n"}); err != nil {
		t.Errorf("the largest sizes: %v", err)
	}
}
