package diary

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/workspace-sandbox/workspace/tracking"
)

// A retake replaces a bad shot while its slot is still running: the agent
// takes a new picture of the same display, marked as the retake of the old
// one, and the freelancer may then delete the old one without the slot
// losing its pay. Both stay in the log; the client sees the retake.

// RetakeTarget is what a retake of a shot must be: of its workspace and
// display, before its slot ends.
type RetakeTarget struct {
	Workspace string
	Display   int
	SlotEnd   time.Time
}

// CheckRetake says whether shot id can be retaken now.
func (s *Store) CheckRetake(ctx context.Context, id string) (RetakeTarget, error) {
	if _, err := s.Keys(); err != nil {
		return RetakeTarget{}, err
	}
	si, err := s.shot(ctx, id)
	if err != nil {
		return RetakeTarget{}, err
	}
	c, err := s.captureOf(ctx, si)
	if err != nil {
		return RetakeTarget{}, err
	}
	return s.retakeable(ctx, s.db, si, c, s.now())
}

// captureOf reads a shot's capture entry.
func (s *Store) captureOf(ctx context.Context, si shotInfo) (CaptureBody, error) {
	es, err := loadEntries(ctx, s.db, si.ws, `idx = ?`, si.idx)
	if err != nil {
		return CaptureBody{}, err
	}
	var c CaptureBody
	if len(es) != 1 || es[0].Header.Type != TypeCapture {
		return c, fmt.Errorf("shot %s: its capture entry %d is missing", si.id, si.idx)
	}
	if err := decodeBody(es[0].Body, &c); err != nil {
		return c, fmt.Errorf("shot %s: %w", si.id, err)
	}
	return c, nil
}

// retakeable checks a retake of the shot taken at `at`: the shot is not
// pruned and no retake itself, it has no retake yet, and at is inside its
// slot.
func (s *Store) retakeable(ctx context.Context, q querier, si shotInfo, c CaptureBody, at time.Time) (RetakeTarget, error) {
	t := RetakeTarget{Workspace: si.ws, Display: c.Display, SlotEnd: time.Unix(c.Slot+int64(c.SlotSeconds), 0)}
	if si.state == tracking.ShotPruned {
		return t, fmt.Errorf("%w: shot %s was pruned", ErrInvalid, si.id)
	}
	if c.RetakeOf != "" {
		return t, fmt.Errorf("%w: shot %s is the retake of %s; a retake is not retaken", ErrInvalid, si.id, c.RetakeOf)
	}
	var other string
	err := q.QueryRowContext(ctx, `SELECT shot FROM retakes WHERE orig=?`, si.id).Scan(&other)
	if err == nil {
		return t, fmt.Errorf("%w: shot %s was retaken already (as %s), and a shot is retaken only once", ErrConflict, si.id, other)
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return t, fmt.Errorf("retakes of %s: %w", si.id, err)
	}
	if !at.Before(t.SlotEnd) {
		return t, fmt.Errorf("%w: the slot of shot %s ended at %s: only a shot of the running slot can be retaken", ErrInvalid, si.id, t.SlotEnd.Local().Format("15:04:05"))
	}
	if at.Unix() < c.Slot {
		return t, fmt.Errorf("%w: a retake of shot %s cannot come before its slot", ErrInvalid, si.id)
	}
	return t, nil
}

// checkRetakeCapture refuses a capture that claims to retake a shot it
// cannot: of another workspace or display, outside the shot's slot, or a
// second retake. It runs under the write lock.
func (s *Store) checkRetakeCapture(ctx context.Context, ws string, m tracking.Capture) error {
	si, err := s.shot(ctx, m.RetakeOf)
	if err != nil || si.ws != ws {
		return fmt.Errorf("%w: capture %s retakes shot %s, which workspace %q does not have", ErrInvalid, m.ID, m.RetakeOf, ws)
	}
	c, err := s.captureOf(ctx, si)
	if err != nil {
		return err
	}
	if _, err := s.retakeable(ctx, s.db, si, c, m.Taken); err != nil {
		return fmt.Errorf("%w: capture %s: %w", ErrInvalid, m.ID, err)
	}
	if m.Display != c.Display {
		return fmt.Errorf("%w: capture %s of display %d cannot retake shot %s of display %d", ErrInvalid, m.ID, m.Display, m.RetakeOf, c.Display)
	}
	return nil
}
