package daemon

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/workspace-sandbox/workspace/api"
)

// TestSuspendResumeSwitch is the state logic of suspend, resume and switch
// against the fake driver: states, what a stale state does, what cannot be
// suspended, and that a switch leaves exactly one workspace running.
func TestSuspendResumeSwitch(t *testing.T) {
	hv := newFakeHV()
	c, _ := startDaemon(t, hv)
	ctx := context.Background()
	if _, err := importBytes(t, c, "test", qcow2Bytes(1<<30, false, 4096)); err != nil {
		t.Fatal(err)
	}
	p := testProfile(t, `image = "test"`)
	for _, n := range []string{"acme", "beta", "gamma"} {
		if _, err := c.Create(ctx, api.CreateRequest{Name: n, ProfilePath: "/p.hcl", Profile: p}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Suspend(ctx, "acme"); !errors.Is(err, api.ErrConflict) || !strings.Contains(err.Error(), "only a running workspace") {
		t.Fatalf("suspend of a stopped workspace: %v", err)
	}
	c.Start(ctx, "acme", api.StartRequest{})
	w, err := c.Suspend(ctx, "acme")
	if err != nil || w.State != api.StateSuspended || w.Saved == nil || w.Saved.Bytes == 0 {
		t.Fatalf("suspend: %+v %v", w, err)
	}
	if w, err = c.Suspend(ctx, "acme"); err != nil || w.State != api.StateSuspended {
		t.Fatalf("a second suspend: %+v %v", w, err)
	}
	if _, err := c.Stop(ctx, "acme", api.StopRequest{}); !errors.Is(err, api.ErrConflict) || !strings.Contains(err.Error(), "is suspended") {
		t.Fatalf("stop of a suspended workspace: %v", err)
	}
	ws, _ := c.Workspaces(ctx)
	if ws[0].Name != "acme" || ws[0].State != api.StateSuspended || ws[0].Saved == nil {
		t.Fatalf("list: %+v", ws[0])
	}
	if w, err = c.Start(ctx, "acme", api.StartRequest{Wait: true}); err != nil || w.State != api.StateRunning || w.Notice != "" || hv.resumes != 1 {
		t.Fatalf("resume: %+v %v (resumes %d)", w, err, hv.resumes)
	}

	// A stale state: a cold boot, and a notice that says so.
	c.Suspend(ctx, "acme")
	hv.staleResume = true
	if w, err = c.Start(ctx, "acme", api.StartRequest{}); err != nil || w.State != api.StateRunning || !strings.Contains(w.Notice, "boots cold") || w.Saved != nil {
		t.Fatalf("stale resume: %+v %v", w, err)
	}
	hv.staleResume = false

	// Switch: every other running one is suspended, the target runs.
	c.Start(ctx, "beta", api.StartRequest{})
	sw, err := c.Switch(ctx, "gamma", api.StartRequest{})
	if err != nil || sw.Workspace.State != api.StateRunning || strings.Join(sw.Suspended, ",") != "acme,beta" {
		t.Fatalf("switch: %+v %v", sw, err)
	}
	if sw, err = c.Switch(ctx, "beta", api.StartRequest{}); err != nil || strings.Join(sw.Suspended, ",") != "gamma" {
		t.Fatalf("switch back: %+v %v", sw, err)
	}
	ws, _ = c.Workspaces(ctx)
	running := 0
	for _, w := range ws {
		if w.State == api.StateRunning {
			running++
		}
	}
	if running != 1 || hv.resumes != 2 {
		t.Fatalf("after switching, %d running, %d resumes: %+v", running, hv.resumes, ws)
	}
	if _, err := c.Switch(ctx, "nope", api.StartRequest{}); !errors.Is(err, api.ErrNotFound) {
		t.Fatalf("switch to an unknown workspace: %v", err)
	}
	if err := c.Destroy(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
}

// TestSuspendOnStop: a daemon told to stop with SuspendOnStop suspends
// every running workspace before it exits; stopped ones stay stopped.
func TestSuspendOnStop(t *testing.T) {
	hv := newFakeHV()
	t.Run("serve", func(t *testing.T) {
		c, _ := startDaemonWith(t, hv, func(cfg *Config) { cfg.SuspendOnStop = true })
		ctx := context.Background()
		if _, err := importBytes(t, c, "test", qcow2Bytes(1<<30, false, 4096)); err != nil {
			t.Fatal(err)
		}
		p := testProfile(t, `image = "test"`)
		for _, n := range []string{"acme", "beta", "gamma"} {
			if _, err := c.Create(ctx, api.CreateRequest{Name: n, ProfilePath: "/p.hcl", Profile: p}); err != nil {
				t.Fatal(err)
			}
		}
		c.Start(ctx, "acme", api.StartRequest{})
		c.Start(ctx, "beta", api.StartRequest{})
	}) // the daemon stops here
	for name, want := range map[string]string{"acme": "suspended", "beta": "suspended", "gamma": "stopped"} {
		if got := string(hv.domains[name].State); got != want {
			t.Errorf("%s is %s after the daemon's stop, want %s", name, got, want)
		}
	}
}
