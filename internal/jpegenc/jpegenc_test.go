package jpegenc

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// pictures are what the encoder is checked on: a screen of text, a
// photograph-like gradient with noise, a UI of flat colours with sharp
// edges, and noise (the worst case), in sizes that are and are not
// multiples of the 16×16 blocks.
func pictures() map[string]*image.RGBA {
	r := rand.New(rand.NewSource(1))
	out := map[string]*image.RGBA{}
	text := image.NewRGBA(image.Rect(0, 0, 333, 219))
	for i := range text.Pix {
		text.Pix[i] = 0xf4
	}
	for y := 6; y+9 < 219; y += 15 { // lines of glyph-like strokes
		for x := 4; x+6 < 333; x += 7 {
			if r.Intn(6) == 0 {
				continue
			}
			for k := 0; k < 9; k++ {
				gx, gy := x+r.Intn(5), y+r.Intn(9)
				v := uint8(20 + r.Intn(120))
				text.SetRGBA(gx, gy, color.RGBA{v, v, v + 20, 255})
			}
		}
	}
	out["text"] = text
	photo := image.NewRGBA(image.Rect(0, 0, 160, 120))
	for y := range 120 {
		for x := range 160 {
			n := uint8(r.Intn(16))
			photo.SetRGBA(x, y, color.RGBA{uint8(x) + n, uint8(y*2) + n, uint8(x+y) / 2, 255})
		}
	}
	out["photo"] = photo
	ui := image.NewRGBA(image.Rect(0, 0, 97, 65))
	for y := range 65 {
		for x := range 97 {
			c := color.RGBA{0xee, 0xee, 0xee, 255}
			switch {
			case y < 12:
				c = color.RGBA{0x20, 0x40, 0x90, 255}
			case x > 70 && y > 40:
				c = color.RGBA{0xd0, 0x30, 0x30, 255}
			case x%24 == 0 || y%16 == 0:
				c = color.RGBA{0x80, 0x80, 0x80, 255}
			}
			ui.SetRGBA(x, y, c)
		}
	}
	out["ui"] = ui
	noise := image.NewRGBA(image.Rect(0, 0, 45, 37))
	r.Read(noise.Pix)
	for i := 3; i < len(noise.Pix); i += 4 {
		noise.Pix[i] = 255
	}
	out["noise"] = noise
	tiny := image.NewRGBA(image.Rect(0, 0, 1, 1))
	tiny.SetRGBA(0, 0, color.RGBA{200, 30, 90, 255})
	out["1x1"] = tiny
	return out
}

// bgrx returns img's pixels in an X server's byte order.
func bgrx(img *image.RGBA) Pixels {
	w, h := img.Rect.Dx(), img.Rect.Dy()
	p := Pixels{Pix: make([]byte, 4*w*h), Stride: 4 * w, Width: w, Height: h, R: 2, G: 1, B: 0}
	for i := 0; i < len(p.Pix); i += 4 {
		p.Pix[i], p.Pix[i+1], p.Pix[i+2], p.Pix[i+3] = img.Pix[i+2], img.Pix[i+1], img.Pix[i], 0x5a
	}
	return p
}

// meanError is the mean absolute difference per colour of two pictures.
func meanError(t *testing.T, a *image.RGBA, b image.Image) float64 {
	t.Helper()
	if b.Bounds().Size() != a.Rect.Size() {
		t.Fatalf("decoded %v, want %v", b.Bounds().Size(), a.Rect.Size())
	}
	var sum float64
	for y := range a.Rect.Dy() {
		for x := range a.Rect.Dx() {
			r, g, bb, _ := b.At(b.Bounds().Min.X+x, b.Bounds().Min.Y+y).RGBA()
			c := a.RGBAAt(x, y)
			for k, v := range []uint32{r >> 8, g >> 8, bb >> 8} {
				d := float64(v) - float64([]uint8{c.R, c.G, c.B}[k])
				if d < 0 {
					d = -d
				}
				sum += d
			}
		}
	}
	return sum / float64(3*a.Rect.Dx()*a.Rect.Dy())
}

func need(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed (scripts/deps.sh test installs libjpeg-turbo-progs)", tool)
		}
	}
}

// writePPM writes img as a binary PPM, the input cjpeg reads.
func writePPM(t *testing.T, path string, img *image.RGBA) {
	t.Helper()
	var b bytes.Buffer
	fmt.Fprintf(&b, "P6\n%d %d\n255\n", img.Rect.Dx(), img.Rect.Dy())
	for i := 0; i < len(img.Pix); i += 4 {
		b.Write(img.Pix[i : i+3])
	}
	if err := os.WriteFile(path, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
}

// djpeg decodes a JPEG with libjpeg.
func djpeg(t *testing.T, jpg []byte) *image.RGBA {
	t.Helper()
	cmd := exec.Command("djpeg", "-pnm")
	cmd.Stdin = bytes.NewReader(jpg)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("djpeg refuses our JPEG: %v", err)
	}
	br := bufio.NewReader(bytes.NewReader(out))
	var magic string
	var w, h, maxv int
	if _, err := fmt.Fscan(br, &magic, &w, &h, &maxv); err != nil || magic != "P6" || maxv != 255 {
		t.Fatalf("djpeg's output: %q %v", magic, err)
	}
	br.ReadByte()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	px := make([]byte, 3)
	for i := 0; i < w*h; i++ {
		if _, err := br.Read(px[:1]); err != nil {
			t.Fatal(err)
		}
		br.Read(px[1:2])
		br.Read(px[2:3])
		copy(img.Pix[4*i:], px)
		img.Pix[4*i+3] = 255
	}
	return img
}

// Our JPEGs decode with Go's image/jpeg and with libjpeg (djpeg), and
// are as close to the source as libjpeg's own (cjpeg) at the same
// quality, for about the same bytes.
func TestEncodeMatchesLibjpeg(t *testing.T) {
	need(t, "cjpeg", "djpeg")
	dir := t.TempDir()
	for name, img := range pictures() {
		ppm := filepath.Join(dir, name+".ppm")
		writePPM(t, ppm, img)
		for _, q := range []int{10, 50, 75, 90, 100} {
			for _, p := range []Pixels{FromImage(img), bgrx(img)} {
				ours, err := Encode(p, q)
				if err != nil {
					t.Fatal(err)
				}
				ref, err := exec.Command("cjpeg", "-quality", fmt.Sprint(q), ppm).Output()
				if err != nil {
					t.Fatalf("cjpeg: %v", err)
				}
				oursGo, err := jpeg.Decode(bytes.NewReader(ours))
				if err != nil {
					t.Fatalf("%s q%d: image/jpeg refuses our JPEG: %v", name, q, err)
				}
				refGo, err := jpeg.Decode(bytes.NewReader(ref))
				if err != nil {
					t.Fatal(err)
				}
				eo, er := meanError(t, img, oursGo), meanError(t, img, refGo)
				lo, lr := meanError(t, img, djpeg(t, ours)), meanError(t, img, djpeg(t, ref))
				// One level in one colour of a tiny picture is a lot of mean.
				slack := 0.1
				if img.Rect.Dx()*img.Rect.Dy() < 256 {
					slack = 0.5
				}
				t.Logf("%s q%d (offsets %d%d%d): mean error %.3f/%.3f, libjpeg %.3f/%.3f; %d bytes, libjpeg %d", name, q, p.R, p.G, p.B, eo, lo, er, lr, len(ours), len(ref))
				if eo > 1.05*er+slack || lo > 1.05*lr+slack {
					t.Errorf("%s q%d (offsets %d%d%d): mean error %.2f (image/jpeg), %.2f (djpeg); libjpeg's own %.2f, %.2f",
						name, q, p.R, p.G, p.B, eo, lo, er, lr)
				}
				if float64(len(ours)) > 1.05*float64(len(ref))+64 {
					t.Errorf("%s q%d: %d bytes, libjpeg %d", name, q, len(ours), len(ref))
				}
			}
		}
	}
}

// The quantisation tables are libjpeg's for every quality.
func TestQuantTablesAreLibjpegs(t *testing.T) {
	need(t, "cjpeg")
	dir := t.TempDir()
	ppm := filepath.Join(dir, "p.ppm")
	writePPM(t, ppm, pictures()["ui"])
	for _, q := range []int{1, 10, 25, 50, 75, 99, 100} {
		ref, err := exec.Command("cjpeg", "-quality", fmt.Sprint(q), "-baseline", ppm).Output()
		if err != nil {
			t.Fatal(err)
		}
		ours, err := EncodeImage(pictures()["ui"], q)
		if err != nil {
			t.Fatal(err)
		}
		if a, b := quantOf(t, ours), quantOf(t, ref); a != b {
			t.Errorf("quality %d: tables %v, libjpeg's %v", q, a, b)
		}
	}
}

// quantOf returns the quantisation tables 0 and 1 of a JPEG, however many
// DQT segments hold them.
func quantOf(t *testing.T, b []byte) (q [2][64]byte) {
	t.Helper()
	for _, s := range segments(t, b) {
		for d := s.data; s.marker == 0xdb && len(d) >= 65; d = d[65:] {
			if d[0] > 1 {
				t.Fatalf("DQT of table %#x", d[0])
			}
			copy(q[d[0]][:], d[1:65])
		}
	}
	return q
}

type seg struct {
	marker byte
	data   []byte
}

// segments walks a JPEG's markers up to the scan, then the scan's
// restart markers up to EOI (the scan's data in no segment).
func segments(t *testing.T, b []byte) []seg {
	t.Helper()
	if len(b) < 4 || b[0] != 0xff || b[1] != 0xd8 {
		t.Fatalf("no SOI: % x", b[:min(4, len(b))])
	}
	var out []seg
	i := 2
	for i+4 <= len(b) {
		if b[i] != 0xff {
			t.Fatalf("no marker at %d", i)
		}
		m := b[i+1]
		n := int(binary.BigEndian.Uint16(b[i+2:]))
		if i+2+n > len(b) {
			t.Fatalf("marker %x at %d: %d bytes past the end", m, i, n)
		}
		out = append(out, seg{m, b[i+4 : i+2+n]})
		i += 2 + n
		if m == 0xda {
			break
		}
	}
	for ; i+1 < len(b); i++ {
		if b[i] == 0xff && b[i+1] != 0 {
			out = append(out, seg{b[i+1], nil})
			i++
		}
	}
	return out
}

// A picture of several strips has a restart interval of one strip and a
// restart marker between strips, RST0..RST7 in turn; its bytes are the
// same whatever the number of cores, and strips encoded one by one in
// any order join to the same file.
func TestStripsAndRestartMarkers(t *testing.T) {
	img := image.NewRGBA(image.Rect(0, 0, 320, 600))
	rand.New(rand.NewSource(2)).Read(img.Pix)
	p := FromImage(img)
	one := func(procs int) []byte {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
		b, err := Encode(p, 75)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	b := one(1)
	if !bytes.Equal(b, one(4)) || !bytes.Equal(b, one(2)) {
		t.Fatal("the bytes depend on the number of cores")
	}
	strips := (600 + StripRows(320) - 1) / StripRows(320)
	var rst []byte
	var dri []byte
	for _, s := range segments(t, b) {
		switch {
		case s.marker == 0xdd:
			dri = s.data
		case s.marker >= 0xd0 && s.marker <= 0xd7:
			rst = append(rst, s.marker)
		}
	}
	if want := []byte{0, byte(StripRows(320) / 16 * 20)}; !bytes.Equal(dri, want) {
		t.Errorf("restart interval %x, want %x (one strip of 20 MCUs a row)", dri, want)
	}
	if len(rst) != strips-1 {
		t.Fatalf("%d restart markers for %d strips", len(rst), strips)
	}
	for i, m := range rst {
		if m != 0xd0+byte(i%8) {
			t.Fatalf("restart marker %d is RST%d", i, m-0xd0)
		}
	}
	e, err := New(320, 600, 75, 0, 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	parts := make([][]byte, strips)
	var s Strip
	for i := strips - 1; i >= 0; i-- {
		parts[i] = e.EncodeStrip(&s, p.Rows(i*e.StripRows(), min((i+1)*e.StripRows(), 600)))
	}
	if !bytes.Equal(e.Assemble(parts), b) {
		t.Fatal("strips encoded one by one do not join to the same file")
	}
	if _, err := jpeg.Decode(bytes.NewReader(b)); err != nil {
		t.Fatal(err)
	}
}

// Bad pictures and settings are refused with what is wrong.
func TestEncodeRefuses(t *testing.T) {
	good := FromImage(image.NewRGBA(image.Rect(0, 0, 8, 8)))
	for _, c := range []struct {
		p    Pixels
		q    int
		want string
	}{
		{Pixels{}, 75, "empty 0x0"},
		{Pixels{Pix: make([]byte, 10), Stride: 8, Width: 2, Height: 2, R: 0, G: 1, B: 2}, 75, "too few"},
		{Pixels{Pix: make([]byte, 64), Stride: 4, Width: 2, Height: 2, R: 0, G: 1, B: 2}, 75, "too few"},
		{Pixels{Pix: make([]byte, 16), Stride: 8, Width: 2, Height: 2, R: 0, G: 0, B: 2}, 75, "colour offsets 0,0,2"},
		{Pixels{Pix: make([]byte, 16), Stride: 8, Width: 2, Height: 2, R: 4, G: 1, B: 2}, 75, "colour offsets 4,1,2"},
		{Pixels{Pix: make([]byte, 4*70000), Stride: 4 * 70000, Width: 70000, Height: 1, R: 0, G: 1, B: 2}, 75, "cannot be a JPEG"},
		{good, 0, "quality 0"},
		{good, 101, "quality 101"},
	} {
		if _, err := Encode(c.p, c.q); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%dx%d q%d: %v, want %q", c.p.Width, c.p.Height, c.q, err, c.want)
		}
	}
}

// FuzzEncode: any picture at any quality encodes to a JPEG that image/jpeg
// decodes to the same size, about as close to the source as Go's own
// encoder gets at that quality.
func FuzzEncode(f *testing.F) {
	f.Add(uint8(16), uint8(16), uint8(75), uint8(0), []byte{1, 2, 3})
	f.Add(uint8(1), uint8(1), uint8(1), uint8(1), []byte{255})
	f.Add(uint8(33), uint8(17), uint8(100), uint8(2), bytes.Repeat([]byte{0, 255}, 300))
	f.Fuzz(func(t *testing.T, w, h, q, order uint8, data []byte) {
		W, H, Q := int(w%64)+1, int(h%64)+1, int(q%100)+1
		img := image.NewRGBA(image.Rect(0, 0, W, H))
		for i := range img.Pix {
			if i%4 == 3 {
				img.Pix[i] = 255
			} else if len(data) > 0 {
				img.Pix[i] = data[i%len(data)]
			}
		}
		p := FromImage(img)
		if order%2 == 1 {
			p = bgrx(img)
		}
		b, err := Encode(p, Q)
		if err != nil {
			t.Fatal(err)
		}
		dec, err := jpeg.Decode(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("image/jpeg refuses our JPEG: %v", err)
		}
		var ref bytes.Buffer
		if err := jpeg.Encode(&ref, img, &jpeg.Options{Quality: Q}); err != nil {
			t.Fatal(err)
		}
		refDec, err := jpeg.Decode(&ref)
		if err != nil {
			t.Fatal(err)
		}
		// Two correct encoders may round a block's DC to neighbouring
		// steps: half a DC step of luma and of chroma (through the blue
		// difference, the largest factor back to RGB) apart, at most.
		qt := quantTables(Q)
		dcSlack := (float64(qt[0][0]) + 1.8*float64(qt[1][0])) / 16
		if eo, er := meanError(t, img, dec), meanError(t, img, refDec); eo > 1.1*er+dcSlack+1 {
			t.Fatalf("%dx%d q%d: mean error %.2f, Go's encoder %.2f (DC rounding allows %.2f more)", W, H, Q, eo, er, dcSlack)
		}
	})
}
