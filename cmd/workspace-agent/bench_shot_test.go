//go:build !windows

package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image"
	"image/draw"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/jezek/xgb"
	"github.com/jezek/xgb/xproto"

	"github.com/workspace-sandbox/workspace/internal/xvfbtest"
)

// BenchmarkShotVsScrot times `workspace-agent shot` (the static agent as
// built for guests) against `scrot -q 75` on the same text-dense
// 1920x1080 Xvfb screen: three real pages rendered by headless chromium
// side by side (the Go specification, Go source, a spreadsheet). Each of
// the 20 rounds runs both once through hyperfine (the order alternating
// between rounds), so the machine's load falls on both alike; the
// medians and the files' sizes are reported. Run it with -benchtime 1x:
// the rounds are the repetitions.
func BenchmarkShotVsScrot(b *testing.B) {
	for _, tool := range []string{"Xvfb", "chromium", "scrot", "hyperfine"} {
		if _, err := exec.LookPath(tool); err != nil {
			b.Skipf("%s is not installed (scripts/deps.sh bench installs it)", tool)
		}
	}
	dir := b.TempDir()
	agent := filepath.Join(dir, "workspace-agent")
	build := exec.Command("go", "build", "-o", agent, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("build the agent: %v\n%s", err, out)
	}
	disp := xvfbtest.Start(b, 1920, 1080)
	paintRoot(b, disp, renderPages(b, dir))

	const rounds = 20
	ours, scrots := filepath.Join(dir, "agent.jpg"), filepath.Join(dir, "scrot.jpg")
	agentCmd := fmt.Sprintf("%s shot --out %s --display %s --quality 75", agent, ours, disp)
	scrotCmd := fmt.Sprintf("scrot -q 75 -o %s", scrots)
	var ta, ts, ca, cs []float64 // wall and CPU (user + system) times, ms
	for i := range b.N * rounds {
		cmds := []string{agentCmd, scrotCmd}
		if i%2 == 1 {
			cmds = []string{scrotCmd, agentCmd}
		}
		js := filepath.Join(dir, "round.json")
		hf := exec.Command("hyperfine", "-N", "--runs", "1", "--style", "none", "--export-json", js, cmds[0], cmds[1])
		hf.Env = append(os.Environ(), "DISPLAY="+disp)
		if out, err := hf.CombinedOutput(); err != nil {
			b.Fatalf("hyperfine: %v\n%s", err, out)
		}
		var res struct {
			Results []struct {
				Command string    `json:"command"`
				Times   []float64 `json:"times"`
				User    float64   `json:"user"`
				System  float64   `json:"system"`
			} `json:"results"`
		}
		raw, err := os.ReadFile(js)
		if err != nil {
			b.Fatal(err)
		}
		if err := json.Unmarshal(raw, &res); err != nil || len(res.Results) != 2 {
			b.Fatalf("hyperfine's results %s: %v", raw, err)
		}
		for _, r := range res.Results {
			if len(r.Times) != 1 {
				b.Fatalf("hyperfine ran %q %d times", r.Command, len(r.Times))
			}
			if r.Command == agentCmd {
				ta, ca = append(ta, r.Times[0]*1000), append(ca, (r.User+r.System)*1000)
			} else {
				ts, cs = append(ts, r.Times[0]*1000), append(cs, (r.User+r.System)*1000)
			}
		}
	}
	sa, err := os.Stat(ours)
	if err != nil {
		b.Fatal(err)
	}
	ss, err := os.Stat(scrots)
	if err != nil {
		b.Fatal(err)
	}
	ma, ms := median(ta), median(ts)
	b.Logf("%d rounds on %d cores; per round (ms) agent %s", len(ta), runtime.NumCPU(), fmtTimes(ta))
	b.Logf("per round (ms) scrot %s", fmtTimes(ts))
	b.Logf("median: agent %.1f ms, scrot %.1f ms (%.2fx); CPU (user+system) agent %.1f ms, scrot %.1f ms; JPEG: agent %d bytes, scrot %d bytes (%.3fx)",
		ma, ms, ma/ms, median(ca), median(cs), sa.Size(), ss.Size(), float64(sa.Size())/float64(ss.Size()))
	b.ReportMetric(ma, "agent-ms")
	b.ReportMetric(ms, "scrot-ms")
	b.ReportMetric(ma/ms, "time-ratio")
	b.ReportMetric(median(ca), "agent-cpu-ms")
	b.ReportMetric(median(cs), "scrot-cpu-ms")
	b.ReportMetric(float64(sa.Size()), "agent-bytes")
	b.ReportMetric(float64(ss.Size()), "scrot-bytes")
	b.ReportMetric(float64(sa.Size())/float64(ss.Size()), "bytes-ratio")
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func fmtTimes(v []float64) string {
	var b strings.Builder
	for _, t := range v {
		fmt.Fprintf(&b, " %.1f", t)
	}
	return b.String()
}

// renderPages renders three text-dense pages with headless chromium and
// puts them side by side on a 1920x1080 picture: documentation (the Go
// specification from the toolchain), source code (net/http's server.go)
// and a spreadsheet (a generated table of figures).
func renderPages(tb testing.TB, dir string) *image.RGBA {
	tb.Helper()
	goroot, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		tb.Fatalf("go env GOROOT: %v", err)
	}
	root := strings.TrimSpace(string(goroot))
	sheet := filepath.Join(dir, "sheet.html")
	var h strings.Builder
	h.WriteString(`<html><head><style>body{margin:0;font:13px sans-serif}table{border-collapse:collapse}` +
		`td,th{border:1px solid #c0c0c0;padding:2px 6px;text-align:right}th{background:#e8eaed}` +
		`tr:nth-child(even) td{background:#f8f9fa}</style></head><body><table><tr><th></th>`)
	for c := 'A'; c <= 'G'; c++ {
		fmt.Fprintf(&h, "<th>%c</th>", c)
	}
	h.WriteString("</tr>")
	for r := 1; r <= 60; r++ {
		fmt.Fprintf(&h, "<tr><th>%d</th>", r)
		for c := 1; c <= 7; c++ {
			fmt.Fprintf(&h, "<td>%d,%03d.%02d</td>", (r*7919+c*104729)%97, (r*31+c*17)%1000, (r*c*13)%100)
		}
		h.WriteString("</tr>")
	}
	h.WriteString("</table></body></html>")
	if err := os.WriteFile(sheet, []byte(h.String()), 0o600); err != nil {
		tb.Fatal(err)
	}
	pages := []struct {
		url   string
		width int
	}{
		{"file://" + filepath.Join(root, "doc", "go_spec.html"), 800},
		{"file://" + filepath.Join(root, "src", "net", "http", "server.go"), 620},
		{"file://" + sheet, 500},
	}
	screen := image.NewRGBA(image.Rect(0, 0, 1920, 1080))
	x := 0
	for i, p := range pages {
		out := filepath.Join(dir, fmt.Sprintf("page%d.png", i))
		cmd := exec.Command("chromium", "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
			"--user-data-dir="+filepath.Join(dir, "chromium"), "--screenshot="+out,
			fmt.Sprintf("--window-size=%d,1080", p.width), p.url)
		if o, err := cmd.CombinedOutput(); err != nil {
			tb.Fatalf("chromium %s: %v\n%s", p.url, err, o)
		}
		b, err := os.ReadFile(out)
		if err != nil {
			tb.Fatal(err)
		}
		img, err := png.Decode(bytes.NewReader(b))
		if err != nil {
			tb.Fatalf("chromium's picture of %s: %v", p.url, err)
		}
		draw.Draw(screen, image.Rect(x, 0, x+p.width, 1080), img, img.Bounds().Min, draw.Src)
		x += p.width
	}
	return screen
}

// paintRoot puts img on the root window of disp, in bands small enough for
// core PutImage requests.
func paintRoot(tb testing.TB, disp string, img *image.RGBA) {
	tb.Helper()
	c, err := xgb.NewConnDisplay(disp)
	if err != nil {
		tb.Fatal(err)
	}
	defer c.Close()
	s := xproto.Setup(c).DefaultScreen(c)
	gc, err := xproto.NewGcontextId(c)
	if err != nil {
		tb.Fatal(err)
	}
	xproto.CreateGC(c, gc, xproto.Drawable(s.Root), 0, nil)
	w, h := img.Rect.Dx(), img.Rect.Dy()
	rows := (int(xproto.Setup(c).MaximumRequestLength)*4 - 64) / (4 * w)
	for y0 := 0; y0 < h; y0 += rows {
		n := min(rows, h-y0)
		data := make([]byte, 4*w*n)
		for y := range n {
			for x := range w {
				o, d := img.PixOffset(x, y0+y), 4*(y*w+x)
				data[d], data[d+1], data[d+2] = img.Pix[o+2], img.Pix[o+1], img.Pix[o]
			}
		}
		if err := xproto.PutImageChecked(c, xproto.ImageFormatZPixmap, xproto.Drawable(s.Root), gc,
			uint16(w), uint16(n), 0, int16(y0), 0, 24, data).Check(); err != nil {
			tb.Fatalf("paint the screen: %v", err)
		}
	}
}
