package vm

import (
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestShareOwner: QEMU runs as the read-write shares' owner; with only
// read-only shares of one user, as that user (who can read them in a home
// others may not enter); root never; links and mixed owners refused.
func TestShareOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give folders to other users")
	}
	d := &Driver{uri: &url.URL{Scheme: "qemu", Path: "/system"}, domType: "qemu"}
	dir := t.TempDir()
	mk := func(name string, uid int) string {
		p := filepath.Join(dir, name)
		if err := os.Mkdir(p, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(p, uid, uid); err != nil {
			t.Fatal(err)
		}
		return p
	}
	a, b, r := mk("a", 1000), mk("b", 1001), mk("r", 0)
	link := filepath.Join(dir, "link")
	os.Symlink(a, link)
	cases := []struct {
		shares []ShareSpec
		uid    int // 0: libvirt's user
		err    string
	}{
		{[]ShareSpec{{Tag: "a", HostPath: a}}, 1000, ""},
		{[]ShareSpec{{Tag: "a", HostPath: a, ReadOnly: true}}, 1000, ""},
		{[]ShareSpec{{Tag: "a", HostPath: a}, {Tag: "r", HostPath: r, ReadOnly: true}}, 1000, ""},
		{[]ShareSpec{{Tag: "r", HostPath: r, ReadOnly: true}}, 0, ""},
		{[]ShareSpec{{Tag: "a", HostPath: a, ReadOnly: true}, {Tag: "b", HostPath: b, ReadOnly: true}}, 0, ""},
		{[]ShareSpec{{Tag: "a", HostPath: a}, {Tag: "b", HostPath: b}}, 0, "QEMU runs as one user"},
		{[]ShareSpec{{Tag: "r", HostPath: r}}, 0, "belongs to root"},
		{[]ShareSpec{{Tag: "l", HostPath: link, ReadOnly: true}}, 0, "is a symbolic link"},
		{[]ShareSpec{{Tag: "m", HostPath: filepath.Join(dir, "missing")}}, 0, "does not exist"},
	}
	for i, c := range cases {
		o, err := d.checkShares(c.shares)
		switch {
		case c.err != "":
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("case %d: want %q, got %v", i, c.err, err)
			}
		case err != nil:
			t.Errorf("case %d: %v", i, err)
		case c.uid == 0 && o != nil:
			t.Errorf("case %d: QEMU would run as %+v", i, o)
		case c.uid != 0 && (o == nil || o.UID != c.uid):
			t.Errorf("case %d: QEMU would run as %+v, want uid %d", i, o, c.uid)
		}
	}
}
