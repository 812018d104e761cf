package daemon

import (
	"os"
	"strings"
	"testing"
)

func TestCheckLibvirtURI(t *testing.T) {
	here := func(h string) bool { return h == "127.0.0.1" || h == "localhost" || h == "thisbox" }
	for _, tc := range []struct {
		uri     string
		refused bool
	}{
		{"qemu:///system", false},
		{"qemu:///session", false},
		{"qemu+unix:///system?socket=/run/libvirt/libvirt-sock", false},
		{"test:///default", false},
		{"qemu+tcp://127.0.0.1:1/system", false},
		{"qemu+ssh://root@localhost/system", false},
		{"qemu+tls://thisbox/system", false},
		{"qemu+ssh://admin@kvm1.example.com/system", true},
		{"qemu+tcp://10.0.0.7:16509/system", true},
		{"qemu+tls://kvm1/system", true},
		{"qemu://kvm1/system", true},
		{"qemu+libssh2://admin@kvm1/system?known_hosts=/x", true},
		{"::not a uri", false}, // libvirt's connect reports a bad URI
	} {
		err := checkLibvirtURI(tc.uri, here)
		if (err != nil) != tc.refused {
			t.Errorf("checkLibvirtURI(%q) = %v, refused want %v", tc.uri, err, tc.refused)
		}
		if err != nil && (!strings.Contains(err.Error(), "--host ssh://") || !strings.Contains(err.Error(), tc.uri)) {
			t.Errorf("checkLibvirtURI(%q): the refusal does not name the URI and point to --host: %v", tc.uri, err)
		}
	}
}

func TestIsThisHost(t *testing.T) {
	name, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range []string{"localhost", "LOCALHOST", "127.0.0.1", "127.0.1.1", "::1", name} {
		if !isThisHost(h) {
			t.Errorf("isThisHost(%q) = false", h)
		}
	}
	for _, h := range []string{"kvm1.example.com", "192.0.2.1", "2001:db8::1"} {
		if isThisHost(h) {
			t.Errorf("isThisHost(%q) = true", h)
		}
	}
}
