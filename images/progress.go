package images

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"golang.org/x/term"
)

// Printer shows a build's progress. On a terminal it keeps one live line
// (elapsed time, stage, the latest output), redrawn every half second; on
// anything else it prints a plain line per stage.
type Printer struct {
	w     io.Writer
	tty   bool
	width int

	mu      sync.Mutex
	stage   string
	detail  string
	elapsed time.Duration
	at      time.Time // when elapsed was reported
	stages  map[string]time.Duration
	stop    chan struct{}
	stopped sync.Once
	done    chan struct{}
}

// NewPrinter draws on w; the live line only when w is a terminal.
func NewPrinter(w io.Writer) *Printer {
	p := &Printer{w: w, width: 100, stages: map[string]time.Duration{}, stop: make(chan struct{}), done: make(chan struct{})}
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		p.tty = true
		if wd, _, err := term.GetSize(int(f.Fd())); err == nil && wd > 20 {
			p.width = wd
		}
		go p.tick()
	} else {
		close(p.done)
	}
	return p
}

// Event takes a build event (DesktopOptions.Progress).
func (p *Printer) Event(e Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	newStage := e.Stage != p.stage
	if newStage {
		p.stages[e.Stage] = e.Elapsed
	}
	p.stage, p.detail, p.elapsed, p.at = e.Stage, e.Detail, e.Elapsed, time.Now()
	if p.tty {
		if newStage {
			p.drawLocked()
		}
		return
	}
	if newStage {
		fmt.Fprintf(p.w, "[%s] %s\n", clock(e.Elapsed), StageLabel(e.Stage))
	}
}

// Close ends the live line.
func (p *Printer) Close() {
	p.stopped.Do(func() {
		close(p.stop)
		<-p.done
		if p.tty {
			p.mu.Lock()
			if p.stage != "" {
				p.drawLocked()
				fmt.Fprintln(p.w)
			}
			p.mu.Unlock()
		}
	})
}

func (p *Printer) tick() {
	defer close(p.done)
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
			p.mu.Lock()
			if p.stage != "" {
				p.drawLocked()
			}
			p.mu.Unlock()
		}
	}
}

func (p *Printer) drawLocked() {
	now := p.elapsed + time.Since(p.at)
	line := fmt.Sprintf("[%s] %s (%s)", clock(now), StageLabel(p.stage), clock(now-p.stages[p.stage]))
	if d := strings.TrimSpace(p.detail); d != "" && p.stage != StageDone {
		line += ": " + d
	}
	fmt.Fprintf(p.w, "\r\x1b[K%s", truncate(line, p.width-1))
}

func clock(d time.Duration) string {
	s := int(d.Round(time.Second).Seconds())
	return fmt.Sprintf("%02d:%02d", s/60, s%60)
}

func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}
