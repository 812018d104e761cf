package diary

import (
	"fmt"
	"sort"
	"time"

	"github.com/workspace-sandbox/workspace/tracking"
)

// DefaultSlot is the slot length when a profile does not set tracking.slot.
const DefaultSlot = 10 * time.Minute

// ViewParams says what a view covers.
type ViewParams struct {
	Workspace   string
	Client      string
	From, To    time.Time
	SlotSeconds int
	Loc         *time.Location
}

type slotAcc struct {
	slot    tracking.Slot
	deleted bool
	live    bool
	active  bool
}

// Aggregate turns entries (with bodies) into days of slots with billing
// marks, by the rules in docs/diary.md. It is the one place those rules live:
// the CLI view, the web UI and the client's verify report all use it.
func Aggregate(entries []Entry, p ViewParams) (tracking.DiaryView, error) {
	if p.SlotSeconds <= 0 {
		p.SlotSeconds = int(DefaultSlot / time.Second)
	}
	if p.Loc == nil {
		p.Loc = time.Local
	}
	slotLen := int64(p.SlotSeconds)
	from, to := p.From.Unix(), p.To.Unix()
	view := tracking.DiaryView{Workspace: p.Workspace, Client: p.Client, From: p.From, To: p.To, SlotSeconds: p.SlotSeconds}

	state := map[string]string{}
	var captures []CaptureBody
	type session struct {
		start, stop int64
		memo        string
	}
	sessions := map[string]*session{}
	var activity []ActivityBody
	var idle, gaps []SpanBody
	for _, e := range entries {
		if e.Body == nil {
			continue
		}
		var err error
		switch e.Header.Type {
		case TypeCapture:
			var c CaptureBody
			if err = decodeBody(e.Body, &c); err == nil {
				captures = append(captures, c)
				if state[c.ID] == "" {
					state[c.ID] = tracking.ShotOK
				}
			}
		case TypeCover:
			var c CoverBody
			if err = decodeBody(e.Body, &c); err == nil && state[c.Shot] != tracking.ShotDeleted && state[c.Shot] != tracking.ShotPruned {
				state[c.Shot] = tracking.ShotCovered
			}
		case TypeDelete:
			var d DeleteBody
			if err = decodeBody(e.Body, &d); err == nil {
				state[d.Shot] = tracking.ShotDeleted
			}
		case TypePrune:
			var pb PruneBody
			if err = decodeBody(e.Body, &pb); err == nil {
				for _, id := range pb.Shots {
					if state[id] != tracking.ShotDeleted {
						state[id] = tracking.ShotPruned
					}
				}
			}
		case TypeActivity:
			var a ActivityBody
			if err = decodeBody(e.Body, &a); err == nil {
				activity = append(activity, a)
			}
		case TypeIdle, TypeGap, TypeManual:
			var s SpanBody
			if err = decodeBody(e.Body, &s); err == nil {
				switch e.Header.Type {
				case TypeIdle:
					idle = append(idle, s)
				case TypeGap:
					gaps = append(gaps, s)
				default:
					if s.End > from && s.Start < to {
						view.Manual = append(view.Manual, tracking.ManualEntry{ID: s.ID, Start: time.Unix(s.Start, 0), End: time.Unix(s.End, 0), Memo: s.Memo})
					}
				}
			}
		case TypeSessionStart, TypeSessionStop:
			var s SessionBody
			if err = decodeBody(e.Body, &s); err == nil {
				ss := sessions[s.ID]
				if ss == nil {
					ss = &session{}
					sessions[s.ID] = ss
				}
				if e.Header.Type == TypeSessionStart {
					ss.start, ss.memo = s.Time, s.Memo
				} else {
					ss.stop = s.Time
				}
			}
		default:
			err = fmt.Errorf("unknown type %q", e.Header.Type)
		}
		if err != nil {
			return tracking.DiaryView{}, fmt.Errorf("entry %d (%s): %w", e.Index, e.Header.Type, err)
		}
	}

	slots := map[int64]*slotAcc{}
	get := func(start int64) *slotAcc {
		if start < from || start >= to {
			return nil
		}
		s := slots[start]
		if s == nil {
			s = &slotAcc{slot: tracking.Slot{Start: time.Unix(start, 0).In(p.Loc), End: time.Unix(start+slotLen, 0).In(p.Loc), Shots: []tracking.Shot{}}}
			slots[start] = s
		}
		return s
	}
	floor := func(t int64) int64 { return tracking.SlotStart(t, slotLen) }

	// A deleted shot that has a live retake in its own slot does not cost
	// the slot its pay: the retake stands in for it.
	slotOf := map[string]int64{}
	for _, c := range captures {
		slotOf[c.ID] = floor(c.Taken / 1000)
	}
	retaken := map[string]bool{}
	for _, c := range captures {
		if st := state[c.ID]; c.RetakeOf != "" && (st == tracking.ShotOK || st == tracking.ShotCovered) {
			if orig, ok := slotOf[c.RetakeOf]; ok && orig == slotOf[c.ID] {
				retaken[c.RetakeOf] = true
			}
		}
	}
	for _, c := range captures {
		s := get(floor(c.Taken / 1000))
		if s == nil {
			continue
		}
		st := state[c.ID]
		s.slot.Shots = append(s.slot.Shots, tracking.Shot{ID: c.ID, Taken: time.UnixMilli(c.Taken).In(p.Loc), Display: c.Display, Width: c.W, Height: c.H, State: st, RetakeOf: c.RetakeOf, Blurred: c.Blurred})
		if st == tracking.ShotDeleted {
			s.deleted = s.deleted || !retaken[c.ID]
		} else {
			s.live = true
		}
	}
	for _, a := range activity {
		s := get(floor(a.Minute))
		if s == nil {
			continue
		}
		s.slot.Activity.Keys += a.Keys
		s.slot.Activity.Clicks += a.Clicks
		s.slot.Activity.Moves += a.Moves
		s.slot.Activity.Scrolls += a.Scrolls
		s.slot.Activity.Active += a.Active
		s.slot.Minutes++
		if a.Active > 0 || a.Keys+a.Clicks+a.Moves+a.Scrolls > 0 {
			s.active = true
		}
	}
	for _, sp := range idle {
		for t := floor(sp.Start); t < sp.End; t += slotLen {
			if s := slots[t]; s != nil {
				s.slot.IdleSeconds += int(min(sp.End, t+slotLen) - max(sp.Start, t))
			}
		}
	}
	for _, sp := range gaps {
		// Every slot the gap overlaps (its end is exclusive), and the slot
		// of its start even when it has no length.
		for t := floor(sp.Start); t < max(sp.End, sp.Start+1); t += slotLen {
			if s := get(t); s != nil {
				s.slot.Gaps = append(s.slot.Gaps, sp.Reason)
			}
		}
	}

	starts := make([]int64, 0, len(slots))
	for t := range slots {
		starts = append(starts, t)
	}
	sort.Slice(starts, func(i, j int) bool { return starts[i] < starts[j] })
	days := map[string]*tracking.DiaryDay{}
	var order []string
	totalActive := 0
	for _, t := range starts {
		s := slots[t]
		sort.Slice(s.slot.Shots, func(i, j int) bool { return s.slot.Shots[i].Taken.Before(s.slot.Shots[j].Taken) })
		for _, ss := range sessions {
			stop := ss.stop
			if stop == 0 {
				stop = 1<<62 - 1
			}
			if ss.start < t+slotLen && stop > t && ss.memo != "" {
				s.slot.Memo = ss.memo
			}
		}
		switch {
		case s.deleted:
			s.slot.Reason = "a screenshot was deleted"
		case !s.live:
			s.slot.Reason = "no screenshot"
		case !s.active:
			s.slot.Reason = "no activity"
		default:
			s.slot.Billable = true
		}
		s.slot.ActivityPercent = min(100, s.slot.Activity.Active*100/p.SlotSeconds)
		date := s.slot.Start.Format("2006-01-02")
		d := days[date]
		if d == nil {
			d = &tracking.DiaryDay{Date: date}
			days[date] = d
			order = append(order, date)
		}
		d.Slots = append(d.Slots, s.slot)
		addSlot(&d.Totals, s.slot, p.SlotSeconds)
		addSlot(&view.Totals, s.slot, p.SlotSeconds)
		totalActive += s.slot.Activity.Active
	}
	for _, m := range view.Manual {
		secs := int(min(m.End.Unix(), to) - max(m.Start.Unix(), from))
		date := m.Start.In(p.Loc).Format("2006-01-02")
		d := days[date]
		if d == nil {
			d = &tracking.DiaryDay{Date: date, Slots: []tracking.Slot{}}
			days[date] = d
			order = append(order, date)
		}
		d.Totals.ManualSeconds += secs
		d.Totals.BillableSeconds += secs
		view.Totals.ManualSeconds += secs
		view.Totals.BillableSeconds += secs
	}
	sort.Strings(order)
	for _, date := range order {
		d := days[date]
		if n := d.Totals.Slots; n > 0 {
			act := 0
			for _, s := range d.Slots {
				act += s.Activity.Active
			}
			d.Totals.ActivityPercent = min(100, act*100/(n*p.SlotSeconds))
		}
		view.Days = append(view.Days, *d)
	}
	if n := view.Totals.Slots; n > 0 {
		view.Totals.ActivityPercent = min(100, totalActive*100/(n*p.SlotSeconds))
	}
	if view.Days == nil {
		view.Days = []tracking.DiaryDay{}
	}
	return view, nil
}

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
