package tracking

import (
	"errors"
	"fmt"
)

// Policy is a profile's tracking policy as the daemon pushes it to the
// agent on every connect.
type Policy struct {
	SlotSeconds        int   `json:"slot_seconds"`
	ScreenshotsPerSlot int   `json:"screenshots_per_slot"`
	IdleSeconds        int   `json:"idle_seconds"`
	Blur               bool  `json:"blur"`
	JPEGQuality        int   `json:"jpeg_quality"`
	SpoolLimit         int64 `json:"spool_limit"`
}

// DefaultPolicy is the policy of a profile that says nothing about
// tracking: 10-minute slots with one screenshot each, idle after 5
// minutes, JPEG quality 75, a 512 MiB spool.
var DefaultPolicy = Policy{
	SlotSeconds:        600,
	ScreenshotsPerSlot: 1,
	IdleSeconds:        300,
	JPEGQuality:        75,
	SpoolLimit:         512 << 20,
}

// Validate refuses values an agent must not apply (an old or broken daemon).
func (p Policy) Validate() error {
	var errs []error
	if p.SlotSeconds < 10 || p.SlotSeconds > 3600 {
		errs = append(errs, fmt.Errorf("slot_seconds %d is outside 10..3600", p.SlotSeconds))
	}
	if p.ScreenshotsPerSlot < 0 || p.ScreenshotsPerSlot > 10 {
		errs = append(errs, fmt.Errorf("screenshots_per_slot %d is outside 0..10", p.ScreenshotsPerSlot))
	}
	if p.IdleSeconds < 30 || p.IdleSeconds > 86400 {
		errs = append(errs, fmt.Errorf("idle_seconds %d is outside 30..86400", p.IdleSeconds))
	}
	if p.JPEGQuality < 10 || p.JPEGQuality > 100 {
		errs = append(errs, fmt.Errorf("jpeg_quality %d is outside 10..100", p.JPEGQuality))
	}
	if p.SpoolLimit < 1<<20 || p.SpoolLimit > 64<<30 {
		errs = append(errs, fmt.Errorf("spool_limit %d is outside 1MiB..64GiB", p.SpoolLimit))
	}
	return errors.Join(errs...)
}
