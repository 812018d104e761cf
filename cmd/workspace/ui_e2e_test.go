package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"

	"github.com/workspace-sandbox/workspace/api"
)

var updateScreenshots = flag.Bool("update-screenshots", false, "write the web UI screenshots to docs/img")

// TestWebUIInChromium drives the web UI in Debian's headless chromium as a
// user would: log in with the token link, open a day of synthetic captures,
// see the thumbnails, cover a shot by dragging a rectangle, and check with
// the CLI that the diary recorded the cover.
func TestWebUIInChromium(t *testing.T) {
	browser, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("chromium is not installed (make test installs it)")
	}
	e := newE2EEnv(t)
	mustCLI(t, e.socket, "init")
	e.importTestImage("testimg")
	name := "wstest-" + randHex(3)
	prof := filepath.Join(e.dir, "ui.hcl")
	os.WriteFile(prof, []byte("image = \"testimg\"\ncpus = 1\nmemory = \"512MiB\"\ndisk = \"2GiB\"\nclient {\n  name = \"ACME Corp\"\n}\n"), 0o644)
	mustCLI(t, e.socket, "create", name, "--profile", prof)

	// A morning of synthetic captures through the ingestion API.
	c := api.NewClient(e.socket)
	ctx := context.Background()
	y, m, d := time.Now().AddDate(0, 0, -1).Date()
	base := time.Date(y, m, d, 9, 0, 0, 0, time.Local)
	day := base.Format("2006-01-02")
	var shots []string
	for i := 0; i < 8; i++ {
		slot := base.Add(time.Duration(i) * 10 * time.Minute)
		id := fmt.Sprintf("ui-%d-%s", i, randHex(3))
		if _, err := c.AddCapture(ctx, name, api.CaptureMeta{ID: id, Taken: slot.Add(2 * time.Minute)}, synthJPEG(t, 640, 400, i), nil); err != nil {
			t.Fatal(err)
		}
		shots = append(shots, id)
		var recs []api.Record
		for k := 0; k < 10; k++ {
			recs = append(recs, api.Record{ID: fmt.Sprintf("%s-a%d", id, k), Type: api.RecordActivity, Minute: slot.Add(time.Duration(k) * time.Minute), Activity: &api.Activity{Keys: 20 + i, Active: 10 + 5*i}})
		}
		if _, err := c.AddRecords(ctx, name, recs); err != nil {
			t.Fatal(err)
		}
	}

	loginURL := strings.TrimSpace(mustCLI(t, e.socket, "ui", "--no-open").stdout)
	if !strings.Contains(loginURL, "/login?token=") || !strings.HasPrefix(loginURL, "http://127.0.0.1:") {
		t.Fatalf("ui: %q", loginURL)
	}
	baseURL := loginURL[:strings.Index(loginURL, "/login")]

	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(browser), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("disable-quic", true),
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1280, 800),
	}
	actx, acancel := chromedp.NewExecAllocator(ctx, opts...)
	defer acancel()
	bctx, bcancel := chromedp.NewContext(actx)
	defer bcancel()
	bctx, tcancel := context.WithTimeout(bctx, 2*time.Minute)
	defer tcancel()

	imgDir := t.TempDir()
	if *updateScreenshots {
		imgDir = filepath.Join(repoRoot(t), "docs", "img")
		os.MkdirAll(imgDir, 0o755)
	}
	step := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	loaded := func(sel string) chromedp.Action[bool] {
		return chromedp.Poll[bool](`(() => { const i = document.querySelector('`+sel+`'); return !!i && i.complete && i.naturalWidth > 0; })()`, chromedp.WithPollingTimeout(20*time.Second))
	}
	step("log in", chromedp.Do(bctx, chromedp.Navigate(loginURL), chromedp.WaitVisible(`table.list`)))
	title, err := chromedp.Run(bctx, chromedp.Title())
	step("title", err)
	step("day page", chromedp.Do(bctx, chromedp.Navigate(baseURL+"/w/"+name+"?day="+day), chromedp.WaitVisible(`.grid`)))
	_, err = chromedp.Run(bctx, chromedp.Poll[bool](`Array.from(document.querySelectorAll('.slot img')).filter(i => i.complete && i.naturalWidth > 0).length >= 8`, chromedp.WithPollingTimeout(30*time.Second)))
	step("thumbnails", err)
	thumbs, err := chromedp.Run(bctx, chromedp.Evaluate[int](`document.querySelectorAll('.slot img').length`))
	step("count thumbnails", err)
	dayPNG, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
	step("screenshot of the day", err)
	if !strings.Contains(title, "Workspaces") || thumbs != 8 {
		t.Fatalf("title %q, %d thumbnails", title, thumbs)
	}

	// On a phone-sized screen the day still fits its width.
	step("phone viewport", chromedp.Do(bctx, chromedp.EmulateViewport(390, 844), chromedp.Navigate(baseURL+"/w/"+name+"?day="+day), chromedp.WaitVisible(`.grid`)))
	overflow, err := chromedp.Run(bctx, chromedp.Evaluate[bool](`document.documentElement.scrollWidth > window.innerWidth + 1`))
	step("phone layout", err)
	if overflow {
		t.Error("the day page overflows a 390 px wide screen")
	}
	phonePNG, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
	step("phone screenshot", err)
	step("desktop viewport", chromedp.Do(bctx, chromedp.EmulateViewport(1280, 800), chromedp.Navigate(baseURL+"/w/"+name+"?day="+day), chromedp.WaitVisible(`.grid`)))
	// A thumbnail's link has no size until its image has loaded.
	_, err = chromedp.Run(bctx, chromedp.Poll[bool](`Array.from(document.querySelectorAll('.slot img')).filter(i => i.complete && i.naturalWidth > 0).length >= 8`, chromedp.WithPollingTimeout(30*time.Second)))
	step("thumbnails again", err)

	// Open the third shot and drag a rectangle over its top-left part.
	target := shots[2]
	step("open shot", chromedp.Do(bctx, chromedp.Click(fmt.Sprintf(`a[href^="/shot/%s"]`, target), chromedp.NodeVisible), chromedp.WaitVisible(`#shotbox`)))
	_, err = chromedp.Run(bctx, loaded("#shot"))
	step("shot image", err)
	box, err := chromedp.Run(bctx, chromedp.Evaluate[map[string]float64](`(() => { const r = document.getElementById('shot').getBoundingClientRect(); return {x: r.left, y: r.top, w: r.width, h: r.height}; })()`))
	step("shot box", err)
	x0, y0 := box["x"]+box["w"]*0.1, box["y"]+box["h"]*0.1
	x1, y1 := box["x"]+box["w"]*0.6, box["y"]+box["h"]*0.5
	step("drag", chromedp.Do(bctx,
		chromedp.MouseEvent(input.DispatchMouseEventTypeMousePressed, x0, y0, chromedp.ButtonLeft),
		chromedp.MouseEvent(input.DispatchMouseEventTypeMouseMoved, (x0+x1)/2, (y0+y1)/2, chromedp.ButtonLeft),
		chromedp.MouseEvent(input.DispatchMouseEventTypeMouseMoved, x1, y1, chromedp.ButtonLeft),
		chromedp.MouseEvent(input.DispatchMouseEventTypeMouseReleased, x1, y1, chromedp.ButtonLeft),
	))
	rect, err := chromedp.Run(bctx, chromedp.Value(`#rect`))
	step("rect", err)
	var rx, ry, rw, rh int
	if _, err := fmt.Sscanf(rect, "%d,%d,%d,%d", &rx, &ry, &rw, &rh); err != nil || rw < 200 || rh < 100 || rx < 30 || ry < 20 {
		t.Fatalf("dragged rectangle %q (in a 640x400 shot)", rect)
	}
	step("click cover", chromedp.Do(bctx, chromedp.Click(`#cover`, chromedp.NodeVisible)))
	// The form posts and redirects: polling may meet the navigation; retry.
	var perr error
	for i := 0; i < 20; i++ {
		if _, perr = chromedp.Run(bctx, chromedp.Poll[bool](`!!document.querySelector('#state.covered')`, chromedp.WithPollingTimeout(5*time.Second))); perr == nil {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	if err := perr; err != nil {
		text, _ := chromedp.Run(bctx, chromedp.Evaluate[string](`location.href + "\n" + document.body.innerText`))
		t.Fatalf("cover: %v\n%s", err, text)
	}
	_, err = chromedp.Run(bctx, loaded("#shot"))
	step("covered image", err)
	shotPNG, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
	step("screenshot of the shot", err)

	// The CLI sees the cover in the diary.
	var v api.DiaryView
	if err := json.Unmarshal([]byte(mustCLI(t, e.socket, "diary", name, "--day", day, "--json").stdout), &v); err != nil {
		t.Fatal(err)
	}
	if v.Totals.Covered != 1 {
		t.Fatalf("diary after the browser's cover: %+v", v.Totals)
	}
	for _, sh := range shotsOf(v) {
		if (sh.ID == target) != (sh.State == api.ShotCovered) {
			t.Errorf("shot %s is %s", sh.ID, sh.State)
		}
	}
	os.WriteFile(filepath.Join(imgDir, "ui-day.png"), dayPNG, 0o644)
	os.WriteFile(filepath.Join(imgDir, "ui-shot.png"), shotPNG, 0o644)
	os.WriteFile(filepath.Join(imgDir, "ui-day-phone.png"), phonePNG, 0o644)
}
