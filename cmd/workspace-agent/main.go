// Command workspace-agent is the tracker inside a workspace VM: `run` is the
// service, `status` tells the person inside the guest what it is doing,
// `shot` takes one screenshot exactly as a tracking shot is taken.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/workspace-sandbox/workspace/guestagent"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func defaultStateDir() string {
	if runtime.GOOS == "windows" {
		if pd := os.Getenv("ProgramData"); pd != "" {
			return pd + `\workspace-agent`
		}
	}
	return "/var/lib/workspace-agent"
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func usage(w io.Writer) {
	fmt.Fprintln(w, `usage: workspace-agent COMMAND [flags]

commands:
  run       run the agent (the service started in the guest's desktop session)
  status    show whether tracking is on, the last screenshot and the spool
  shot      take one screenshot as a tracking shot would: shot --out FILE
            [--thumb FILE] [--display :N] [--quality Q] [--blur]
  version   print the version`)
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	if args[0] == "shot" {
		return shot(args[1:], stdout, stderr)
	}
	fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	stateDir := fs.String("state-dir", defaultStateDir(), "spool, state and status folder")
	port := fs.String("port", "", "virtio-serial port device (default: found by name "+guestagent.PortName+")")
	asJSON := fs.Bool("json", false, "status: print JSON")
	logLevel := fs.String("log-level", "info", "run: log level")
	switch args[0] {
	case "version":
		fmt.Fprintf(stdout, "workspace-agent %s (%s/%s)\n", version, runtime.GOOS, runtime.GOARCH)
		return 0
	case "run", "status":
	case "-h", "--help", "help":
		usage(stdout)
		return 0
	default:
		fmt.Fprintf(stderr, "workspace-agent: unknown command %q\n", args[0])
		usage(stderr)
		return 2
	}
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	if args[0] == "status" {
		return status(*stateDir, *asJSON, stdout, stderr)
	}
	log := hclog.New(&hclog.LoggerOptions{Name: "workspace-agent", Level: hclog.LevelFromString(*logLevel), Output: stderr})
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	a, err := guestagent.New(guestagent.Config{StateDir: *stateDir, Port: *port, Version: version, Logger: log})
	if err != nil {
		fmt.Fprintf(stderr, "workspace-agent: %v\n", err)
		return 1
	}
	// Run returns only when ctx ends (a signal): its error is that.
	_ = a.Run(ctx)
	return 0
}

func status(stateDir string, asJSON bool, stdout, stderr io.Writer) int {
	ls, err := guestagent.ReadLocalStatus(stateDir)
	if err != nil {
		fmt.Fprintf(stderr, "workspace-agent: %v (is the agent running?)\n", err)
		return 1
	}
	if asJSON {
		b, err := json.MarshalIndent(ls, "", "  ")
		if err != nil {
			fmt.Fprintf(stderr, "workspace-agent: %v\n", err)
			return 1
		}
		fmt.Fprintln(stdout, string(b))
		return 0
	}
	if age := time.Since(ls.Written); age > 15*time.Second {
		fmt.Fprintf(stdout, "warning: this status is %s old: the agent may not be running\n", age.Round(time.Second))
	}
	tracking := "off"
	if ls.Tracking {
		tracking = "on (session " + ls.Session + ")"
	}
	fmt.Fprintf(stdout, "tracking:     %s\n", tracking)
	conn := "connected to the host"
	if !ls.Connected {
		conn = "not connected"
		if ls.PortError != "" {
			conn += ": " + ls.PortError
		}
	}
	fmt.Fprintf(stdout, "channel:      %s\n", conn)
	last := "none yet"
	if !ls.LastShot.IsZero() {
		last = ls.LastShot.Local().Format("2006-01-02 15:04:05")
	}
	fmt.Fprintf(stdout, "last shot:    %s\n", last)
	fmt.Fprintf(stdout, "spool:        %d items, %d bytes waiting for the host\n", ls.SpoolItems, ls.SpoolBytes)
	fmt.Fprintf(stdout, "display:      %s\n", ls.Display)
	for _, e := range []struct{ k, v string }{{"display error", ls.DisplayError}, {"input error", ls.InputErr}, {"policy error", ls.PolicyError}} {
		if e.v != "" {
			fmt.Fprintf(stdout, "%-13s %s\n", e.k+":", e.v)
		}
	}
	if ls.Gaps > 0 {
		fmt.Fprintf(stdout, "gaps:         %d (recorded in the diary with their reasons)\n", ls.Gaps)
	}
	return 0
}
