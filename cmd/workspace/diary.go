package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"filippo.io/age"
	"github.com/spf13/cobra"

	"github.com/workspace-sandbox/workspace/api"
	"github.com/workspace-sandbox/workspace/diary"
	"github.com/workspace-sandbox/workspace/internal/safetext"
	"github.com/workspace-sandbox/workspace/tracking"
)

func newDiaryCmd(a *app) *cobra.Command {
	var rf rangeFlags
	cmd := readCmd(a, command("diary NAME [--day DATE | --week DATE | --from DATE --to DATE]", "Review a workspace's work diary; cover, delete, export and verify shots", cobra.ExactArgs(1), nil),
		func(cmd *cobra.Command, args []string) (tracking.DiaryView, error) {
			from, to, err := rf.resolve(time.Now())
			if err != nil {
				return tracking.DiaryView{}, err
			}
			return a.client().Diary(cmd.Context(), args[0], from, to, localZone())
		},
		func(_ []string, v tracking.DiaryView) error {
			printDiary(a.stdout, v)
			return nil
		})
	cmd.Long = `diary NAME shows a workspace's slots (clock-aligned, 10 minutes unless the
profile's tracking.slot says otherwise) with time, activity, memo, shot ids
and billable marks, and totals. Without a range it shows today.

A slot is billable when it has a screenshot and activity; deleting a slot's
screenshot makes the slot unbilled; manual time counts and is always flagged.
See docs/diary.md.`
	rf.flags(cmd)
	cmd.AddCommand(
		newDiaryShowCmd(a), newDiaryCoverCmd(a), newDiaryRevealCmd(a), newDiaryDeleteCmd(a), newDiaryRetakeCmd(a),
		newDiaryAddCmd(a), newDiaryExportCmd(a), newDiaryVerifyCmd(a), newDiaryVerifyRevealCmd(a),
		newDiaryPruneCmd(a), newDiaryCheckCmd(a),
	)
	return cmd
}

// localZone is the IANA name of the local zone, for grouping days.
func localZone() string {
	if tz := os.Getenv("TZ"); tz != "" {
		return strings.TrimPrefix(tz, ":")
	}
	if l := time.Local.String(); l != "Local" {
		return l
	}
	return ""
}

type rangeFlags struct {
	day, week, from, to string
}

func (r *rangeFlags) flags(cmd *cobra.Command) {
	cmd.Flags().StringVar(&r.day, "day", "", "one day: YYYY-MM-DD, today or yesterday")
	cmd.Flags().StringVar(&r.week, "week", "", "the week (Monday to Sunday) holding this day")
	cmd.Flags().StringVar(&r.from, "from", "", "first day (or time) of the range")
	cmd.Flags().StringVar(&r.to, "to", "", "last day of the range (inclusive), or an end time")
}

// resolve turns the flags into [from, to) in local time; today by default.
func (r *rangeFlags) resolve(now time.Time) (time.Time, time.Time, error) {
	set := 0
	for _, s := range []string{r.day, r.week, r.from + r.to} {
		if s != "" {
			set++
		}
	}
	if set > 1 {
		return time.Time{}, time.Time{}, errors.New("give one of --day, --week or --from/--to")
	}
	switch {
	case r.week != "":
		d, err := parseDay(r.week, now)
		if err != nil {
			return time.Time{}, time.Time{}, fmt.Errorf("--week: %w", err)
		}
		off := (int(d.Weekday()) + 6) % 7
		start := d.AddDate(0, 0, -off)
		return start, start.AddDate(0, 0, 7), nil
	case r.from != "" || r.to != "":
		if r.from == "" {
			return time.Time{}, time.Time{}, errors.New("--to needs --from")
		}
		from, fromDay, err := parseMoment(r.from, now)
		if err != nil {
			return time.Time{}, time.Time{}, fmt.Errorf("--from: %w", err)
		}
		to := from.AddDate(0, 0, 1)
		if r.to != "" {
			t, isDay, err := parseMoment(r.to, now)
			if err != nil {
				return time.Time{}, time.Time{}, fmt.Errorf("--to: %w", err)
			}
			to = t
			if isDay {
				to = t.AddDate(0, 0, 1) // a --to day is inclusive
			}
		} else if !fromDay {
			return time.Time{}, time.Time{}, errors.New("--from with a time needs --to")
		}
		if !to.After(from) {
			return time.Time{}, time.Time{}, fmt.Errorf("--to (%s) is before --from (%s)", r.to, r.from)
		}
		return from, to, nil
	default:
		s := r.day
		if s == "" {
			s = "today"
		}
		d, err := parseDay(s, now)
		if err != nil {
			return time.Time{}, time.Time{}, fmt.Errorf("--day: %w", err)
		}
		return d, d.AddDate(0, 0, 1), nil
	}
}

// parseDay parses YYYY-MM-DD, today or yesterday as local midnight.
func parseDay(s string, now time.Time) (time.Time, error) {
	y, m, d := now.Date()
	today := time.Date(y, m, d, 0, 0, 0, 0, time.Local)
	switch s {
	case "today":
		return today, nil
	case "yesterday":
		return today.AddDate(0, 0, -1), nil
	}
	t, err := time.ParseInLocation("2006-01-02", s, time.Local)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is not a date: use YYYY-MM-DD, today or yesterday", s)
	}
	return t, nil
}

// parseMoment parses a day or a time: RFC 3339, "YYYY-MM-DD HH:MM" or
// "HH:MM" (today). isDay says whether a whole day was given.
func parseMoment(s string, now time.Time) (t time.Time, isDay bool, err error) {
	if d, err := parseDay(s, now); err == nil {
		return d, true, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, false, nil
	}
	for _, layout := range []string{"2006-01-02 15:04", "2006-01-02T15:04", "2006-01-02 15:04:05"} {
		if t, err := time.ParseInLocation(layout, s, time.Local); err == nil {
			return t, false, nil
		}
	}
	if t, err := time.ParseInLocation("15:04", s, time.Local); err == nil {
		y, m, d := now.Date()
		return time.Date(y, m, d, t.Hour(), t.Minute(), 0, 0, time.Local), false, nil
	}
	return time.Time{}, false, fmt.Errorf("%q is not a date or time: use YYYY-MM-DD, \"YYYY-MM-DD HH:MM\", HH:MM or RFC 3339", s)
}

func printDiary(w io.Writer, v tracking.DiaryView) {
	// The names, memos, reasons and shot ids came from profiles and from
	// the guest: shown escaped, none can fake a line or a column.
	title := safetext.Term(v.Workspace)
	if v.Client != "" {
		title += " for " + safetext.Term(v.Client)
	}
	fmt.Fprintf(w, "%s, %s to %s\n", title, v.From.Local().Format("2006-01-02 15:04"), v.To.Local().Format("2006-01-02 15:04"))
	if len(v.Days) == 0 {
		fmt.Fprintln(w, "Nothing recorded in this range.")
		return
	}
	clock := "15:04"
	if v.SlotSeconds < 60 {
		clock = "15:04:05"
	}
	for _, d := range v.Days {
		fmt.Fprintf(w, "\n%s\n", d.Date)
		tw := newTable(w)
		for _, s := range d.Slots {
			mark := "billable"
			if !s.Billable {
				mark = "not billed: " + safetext.Term(s.Reason)
			}
			var shots []string
			for _, sh := range s.Shots {
				st := safetext.Term(sh.State)
				if sh.RetakeOf != "" {
					st += ", retake of " + safetext.Term(sh.RetakeOf)
				}
				shots = append(shots, safetext.Term(sh.ID)+" ("+st+")")
			}
			if len(shots) == 0 {
				shots = []string{"-"}
			}
			extra := ""
			if s.IdleSeconds > 0 {
				extra += fmt.Sprintf(" idle %ds", s.IdleSeconds)
			}
			if len(s.Gaps) > 0 {
				gaps := make([]string, len(s.Gaps))
				for i, g := range s.Gaps {
					gaps[i] = safetext.Term(g)
				}
				extra += " gap: " + strings.Join(gaps, "; ")
			}
			fmt.Fprintf(tw, "  %s-%s\t%3d%%\t%s\t%s\t%s%s\n", s.Start.Format(clock), s.End.Format(clock), s.ActivityPercent, mark, strings.Join(shots, ", "), safetext.Term(s.Memo), extra)
		}
		tw.Flush()
		fmt.Fprintf(w, "  day: billable %s of %s tracked, activity %d%%\n", diary.Hours(d.Totals.BillableSeconds), diary.Hours(d.Totals.TrackedSeconds), d.Totals.ActivityPercent)
	}
	if len(v.Manual) > 0 {
		fmt.Fprintln(w, "\nManual time (flagged as manual):")
		for _, m := range v.Manual {
			fmt.Fprintf(w, "  %s-%s  %s  %s\n", m.Start.Local().Format("2006-01-02 15:04"), m.End.Local().Format("15:04"), diary.Hours(int(m.End.Sub(m.Start).Seconds())), safetext.Term(m.Memo))
		}
	}
	t := v.Totals
	fmt.Fprintf(w, "\nTotal: billable %s (of which manual %s) of %s tracked; activity %d%%; %d slots, %d billable; %d shots, %d covered, %d deleted\n",
		diary.Hours(t.BillableSeconds), diary.Hours(t.ManualSeconds), diary.Hours(t.TrackedSeconds), t.ActivityPercent, t.Slots, t.BillableSlots, t.Shots, t.Covered, t.Deleted)
}

func newDiaryShowCmd(a *app) *cobra.Command {
	var out string
	var original, thumb bool
	cmd := command("show SHOT --out FILE", "Decrypt a shot into a file you name (the covered version if covered)", cobra.ExactArgs(1), func(cmd *cobra.Command, args []string) error {
		if out == "" {
			return errors.New("--out FILE is required: a screenshot is only ever written where you say")
		}
		kind := diary.ImageCurrent
		if original {
			kind = diary.ImageOriginal
		} else if thumb {
			kind = diary.ImageThumbnail
		}
		b, err := a.client().ShotImage(cmd.Context(), args[0], kind)
		if err != nil {
			return err
		}
		if err := os.WriteFile(out, b, 0o600); err != nil {
			return err
		}
		fmt.Fprintf(a.stdout, "Wrote %s of shot %s to %s (%s).\n", kind, args[0], out, humanBytes(uint64(len(b))))
		return nil
	})
	cmd.Flags().StringVar(&out, "out", "", "file to write the image to")
	cmd.Flags().BoolVar(&original, "original", false, "the original even when covered")
	cmd.Flags().BoolVar(&thumb, "thumbnail", false, "the thumbnail")
	return cmd
}

// parseRect parses "x,y,w,h".
func parseRect(s string) (tracking.Rect, error) {
	parts := strings.Split(s, ",")
	if len(parts) != 4 {
		return tracking.Rect{}, fmt.Errorf("--rect %q: want x,y,w,h", s)
	}
	var n [4]int
	for i, p := range parts {
		v, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil {
			return tracking.Rect{}, fmt.Errorf("--rect %q: %q is not a number", s, p)
		}
		n[i] = v
	}
	return tracking.Rect{X: n[0], Y: n[1], W: n[2], H: n[3]}, nil
}

func newDiaryCoverCmd(a *app) *cobra.Command {
	var rects []string
	cmd := command("cover SHOT [--rect x,y,w,h]...", "Cover regions of a shot (or all of it) so text is unreadable; the original stays sealed for a reveal", cobra.ExactArgs(1), func(cmd *cobra.Command, args []string) error {
		var req api.CoverRequest
		for _, s := range rects {
			r, err := parseRect(s)
			if err != nil {
				return err
			}
			req.Rects = append(req.Rects, r)
		}
		if err := a.client().Cover(cmd.Context(), args[0], req); err != nil {
			return err
		}
		what := "the whole shot"
		if len(req.Rects) > 0 {
			what = fmt.Sprintf("%d region(s)", len(req.Rects))
		}
		fmt.Fprintf(a.stdout, "Covered %s of shot %s. The cover is logged; exports show the covered version.\n", what, args[0])
		return nil
	})
	cmd.Flags().StringArrayVar(&rects, "rect", nil, "region to cover, x,y,w,h in pixels (repeatable; none covers everything)")
	return cmd
}

func newDiaryRevealCmd(a *app) *cobra.Command {
	var out string
	var recipients []string
	var pass exportPassphrase
	cmd := command("reveal SHOT --out FILE", "Write a reveal file proving what was under a cover (encrypted to the client)", cobra.ExactArgs(1), func(cmd *cobra.Command, args []string) error {
		if out == "" {
			return errors.New("--out FILE is required")
		}
		p, err := pass.read(a)
		if err != nil {
			return err
		}
		return writeAtomically(out, 0o600, func(w io.Writer) error {
			if p != "" {
				return a.client().RevealWithPassphrase(cmd.Context(), args[0], p, w)
			}
			return a.client().Reveal(cmd.Context(), args[0], recipients, w)
		}, func(int64) {
			fmt.Fprintf(a.stdout, "Wrote the reveal of shot %s to %s; the client checks it with `workspace diary verify-reveal EXPORT %s`.\n", args[0], out, out)
		})
	})
	cmd.Flags().StringVar(&out, "out", "", "reveal file to write")
	cmd.Flags().StringArrayVar(&recipients, "recipient", nil, "extra age recipient (repeatable)")
	pass.flags(cmd)
	return cmd
}

func newDiaryDeleteCmd(a *app) *cobra.Command {
	var yes bool
	cmd := command("delete SHOT --yes", "Crypto-shred a shot's original and thumbnail; its slot becomes unbilled", cobra.ExactArgs(1), func(cmd *cobra.Command, args []string) error {
		if !yes {
			return errors.New("delete shreds the screenshot for good and its slot is no longer billed: add --yes to do it")
		}
		if err := a.client().DeleteShot(cmd.Context(), args[0]); err != nil {
			return err
		}
		fmt.Fprintf(a.stdout, "Shot %s deleted; a tombstone stays in the log, and its slot is unbilled unless a retake of the shot stands in for it.\n", args[0])
		return nil
	})
	cmd.Flags().BoolVar(&yes, "yes", false, "really delete")
	return cmd
}

func newDiaryRetakeCmd(a *app) *cobra.Command {
	cmd := readCmd(a, command("retake SHOT [--json]", "Have the agent take a new shot now, as the retake of a bad one in the running slot", cobra.ExactArgs(1), nil),
		func(cmd *cobra.Command, args []string) (api.Retake, error) {
			return a.client().Retake(cmd.Context(), args[0])
		},
		func(_ []string, r api.Retake) error {
			if r.Pending {
				fmt.Fprintf(a.stdout, "The agent of %s took %s as the retake of %s; it is in the guest's spool and reaches the diary with its next delivery.\n", r.Workspace, strings.Join(r.Retakes, ", "), r.Shot)
				return nil
			}
			fmt.Fprintf(a.stdout, "Shot %s retaken as %s. To drop the bad one without losing the slot: workspace diary delete %s --yes\n", r.Shot, strings.Join(r.Retakes, ", "), r.Shot)
			return nil
		})
	cmd.Long = `Asks the agent in the shot's VM for a new screenshot of the same display
now, recorded as the retake of SHOT. Only a shot of the running slot can be
retaken, once, and only while tracking. Deleting the bad shot afterwards
does not cost its slot its pay: the retake stands in for it. Both the retake
and any delete are in the log, and the client sees them.`
	return cmd
}

func newDiaryAddCmd(a *app) *cobra.Command {
	var from, to, memo string
	cmd := command("add NAME --from TIME --to TIME --memo TEXT", "Add manual time (counted, and flagged as manual)", cobra.ExactArgs(1), func(cmd *cobra.Command, args []string) error {
		now := time.Now()
		f, fday, err := parseMoment(from, now)
		if err != nil {
			return fmt.Errorf("--from: %w", err)
		}
		t, tday, err := parseMoment(to, now)
		if err != nil {
			return fmt.Errorf("--to: %w", err)
		}
		if fday || tday {
			return errors.New("--from and --to need times, like \"14:00\" or \"2026-11-20 14:00\"")
		}
		e, err := a.client().AddManual(cmd.Context(), args[0], api.ManualRequest{From: f, To: t, Memo: memo})
		if err != nil {
			return err
		}
		fmt.Fprintf(a.stdout, "Added %s of manual time to %s (%s).\n", diary.Hours(int(t.Sub(f).Seconds())), args[0], e.ID)
		return nil
	})
	cmd.Flags().StringVar(&from, "from", "", "start time")
	cmd.Flags().StringVar(&to, "to", "", "end time")
	cmd.Flags().StringVar(&memo, "memo", "", "what was done")
	return cmd
}

func newDiaryExportCmd(a *app) *cobra.Command {
	var rf rangeFlags
	var out string
	var recipients []string
	var pass exportPassphrase
	cmd := &cobra.Command{
		Use:   "export NAME --from DATE --to DATE --out FILE",
		Short: "Write a signed export for the client, encrypted to their age recipient",
		Long: `export writes one file holding the range's entries, the screenshots (covered
versions for covered shots, never their originals; nothing for deleted ones),
thumbnails, inclusion proofs and the signed checkpoint. It is encrypted to the
client's recipient from the profile (client { recipient = "age1..." }), to any
--recipient, and to your own identity. The client runs
"workspace diary verify FILE --identity KEYFILE".

For a client without an age key, --passphrase encrypts it with a passphrase
instead (age scrypt; asked twice on the terminal, or read from
--passphrase-file or $WORKSPACE_EXPORT_PASSPHRASE, never from the command
line). Give the passphrase to the client another way than the file; they run
"workspace diary verify FILE --passphrase".`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return errors.New("--out FILE is required")
			}
			from, to, err := rf.resolve(time.Now())
			if err != nil {
				return err
			}
			if pass.wanted() && len(recipients) > 0 {
				return errors.New("a passphrase export is encrypted with the passphrase alone: give no --recipient with --passphrase")
			}
			p, err := pass.read(a)
			if err != nil {
				return err
			}
			return writeAtomically(out, 0o644, func(w io.Writer) error {
				return a.client().Export(cmd.Context(), args[0], api.ExportRequest{From: from, To: to, Recipients: recipients, Passphrase: p}, w)
			}, func(n int64) {
				fmt.Fprintf(a.stdout, "Exported %s from %s to %s into %s (%s).\n", args[0], from.Format("2006-01-02 15:04"), to.Format("2006-01-02 15:04"), out, humanBytes(uint64(n)))
				warnUnwitnessed(cmd.Context(), a, args[0])
			})
		},
	}
	rf.flags(cmd)
	cmd.Flags().StringVar(&out, "out", "", "export file to write")
	cmd.Flags().StringArrayVar(&recipients, "recipient", nil, "extra age recipient (repeatable)")
	pass.flags(cmd)
	return cmd
}

// loadIdentities reads an age identity file (age-keygen's format).
func loadIdentities(path string) ([]age.Identity, error) {
	if path == "" {
		return nil, errors.New("--identity KEYFILE is required: the age identity the export was encrypted to")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("identity: %w", err)
	}
	if bytes.HasPrefix(b, []byte("age-encryption.org/v1")) {
		return nil, fmt.Errorf("identity %s is itself encrypted: decrypt it first (age -d)", path)
	}
	ids, err := age.ParseIdentities(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("identity %s: %w", path, err)
	}
	return ids, nil
}

func newDiaryVerifyCmd(a *app) *cobra.Command {
	var signer, htmlOut, csvOut string
	var key exportKey
	var asJSON bool
	var wf witnessFlags
	cmd := &cobra.Command{
		Use:   "verify FILE (--identity KEYFILE | --passphrase)",
		Short: "Verify an export offline (what the client runs) and write reports",
		Long: `verify decrypts an export with your age identity and checks the signed
checkpoint, every entry's inclusion proof, that no entry is missing up to the
checkpoint, every entry's content against its logged hash, and every
screenshot against its commitment or cover entry. It names the first bad
entry when anything fails. It needs no daemon and no network.

An export made with "diary export --passphrase" opens with --passphrase
(asked on the terminal, or from --passphrase-file or
$WORKSPACE_EXPORT_PASSPHRASE); the checks are the same.

--signer pins the freelancer's signing key (they print it with "workspace init").

--witness KEY (repeatable) pins a witness's key: the export's checkpoint must
be cosigned by --quorum of them (all by default), every cosignature and proof
must verify, and every slot whose captures were first cosigned more than
--max-delay after they were taken is marked "witnessed late"; the totals split
billable time witnessed on time from the rest. --previous EARLIER and --state
FILE refuse an export whose log does not extend one seen before.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ids, err := key.identities(a)
			if err != nil {
				return err
			}
			f, err := os.Open(args[0])
			if err != nil {
				return err
			}
			defer f.Close()
			v, err := diary.Verify(f, ids, diary.VerifyOptions{Signer: signer, Witnesses: wf.keys, Quorum: wf.quorum, MaxDelay: wf.maxDelay, Context: cmd.Context()})
			if err == nil {
				err = wf.checkHistory(v, ids, signer)
			}
			if err != nil {
				return &exitError{code: 1, msg: fmt.Sprintf("FAILED: %s: %s", args[0], safetext.Term(err.Error()))}
			}
			if htmlOut != "" {
				if err := writeAtomically(htmlOut, 0o644, func(w io.Writer) error { return diary.WriteHTML(w, v) }, nil); err != nil {
					return err
				}
			}
			if csvOut != "" {
				if err := writeAtomically(csvOut, 0o644, func(w io.Writer) error { return diary.WriteCSV(w, v.View) }, nil); err != nil {
					return err
				}
			}
			if asJSON {
				return printJSON(a.stdout, v)
			}
			t := v.View.Totals
			// Everything below the first line but the counts comes from the
			// export: shown escaped, it cannot fake a line.
			fmt.Fprintf(a.stdout, "OK: %s verified (%d entries, signed log of %d).\n", safetext.Term(args[0]), v.Entries, v.Checkpoint)
			if !v.SignerPinned {
				fmt.Fprintf(a.stdout, "WARNING: the signer was not pinned: this export is signed by the key below, but nothing checked that it is your freelancer's key. Ask them for it (they print it with \"workspace init\") and verify with --signer KEY.\n")
			}
			tw := newTable(a.stdout)
			fmt.Fprintf(tw, "workspace:\t%s\n", safetext.Term(v.Workspace))
			if v.Client != "" {
				fmt.Fprintf(tw, "client:\t%s\n", safetext.Term(v.Client))
			}
			fmt.Fprintf(tw, "range:\t%s to %s\n", v.From.Local().Format("2006-01-02 15:04"), v.To.Local().Format("2006-01-02 15:04"))
			pinned := "pinned with --signer"
			if !v.SignerPinned {
				pinned = "NOT pinned"
			}
			fmt.Fprintf(tw, "signer:\t%s (%s)\n", safetext.Term(v.Signer), pinned)
			fmt.Fprintf(tw, "billable:\t%s (manual %s, flagged)\n", diary.Hours(t.BillableSeconds), diary.Hours(t.ManualSeconds))
			fmt.Fprintf(tw, "tracked:\t%s in %d slots, %d billable\n", diary.Hours(t.TrackedSeconds), t.Slots, t.BillableSlots)
			fmt.Fprintf(tw, "activity:\t%d%%\n", t.ActivityPercent)
			fmt.Fprintf(tw, "screenshots:\t%d (%d covered, %d deleted)\n", t.Shots, t.Covered, t.Deleted)
			printVerifiedWitness(tw, v, wf)
			if htmlOut != "" {
				fmt.Fprintf(tw, "HTML report:\t%s\n", htmlOut)
			}
			if csvOut != "" {
				fmt.Fprintf(tw, "CSV timesheet:\t%s\n", csvOut)
			}
			return tw.Flush()
		},
	}
	key.flags(cmd)
	cmd.Flags().StringVar(&signer, "signer", "", "expected signer key of the freelancer")
	cmd.Flags().StringVar(&htmlOut, "html", "", "write a self-contained HTML report here")
	cmd.Flags().StringVar(&csvOut, "csv", "", "write a CSV timesheet here")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	wf.flags(cmd)
	return cmd
}

func newDiaryVerifyRevealCmd(a *app) *cobra.Command {
	var signer, out string
	var key exportKey
	var asJSON bool
	cmd := command("verify-reveal EXPORT REVEAL (--identity KEYFILE | --passphrase)", "Check that a reveal shows what was captured under a cover", cobra.ExactArgs(2), func(cmd *cobra.Command, args []string) error {
		ids, err := key.identities(a)
		if err != nil {
			return err
		}
		ef, err := os.Open(args[0])
		if err != nil {
			return err
		}
		defer ef.Close()
		rf, err := os.Open(args[1])
		if err != nil {
			return err
		}
		defer rf.Close()
		r, err := diary.VerifyReveal(ef, rf, ids, diary.VerifyOptions{Signer: signer})
		if err != nil {
			return &exitError{code: 1, msg: fmt.Sprintf("FAILED: %s: %s", args[1], safetext.Term(err.Error()))}
		}
		if out != "" {
			if err := os.WriteFile(out, r.Original, 0o600); err != nil {
				return err
			}
		}
		if asJSON {
			return printJSON(a.stdout, r)
		}
		state := "uncovered"
		if r.Covered {
			state = "covered in the export"
		}
		fmt.Fprintf(a.stdout, "OK: the revealed image of shot %s (%s) is the one captured and logged at entry %d.\n", safetext.Term(r.Shot), state, r.Entry)
		if signer == "" {
			fmt.Fprintln(a.stdout, "WARNING: the signer was not pinned (--signer KEY): the export's own key was accepted.")
		}
		if out != "" {
			fmt.Fprintf(a.stdout, "Original written to %s.\n", out)
		}
		return nil
	})
	key.flags(cmd)
	cmd.Flags().StringVar(&signer, "signer", "", "expected signer key of the freelancer")
	cmd.Flags().StringVar(&out, "out", "", "write the revealed original here")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func newDiaryPruneCmd(a *app) *cobra.Command {
	var before string
	cmd := command("prune NAME --before DATE", "Crypto-shred every shot taken before DATE (retention; logged)", cobra.ExactArgs(1), func(cmd *cobra.Command, args []string) error {
		if before == "" {
			return errors.New("--before DATE is required")
		}
		d, _, err := parseMoment(before, time.Now())
		if err != nil {
			return fmt.Errorf("--before: %w", err)
		}
		res, err := a.client().Prune(cmd.Context(), args[0], api.PruneRequest{Before: d})
		if err != nil {
			return err
		}
		fmt.Fprintf(a.stdout, "Shredded %d shots of %s taken before %s; hours and activity stay in the diary.\n", res.Shredded, args[0], d.Format("2006-01-02 15:04"))
		return nil
	})
	cmd.Flags().StringVar(&before, "before", "", "shred shots taken before this day or time")
	return cmd
}

func newDiaryCheckCmd(a *app) *cobra.Command {
	var asJSON bool
	cmd := command("check NAME", "Check a workspace's stored diary: log, checkpoint and every sealed shot", cobra.ExactArgs(1), func(cmd *cobra.Command, args []string) error {
		res, err := a.client().CheckDiary(cmd.Context(), args[0])
		if err != nil {
			return err
		}
		if asJSON {
			if err := printJSON(a.stdout, res); err != nil {
				return err
			}
		} else if res.OK {
			fmt.Fprintf(a.stdout, "OK: the diary of %s is intact (%d entries, %d shots).\n", res.Workspace, res.Entries, res.Shots)
		}
		if !res.OK {
			return &exitError{code: 1, msg: fmt.Sprintf("DAMAGED: the diary of %s: %s", res.Workspace, res.Problem)}
		}
		return nil
	})
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
