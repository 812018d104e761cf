package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"filippo.io/age"
	"github.com/spf13/cobra"

	"github.com/workspace-sandbox/workspace/diary"
)

// witnessFlags are verify's flags about witnesses and earlier exports.
type witnessFlags struct {
	keys     []string
	quorum   int
	maxDelay time.Duration
	previous string
	state    string
}

func (wf *witnessFlags) flags(cmd *cobra.Command) {
	cmd.Flags().StringArrayVar(&wf.keys, "witness", nil, "a witness's verifier key the export must be cosigned by (repeatable)")
	cmd.Flags().IntVar(&wf.quorum, "quorum", 0, "how many of the --witness keys must have cosigned (default: all)")
	cmd.Flags().DurationVar(&wf.maxDelay, "max-delay", diary.DefaultMaxDelay, "longest delay between a capture and its first cosignature for its slot to be witnessed on time")
	cmd.Flags().StringVar(&wf.previous, "previous", "", "an earlier export of the same workspace: refuse this one unless its log extends that one's")
	cmd.Flags().StringVar(&wf.state, "state", "", "a state file of the logs verified before (updated when this export passes): refuse a log that does not extend what it holds")
}

// checkHistory checks v against the earlier export and the state file, and
// updates the state file when everything passed.
func (wf *witnessFlags) checkHistory(v *diary.Verified, ids []age.Identity, signer string) error {
	if wf.previous != "" {
		f, err := os.Open(wf.previous)
		if err != nil {
			return fmt.Errorf("--previous: %w", err)
		}
		earlier, err := diary.Verify(f, ids, diary.VerifyOptions{Signer: signer})
		f.Close()
		if err != nil {
			return fmt.Errorf("the earlier export %s does not verify: %w", wf.previous, err)
		}
		if err := diary.CheckPrevious(v, earlier); err != nil {
			return fmt.Errorf("against %s: %w", wf.previous, err)
		}
	}
	if wf.state != "" {
		st, err := diary.LoadState(wf.state)
		if err != nil {
			return err
		}
		if err := st.Check(v); err != nil {
			return fmt.Errorf("against the state file %s: %w", wf.state, err)
		}
		st.Update(v, time.Now())
		if err := st.Save(wf.state); err != nil {
			return err
		}
	}
	return nil
}

// printVerifiedWitness adds what verify found about witnesses to its
// table, and lists the slots witnessed late.
func printVerifiedWitness(tw io.Writer, v *diary.Verified, wf witnessFlags) {
	if v.Origin != "" {
		fmt.Fprintf(tw, "log:\t%s\n", v.Origin)
	}
	r := v.Witness
	if r == nil {
		fmt.Fprintf(tw, "witnesses:\tnone (an export from before witnessing, format %s)\n", v.Format)
		return
	}
	if len(r.Pinned) == 0 {
		fmt.Fprintf(tw, "witnesses:\tnot checked: %d cosigned checkpoints by %v; pin witness keys with --witness\n", r.Cosigned, r.Cosigners)
	} else {
		for _, p := range r.Pinned {
			if p.ExportCosigned.IsZero() {
				fmt.Fprintf(tw, "witness %s:\tdid not cosign this export's checkpoint (%d cosignatures)\n", p.Name, p.Cosignatures)
			} else {
				fmt.Fprintf(tw, "witness %s:\tcosigned this export's checkpoint %s (%d cosignatures checked)\n", p.Name, p.ExportCosigned.Local().Format("2006-01-02 15:04:05"), p.Cosignatures)
			}
		}
		if wt := v.View.Totals.Witness; wt != nil {
			fmt.Fprintf(tw, "witnessed on time:\t%s billable (within %s of capture)\n", diary.Hours(wt.OnTimeSeconds), wf.maxDelay)
			fmt.Fprintf(tw, "not on time:\t%s billable (%d slots witnessed late, and manual time)\n", diary.Hours(wt.OtherSeconds), wt.LateSlots)
		}
	}
	if r.Earlier > 0 {
		fmt.Fprintf(tw, "earlier exports:\t%d, each proven a prefix of this log\n", r.Earlier)
	}
	for _, d := range v.View.Days {
		for _, s := range d.Slots {
			if s.Witness != nil && s.Witness.Late {
				fmt.Fprintf(tw, "witnessed late:\t%s %s–%s, first cosigned %s after capture\n", d.Date, s.Start.Format("15:04"), s.End.Format("15:04"), diary.Delay(s.Witness.DelaySeconds))
			}
		}
	}
}

// warnUnwitnessed says, after an export, which witness did not answer the
// submission made for it: the client's verify pinning that witness fails.
func warnUnwitnessed(ctx context.Context, a *app, name string) {
	st, err := a.client().WitnessState(ctx, name)
	if err != nil {
		return
	}
	for _, w := range st.Witnesses {
		if w.LastError != "" {
			fmt.Fprintf(a.stderr, "Warning: witness %s did not cosign this export's checkpoint (%s): a verify that pins it fails; export again once it answers.\n", w.Name, w.LastError)
		}
	}
}
