package daemon

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/workspace-sandbox/workspace/internal/jpegcheck"
	"github.com/workspace-sandbox/workspace/internal/thumbnail"
	"github.com/workspace-sandbox/workspace/profiles"
	"github.com/workspace-sandbox/workspace/tracking"
)

// The ingestion guard: what a guest may make the daemon do with what it
// sends. Every capture is checked before anything of it is stored (ids and
// times against the tracking session, the JPEG's markers and size, the
// thumbnail's size, the free space of the host, the workspace's daily
// budget and its captures per slot), then decoded in full, one at a time
// per workspace and inside a daemon-wide memory budget (64 MiB). A refusal is
// answered with its reason and channel.CodeRefused, logged with the
// workspace, counted in the agent's status, noted once per slot in the
// diary as a gap, and answered later each time (a doubling delay), so a
// guest that keeps sending what is refused is slowed down.

// Bounds of the guard.
const (
	// MaxCaptureBytes bounds a capture's JPEG.
	MaxCaptureBytes = 16 << 20
	// maxThumbBytes bounds its thumbnail.
	maxThumbBytes = 1 << 20
	// DefaultDecodeBudget is the memory all captures' decodes share: a
	// 4096×4096 (or 8192×2048) baseline JPEG at most. With the garbage
	// the collector lets grow to as much again, decoding stays well under
	// 256 MiB of heap however many guests send at once.
	DefaultDecodeBudget = 64 << 20
	// DefaultMinFree is the free space the host's diary file system keeps:
	// below it, captures are refused.
	DefaultMinFree = 1 << 30
	// guestDisplays is how many displays a workspace has: its domain has
	// one video device with one head.
	guestDisplays = 1
	// refusalDelay is the first delay of an answer to a refused request;
	// it doubles with every refusal up to maxRefusalDelay, and halves
	// whenever something new is stored.
	refusalDelay    = 200 * time.Millisecond
	maxRefusalDelay = 10 * time.Second
)

// Kinds of refusal; each is noted once per slot as a gap.
const (
	refuseImage    = "image"
	refuseTime     = "time"
	refuseSlot     = "slot"
	refuseDiary    = "diary-limit"
	refuseDisk     = "disk"
	refuseTracking = "tracking"
	refuseID       = "id"
)

// refusal is why the guard refuses a request.
type refusal struct {
	kind   string
	reason string
}

func (r *refusal) Error() string { return r.reason }

func refuse(kind, format string, args ...any) error {
	return &refusal{kind: kind, reason: fmt.Sprintf(format, args...)}
}

// gapReason is what the diary's gap says of refusals of a kind.
func gapReason(kind, reason string) string {
	switch kind {
	case refuseDiary:
		return "over the diary limit: " + reason
	case refuseDisk:
		return "host disk nearly full: " + reason
	case refuseSlot:
		return "captures refused: " + reason
	}
	return "refused what the guest sent: " + reason
}

// wsGuard is the guard's state of one workspace.
type wsGuard struct {
	// turn is held while one capture is checked, decoded and stored: one
	// decode at a time, and its quotas counted without a race.
	turn chan struct{}

	mu         sync.Mutex
	pol        tracking.Policy
	diaryLimit int64
	known      bool // pol and diaryLimit are the profile's
	delay      time.Duration
	first      time.Duration
	most       time.Duration
	refused    int64
	last       string
	day        string
	dayBytes   int64
	dayKnown   bool
	noted      map[string]bool // gap ids already written
}

// ingestGuard holds every workspace's guard and what they share.
type ingestGuard struct {
	budget  *jpegcheck.Budget
	minFree uint64
	free    func(dir string) (uint64, error)
	// firstDelay and mostDelay bound the refusal delay (refusalDelay and
	// maxRefusalDelay; tests shorten them).
	firstDelay, mostDelay time.Duration

	mu sync.Mutex
	ws map[string]*wsGuard
}

func newIngestGuard(budget int64, minFree uint64) *ingestGuard {
	if budget <= 0 {
		budget = DefaultDecodeBudget
	}
	return &ingestGuard{budget: jpegcheck.NewBudget(budget), minFree: minFree, free: freeBytes,
		firstDelay: refusalDelay, mostDelay: maxRefusalDelay, ws: map[string]*wsGuard{}}
}

func (g *ingestGuard) of(name string) *wsGuard {
	g.mu.Lock()
	defer g.mu.Unlock()
	w := g.ws[name]
	if w == nil {
		w = &wsGuard{turn: make(chan struct{}, 1), noted: map[string]bool{}, first: g.firstDelay, most: g.mostDelay}
		g.ws[name] = w
	}
	return w
}

// freeBytes is the space left to unprivileged users on dir's file system.
func freeBytes(dir string) (uint64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, fmt.Errorf("free space of %s: %w", dir, err)
	}
	return st.Bavail * uint64(st.Bsize), nil
}

// setProfile keeps a workspace's policy and daily budget.
func (w *wsGuard) setProfile(p *profiles.Profile) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.pol = policyOf(p)
	w.diaryLimit = int64(profiles.DefaultDiaryLimit)
	if p != nil && p.Tracking.DiaryLimit > 0 {
		w.diaryLimit = int64(p.Tracking.DiaryLimit)
	}
	w.known = true
}

// stored notes bytes stored and halves the refusal delay: a guest that
// mixes what is refused with what is stored stays slowed down.
func (w *wsGuard) stored(n int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.dayBytes += n
	if w.delay /= 2; w.delay < w.first {
		w.delay = 0
	}
}

// refused counts a refusal and returns how long to wait before answering.
func (w *wsGuard) refusedOne(reason string) time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.refused++
	w.last = reason
	w.delay = min(max(2*w.delay, w.first), w.most)
	return w.delay
}

// counts returns the refusals so far and the last one's reason.
func (w *wsGuard) counts() (int64, string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.refused, w.last
}

// overBudget refuses n more bytes past the workspace's daily budget;
// dayStart is counted from the diary's blob files at the first use of a
// day (so a restarted daemon keeps counting).
func (w *wsGuard) overBudget(now time.Time, n int64, usedToday func(since time.Time) (int64, error)) error {
	day := now.UTC().Format(time.DateOnly)
	w.mu.Lock()
	known := w.dayKnown && w.day == day
	w.mu.Unlock()
	if !known {
		start, _ := time.Parse(time.DateOnly, day)
		used, err := usedToday(start)
		if err != nil {
			return err
		}
		w.mu.Lock()
		w.day, w.dayBytes, w.dayKnown = day, used, true
		w.mu.Unlock()
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.dayBytes+n > w.diaryLimit {
		return refuse(refuseDiary, "the workspace's diary took %s today (UTC); its tracking.diary_limit is %s a day",
			profiles.Size(w.dayBytes), profiles.Size(w.diaryLimit))
	}
	return nil
}

// checkDisk refuses when the diary's file system is below the floor.
func (g *ingestGuard) checkDisk(dir string, n int64) error {
	if g.minFree == 0 {
		return nil
	}
	free, err := g.free(dir)
	if err != nil {
		return err
	}
	if free < g.minFree+uint64(n) {
		return refuse(refuseDisk, "%s free on the host's diary file system, below the daemon's floor of %s (--diary-min-free)",
			profiles.Size(free), profiles.Size(g.minFree))
	}
	return nil
}

// checkImages refuses a capture whose JPEG or thumbnail is not what it
// must be, by its markers alone (nothing decoded yet).
func checkImages(c tracking.Capture, orig, thumb []byte) (jpegcheck.Info, jpegcheck.Info, error) {
	var none jpegcheck.Info
	oi, err := jpegcheck.Parse(orig, jpegcheck.Limits{MaxBytes: MaxCaptureBytes, MaxWidth: jpegcheck.MaxSide, MaxHeight: jpegcheck.MaxSide})
	if err != nil {
		return none, none, refuse(refuseImage, "capture %q: %v", c.ID, err)
	}
	if c.Width != oi.Width || c.Height != oi.Height {
		return none, none, refuse(refuseImage, "capture %q: it says %dx%d, its JPEG declares %dx%d", c.ID, c.Width, c.Height, oi.Width, oi.Height)
	}
	if len(thumb) == 0 {
		return none, none, refuse(refuseImage, "capture %q: no thumbnail (the agent makes it, the host does not)", c.ID)
	}
	tw, th := thumbnail.Size(oi.Width, oi.Height)
	ti, err := jpegcheck.Parse(thumb, jpegcheck.Limits{MaxBytes: maxThumbBytes, MaxWidth: tw, MaxHeight: th})
	if err != nil {
		return none, none, refuse(refuseImage, "capture %q: thumbnail: %v", c.ID, err)
	}
	if ti.Width != tw || ti.Height != th {
		return none, none, refuse(refuseImage, "capture %q: thumbnail is %dx%d, the thumbnail of %dx%d is %dx%d", c.ID, ti.Width, ti.Height, oi.Width, oi.Height, tw, th)
	}
	return oi, ti, nil
}

// decode decodes the capture's JPEG and thumbnail in full inside the
// memory budget; a corrupt one is refused.
func (g *ingestGuard) decode(ctx context.Context, c tracking.Capture, orig, thumb []byte, oi, ti jpegcheck.Info) error {
	for _, p := range []struct {
		what string
		b    []byte
		info jpegcheck.Info
	}{{"JPEG", orig, oi}, {"thumbnail", thumb, ti}} {
		err := g.budget.Decode(ctx, p.b, p.info)
		if errors.Is(err, jpegcheck.ErrRefused) {
			return refuse(refuseImage, "capture %q: %s: %v", c.ID, p.what, err)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// slotLimit is how many captures a slot of the policy may hold: its
// screenshots on every display, and one retake.
func slotLimit(pol tracking.Policy) int { return pol.ScreenshotsPerSlot*guestDisplays + 1 }

// gapID is the id of the gap noting refusals of kind in the slot at t.
func gapID(kind string, slot time.Time) string {
	return tracking.HostID("refused-"+kind, strconv.FormatInt(slot.Unix(), 10))
}

// recordLimits are how many records of the agent's a slot takes: an
// activity record a minute (and the minutes a slot's edges share), and
// idle and gap spans: a gap a minute (the agent's "no input counts") and
// a few more (idle periods, failed shots; the host's refusal gaps count
// too).
func recordLimits(pol tracking.Policy) (activity, spans int) {
	minutes := pol.SlotSeconds / 60
	return minutes + 2, minutes + 16
}
