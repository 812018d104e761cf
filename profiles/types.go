// Package profiles owns the profile: the HCL file that says what a client's
// VM is. It loads a file, follows `extends`, merges, applies defaults and
// validates, reporting every problem at once with file:line:col.
package profiles

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Profile is a merged, validated profile.
type Profile struct {
	Source      string   `json:"source,omitempty"`
	Extends     []string `json:"extends,omitempty"`
	Description string   `json:"description,omitempty"`
	Image       string   `json:"image"`
	CPUs        int      `json:"cpus"`
	Memory      Size     `json:"memory"`
	Disk        Size     `json:"disk"`
	Network     Network  `json:"network"`
	Display     Display  `json:"display"`
	Clipboard   string   `json:"clipboard"`
	Shares      []Share  `json:"shares,omitempty"`
	Tracking    Tracking `json:"tracking"`
	Client      *Client  `json:"client,omitempty"`
	// Witnesses cosign the diary's checkpoints (witness.go).
	Witnesses []Witness `json:"witnesses,omitempty"`
	// Provision is installed and run once in the guest (provision.go).
	Provision Provision `json:"provision,omitzero"`
	// Positions says where each field was set ("share.src.host" →
	// "team/acme.hcl:12:10"), for errors found later by the daemon (which
	// cannot see the file); the CLI sends it along with the profile.
	Positions map[string]string `json:"-"`
}

// Network is the VM's network policy.
type Network struct {
	Mode  string   `json:"mode"`
	Allow []string `json:"allow,omitempty"`
}

// Display is how the VM's screen is exposed (always on a unix socket).
type Display struct {
	Type string `json:"type"`
}

// Share is a host folder shared into the guest.
type Share struct {
	Tag      string `json:"tag"`
	Host     string `json:"host"`
	ReadOnly bool   `json:"readonly"`
}

// Tracking is the time-tracking policy the guest agent applies.
type Tracking struct {
	Slot               Duration `json:"slot"`
	ScreenshotsPerSlot int      `json:"screenshots_per_slot"`
	IdleTimeout        Duration `json:"idle_timeout"`
	Blur               bool     `json:"blur"`
	JPEGQuality        int      `json:"jpeg_quality"`
	SpoolLimit         Size     `json:"spool_limit"`
	// DiaryLimit is how many bytes a day the host's diary takes from this
	// workspace's guest; past it, its captures are refused (and a gap says
	// so) until the next day (UTC).
	DiaryLimit Size `json:"diary_limit"`
}

// Client is who receives the diary exports.
type Client struct {
	Name      string `json:"name"`
	Recipient string `json:"recipient,omitempty"`
}

// Size is a number of bytes, written like "4GiB" in profiles.
type Size uint64

var sizeRE = regexp.MustCompile(`^([0-9]+(?:\.[0-9]+)?)\s*([KMGTPE]i?B|B)?$`)

// sizeUnits include peta and exa so that an absurd size is read, and then
// refused as too large rather than as not a size.
var sizeUnits = map[string]float64{
	"": 1, "B": 1,
	"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40, "PiB": 1 << 50, "EiB": 1 << 60,
	"KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12, "PB": 1e15, "EB": 1e18,
}

// ParseSize parses "512MiB", "4GiB", "1.5GiB", "2GB" or a plain byte count.
func ParseSize(s string) (Size, error) {
	m := sizeRE.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return 0, fmt.Errorf("%q is not a size: use a number and a unit, like \"512MiB\" or \"4GiB\"", s)
	}
	n, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a size: %w", s, err)
	}
	v := n * sizeUnits[m[2]]
	if v >= 1<<62 {
		return 0, fmt.Errorf("%q is too large (at most a few EiB can even be written down)", s)
	}
	return Size(v), nil
}

// String gives the most compact exact form: "4GiB", "512MiB", "1500B".
func (s Size) String() string {
	for _, u := range []struct {
		name string
		n    uint64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if uint64(s) >= u.n && uint64(s)%u.n == 0 {
			return fmt.Sprintf("%d%s", uint64(s)/u.n, u.name)
		}
	}
	return fmt.Sprintf("%dB", uint64(s))
}

// MarshalJSON writes the size as its string form.
func (s Size) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }

// UnmarshalJSON reads a size string or a number of bytes.
func (s *Size) UnmarshalJSON(b []byte) error {
	var n uint64
	if err := json.Unmarshal(b, &n); err == nil {
		*s = Size(n)
		return nil
	}
	var str string
	if err := json.Unmarshal(b, &str); err != nil {
		return fmt.Errorf("size must be a string like \"4GiB\" or a number of bytes")
	}
	v, err := ParseSize(str)
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// Duration is a time.Duration written like "10m" in profiles.
type Duration time.Duration

// String is time.Duration's form.
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// UnmarshalJSON reads a Go duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var str string
	if err := json.Unmarshal(b, &str); err != nil {
		return fmt.Errorf("duration must be a string like \"10m\"")
	}
	v, err := time.ParseDuration(str)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}
