package main

import (
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/workspace-sandbox/workspace/api"
	"github.com/workspace-sandbox/workspace/internal/safetext"
)

func newTrackCmd(a *app) *cobra.Command {
	cmd := group("track", "Start, stop and show time tracking in a workspace")
	cmd.Long = `track controls the guest agent's tracking: screenshots at random moments of
each slot and activity counts, as the profile's tracking block says. The
workspace must be running to start; tracking resumes after a guest reboot
or a daemon restart until you stop it.`
	var memo string
	start := command("start NAME [--memo TEXT]", "Start tracking (a new session with its memo)", cobra.ExactArgs(1), func(cmd *cobra.Command, args []string) error {
		st, err := a.client().Track(cmd.Context(), args[0], api.TrackRequest{On: true, Memo: memo})
		if err != nil {
			return err
		}
		fmt.Fprintf(a.stdout, "Tracking %s (session %s).\n", args[0], st.Session)
		if !st.Agent.Connected {
			fmt.Fprintln(a.stdout, "The guest agent is not connected yet: it starts tracking as soon as it connects.")
		}
		return nil
	})
	start.Flags().StringVar(&memo, "memo", "", "what this session is about")
	stop := command("stop NAME", "Stop tracking", cobra.ExactArgs(1), func(cmd *cobra.Command, args []string) error {
		if _, err := a.client().Track(cmd.Context(), args[0], api.TrackRequest{On: false}); err != nil {
			return err
		}
		fmt.Fprintf(a.stdout, "Stopped tracking %s.\n", args[0])
		return nil
	})
	status := readCmd(a, command("status NAME", "Show tracking and the guest agent's state", cobra.ExactArgs(1), nil),
		func(cmd *cobra.Command, args []string) (api.TrackStatus, error) {
			return a.client().TrackStatus(cmd.Context(), args[0])
		}, func(_ []string, st api.TrackStatus) error { return printTrackStatus(a.stdout, st) })
	cmd.AddCommand(start, stop, status)
	return cmd
}

func printTrackStatus(w io.Writer, st api.TrackStatus) error {
	tw := newTable(w)
	if st.Tracking {
		fmt.Fprintf(tw, "tracking:\ton since %s (session %s)\n", st.Since.Local().Format("2006-01-02 15:04:05"), st.Session)
		if st.Memo != "" {
			fmt.Fprintf(tw, "memo:\t%s\n", safetext.Term(st.Memo))
		}
	} else {
		fmt.Fprintf(tw, "tracking:\toff\n")
	}
	fmt.Fprintf(tw, "agent:\t%s\n", agentLine(st.Agent))
	if g := st.Guest; g != nil {
		last := "none yet"
		if !g.LastShot.IsZero() {
			last = g.LastShot.Local().Format("2006-01-02 15:04:05")
		}
		fmt.Fprintf(tw, "last shot:\t%s\n", last)
		fmt.Fprintf(tw, "guest spool:\t%d items, %s\n", g.SpoolItems, humanBytes(uint64(g.SpoolBytes)))
		if g.DisplayError != "" {
			fmt.Fprintf(tw, "display error:\t%s\n", safetext.Term(g.DisplayError))
		}
		if g.PolicyError != "" {
			fmt.Fprintf(tw, "policy error:\t%s\n", safetext.Term(g.PolicyError))
		}
		if g.Gaps > 0 {
			fmt.Fprintf(tw, "gaps:\t%d\n", g.Gaps)
		}
	}
	printWitnessState(tw, st.Witness)
	return tw.Flush()
}

func agentLine(ai api.AgentInfo) string {
	line := agentState(ai)
	if ai.Refused > 0 {
		line += fmt.Sprintf("; %d captures or records refused, the last: %s", ai.Refused, safetext.Term(ai.LastRefusal))
	}
	return line
}

func agentState(ai api.AgentInfo) string {
	switch {
	case ai.Connected:
		return fmt.Sprintf("connected (%s), last seen %s", safetext.Term(ai.Version), humanAge(ai.LastSeen, time.Now()))
	case ai.Error != "":
		return "not connected: " + safetext.Term(ai.Error)
	case !ai.LastSeen.IsZero():
		return fmt.Sprintf("not connected, last seen %s", humanAge(ai.LastSeen, time.Now()))
	}
	return "not connected"
}
