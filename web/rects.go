package web

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/workspace-sandbox/workspace/tracking"
)

// maxRects bounds the rectangles of one cover request.
const maxRects = 100

// parseRects reads the cover form's rect fields. A field holds one
// rectangle "x,y,w,h" in the image's pixels, or several separated by ";"
// or new lines (the page's text field), and the field may be repeated.
// Blank parts are skipped. Whether a rectangle lies inside the image is
// for the diary to say: only it knows the image's size.
func parseRects(fields []string) ([]tracking.Rect, error) {
	var out []tracking.Rect
	for _, f := range fields {
		parts := strings.FieldsFunc(f, func(r rune) bool { return r == ';' || r == '\n' || r == '\r' })
		for _, part := range parts {
			part = strings.TrimSpace(part)
			if part == "" {
				continue
			}
			n := len(out) + 1
			if n > maxRects {
				return nil, fmt.Errorf("more than %d regions in one cover: cover them in several steps (covers add up)", maxRects)
			}
			nums := strings.Split(part, ",")
			if len(nums) != 4 {
				return nil, fmt.Errorf("region %d (%q) is not x,y,w,h: it has %d numbers, not 4 (separate regions with \";\")", n, part, len(nums))
			}
			var v [4]int
			for i, p := range nums {
				x, err := strconv.Atoi(strings.TrimSpace(p))
				if err != nil {
					return nil, fmt.Errorf("region %d (%q): %q is not a whole number of pixels", n, part, strings.TrimSpace(p))
				}
				v[i] = x
			}
			if v[0] < 0 || v[1] < 0 {
				return nil, fmt.Errorf("region %d (%q): x and y cannot be negative", n, part)
			}
			if v[2] <= 0 || v[3] <= 0 {
				return nil, fmt.Errorf("region %d (%q): its width and height must be more than 0", n, part)
			}
			out = append(out, tracking.Rect{X: v[0], Y: v[1], W: v[2], H: v[3]})
		}
	}
	return out, nil
}
