package diary

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"filippo.io/torchwood"

	"github.com/workspace-sandbox/workspace/tracking"
	"github.com/workspace-sandbox/workspace/witness"
)

// DefaultMaxDelay is the longest delay between a capture and its first
// cosignature for its slot to count as witnessed on time.
const DefaultMaxDelay = 15 * time.Minute

// WitnessReport is what verify found about an export's witnessing.
type WitnessReport struct {
	// Cosigned is how many cosigned checkpoints the evidence holds, all
	// signed by the log and proven consistent with the export's.
	Cosigned int `json:"cosigned_checkpoints"`
	// Earlier is how many checkpoints of earlier exports it proves it
	// extends.
	Earlier int `json:"earlier_exports"`
	// Cosigners names the witnesses whose cosignature lines the evidence
	// holds; only pinned ones are checked.
	Cosigners []string        `json:"cosigners"`
	Pinned    []PinnedWitness `json:"pinned,omitempty"`
	Quorum    int             `json:"quorum,omitempty"`
	MaxDelay  int             `json:"max_delay_seconds,omitempty"`
}

// PinnedWitness is one witness key given to verify.
type PinnedWitness struct {
	Key  string `json:"key"`
	Name string `json:"name"`
	// ExportCosigned is when it cosigned the export's checkpoint (zero:
	// it did not).
	ExportCosigned time.Time `json:"export_cosigned,omitzero"`
	Cosignatures   int       `json:"cosignatures"`
}

// cosignedAt is one witness's cosignature of a checkpoint size.
type cosignedAt struct {
	size int64
	at   time.Time
}

// checkWitnessing checks an export's witness evidence (format 3) and, with
// pinned witnesses, the quorum on the export's checkpoint and every slot's
// witness delay, which it marks in the view.
func checkWitnessing(d *exportData, cp Checkpoint, entries []Entry, opts VerifyOptions, v *Verified) error {
	if d.m.Format == LegacyExportFormat {
		if len(opts.Witnesses) > 0 {
			return fmt.Errorf("this export is in format %s, made before witnessing: it carries no cosignatures (ask the freelancer for a new export)", LegacyExportFormat)
		}
		return nil
	}
	if cp.Legacy() {
		return fmt.Errorf("the export's checkpoint is in the format before witnessing, which a format %s export never carries", ExportFormat)
	}
	v.Origin = cp.Origin
	if d.m.Witness == nil {
		return errors.New("the export carries no witness evidence")
	}
	cosigned, previous, err := checkEvidence(d.m.Witness, v.Signer, cp)
	if err != nil {
		return err
	}
	v.previous = previous
	rep := &WitnessReport{Cosigned: len(cosigned), Earlier: len(previous), Cosigners: []string{}}
	seen := map[string]bool{}
	for _, pc := range cosigned {
		for _, l := range pc.sigs {
			name, _, _ := strings.Cut(strings.TrimPrefix(l, "— "), " ")
			if name != cp.Origin && !seen[name] {
				seen[name] = true
				rep.Cosigners = append(rep.Cosigners, name)
			}
		}
	}
	sort.Strings(rep.Cosigners)
	v.Witness = rep
	if len(opts.Witnesses) == 0 {
		return nil
	}

	var vs []*torchwood.CosignatureVerifier
	for _, k := range opts.Witnesses {
		wv, err := witness.NewVerifier(k)
		if err != nil {
			return err
		}
		for _, p := range rep.Pinned {
			if p.Key == wv.String() {
				return fmt.Errorf("witness key %s is given twice", wv.String())
			}
		}
		vs = append(vs, wv)
		rep.Pinned = append(rep.Pinned, PinnedWitness{Key: wv.String(), Name: wv.Name()})
	}
	quorum := opts.Quorum
	if quorum == 0 {
		quorum = len(vs)
	}
	if quorum < 1 || quorum > len(vs) {
		return fmt.Errorf("a quorum of %d with %d witness keys", quorum, len(vs))
	}
	maxDelay := opts.MaxDelay
	if maxDelay <= 0 {
		maxDelay = DefaultMaxDelay
	}
	rep.Quorum, rep.MaxDelay = quorum, int(maxDelay/time.Second)

	// Every cosignature by a pinned witness must verify; a checkpoint
	// without one is simply not that witness's.
	per := make([][]cosignedAt, len(vs))
	for _, pc := range cosigned {
		for i, wv := range vs {
			_, at, ok, err := witness.FindCosignature(pc.text, pc.sigs, wv)
			if err != nil {
				return fmt.Errorf("witness evidence, checkpoint of size %d: %w", pc.Size, err)
			}
			if !ok {
				continue
			}
			per[i] = append(per[i], cosignedAt{pc.Size, at})
			rep.Pinned[i].Cosignatures++
			if pc.Size == cp.Size {
				rep.Pinned[i].ExportCosigned = at
			}
		}
	}
	var missing []string
	for _, p := range rep.Pinned {
		if p.ExportCosigned.IsZero() {
			missing = append(missing, p.Name)
		}
	}
	if have := len(vs) - len(missing); have < quorum {
		return fmt.Errorf("the export's checkpoint (log size %d) is cosigned by %d of the %d pinned witnesses, fewer than the quorum of %d (not cosigned by %s): no witness fixed this history",
			cp.Size, have, len(vs), quorum, strings.Join(missing, ", "))
	}
	for i := range per {
		sort.Slice(per[i], func(a, b int) bool { return per[i][a].size < per[i][b].size })
		// The earliest time at or after each position: a later checkpoint
		// cosigned earlier (a witness's clock) still covers the entry.
		for j := len(per[i]) - 2; j >= 0; j-- {
			if per[i][j+1].at.Before(per[i][j].at) {
				per[i][j].at = per[i][j+1].at
			}
		}
	}
	// witnessTime is when a quorum of the pinned witnesses had cosigned a
	// checkpoint covering entry idx.
	witnessTime := func(idx int64) (time.Time, bool) {
		var ts []time.Time
		for _, cs := range per {
			k := sort.Search(len(cs), func(j int) bool { return cs[j].size > idx })
			if k < len(cs) {
				ts = append(ts, cs[k].at)
			}
		}
		if len(ts) < quorum {
			return time.Time{}, false
		}
		sort.Slice(ts, func(a, b int) bool { return ts[a].Before(ts[b]) })
		return ts[quorum-1], true
	}
	markSlots(v, entries, witnessTime, maxDelay)
	return nil
}

// markSlots sets every slot's witness delay: the largest delay between a
// capture (its time) or a minute of activity (the minute's end) and the
// time a quorum of witnesses first cosigned a checkpoint covering it; and
// splits the totals' billable time into witnessed on time and the rest.
func markSlots(v *Verified, entries []Entry, witnessTime func(int64) (time.Time, bool), maxDelay time.Duration) {
	slotLen := int64(v.View.SlotSeconds)
	if slotLen <= 0 {
		return
	}
	floor := func(t int64) int64 { return t - ((t%slotLen)+slotLen)%slotLen }
	type mark struct {
		delay time.Duration
		at    time.Time
		ok    bool // every entry of the slot is covered
	}
	marks := map[int64]*mark{}
	for _, e := range entries {
		if e.Body == nil {
			continue
		}
		var ref time.Time
		switch e.Header.Type {
		case TypeCapture:
			var c CaptureBody
			if decodeBody(e.Body, &c) != nil {
				continue
			}
			ref = time.UnixMilli(c.Taken)
		case TypeActivity:
			var a ActivityBody
			if decodeBody(e.Body, &a) != nil {
				continue
			}
			ref = time.Unix(a.Minute+60, 0) // an activity minute exists when it ends
		default:
			continue
		}
		start := floor(ref.Unix())
		if e.Header.Type == TypeActivity {
			start = floor(ref.Unix() - 60)
		}
		m := marks[start]
		if m == nil {
			m = &mark{ok: true}
			marks[start] = m
		}
		at, ok := witnessTime(e.Index)
		if !ok {
			m.ok = false
			continue
		}
		if d := at.Sub(ref); d > m.delay || m.at.IsZero() {
			m.delay = max(d, m.delay, 0)
			m.at = at
		}
	}
	total := &tracking.WitnessTotals{}
	for di := range v.View.Days {
		day := &v.View.Days[di]
		dt := &tracking.WitnessTotals{}
		for si := range day.Slots {
			s := &day.Slots[si]
			m := marks[s.Start.Unix()]
			if m == nil {
				continue
			}
			sw := &tracking.SlotWitness{FirstWitnessed: m.at.In(s.Start.Location()), DelaySeconds: int(m.delay / time.Second), Late: !m.ok || m.delay > maxDelay}
			s.Witness = sw
			if sw.Late {
				dt.LateSlots++
			} else if s.Billable {
				dt.OnTimeSeconds += v.View.SlotSeconds
			}
		}
		dt.OtherSeconds = day.Totals.BillableSeconds - dt.OnTimeSeconds
		day.Totals.Witness = dt
		total.OnTimeSeconds += dt.OnTimeSeconds
		total.LateSlots += dt.LateSlots
	}
	total.OtherSeconds = v.View.Totals.BillableSeconds - total.OnTimeSeconds
	v.View.Totals.Witness = total
}
