package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// uiBrowser is headless chromium logged in to the daemon's web UI with a
// fresh one-time link, showing the workspaces page; base is the UI's URL;
// closeIt ends the browser. ok is false when chromium is not installed.
func uiBrowser(t *testing.T, socket string) (bctx context.Context, base string, closeIt func(), ok bool) {
	t.Helper()
	browser, err := exec.LookPath("chromium")
	if err != nil {
		t.Log("chromium is not installed (make test installs it): the web UI is not looked at")
		return nil, "", nil, false
	}
	loginURL := strings.TrimSpace(mustCLI(t, socket, "ui", "--no-open").stdout)
	base = loginURL[:strings.Index(loginURL, "/login")]
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(browser), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1280, 800),
	}
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, bcancel := chromedp.NewContext(actx)
	bctx, tcancel := context.WithTimeout(bctx, time.Minute)
	closeIt = func() { tcancel(); bcancel(); acancel() }
	if err := chromedp.Do(bctx, chromedp.Navigate(loginURL), chromedp.WaitVisible(`table.list`)); err != nil {
		closeIt()
		t.Fatalf("log in to the web UI: %v", err)
	}
	return bctx, base, closeIt, true
}

// uiPage opens path of the daemon's web UI in headless chromium (logged in
// with a fresh one-time link) and returns the page's HTML and a full-page
// screenshot. ok is false when chromium is not installed.
func uiPage(t *testing.T, socket, path, waitFor string) (html string, png []byte, ok bool) {
	t.Helper()
	bctx, base, closeIt, ok := uiBrowser(t, socket)
	if !ok {
		return "", nil, false
	}
	defer closeIt()
	if err := chromedp.Do(bctx, chromedp.Navigate(base+path), chromedp.WaitVisible(waitFor)); err != nil {
		t.Fatalf("open %s in the web UI: %v", path, err)
	}
	// Thumbnails load after the page: wait for every image to be there.
	if _, err := chromedp.Run(bctx, chromedp.Poll[bool](`Array.from(document.images).every(i => i.complete)`, chromedp.WithPollingTimeout(20*time.Second))); err != nil {
		t.Fatalf("images of %s: %v", path, err)
	}
	html, err := chromedp.Run(bctx, chromedp.OuterHTML("html"))
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	png, err = chromedp.Run(bctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot of %s: %v", path, err)
	}
	return html, png, true
}

// checkTrackingUI looks at the web UI of a running, tracked workspace with
// 30-second slots: the workspaces page offers "Stop tracking" only, and the
// day's slots are labelled with seconds. With -update-screenshots the pages
// go to docs/img (ui-workspaces.png, ui-day-30s.png).
func checkTrackingUI(t *testing.T, socket, name string) {
	t.Helper()
	html, listPNG, ok := uiPage(t, socket, "/", "table.list")
	if !ok {
		return
	}
	if !strings.Contains(html, "Stop tracking") || strings.Contains(html, "Start tracking") {
		t.Errorf("the workspaces page of a tracked workspace does not offer exactly \"Stop tracking\":\n%s", html)
	}
	day := time.Now().Format("2006-01-02")
	html, dayPNG, _ := uiPage(t, socket, "/w/"+name+"?day="+day, ".grid")
	labels := regexp.MustCompile(`class="time">(\d\d:\d\d:\d\d–\d\d:\d\d:\d\d)<`).FindAllStringSubmatch(html, -1)
	if len(labels) == 0 {
		t.Errorf("the day of 30-second slots has no slot labelled with seconds:\n%s", html)
	}
	if *updateScreenshots {
		dir := filepath.Join(repoRoot(t), "docs", "img")
		os.WriteFile(filepath.Join(dir, "ui-workspaces.png"), listPNG, 0o644)
		os.WriteFile(filepath.Join(dir, "ui-day-30s.png"), dayPNG, 0o644)
	}
}
