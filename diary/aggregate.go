package diary

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/workspace-sandbox/workspace/tracking"
)

// DefaultSlot is the slot length when a profile does not set tracking.slot.
var DefaultSlot = time.Duration(tracking.DefaultPolicy.SlotSeconds) * time.Second

// ViewParams says what a view covers.
type ViewParams struct {
	Workspace   string
	Client      string
	From, To    time.Time
	SlotSeconds int
	Loc         *time.Location
}

// Aggregate turns entries (with bodies) into days of slots with billing
// marks, by the rules in docs/diary.md. It is the one place those rules are
// applied: the CLI view, the web UI and the client's verify report all use
// it. Each rule is a function of its own below (see billing.go), which
// Aggregate composes: read the entries' facts, place them in their slots,
// mark each slot, and add the slots and manual time up by day.
//
// Its cost is bounded by the entries and the slots of the asked range,
// whatever times the entries hold: every span is clipped to the range
// before its slots are stepped through, and ctx is checked as it goes. A
// range outside years 1970–9999 is refused.
func Aggregate(ctx context.Context, entries []Entry, p ViewParams) (tracking.DiaryView, error) {
	f, err := readFacts(entries)
	if err != nil {
		return tracking.DiaryView{}, err
	}
	return aggregateFacts(ctx, f, p)
}

// aggregateFacts is Aggregate after the entries' facts are read.
func aggregateFacts(ctx context.Context, f *facts, p ViewParams) (tracking.DiaryView, error) {
	if p.SlotSeconds <= 0 {
		p.SlotSeconds = int(DefaultSlot / time.Second)
	}
	if p.Loc == nil {
		p.Loc = time.Local
	}
	if err := checkRange(p.From, p.To); err != nil {
		return tracking.DiaryView{}, err
	}
	g := newSlotGrid(ctx, p)
	g.placeShots(f)
	g.placeActivity(f.activity)
	g.placeIdle(f.idle)
	g.placeGaps(f.gaps)
	if err := ctx.Err(); err != nil {
		return tracking.DiaryView{}, fmt.Errorf("diary view: %w", err)
	}
	view := tracking.DiaryView{Workspace: p.Workspace, Client: p.Client, From: p.From, To: p.To, SlotSeconds: p.SlotSeconds}
	for _, m := range f.manual {
		if m.End > g.from && m.Start < g.to {
			view.Manual = append(view.Manual, tracking.ManualEntry{ID: m.ID, Start: time.Unix(m.Start, 0), End: time.Unix(m.End, 0), Memo: m.Memo})
		}
	}
	view.Days, view.Totals = g.days(f.sessions, view.Manual)
	return view, nil
}

// Bounds of a range: no view or export reaches outside years 1970–9999.
var (
	minRangeTime = time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC)
	maxRangeTime = time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)
)

// checkRange refuses a range that ends before it starts or reaches outside
// years 1970–9999.
func checkRange(from, to time.Time) error {
	if !to.After(from) {
		return fmt.Errorf("%w: the range ends (%s) before it starts (%s)", ErrInvalid, to.Format(time.RFC3339), from.Format(time.RFC3339))
	}
	if from.Before(minRangeTime) || to.After(maxRangeTime) {
		return fmt.Errorf("%w: the range %s to %s reaches outside years 1970-9999", ErrInvalid, from.Format(time.RFC3339), to.Format(time.RFC3339))
	}
	return nil
}

// session is a tracking session's span and memo; stop is 0 while it runs.
type session struct {
	start, stop int64
	memo        string
}

// facts are the decoded bodies of a workspace's entries, and every shot's
// state after its covers, deletes and prunes.
type facts struct {
	captures []CaptureBody
	state    map[string]string
	sessions map[string]*session
	activity []ActivityBody
	idle     []SpanBody
	gaps     []SpanBody
	manual   []SpanBody
}

// readFacts decodes the bodies of entries (those without a body are left
// out) in log order.
func readFacts(entries []Entry) (*facts, error) {
	f := &facts{state: map[string]string{}, sessions: map[string]*session{}}
	for _, e := range entries {
		if e.Body == nil {
			continue
		}
		if err := f.add(e); err != nil {
			return nil, fmt.Errorf("entry %d (%s): %w", e.Index, e.Header.Type, err)
		}
	}
	return f, nil
}

func (f *facts) add(e Entry) error {
	switch e.Header.Type {
	case TypeCapture:
		var c CaptureBody
		if err := decodeBody(e.Body, &c); err != nil {
			return err
		}
		f.captures = append(f.captures, c)
		f.state[c.ID] = nextShotState(f.state[c.ID], TypeCapture)
	case TypeCover:
		var c CoverBody
		if err := decodeBody(e.Body, &c); err != nil {
			return err
		}
		f.state[c.Shot] = nextShotState(f.state[c.Shot], TypeCover)
	case TypeDelete:
		var d DeleteBody
		if err := decodeBody(e.Body, &d); err != nil {
			return err
		}
		f.state[d.Shot] = nextShotState(f.state[d.Shot], TypeDelete)
	case TypePrune:
		var pb PruneBody
		if err := decodeBody(e.Body, &pb); err != nil {
			return err
		}
		for _, id := range pb.Shots {
			f.state[id] = nextShotState(f.state[id], TypePrune)
		}
	case TypeActivity:
		var a ActivityBody
		if err := decodeBody(e.Body, &a); err != nil {
			return err
		}
		f.activity = append(f.activity, a)
	case TypeIdle, TypeGap, TypeManual:
		var s SpanBody
		if err := decodeBody(e.Body, &s); err != nil {
			return err
		}
		switch e.Header.Type {
		case TypeIdle:
			f.idle = append(f.idle, s)
		case TypeGap:
			f.gaps = append(f.gaps, s)
		default:
			f.manual = append(f.manual, s)
		}
	case TypeSessionStart, TypeSessionStop:
		var s SessionBody
		if err := decodeBody(e.Body, &s); err != nil {
			return err
		}
		ss := f.sessions[s.ID]
		if ss == nil {
			ss = &session{}
			f.sessions[s.ID] = ss
		}
		if e.Header.Type == TypeSessionStart {
			ss.start, ss.memo = s.Time, s.Memo
		} else {
			ss.stop = s.Time
		}
	default:
		return fmt.Errorf("unknown type %q", e.Header.Type)
	}
	return nil
}

// slotAcc is a slot being filled, with what its billing mark needs.
type slotAcc struct {
	slot    tracking.Slot
	deleted bool // a deleted shot no retake stands in for
	live    bool // a shot that is not deleted
	active  bool // some activity
}

// slotGrid holds the slots of a view's range that have anything in them.
type slotGrid struct {
	ctx      context.Context
	p        ViewParams
	slotLen  int64
	from, to int64
	slots    map[int64]*slotAcc
	steps    int // slot steps taken, to check ctx now and then
}

func newSlotGrid(ctx context.Context, p ViewParams) *slotGrid {
	return &slotGrid{ctx: ctx, p: p, slotLen: int64(p.SlotSeconds), from: p.From.Unix(), to: p.To.Unix(), slots: map[int64]*slotAcc{}}
}

// stop counts a step and says whether ctx ended (checked every 4096).
func (g *slotGrid) stop() bool {
	g.steps++
	return g.steps%4096 == 0 && g.ctx.Err() != nil
}

// clip returns the starts of the first slot and the end (exclusive) of
// the slots of [start, end) inside the range: each step of a loop over
// them is a slot of the range, whatever the span's times.
func (g *slotGrid) clip(start, end int64) (int64, int64) {
	return g.floor(max(start, g.from)), min(end, g.to)
}

func (g *slotGrid) floor(t int64) int64 { return tracking.SlotStart(t, g.slotLen) }

// get returns the slot that starts at start, made when it is in the range;
// nil outside it.
func (g *slotGrid) get(start int64) *slotAcc {
	if start < g.from || start >= g.to {
		return nil
	}
	s := g.slots[start]
	if s == nil {
		s = &slotAcc{slot: tracking.Slot{Start: time.Unix(start, 0).In(g.p.Loc), End: time.Unix(start+g.slotLen, 0).In(g.p.Loc), Shots: []tracking.Shot{}}}
		g.slots[start] = s
	}
	return s
}

func (g *slotGrid) placeShots(f *facts) {
	retaken := retakenShots(f.captures, f.state, g.slotLen)
	for _, c := range f.captures {
		s := g.get(g.floor(c.Taken / 1000))
		if s == nil {
			continue
		}
		st := f.state[c.ID]
		s.slot.Shots = append(s.slot.Shots, tracking.Shot{ID: c.ID, Taken: time.UnixMilli(c.Taken).In(g.p.Loc), Display: c.Display, Width: c.W, Height: c.H, State: st, RetakeOf: c.RetakeOf, Blurred: c.Blurred})
		deletes, live := shotEffect(st, retaken[c.ID])
		s.deleted = s.deleted || deletes
		s.live = s.live || live
	}
}

func (g *slotGrid) placeActivity(activity []ActivityBody) {
	for _, a := range activity {
		s := g.get(g.floor(a.Minute))
		if s == nil {
			continue
		}
		s.slot.Activity.Keys += a.Keys
		s.slot.Activity.Clicks += a.Clicks
		s.slot.Activity.Moves += a.Moves
		s.slot.Activity.Scrolls += a.Scrolls
		s.slot.Activity.Active += a.Active
		s.slot.Minutes++
		s.active = s.active || isActive(a.Activity)
	}
}

// placeIdle adds idle seconds to the slots that already have something.
func (g *slotGrid) placeIdle(idle []SpanBody) {
	starts := make([]int64, 0, len(g.slots))
	for t := range g.slots {
		starts = append(starts, t)
	}
	sort.Slice(starts, func(i, j int) bool { return starts[i] < starts[j] })
	for _, sp := range idle {
		from, to := g.clip(sp.Start, sp.End)
		// Only the slots that have something: found, not stepped to.
		for i := sort.Search(len(starts), func(i int) bool { return starts[i] >= from }); i < len(starts) && starts[i] < to; i++ {
			if g.stop() {
				return
			}
			g.slots[starts[i]].slot.IdleSeconds += overlap(sp, starts[i], g.slotLen)
		}
	}
}

// placeGaps lists each gap's reason in the slots it shows in, each reason
// once a slot (many gaps of one reason say no more), in log order. Each
// slot is visited once per reason: the slots a reason already covers are
// skipped, not stepped through, so 10,000 gaps reaching to the end of the
// range cost the range's slots, not 10,000 times them.
func (g *slotGrid) placeGaps(gaps []SpanBody) {
	covered := map[string]*slotRuns{}
	for _, sp := range gaps {
		first, end := gapSlots(sp, g.slotLen)
		if end <= g.from || sp.Start >= g.to {
			continue
		}
		first, end = g.clip(first, end)
		r := covered[sp.Reason]
		if r == nil {
			r = &slotRuns{}
			covered[sp.Reason] = r
		}
		placed := r.add(first, end, g.slotLen, func(t int64) bool {
			if g.stop() {
				return false
			}
			if s := g.get(t); s != nil {
				s.slot.Gaps = append(s.slot.Gaps, sp.Reason)
			}
			return true
		})
		if !placed {
			return
		}
	}
}

// slotRuns is a set of slot starts, kept as sorted, disjoint and
// non-touching runs [start, end) of whole slots.
type slotRuns struct{ runs [][2]int64 }

// add calls visit for each slot start in [first, end) (first is a slot
// start; slots step by slotLen) that is not in the set yet, in order, then
// adds them all. It stops, and says false, when visit does.
func (r *slotRuns) add(first, end, slotLen int64, visit func(t int64) bool) bool {
	if end <= first {
		return true
	}
	end = first + (end-first+slotLen-1)/slotLen*slotLen // the end of the last slot
	at := first
	i := sort.Search(len(r.runs), func(i int) bool { return r.runs[i][1] > first })
	for ; at < end; i++ {
		gapEnd := end
		if i < len(r.runs) && r.runs[i][0] < end {
			gapEnd = r.runs[i][0]
		}
		for ; at < gapEnd; at += slotLen {
			if !visit(at) {
				return false
			}
		}
		if i >= len(r.runs) || r.runs[i][0] >= end {
			break
		}
		at = max(at, r.runs[i][1])
	}
	// Merge [first, end) with the runs it overlaps or touches.
	lo := sort.Search(len(r.runs), func(i int) bool { return r.runs[i][1] >= first })
	hi := sort.Search(len(r.runs), func(i int) bool { return r.runs[i][0] > end })
	merged := [2]int64{first, end}
	if lo < hi {
		merged[0], merged[1] = min(first, r.runs[lo][0]), max(end, r.runs[hi-1][1])
	}
	r.runs = append(r.runs[:lo], append([][2]int64{merged}, r.runs[hi:]...)...)
	return true
}

// days marks every slot, groups the slots by local day and adds up the
// days, the manual time and the range.
func (g *slotGrid) days(sessions map[string]*session, manual []tracking.ManualEntry) ([]tracking.DiaryDay, tracking.DiaryTotals) {
	starts := make([]int64, 0, len(g.slots))
	for t := range g.slots {
		starts = append(starts, t)
	}
	sort.Slice(starts, func(i, j int) bool { return starts[i] < starts[j] })
	byDate := map[string]*tracking.DiaryDay{}
	day := func(date string) *tracking.DiaryDay {
		d := byDate[date]
		if d == nil {
			d = &tracking.DiaryDay{Date: date, Slots: []tracking.Slot{}}
			byDate[date] = d
		}
		return d
	}
	var total tracking.DiaryTotals
	totalActive := 0
	for _, t := range starts {
		s := g.slots[t]
		sort.Slice(s.slot.Shots, func(i, j int) bool { return s.slot.Shots[i].Taken.Before(s.slot.Shots[j].Taken) })
		s.slot.Memo = slotMemo(sessions, t, g.slotLen)
		s.slot.Billable, s.slot.Reason = billable(s.deleted, s.live, s.active)
		s.slot.ActivityPercent = activityPercent(s.slot.Activity.Active, g.p.SlotSeconds)
		d := day(s.slot.Start.Format("2006-01-02"))
		d.Slots = append(d.Slots, s.slot)
		addSlot(&d.Totals, s.slot, g.p.SlotSeconds)
		addSlot(&total, s.slot, g.p.SlotSeconds)
		totalActive += s.slot.Activity.Active
	}
	for _, m := range manual {
		secs := manualSeconds(m, g.from, g.to)
		d := day(m.Start.In(g.p.Loc).Format("2006-01-02"))
		addManual(&d.Totals, secs)
		addManual(&total, secs)
	}
	dates := make([]string, 0, len(byDate))
	for date := range byDate {
		dates = append(dates, date)
	}
	sort.Strings(dates)
	out := []tracking.DiaryDay{}
	for _, date := range dates {
		d := byDate[date]
		act := 0
		for _, s := range d.Slots {
			act += s.Activity.Active
		}
		d.Totals.ActivityPercent = activityPercent(act, d.Totals.Slots*g.p.SlotSeconds)
		out = append(out, *d)
	}
	total.ActivityPercent = activityPercent(totalActive, total.Slots*g.p.SlotSeconds)
	return out, total
}

// checkTimes refuses an export entry whose time lies outside the export's
// range [from, to): a capture or an activity minute outside it, a span
// that does not reach into it (or ends before it starts). The export only
// ever carries the bodies of those; anything else is forged.
func checkTimes(entries []Entry, from, to time.Time) error {
	f, t := from.Unix(), to.Unix()
	for _, e := range entries {
		if e.Body == nil {
			continue
		}
		var err error
		switch e.Header.Type {
		case TypeCapture:
			var c CaptureBody
			if err = decodeBody(e.Body, &c); err == nil && (c.Taken < f*1000 || c.Taken >= t*1000) {
				err = fmt.Errorf("was taken at %s, outside the export's range", time.UnixMilli(c.Taken).UTC().Format(time.RFC3339))
			}
		case TypeActivity:
			var a ActivityBody
			if err = decodeBody(e.Body, &a); err == nil && (a.Minute < f || a.Minute >= t) {
				err = fmt.Errorf("counts the minute of %s, outside the export's range", time.Unix(a.Minute, 0).UTC().Format(time.RFC3339))
			}
		case TypeIdle, TypeGap, TypeManual:
			var s SpanBody
			if err = decodeBody(e.Body, &s); err == nil && (s.End < s.Start || s.End <= f && s.Start < f || s.Start >= t) {
				err = fmt.Errorf("spans %d to %d (unix seconds), not inside the export's range", s.Start, s.End)
			}
		}
		if err != nil {
			return &EntryError{Index: e.Index, What: describe(e.Header), Err: err}
		}
	}
	return nil
}
