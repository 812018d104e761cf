package provision

import (
	"bufio"
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Phase states: pending (not started), running, waiting (the user phase,
// for the desktop session), done, failed (with an exit status and the last
// lines of its output), skipped (the user phase after a failed root phase).
const (
	Pending = "pending"
	Running = "running"
	Waiting = "waiting"
	Done    = "done"
	Failed  = "failed"
	Skipped = "skipped"
)

// Status is a workspace's provisioning: the root phase (packages, then the
// root scripts, at the first boot) and the user phase (the user scripts, in
// the desktop session at the first login).
type Status struct {
	Root Phase `json:"root"`
	User Phase `json:"user"`
	// Boot is the guest's boot id when the guest wrote the status: a
	// phase still running under another boot was cut short by a reboot.
	Boot string `json:"-"`
}

// Phase is one phase's state.
type Phase struct {
	State string `json:"state"`
	// Step says what is happening ("installing 3 packages", "script 2 of
	// 2 (team/base.hcl:12)").
	Step string `json:"step,omitempty"`
	Exit *int   `json:"exit_code,omitempty"`
	// Lines are the output's last lines when the phase failed.
	Lines []string `json:"last_lines,omitempty"`
}

// Final tells whether a phase will not change any more.
func (p Phase) Final() bool { return p.State == Done || p.State == Failed || p.State == Skipped }

// Final tells whether both phases are over.
func (s Status) Final() bool { return s.Root.Final() && s.User.Final() }

// Limits of a guest's status file: it is the guest's word, read by root.
const (
	MaxStatusSize = 64 << 10
	maxLines      = 40
	maxLineLen    = 500
)

// ParseStatus reads the status file the runner writes in the guest:
// key=value lines (version, boot, root, root_exit, root_step, root_line,
// the same for user). Unknown keys are ignored; a bad value is an error.
func ParseStatus(b []byte) (Status, error) {
	if len(b) > MaxStatusSize {
		return Status{}, fmt.Errorf("provisioning status: %d bytes, at most %d", len(b), MaxStatusSize)
	}
	s := Status{Root: Phase{State: Pending}, User: Phase{State: Pending}}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 4096), MaxStatusSize)
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		if line == "" {
			continue
		}
		key, val, ok := strings.Cut(line, "=")
		if !ok {
			return Status{}, fmt.Errorf("provisioning status line %d: no key=value", n)
		}
		phaseName, field, _ := strings.Cut(key, "_")
		var ph *Phase
		switch phaseName {
		case "root":
			ph = &s.Root
		case "user":
			ph = &s.User
		case "boot":
			s.Boot = clip(val)
			continue
		default:
			continue
		}
		switch field {
		case "":
			switch val {
			case Pending, Running, Waiting, Done, Failed, Skipped:
				ph.State = val
			default:
				return Status{}, fmt.Errorf("provisioning status line %d: state %q", n, clip(val))
			}
		case "exit":
			code, err := strconv.Atoi(val)
			if err != nil || code < -1 || code > 255 {
				return Status{}, fmt.Errorf("provisioning status line %d: exit status %q", n, clip(val))
			}
			ph.Exit = &code
		case "step":
			ph.Step = clip(val)
		case "line":
			if len(ph.Lines) < maxLines {
				ph.Lines = append(ph.Lines, clip(val))
			}
		}
	}
	if err := sc.Err(); err != nil {
		return Status{}, fmt.Errorf("provisioning status: %w", err)
	}
	return s, nil
}

// clip bounds a value's length (on a rune boundary); callers escape it for
// display.
func clip(s string) string {
	if len(s) <= maxLineLen {
		return s
	}
	cut := maxLineLen - len("…")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
