package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"filippo.io/torchwood"
	"github.com/hashicorp/go-hclog"
	"github.com/spf13/cobra"

	"github.com/workspace-sandbox/workspace/api"
	"github.com/workspace-sandbox/workspace/witness"
)

func newWitnessCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "witness",
		Short: "Run a witness that fixes a freelancer's diary in time (the client's side)",
		Long: `A witness cosigns the checkpoints of a freelancer's diary (C2SP tlog-witness):
it keeps, per log, the latest size and root it cosigned, and cosigns a new
checkpoint only when the log's signature verifies and a consistency proof
shows that it extends what it cosigned before. It sees checkpoints only: a
log name, a size and a root hash, never an entry.

A client (or a team) runs one: "workspace witness init" makes its key,
"workspace witness add-log" registers a freelancer's log (the freelancer
prints it with "workspace witness log NAME"), and "workspace witness serve"
answers. The witness's key goes in the workspace's profile
(witness "NAME" { url = "...", key = "..." }) and in the client's
"workspace diary verify --witness KEY".`,
	}
	cmd.AddCommand(newWitnessInitCmd(a), newWitnessServeCmd(a), newWitnessAddLogCmd(a), newWitnessLogsCmd(a), newWitnessLogCmd(a))
	return cmd
}

func newWitnessInitCmd(a *app) *cobra.Command {
	var keyFile, name string
	cmd := &cobra.Command{
		Use:   "init --key FILE [--name NAME]",
		Short: "Make a witness key and print its verifier key",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if keyFile == "" {
				return errors.New("--key FILE is required: where to write the witness's private key")
			}
			if name == "" {
				host, err := os.Hostname()
				if err != nil || !witness.ValidName(host) {
					host = "localhost"
				}
				name = "workspace-witness/" + host
			}
			skey, vkey, err := witness.GenerateKey(name)
			if err != nil {
				return err
			}
			f, err := os.OpenFile(keyFile, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
			if errors.Is(err, os.ErrExist) {
				return fmt.Errorf("%s exists: a witness key is never overwritten (its cosignatures would no longer verify)", keyFile)
			}
			if err != nil {
				return err
			}
			if _, err := f.WriteString(skey + "\n"); err != nil {
				f.Close()
				os.Remove(keyFile)
				return err
			}
			if err := f.Close(); err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "%s\n", vkey)
			fmt.Fprintf(a.stderr, "Wrote the witness key %q to %s (keep it secret).\nIts verifier key (above) goes in the profile's witness block and in `workspace diary verify --witness`.\n", name, keyFile)
			return nil
		},
	}
	cmd.Flags().StringVar(&keyFile, "key", "", "file to write the private key to (mode 0600; never overwritten)")
	cmd.Flags().StringVar(&name, "name", "", "the witness's name in its cosignatures (default workspace-witness/HOSTNAME)")
	return cmd
}

// loadWitnessKey reads a witness's private key file, refusing one that
// other users can read.
func loadWitnessKey(path string) (*torchwood.CosignatureSigner, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("witness key: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("witness key %s is readable by others (mode %04o): chmod 600 it", path, fi.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("witness key: %w", err)
	}
	return witness.NewSigner(strings.TrimSpace(string(b)))
}

func newWitnessServeCmd(a *app) *cobra.Command {
	var addr, keyFile, db, logLevel string
	cmd := &cobra.Command{
		Use:   "serve --addr ADDR --key FILE --db FILE",
		Short: "Serve the witness (POST /add-checkpoint) until interrupted",
		Long: `serve answers the C2SP tlog-witness protocol on ADDR (host:port) over plain
HTTP: put it behind a TLS proxy to serve it beyond a trusted network. It
cosigns only logs registered with "workspace witness add-log", says why it
refuses, and keeps refused requests as evidence.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if addr == "" || keyFile == "" || db == "" {
				return errors.New("--addr, --key and --db are required")
			}
			signer, err := loadWitnessKey(keyFile)
			if err != nil {
				return err
			}
			log := hclog.New(&hclog.LoggerOptions{Name: "witness", Level: hclog.LevelFromString(logLevel), Output: a.stderr})
			srv, err := witness.OpenServer(cmd.Context(), db, signer, log)
			if err != nil {
				return err
			}
			defer srv.Close()
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				return fmt.Errorf("listen on %s: %w", addr, err)
			}
			hs := &http.Server{
				Handler:           http.MaxBytesHandler(srv, witness.MaxRequest),
				ReadHeaderTimeout: 10 * time.Second,
				ReadTimeout:       30 * time.Second,
				WriteTimeout:      30 * time.Second,
				ErrorLog:          log.StandardLogger(&hclog.StandardLoggerOptions{InferLevels: true}),
			}
			log.Info("witness serving", "addr", ln.Addr().String(), "vkey", srv.VerifierKey())
			errc := make(chan error, 1)
			go func() { errc <- hs.Serve(ln) }()
			select {
			case <-cmd.Context().Done():
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				log.Info("shutting down")
				return hs.Shutdown(ctx)
			case err := <-errc:
				return err
			}
		},
	}
	cmd.Flags().StringVar(&addr, "addr", "", "address to listen on (host:port)")
	cmd.Flags().StringVar(&keyFile, "key", "", "the witness's private key file (from witness init)")
	cmd.Flags().StringVar(&db, "db", "", "the witness's SQLite database (created when missing)")
	cmd.Flags().StringVar(&logLevel, "log-level", "info", "log level: trace, debug, info, warn, error")
	return cmd
}

func newWitnessAddLogCmd(a *app) *cobra.Command {
	var db, origin, key string
	cmd := &cobra.Command{
		Use:   "add-log --db FILE --origin ORIGIN --key LOGKEY",
		Short: "Register a freelancer's diary log with the witness",
		Long: `add-log makes a log known to the witness: its origin and its verifier key, as
"workspace witness log NAME" prints them on the freelancer's side. The log
starts at size 0: its first checkpoint is taken as it is, every later one
must extend it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if db == "" || origin == "" || key == "" {
				return errors.New("--db, --origin and --key are required")
			}
			srv, err := witness.OpenServer(cmd.Context(), db, nil, nil)
			if err != nil {
				return err
			}
			defer srv.Close()
			if err := srv.AddLog(cmd.Context(), origin, key); err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "Registered log %s.\n", origin)
			return nil
		},
	}
	cmd.Flags().StringVar(&db, "db", "", "the witness's SQLite database")
	cmd.Flags().StringVar(&origin, "origin", "", "the log's origin (first line of its checkpoints)")
	cmd.Flags().StringVar(&key, "key", "", "the log's verifier key")
	return cmd
}

func newWitnessLogsCmd(a *app) *cobra.Command {
	var db string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "logs --db FILE",
		Short: "List the logs a witness knows, with the size it cosigned",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if db == "" {
				return errors.New("--db FILE is required")
			}
			if _, err := os.Stat(db); err != nil {
				return fmt.Errorf("witness database: %w", err)
			}
			srv, err := witness.OpenServer(cmd.Context(), db, nil, nil)
			if err != nil {
				return err
			}
			defer srv.Close()
			logs, err := srv.Logs(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				if logs == nil {
					logs = []witness.LogState{}
				}
				return printJSON(a.stdout, logs)
			}
			tw := newTable(a.stdout)
			fmt.Fprintln(tw, "ORIGIN\tSIZE\tCOSIGNED\tREFUSED")
			for _, l := range logs {
				at := "-"
				if !l.Updated.IsZero() {
					at = l.Updated.Local().Format("2006-01-02 15:04:05")
				}
				fmt.Fprintf(tw, "%s\t%d\t%s\t%d\n", l.Origin, l.Size, at, l.Refused)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&db, "db", "", "the witness's SQLite database")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func newWitnessLogCmd(a *app) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "log NAME",
		Short: "Print a workspace's log origin and key (what its witnesses register) and its witnessing",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := a.client().WitnessState(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(a.stdout, st)
			}
			tw := newTable(a.stdout)
			fmt.Fprintf(tw, "origin:\t%s\n", st.Origin)
			fmt.Fprintf(tw, "log key:\t%s\n", st.LogKey)
			fmt.Fprintf(tw, "log size:\t%d\n", st.Size)
			for _, w := range st.Witnesses {
				fmt.Fprintf(tw, "witness %s:\t%s\n", w.Name, witnessLine(w, time.Now()))
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "\nA witness registers this log with:\n  workspace witness add-log --db WITNESS.db --origin %s --key %s\n", st.Origin, st.LogKey)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// witnessLine is one witness's state on one line: the size it cosigned
// and when, what waits for it and why.
func witnessLine(w api.WitnessStatus, now time.Time) string {
	var b strings.Builder
	if w.CosignedAt.IsZero() {
		b.WriteString("nothing cosigned yet")
	} else {
		fmt.Fprintf(&b, "cosigned size %d %s", w.CosignedSize, humanAge(w.CosignedAt, now))
	}
	if w.Pending > 0 {
		fmt.Fprintf(&b, "; %d entries queued since %s", w.Pending, w.QueuedSince.Local().Format("2006-01-02 15:04:05"))
	}
	if w.LastError != "" {
		fmt.Fprintf(&b, "; last attempt failed: %s", w.LastError)
		if !w.NextAttempt.IsZero() {
			fmt.Fprintf(&b, " (next try %s)", w.NextAttempt.Local().Format("15:04:05"))
		}
	}
	return b.String()
}

// printWitnessState adds a workspace's witnessing to a status table.
func printWitnessState(tw io.Writer, st *api.WitnessState) {
	if st == nil {
		return
	}
	fmt.Fprintf(tw, "log:\t%s (size %d)\n", st.Origin, st.Size)
	for _, w := range st.Witnesses {
		fmt.Fprintf(tw, "witness %s:\t%s\n", w.Name, witnessLine(w, time.Now()))
	}
}
