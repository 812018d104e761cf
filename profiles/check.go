package profiles

import (
	"errors"
	"fmt"
	"net/netip"
	"path"
	"regexp"
	"strings"
	"time"

	"filippo.io/age"

	"github.com/workspace-sandbox/workspace/internal/safetext"
	"github.com/workspace-sandbox/workspace/tracking"
)

// Defaults for everything a profile may leave out.
const (
	DefaultCPUs      = 2
	DefaultMemory    = Size(2 << 30)
	DefaultDisk      = Size(20 << 30)
	DefaultNetwork   = "nat"
	DefaultDisplay   = "spice"
	DefaultClipboard = "off"
)

// DefaultTracking is the tracking policy when a profile says nothing:
// tracking.DefaultPolicy, in a profile's units.
var DefaultTracking = Tracking{
	Slot:               Duration(time.Duration(tracking.DefaultPolicy.SlotSeconds) * time.Second),
	ScreenshotsPerSlot: tracking.DefaultPolicy.ScreenshotsPerSlot,
	IdleTimeout:        Duration(time.Duration(tracking.DefaultPolicy.IdleSeconds) * time.Second),
	JPEGQuality:        tracking.DefaultPolicy.JPEGQuality,
	SpoolLimit:         Size(tracking.DefaultPolicy.SpoolLimit),
	DiaryLimit:         DefaultDiaryLimit,
}

// DefaultDiaryLimit is the daily diary budget of a profile that sets none.
const DefaultDiaryLimit = Size(1 << 30)

var (
	imageRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)
	tagRE   = regexp.MustCompile(`^[A-Za-z0-9_-]{1,31}$`)
)

func oneOf(v string, allowed ...string) error {
	for _, a := range allowed {
		if v == a {
			return nil
		}
	}
	return fmt.Errorf("must be one of %q, got %q", allowed, v)
}

func checkImage(v string) error {
	if v == "" {
		return errors.New("is required: the name of an imported image (see `workspace image list`)")
	}
	if !imageRE.MatchString(v) {
		return fmt.Errorf("%q is not an image name: lower-case letters, digits, '.', '_' or '-'", v)
	}
	return nil
}

func checkCPUs(v int) error {
	if v < 1 || v > 64 {
		return fmt.Errorf("must be between 1 and 64, got %d", v)
	}
	return nil
}

// Upper bounds no host reaches: the daemon checks memory and CPUs against
// the host's, and the disk against the pool's free space, at create.
const (
	MaxMemory = Size(4 << 40)  // 4 TiB
	MaxDisk   = Size(16 << 40) // 16 TiB, the largest file ext4 holds
	MaxSpool  = Size(64 << 30) // in the guest's own disk
	// MaxDiaryLimit bounds a workspace's daily diary budget on the host.
	MaxDiaryLimit = Size(1 << 40)
)

func checkSize(min, max Size) func(Size) error {
	return func(v Size) error {
		if v < min {
			return fmt.Errorf("must be at least %s, got %s", min, v)
		}
		if v > max {
			return fmt.Errorf("must be at most %s, got %s", max, v)
		}
		return nil
	}
}

var (
	checkMemory = checkSize(64<<20, MaxMemory)
	checkDisk   = checkSize(1<<30, MaxDisk)
	checkSpool  = checkSize(16<<20, MaxSpool)
	checkDiary  = checkSize(16<<20, MaxDiaryLimit)
)

func checkNetworkMode(v string) error { return oneOf(v, "none", "nat", "isolated") }
func checkDisplay(v string) error     { return oneOf(v, "spice", "vnc", "none") }
func checkClipboard(v string) error   { return oneOf(v, "off", "both") }

func checkAllow(v string) error {
	var addr netip.Addr
	if p, err := netip.ParsePrefix(v); err == nil {
		addr = p.Addr()
	} else if a, err := netip.ParseAddr(v); err == nil {
		addr = a
	} else {
		return fmt.Errorf("%q is not an IP address or CIDR prefix", v)
	}
	if !addr.Unmap().Is4() {
		return fmt.Errorf("%q is IPv6; workspaces have IPv4 only", v)
	}
	return nil
}

// checkClipboardDisplay: the shared clipboard is SPICE's agent channel.
func checkClipboardDisplay(clipboard, display string) error {
	if clipboard != "off" && display != "spice" {
		return fmt.Errorf("clipboard = %q needs display { type = \"spice\" } (the clipboard travels over SPICE's agent channel), got display type %q", clipboard, display)
	}
	return nil
}

// checkAllowMode: allow entries need a network to apply to.
func checkAllowMode(mode string, allow []string) error {
	if mode == "none" && len(allow) > 0 {
		return errors.New(`has entries but network mode "none" has no network: remove them or use "nat" or "isolated"`)
	}
	return nil
}

func checkSlot(d Duration) error {
	t := time.Duration(d)
	if t < 30*time.Second || t > time.Hour || time.Hour%t != 0 {
		return fmt.Errorf("must be between 30s and 60m and divide an hour evenly (30s, 1m, 5m, 10m, 15m, 20m, 30m, 60m), got %s", t)
	}
	return nil
}

func checkIdle(d Duration) error {
	if t := time.Duration(d); t < time.Minute || t > time.Hour {
		return fmt.Errorf("must be between 1m and 60m, got %s", t)
	}
	return nil
}

func checkRange(lo, hi int) func(int) error {
	return func(v int) error {
		if v < lo || v > hi {
			return fmt.Errorf("must be between %d and %d, got %d", lo, hi, v)
		}
		return nil
	}
}

var (
	checkShots   = checkRange(1, 3)
	checkQuality = checkRange(10, 100)
)

func checkTag(v string) error {
	if !tagRE.MatchString(v) {
		return fmt.Errorf("share tag %q must be 1-31 letters, digits, '_' or '-'", v)
	}
	return nil
}

// checkHostPath: a share's host path is a path on the Linux host, checked
// as such wherever the profile is validated (on Windows too, where
// filepath.IsAbs would refuse "/srv/share").
func checkHostPath(v string) error {
	if !path.IsAbs(v) {
		return fmt.Errorf("must be an absolute path, got %q", v)
	}
	if path.Clean(v) != v {
		return fmt.Errorf("%q is not a clean path: write it as %q", v, path.Clean(v))
	}
	return CheckShareFolder(v)
}

// SystemFolders may never be shared, nor anything in them: a guest with
// them could change the host's programs, configuration, devices or state.
var SystemFolders = []string{
	"/bin", "/boot", "/dev", "/efi", "/etc", "/lib", "/lib32", "/lib64", "/libx32",
	"/lost+found", "/proc", "/root", "/run", "/sbin", "/snap", "/sys", "/usr", "/var",
}

// CheckShareFolder refuses a host folder that no profile may share,
// whatever the daemon's share roots: "/", a system folder or anything
// in one, and any hidden folder on the way (like ~/.ssh or ~/.config,
// where a guest could plant keys or programs the host user runs). The
// daemon checks again, on the real folder, at create.
func CheckShareFolder(p string) error {
	if p == "/" {
		return errors.New(`"/" would give the guest the whole host: share a folder of your own`)
	}
	for _, sys := range SystemFolders {
		if p == sys || strings.HasPrefix(p, sys+"/") {
			return fmt.Errorf("%q is a system folder (or in one, %s): the guest could change the host; share a folder of your own", p, sys)
		}
	}
	for _, part := range strings.Split(strings.Trim(p, "/"), "/") {
		if strings.HasPrefix(part, ".") {
			return fmt.Errorf("%q goes through the hidden folder %q (keys and settings live in those): share a visible folder", p, part)
		}
	}
	return nil
}

func checkClientName(v string) error {
	if v == "" {
		return errors.New("must not be empty")
	}
	return nil
}

func checkRecipient(v string) error {
	if v == "" {
		return nil
	}
	if _, err := age.ParseX25519Recipient(v); err != nil {
		return fmt.Errorf("%q is not an age X25519 recipient (age1...): %v", v, err)
	}
	return nil
}

// Validate checks an already-built profile, e.g. one the daemon decoded from
// JSON. All problems are joined, each prefixed with its field path.
func (p *Profile) Validate() error { return p.ValidateAt(nil) }

// ValidateAt is Validate with each problem also prefixed by where its field
// was set ("acme.hcl:12:10: share.src.host: ..."), from positions as Load
// records them (the CLI sends them to the daemon with the profile). The
// positions are untrusted text: shown with control characters escaped.
func (p *Profile) ValidateAt(positions map[string]string) error {
	var errs []error
	add := func(field string, err error) {
		if err == nil {
			return
		}
		key := field
		if i := strings.IndexByte(key, '['); i > 0 {
			key = key[:i]
		}
		if pos := positions[key]; pos != "" {
			errs = append(errs, fmt.Errorf("%s: %s: %w", safetext.Term(pos), field, err))
			return
		}
		errs = append(errs, fmt.Errorf("%s: %w", field, err))
	}
	add("image", checkImage(p.Image))
	add("cpus", checkCPUs(p.CPUs))
	add("memory", checkMemory(p.Memory))
	add("disk", checkDisk(p.Disk))
	add("network.mode", checkNetworkMode(p.Network.Mode))
	for i, a := range p.Network.Allow {
		add(fmt.Sprintf("network.allow[%d]", i), checkAllow(a))
	}
	add("network.allow", checkAllowMode(p.Network.Mode, p.Network.Allow))
	add("display.type", checkDisplay(p.Display.Type))
	add("clipboard", checkClipboard(p.Clipboard))
	if checkClipboard(p.Clipboard) == nil && checkDisplay(p.Display.Type) == nil {
		add("clipboard", checkClipboardDisplay(p.Clipboard, p.Display.Type))
	}
	for _, s := range p.Shares {
		add("share."+s.Tag, checkTag(s.Tag))
		add(fmt.Sprintf("share.%s.host", s.Tag), checkHostPath(s.Host))
	}
	t := p.Tracking
	add("tracking.slot", checkSlot(t.Slot))
	add("tracking.screenshots_per_slot", checkShots(t.ScreenshotsPerSlot))
	add("tracking.idle_timeout", checkIdle(t.IdleTimeout))
	add("tracking.jpeg_quality", checkQuality(t.JPEGQuality))
	add("tracking.spool_limit", checkSpool(t.SpoolLimit))
	add("tracking.diary_limit", checkDiary(t.DiaryLimit))
	if p.Client != nil {
		add("client.name", checkClientName(p.Client.Name))
		add("client.recipient", checkRecipient(p.Client.Recipient))
	}
	errs = append(errs, validateWitnesses(p.Witnesses)...)
	validateProvision(p.Provision, add)
	return errors.Join(errs...)
}
