package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"image"
	_ "image/jpeg"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"

	"github.com/workspace-sandbox/workspace/tracking"
)

var updateScreenshots = flag.Bool("update-screenshots", false, "write the web UI screenshots to docs/img")

// TestWebUIInChromium drives the web UI in Debian's headless chromium as a
// user would: log in with the token link, open a day of synthetic captures,
// see the thumbnails, mark two regions of a shot by dragging (after
// clearing a first try), cover both with one click, see the shown picture
// change inside them and only there, and check with the CLI that the
// diary's covered version covers both regions.
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
	ctx := context.Background()
	y, m, d := time.Now().AddDate(0, 0, -1).Date()
	base := time.Date(y, m, d, 9, 0, 0, 0, time.Local)
	day := base.Format("2006-01-02")
	var shots []string
	for i := 0; i < 8; i++ {
		slot := base.Add(time.Duration(i) * 10 * time.Minute)
		id := fmt.Sprintf("ui-%d-%s", i, randHex(3))
		if _, err := addCapture(ctx, e.socket, name, tracking.Capture{ID: id, Taken: slot.Add(2 * time.Minute)}, synthJPEG(t, 640, 400, i), nil); err != nil {
			t.Fatal(err)
		}
		shots = append(shots, id)
		var recs []tracking.Record
		for k := 0; k < 10; k++ {
			recs = append(recs, tracking.Record{ID: fmt.Sprintf("%s-a%d", id, k), Type: tracking.RecordActivity, Minute: slot.Add(time.Duration(k) * time.Minute), Activity: &tracking.Activity{Keys: 20 + i, Active: 10 + 5*i}})
		}
		if _, err := addRecords(ctx, e.socket, name, recs); err != nil {
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
	// The activity bars show each slot's activity (it grows slot by slot).
	bars, err := chromedp.Run(bctx, chromedp.Evaluate[[]float64](`Array.from(document.querySelectorAll('.slot .bar')).map(b => b.querySelector('rect').getBoundingClientRect().width / b.getBoundingClientRect().width)`))
	step("activity bars", err)
	if len(bars) != 8 || bars[0] <= 0 || bars[0] > 0.5*bars[7] || bars[7] > 0.95 {
		t.Errorf("activity bars are %v of their slots' width, want growing from about 0.16 to 0.75", bars)
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

	// Open the third shot, mark two regions by dragging (a first try is
	// cleared), and cover both with one click.
	target := shots[2]
	step("open shot", chromedp.Do(bctx, chromedp.Click(fmt.Sprintf(`a[href^="/shot/%s"]`, target), chromedp.NodeVisible), chromedp.WaitVisible(`#shotbox`)))
	_, err = chromedp.Run(bctx, loaded("#shot"))
	step("shot image", err)
	box, err := chromedp.Run(bctx, chromedp.Evaluate[map[string]float64](`(() => { const r = document.getElementById('shot').getBoundingClientRect(); return {x: r.left, y: r.top, w: r.width, h: r.height}; })()`))
	step("shot box", err)
	// drag drags from one point to another, given as fractions of the picture.
	drag := func(fx0, fy0, fx1, fy1 float64) {
		t.Helper()
		x0, y0 := box["x"]+box["w"]*fx0, box["y"]+box["h"]*fy0
		x1, y1 := box["x"]+box["w"]*fx1, box["y"]+box["h"]*fy1
		step("drag", chromedp.Do(bctx,
			chromedp.MouseEvent(input.DispatchMouseEventTypeMousePressed, x0, y0, chromedp.ButtonLeft),
			chromedp.MouseEvent(input.DispatchMouseEventTypeMouseMoved, (x0+x1)/2, (y0+y1)/2, chromedp.ButtonLeft),
			chromedp.MouseEvent(input.DispatchMouseEventTypeMouseMoved, x1, y1, chromedp.ButtonLeft),
			chromedp.MouseEvent(input.DispatchMouseEventTypeMouseReleased, x1, y1, chromedp.ButtonLeft),
		))
	}
	marks := func() []map[string]float64 {
		t.Helper()
		m, err := chromedp.Run(bctx, chromedp.Evaluate[[]map[string]float64](`Array.from(document.querySelectorAll('#marks .mark')).map(e => { const r = e.getBoundingClientRect(); return {x: r.left, y: r.top, w: r.width, h: r.height}; })`))
		step("marks", err)
		return m
	}
	drag(0.3, 0.3, 0.5, 0.5)
	if drawn := marks(); len(drawn) != 1 {
		t.Fatalf("after one drag, %d regions are drawn", len(drawn))
	}
	step("clear", chromedp.Do(bctx, chromedp.Click(`#clear`, chromedp.NodeVisible)))
	_, err = chromedp.Run(bctx, chromedp.Poll[bool](`document.getElementById('rect').value === '' && document.querySelectorAll('#marks .mark').length === 0`, chromedp.WithPollingTimeout(5*time.Second)))
	step("Clear empties the list and the picture", err)

	drag(0.1, 0.1, 0.45, 0.45)
	drag(0.9, 0.9, 0.55, 0.55) // dragged up and to the left
	rectText, err := chromedp.Run(bctx, chromedp.Value(`#rect`))
	step("rect", err)
	var a, b tracking.Rect
	if _, err := fmt.Sscanf(rectText, "%d,%d,%d,%d; %d,%d,%d,%d", &a.X, &a.Y, &a.W, &a.H, &b.X, &b.Y, &b.W, &b.H); err != nil {
		t.Fatalf("two dragged regions: the field holds %q (%v)", rectText, err)
	}
	// In the 640x400 shot: about (64,40 224x140) and (352,220 224x140).
	near := func(got, want int) bool { return got >= want-12 && got <= want+12 }
	if !near(a.X, 64) || !near(a.Y, 40) || !near(a.W, 224) || !near(a.H, 140) || !near(b.X, 352) || !near(b.Y, 220) || !near(b.W, 224) || !near(b.H, 140) {
		t.Fatalf("dragged regions %+v and %+v in a 640x400 shot", a, b)
	}
	drawn := marks()
	if len(drawn) != 2 || drawn[0]["w"] < box["w"]*0.3 || drawn[1]["w"] < box["w"]*0.3 || drawn[1]["x"] < box["x"]+box["w"]*0.5 {
		t.Fatalf("the two regions are not both drawn on the picture: %v (picture %v)", drawn, box)
	}
	count, err := chromedp.Run(bctx, chromedp.Text(`#rect-count`))
	step("region count", err)
	if !strings.Contains(count, "2 regions") {
		t.Errorf("the page says %q about the marked regions", count)
	}
	markedPNG, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
	step("screenshot of the marked regions", err)
	// outside is a region that neither rectangle touches.
	outside := tracking.Rect{X: 400, Y: 30, W: 200, H: 120}
	before := map[string][]int{}
	for what, r := range map[string]tracking.Rect{"first": a, "second": b, "outside": outside} {
		before[what] = shownPixels(t, bctx, r)
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
	// The picture the page now shows is covered inside both regions, and
	// only there.
	for what, r := range map[string]tracking.Rect{"first": a, "second": b, "outside": outside} {
		d := meanDiff(before[what], shownPixels(t, bctx, r))
		t.Logf("shown picture, %s region %+v: mean difference %.1f after the cover", what, r, d)
		if what == "outside" && d > 8 {
			t.Errorf("the cover changed the picture outside the dragged regions (mean difference %.1f)", d)
		} else if what != "outside" && d < 20 {
			t.Errorf("the shown picture is not covered in the %s dragged region (mean difference %.1f)", what, d)
		}
	}
	shotPNG, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
	step("screenshot of the shot", err)

	// The CLI sees the cover in the diary, over both regions.
	var v tracking.DiaryView
	if err := json.Unmarshal([]byte(mustCLI(t, e.socket, "diary", name, "--day", day, "--json").stdout), &v); err != nil {
		t.Fatal(err)
	}
	if v.Totals.Covered != 1 {
		t.Fatalf("diary after the browser's cover: %+v", v.Totals)
	}
	for _, sh := range shotsOf(v) {
		if (sh.ID == target) != (sh.State == tracking.ShotCovered) {
			t.Errorf("shot %s is %s", sh.ID, sh.State)
		}
	}
	cur, orig := filepath.Join(e.dir, "covered.jpg"), filepath.Join(e.dir, "original.jpg")
	mustCLI(t, e.socket, "diary", "show", target, "--out", cur)
	mustCLI(t, e.socket, "diary", "show", target, "--original", "--out", orig)
	ci, oi := decodeFile(t, cur), decodeFile(t, orig)
	for what, r := range map[string]tracking.Rect{"first": a, "second": b, "outside": outside} {
		d := meanDiff(filePixels(oi, r), filePixels(ci, r))
		t.Logf("diary's covered version, %s region: mean difference %.1f from the original", what, d)
		if what == "outside" && d > 8 {
			t.Errorf("the diary's cover reaches outside the dragged regions (mean difference %.1f)", d)
		} else if what != "outside" && d < 20 {
			t.Errorf("the diary's cover does not cover the %s dragged region %+v (mean difference %.1f)", what, r, d)
		}
	}
	os.WriteFile(filepath.Join(imgDir, "ui-day.png"), dayPNG, 0o644)
	os.WriteFile(filepath.Join(imgDir, "ui-shot.png"), markedPNG, 0o644)
	os.WriteFile(filepath.Join(imgDir, "ui-shot-covered.png"), shotPNG, 0o644)
	os.WriteFile(filepath.Join(imgDir, "ui-day-phone.png"), phonePNG, 0o644)
}

// shownPixels reads the RGB values of region r (in the image's own pixels)
// of the picture the shot page shows, through a canvas.
func shownPixels(t *testing.T, ctx context.Context, r tracking.Rect) []int {
	t.Helper()
	px, err := chromedp.Run(ctx, chromedp.Evaluate[[]int](fmt.Sprintf(`(() => {
		const i = document.getElementById('shot'), c = document.createElement('canvas');
		c.width = i.naturalWidth; c.height = i.naturalHeight;
		const g = c.getContext('2d'); g.drawImage(i, 0, 0);
		return Array.from(g.getImageData(%d, %d, %d, %d).data).filter((_, k) => k %% 4 !== 3);
	})()`, r.X, r.Y, r.W, r.H)))
	if err != nil {
		t.Fatalf("pixels of the shown picture: %v", err)
	}
	return px
}

// filePixels reads the RGB values of region r of img.
func filePixels(img image.Image, r tracking.Rect) []int {
	var px []int
	for y := r.Y; y < r.Y+r.H; y++ {
		for x := r.X; x < r.X+r.W; x++ {
			cr, cg, cb, _ := img.At(img.Bounds().Min.X+x, img.Bounds().Min.Y+y).RGBA()
			px = append(px, int(cr>>8), int(cg>>8), int(cb>>8))
		}
	}
	return px
}

func decodeFile(t *testing.T, path string) image.Image {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, _, err := image.Decode(f)
	if err != nil {
		t.Fatalf("decode %s: %v", path, err)
	}
	return img
}

// meanDiff is the mean absolute difference of two equally long value lists
// (255 when their lengths differ).
func meanDiff(a, b []int) float64 {
	if len(a) != len(b) || len(a) == 0 {
		return 255
	}
	sum := 0
	for i := range a {
		d := a[i] - b[i]
		if d < 0 {
			d = -d
		}
		sum += d
	}
	return float64(sum) / float64(len(a))
}
