package daemon

import (
	"bytes"
	"context"
	"image"
	"image/color"
	"image/png"
	"io"
	"testing"

	"github.com/workspace-sandbox/workspace/api"
)

// pngScreenHV answers screenshots in PNG, as libvirt does with QEMU 7.1
// and later (while the driver still reports the PPM type).
type pngScreenHV struct {
	*fakeHV
	png []byte
}

func (h *pngScreenHV) Screenshot(_ context.Context, _ string, w io.Writer) (string, error) {
	_, err := w.Write(h.png)
	return "image/x-portable-pixmap", err
}

func TestScreenPassesPNGThrough(t *testing.T) {
	img := image.NewRGBA(image.Rect(0, 0, 3, 2))
	img.Set(1, 1, color.RGBA{255, 136, 0, 255})
	var b bytes.Buffer
	png.Encode(&b, img)
	hv := &pngScreenHV{fakeHV: newFakeHV(), png: b.Bytes()}
	c, _ := startDaemon(t, hv)
	ctx := context.Background()
	if _, err := importBytes(t, c, "test", qcow2Bytes(1<<30, false, 4096)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Create(ctx, api.CreateRequest{Name: "acme", Profile: testProfile(t, `image = "test"`)}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Start(ctx, "acme", api.StartRequest{}); err != nil {
		t.Fatal(err)
	}
	got, err := c.Screen(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, b.Bytes()) {
		t.Fatalf("screen: got %d bytes, want the guest's PNG (%d bytes)", len(got), b.Len())
	}
}
