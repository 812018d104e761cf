package diary

import (
	"image"
	"testing"

	"github.com/workspace-sandbox/workspace/tracking"
)

func TestCheckRectsRefusesWhatIsNotInside(t *testing.T) {
	size := image.Pt(800, 600)
	const huge = int(^uint(0) >> 1)
	for _, tc := range []struct {
		r  tracking.Rect
		ok bool
	}{
		{tracking.Rect{X: 0, Y: 0, W: 800, H: 600}, true},
		{tracking.Rect{X: 799, Y: 599, W: 1, H: 1}, true},
		{tracking.Rect{X: 700, Y: 0, W: 101, H: 10}, false},
		{tracking.Rect{X: 0, Y: 500, W: 10, H: 101}, false},
		{tracking.Rect{X: -1, Y: 0, W: 10, H: 10}, false},
		{tracking.Rect{X: 0, Y: 0, W: 0, H: 10}, false},
		{tracking.Rect{X: 1, Y: 0, W: huge, H: 10}, false}, // x+w wraps around
		{tracking.Rect{X: 0, Y: 1, W: 10, H: huge}, false},
		{tracking.Rect{X: huge, Y: 0, W: 1, H: 1}, false},
	} {
		err := checkRects([]tracking.Rect{tc.r}, size)
		if (err == nil) != tc.ok {
			t.Errorf("checkRects(%+v) = %v, want ok=%v", tc.r, err, tc.ok)
		}
	}
}
