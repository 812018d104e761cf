package diary

import (
	"encoding/base64"
	"encoding/csv"
	"fmt"
	"html/template"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/workspace-sandbox/workspace/internal/safetext"
	"github.com/workspace-sandbox/workspace/tracking"
)

// WriteCSV writes a timesheet: one row per slot and per manual entry.
func WriteCSV(w io.Writer, view tracking.DiaryView) error {
	cw := csv.NewWriter(w)
	rows := [][]string{{"date", "start", "end", "kind", "billable", "activity_percent", "active_seconds", "keys", "clicks", "moves", "scrolls", "idle_seconds", "shots", "covered", "deleted", "memo", "note"}}
	witnessed := view.Totals.Witness != nil
	if witnessed {
		rows[0] = append(rows[0], witnessCSVHeader...)
	}
	for _, d := range view.Days {
		for _, s := range d.Slots {
			cov, del := 0, 0
			note := s.Reason
			for _, sh := range s.Shots {
				if sh.RetakeOf != "" {
					note = strings.TrimPrefix(note+"; shot "+safetext.Term(sh.ID)+" is the retake of "+safetext.Term(sh.RetakeOf), "; ")
				}
				switch sh.State {
				case tracking.ShotCovered:
					cov++
				case tracking.ShotDeleted:
					del++
				}
			}
			layout := tracking.ClockLayout(s.Start, s.End)
			rows = append(rows, []string{d.Date, s.Start.Format(layout), s.End.Format(layout), "tracked", strconv.FormatBool(s.Billable),
				strconv.Itoa(s.ActivityPercent), strconv.Itoa(s.Activity.Active), strconv.Itoa(s.Activity.Keys), strconv.Itoa(s.Activity.Clicks),
				strconv.Itoa(s.Activity.Moves), strconv.Itoa(s.Activity.Scrolls), strconv.Itoa(s.IdleSeconds), strconv.Itoa(len(s.Shots)),
				strconv.Itoa(cov), strconv.Itoa(del), safetext.CSV(s.Memo), safetext.CSV(note)})
			if witnessed {
				rows[len(rows)-1] = append(rows[len(rows)-1], witnessCSV(s.Witness)...)
			}
		}
	}
	for _, m := range view.Manual {
		rows = append(rows, []string{m.Start.In(view.From.Location()).Format("2006-01-02"), m.Start.Format("15:04"), m.End.Format("15:04"), "manual", "true",
			"", "", "", "", "", "", "", "0", "0", "0", safetext.CSV(m.Memo), "manual time"})
		if witnessed {
			rows[len(rows)-1] = append(rows[len(rows)-1], "manual (not witnessed live)", "")
		}
	}
	rows = append(rows, []string{"total", "", "", "", "", strconv.Itoa(view.Totals.ActivityPercent), "", "", "", "", "", strconv.Itoa(view.Totals.IdleSeconds),
		strconv.Itoa(view.Totals.Shots), strconv.Itoa(view.Totals.Covered), strconv.Itoa(view.Totals.Deleted), "",
		fmt.Sprintf("billable %s (manual %s) of %s tracked", Hours(view.Totals.BillableSeconds), Hours(view.Totals.ManualSeconds), Hours(view.Totals.TrackedSeconds))})
	if witnessed {
		rows[len(rows)-1] = append(rows[len(rows)-1], witnessTotalsText(view.Totals.Witness), "")
	}
	if err := cw.WriteAll(rows); err != nil {
		return fmt.Errorf("write CSV: %w", err)
	}
	return nil
}

// Hours formats seconds as "3h 20m".
func Hours(secs int) string {
	d := time.Duration(secs) * time.Second
	return fmt.Sprintf("%dh %02dm", int(d.Hours()), int(d.Minutes())%60)
}

var reportTmpl = template.Must(template.New("report").Funcs(template.FuncMap{
	"hours": Hours,
	// Strings of the export (names, memos, reasons, ids) are shown with
	// their control and direction characters escaped, then HTML-escaped.
	"term": safetext.Term,
	"thumb": func(v *Verified, id string) template.URL {
		if b, ok := v.Thumbs[id]; ok {
			return template.URL("data:image/jpeg;base64," + base64.StdEncoding.EncodeToString(b))
		}
		return ""
	},
	"hm": func(t time.Time) string { return t.Format("15:04") },
	"span": func(start, end time.Time) string {
		layout := tracking.ClockLayout(start, end)
		return start.Format(layout) + "–" + end.Format(layout)
	},
	"delay": Delay,
	"ts":    func(t time.Time) string { return t.Format("2006-01-02 15:04 MST") },
}).Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Work diary: {{term .V.Workspace}} {{.V.From.Format "2006-01-02"}} to {{.V.To.Format "2006-01-02"}}</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222;background:#fafafa}
h1{font-size:1.4em;margin:0 0 .2em}h2{font-size:1.1em;margin:1.5em 0 .5em}
.ok{color:#186a2e;font-weight:600}.meta{color:#555}
table.totals{border-collapse:collapse;margin:.5em 0}table.totals td,table.totals th{border:1px solid #ccc;padding:.25em .6em;text-align:left}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(170px,1fr));gap:.6em}
.slot{background:#fff;border:1px solid #ddd;border-radius:6px;padding:.4em}
.slot.unbilled{background:#f3f3f3;border-style:dashed}
.slot img{width:100%;display:block;border-radius:3px}
.time{font-weight:600}.memo{color:#444;font-size:.9em}.why{color:#a33;font-size:.85em}
.bar{height:6px;background:#e5e5e5;border-radius:3px;margin:.3em 0}.bar span{display:block;height:6px;background:#2b7de9;border-radius:3px}
.badge{display:inline-block;font-size:.8em;padding:0 .4em;border-radius:3px;background:#eee;margin-right:.3em}
.covered{background:#fde9b6}.deleted{background:#f7c9c9}.pruned{background:#ddd}
.late{background:#f7c9c9;color:#7a1010;font-weight:600}.wit{color:#555;font-size:.85em}
.none{height:60px;display:flex;align-items:center;justify-content:center;background:#eee;color:#777;border-radius:3px;font-size:.85em}
</style></head><body>
<h1>Work diary of {{term .V.Workspace}}{{with .V.Client}} for {{term .}}{{end}}</h1>
<p class="meta">{{ts .V.From}} to {{ts .V.To}} · exported {{ts .V.Created}}</p>
<p class="ok">Verified: signature, {{.V.Entries}} log entries with inclusion proofs, every screenshot against its commitment.</p>
<p class="meta">Signer key: <code>{{term .V.Signer}}</code> · signed log size {{.V.Checkpoint}}{{with .V.Origin}} · log <code>{{term .}}</code>{{end}}</p>
{{if not .V.SignerPinned}}<p class="why">The signer was not pinned: this export is signed by the key above, but nothing checked that the key is your freelancer's (verify with --signer KEY).</p>{{end}}
{{with .V.Witness}}{{if .Pinned}}<p class="ok">Witnessed: the export's checkpoint is cosigned by {{range $i, $p := .Pinned}}{{if $i}}, {{end}}{{term $p.Name}}{{if $p.ExportCosigned.IsZero}} (not this checkpoint){{end}}{{end}} (quorum {{.Quorum}}); slots whose captures were first cosigned more than {{delay .MaxDelay}} after they were taken are marked "witnessed late".</p>
{{else}}<p class="meta">Witness evidence: {{.Cosigned}} cosigned checkpoints{{with .Cosigners}} by {{range $i, $n := .}}{{if $i}}, {{end}}{{term $n}}{{end}}{{end}}, not checked: no witness key was pinned.</p>{{end}}{{end}}
<table class="totals">
<tr><th>Billable</th><td>{{hours .V.View.Totals.BillableSeconds}}</td></tr>
<tr><th>of which manual</th><td>{{hours .V.View.Totals.ManualSeconds}}</td></tr>
{{with .V.View.Totals.Witness}}<tr><th>Witnessed on time</th><td>{{hours .OnTimeSeconds}}</td></tr>
<tr><th>Not witnessed on time</th><td>{{hours .OtherSeconds}} ({{.LateSlots}} slots witnessed late, and manual time)</td></tr>{{end}}
<tr><th>Tracked</th><td>{{hours .V.View.Totals.TrackedSeconds}} in {{.V.View.Totals.Slots}} slots ({{.V.View.Totals.BillableSlots}} billable)</td></tr>
<tr><th>Activity</th><td>{{.V.View.Totals.ActivityPercent}}%</td></tr>
<tr><th>Screenshots</th><td>{{.V.View.Totals.Shots}} ({{.V.View.Totals.Covered}} covered, {{.V.View.Totals.Deleted}} deleted)</td></tr>
</table>
{{range .V.View.Days}}
<h2>{{.Date}} · {{hours .Totals.BillableSeconds}} billable · activity {{.Totals.ActivityPercent}}%</h2>
<div class="grid">
{{range .Slots}}<div class="slot{{if not .Billable}} unbilled{{end}}">
<div class="time">{{span .Start .End}}</div>
{{range .Shots}}{{$t := thumb $.V .ID}}{{if $t}}<img src="{{$t}}" alt="screenshot {{term .ID}} at {{hm .Taken}}">{{else}}<div class="none">{{term .State}}</div>{{end}}
{{if ne .State "ok"}}<span class="badge {{term .State}}">{{term .State}}</span>{{end}}{{if .RetakeOf}}<span class="badge">retake</span>{{end}}{{else}}<div class="none">no screenshot</div>{{end}}
<div class="bar" title="activity {{.ActivityPercent}}%"><span style="width:{{.ActivityPercent}}%"></span></div>
<div>{{.ActivityPercent}}% activity{{if .IdleSeconds}} · idle {{.IdleSeconds}}s{{end}}</div>
{{with .Memo}}<div class="memo">{{term .}}</div>{{end}}
{{if not .Billable}}<div class="why">not billed: {{term .Reason}}</div>{{end}}
{{with .Witness}}{{if .Late}}<div><span class="badge late">witnessed late</span> <span class="wit">{{delay .DelaySeconds}} after capture</span></div>{{else}}<div class="wit">witnessed {{delay .DelaySeconds}} after capture</div>{{end}}{{end}}
</div>{{end}}
</div>
{{end}}
{{with .V.View.Manual}}<h2>Manual time (flagged)</h2><ul>
{{range .}}<li>{{ts .Start}}–{{hm .End}}: {{term .Memo}}</li>{{end}}</ul>{{end}}
</body></html>
`))

// WriteHTML writes a self-contained report of a verified export: no
// external assets, thumbnails inline.
func WriteHTML(w io.Writer, v *Verified) error {
	if err := reportTmpl.Execute(w, struct{ V *Verified }{v}); err != nil {
		return fmt.Errorf("write HTML report: %w", err)
	}
	return nil
}
