package images

import (
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// CheckPrivileges says whether this process can build an image: as root,
// or as a user with unprivileged user namespaces and a subuid/subgid range
// (mmdebstrap's unshare mode).
func CheckPrivileges() error {
	if os.Geteuid() == 0 {
		return nil
	}
	if why := userNamespaceProblem(); why != "" {
		return fmt.Errorf("building an image needs root (run it with sudo) or unprivileged user namespaces, and %s", why)
	}
	return nil
}

func userNamespaceProblem() string {
	if b, err := os.ReadFile("/proc/sys/kernel/unprivileged_userns_clone"); err == nil && strings.TrimSpace(string(b)) == "0" {
		return "they are turned off (kernel.unprivileged_userns_clone = 0)"
	}
	if b, err := os.ReadFile("/proc/sys/user/max_user_namespaces"); err == nil && strings.TrimSpace(string(b)) == "0" {
		return "they are turned off (user.max_user_namespaces = 0)"
	}
	for _, tool := range []string{"newuidmap", "newgidmap"} {
		if _, err := exec.LookPath(tool); err != nil {
			return tool + " is not installed (apt-get install uidmap)"
		}
	}
	u, err := user.Current()
	if err != nil {
		return "the current user is unknown: " + err.Error()
	}
	for _, f := range []string{"/etc/subuid", "/etc/subgid"} {
		if !hasSubIDRange(f, u.Username, u.Uid) {
			return fmt.Sprintf("%s has no range for %s (usermod --add-subuids/--add-subgids)", f, u.Username)
		}
	}
	return ""
}

func hasSubIDRange(file, name, uid string) bool {
	f, err := os.Open(file)
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		parts := strings.Split(strings.TrimSpace(sc.Text()), ":")
		if len(parts) == 3 && (parts[0] == name || parts[0] == uid) {
			if n, err := strconv.Atoi(parts[2]); err == nil && n >= 65536 {
				return true
			}
		}
	}
	return false
}

// CheckTools says which programs the build needs and lacks.
func CheckTools() error {
	var missing []string
	for _, t := range []struct{ bin, pkg string }{
		{"mmdebstrap", "mmdebstrap"}, {"mkfs.ext4", "e2fsprogs"}, {"qemu-img", "qemu-utils"},
		{"sha256sum", "coreutils"}, {"bash", "bash"},
	} {
		if _, err := lookSystemPath(t.bin); err != nil {
			missing = append(missing, t.pkg)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("building an image needs packages that are not installed: apt-get install %s", strings.Join(missing, " "))
	}
	return nil
}

// lookSystemPath finds a program in the system folders the recipe runs with.
func lookSystemPath(bin string) (string, error) {
	for _, d := range []string{"/usr/local/sbin", "/usr/sbin", "/sbin", "/usr/local/bin", "/usr/bin", "/bin"} {
		p := filepath.Join(d, bin)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found", bin)
}

// ValidateMirror checks that a mirror is an http(s) or file URL.
func ValidateMirror(m string) error {
	u, err := url.Parse(m)
	if err != nil {
		return fmt.Errorf("mirror %q is not a URL: %w", m, err)
	}
	switch u.Scheme {
	case "http", "https":
		if u.Host == "" {
			return fmt.Errorf("mirror %q has no host", m)
		}
	case "file":
		if u.Path == "" {
			return fmt.Errorf("mirror %q has no path", m)
		}
	default:
		return fmt.Errorf("mirror %q: want an http://, https:// or file:// URL", m)
	}
	return nil
}

// CheckMirror fetches dists/SUITE/Release from a Debian archive, so a build
// without network access fails in seconds with a clear message instead of
// deep inside apt.
func CheckMirror(ctx context.Context, mirror, suite string, timeout time.Duration) error {
	release := strings.TrimSuffix(mirror, "/") + "/dists/" + suite + "/Release"
	fail := func(err error) error {
		return fmt.Errorf("cannot reach the Debian archive at %s (%s): %w; building the image downloads Debian packages: check the network or pass --mirror", mirror, release, err)
	}
	u, err := url.Parse(release)
	if err != nil {
		return fail(err)
	}
	if u.Scheme == "file" {
		if _, err := os.Stat(u.Path); err != nil {
			return fail(err)
		}
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, release, nil)
	if err != nil {
		return fail(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return fail(fmt.Errorf("no answer within %s", timeout))
		}
		return fail(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fail(fmt.Errorf("HTTP %s", resp.Status))
	}
	return nil
}

var userRE = regexp.MustCompile(`^[a-z_][a-z0-9_-]{0,30}$`)

// Names a Debian system already has (or the image's packages add).
var systemUsers = map[string]bool{
	"root": true, "daemon": true, "bin": true, "sys": true, "sync": true, "games": true, "man": true,
	"lp": true, "mail": true, "news": true, "uucp": true, "proxy": true, "www-data": true, "backup": true,
	"list": true, "irc": true, "gnats": true, "nobody": true, "_apt": true, "messagebus": true,
	"lightdm": true, "polkitd": true, "sudo": true, "video": true, "audio": true, "input": true,
	"workspace-agent": true, "autologin": true,
}

// ValidateUser checks the desktop user's name.
func ValidateUser(name string) error {
	if !userRE.MatchString(name) {
		return fmt.Errorf("user name %q: want lower-case letters, digits, _ and -, starting with a letter or _, at most 31", name)
	}
	if systemUsers[name] || strings.HasPrefix(name, "systemd-") {
		return fmt.Errorf("user name %q is taken by the system in the image", name)
	}
	return nil
}

// ValidatePassword checks the desktop user's password.
func ValidatePassword(p string) error {
	if p == "" {
		return errors.New("the password is empty")
	}
	if strings.ContainsAny(p, "\n\r\x00") {
		return errors.New("the password contains a line break or NUL")
	}
	return nil
}

// GeneratePassword makes a password of 3 groups of 4 letters and digits
// (60 bits), easy to type into a VM's login screen.
func GeneratePassword() (string, error) {
	const alphabet = "abcdefghijkmnpqrstuvwxyz23456789"
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate a password: %w", err)
	}
	var s strings.Builder
	for i, c := range b {
		if i > 0 && i%4 == 0 {
			s.WriteByte('-')
		}
		s.WriteByte(alphabet[int(c)%len(alphabet)])
	}
	return s.String(), nil
}
