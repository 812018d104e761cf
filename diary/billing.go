package diary

import "github.com/workspace-sandbox/workspace/tracking"

// The billing rules of docs/diary.md, one function each; Aggregate
// composes them. Each has a table test in billing_test.go.

// nextShotState is a shot's state after a log entry of type typ about it
// (capture, cover, delete or prune). A capture makes it ok (unless a later
// entry was already seen), a cover covers it unless it is gone, a delete is
// final, and a prune shreds it unless it was deleted (rule 6: a pruned shot
// keeps its slot billed, a deleted one does not).
func nextShotState(cur, typ string) string {
	switch typ {
	case TypeCapture:
		if cur == "" {
			return tracking.ShotOK
		}
	case TypeCover:
		if cur != tracking.ShotDeleted && cur != tracking.ShotPruned {
			return tracking.ShotCovered
		}
	case TypeDelete:
		return tracking.ShotDeleted
	case TypePrune:
		if cur != tracking.ShotDeleted {
			return tracking.ShotPruned
		}
	}
	return cur
}

// retakenShots are the shots a retake stands in for (rule 2): the retake is
// in the same slot as the shot and is itself not deleted or pruned.
func retakenShots(captures []CaptureBody, state map[string]string, slotLen int64) map[string]bool {
	slotOf := make(map[string]int64, len(captures))
	for _, c := range captures {
		slotOf[c.ID] = tracking.SlotStart(c.Taken/1000, slotLen)
	}
	retaken := map[string]bool{}
	for _, c := range captures {
		if st := state[c.ID]; c.RetakeOf == "" || (st != tracking.ShotOK && st != tracking.ShotCovered) {
			continue
		}
		if orig, ok := slotOf[c.RetakeOf]; ok && orig == slotOf[c.ID] {
			retaken[c.RetakeOf] = true
		}
	}
	return retaken
}

// shotEffect is what a shot in state does to its slot: a deleted one no
// retake stands in for unbills it (rule 2); any other (ok, covered,
// pruned) counts as its screenshot (rules 1 and 6). A retaken deleted shot
// does neither: its retake counts instead.
func shotEffect(state string, retaken bool) (deletes, live bool) {
	if state == tracking.ShotDeleted {
		return !retaken, false
	}
	return false, true
}

// isActive says whether a minute counts as activity (rule 1): active
// seconds or any input count.
func isActive(a tracking.Activity) bool {
	return a.Active > 0 || a.Keys+a.Clicks+a.Moves+a.Scrolls > 0
}

// billable marks a slot (rules 1, 2 and 7: idle time does not matter) and
// says why a slot is not billed.
func billable(deleted, live, active bool) (bool, string) {
	switch {
	case deleted:
		return false, "a screenshot was deleted"
	case !live:
		return false, "no screenshot"
	case !active:
		return false, "no activity"
	}
	return true, ""
}

// activityPercent is active seconds over the seconds of the slots (rule 4),
// at most 100; 0 without slots.
func activityPercent(active, seconds int) int {
	if seconds <= 0 {
		return 0
	}
	return min(100, active*100/seconds)
}

// addSlot adds a slot to totals: its whole length is tracked, and billable
// when the slot is (rule 3).
func addSlot(t *tracking.DiaryTotals, s tracking.Slot, slotSeconds int) {
	t.Slots++
	t.TrackedSeconds += slotSeconds
	if s.Billable {
		t.BillableSlots++
		t.BillableSeconds += slotSeconds
	}
	t.IdleSeconds += s.IdleSeconds
	for _, sh := range s.Shots {
		t.Shots++
		switch sh.State {
		case tracking.ShotCovered:
			t.Covered++
		case tracking.ShotDeleted:
			t.Deleted++
		}
	}
}

// manualSeconds is the part of manual time inside [from, to), in seconds.
func manualSeconds(m tracking.ManualEntry, from, to int64) int {
	return int(min(m.End.Unix(), to) - max(m.Start.Unix(), from))
}

// addManual adds manual time: billable, and counted as manual too (rule 5).
func addManual(t *tracking.DiaryTotals, secs int) {
	t.ManualSeconds += secs
	t.BillableSeconds += secs
}

// overlap is how many seconds of a span fall in the slot at start.
func overlap(sp SpanBody, start, slotLen int64) int {
	return int(min(sp.End, start+slotLen) - max(sp.Start, start))
}

// gapSlots are the slots a gap shows in: every slot it overlaps (its end
// is exclusive), and the slot of its start even when it has no length. They
// are the slots starting at first, first+slotLen, ... before end.
func gapSlots(sp SpanBody, slotLen int64) (first, end int64) {
	return tracking.SlotStart(sp.Start, slotLen), max(sp.End, sp.Start+1)
}

// slotMemo is the memo of a session that overlaps the slot at t (a running
// session overlaps every later slot); "" when none has one. With several,
// the one iterated last wins, as before.
func slotMemo(sessions map[string]*session, t, slotLen int64) string {
	memo := ""
	for _, ss := range sessions {
		stop := ss.stop
		if stop == 0 {
			stop = 1<<62 - 1
		}
		if ss.start < t+slotLen && stop > t && ss.memo != "" {
			memo = ss.memo
		}
	}
	return memo
}
