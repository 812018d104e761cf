package guestagent

import "image"

// resample averages f into a w×h frame (RGBA order): each output pixel is
// the truncated mean of the source pixels of its box (see boxSums).
func resample(f *Frame, w, h int) *Frame {
	W, H := f.Rect.Dx(), f.Rect.Dy()
	rows := stripRowsFor(W)
	src := frameBands(f, rows)
	sums := newBoxSums(W, H, w, h, rows)
	runBands(src.n, func(wk *bandWorker, i int) error {
		sums.add(wk, i, src.band(i))
		return nil
	})
	return sums.frame(f.offsets())
}

// thumbnail scales img to width w (area average).
func thumbnail(img image.Image, w int) image.Image {
	f := frameOf(img)
	w = min(w, f.Rect.Dx())
	return resample(f, w, max(1, f.Rect.Dy()*w/f.Rect.Dx()))
}

// blurImage makes text unreadable before a shot leaves the guest (the
// profile's blur = true): the picture is reduced 16× and scaled back.
func blurImage(img image.Image) image.Image {
	f := frameOf(img)
	W, H := f.Rect.Dx(), f.Rect.Dy()
	sw, sh := blurBoxes(W, H)
	var buf []byte
	return scaleBack(resample(f, sw, sh), W, H, 0, H, &buf)
}
