package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/hashicorp/go-hclog"

	"github.com/workspace-sandbox/workspace/guestagent"
)

// shot runs `workspace-agent shot`: one capture of every display, encoded
// exactly as a tracking shot (same capture, blur, JPEG and thumbnail), for
// checking a guest by eye and for benchmarks.
func shot(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("shot", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "", "write the JPEG here (a second display to NAME-1.jpg, ...)")
	thumb := fs.String("thumb", "", "also write the thumbnail here")
	display := fs.String("display", "", "X display, such as :0 (default: $DISPLAY)")
	quality := fs.Int("quality", 75, "JPEG quality, 10..100 (the profile's tracking.jpeg_quality)")
	blur := fs.Bool("blur", false, "blur the shot as a profile with blur = true does")
	logLevel := fs.String("log-level", "warn", "log level")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *out == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "usage: workspace-agent shot --out FILE [--thumb FILE] [--display :N] [--quality Q] [--blur]")
		return 2
	}
	log := hclog.New(&hclog.LoggerOptions{Name: "workspace-agent", Level: hclog.LevelFromString(*logLevel), Output: stderr})
	shots, method, err := guestagent.TakeShot(guestagent.ShotOptions{Display: *display, Quality: *quality, Blur: *blur, Logger: log})
	if err != nil {
		fmt.Fprintf(stderr, "workspace-agent shot: %v\n", err)
		return 1
	}
	type file struct {
		path, what string
		data       []byte
	}
	for _, s := range shots {
		files := []file{{numbered(*out, s.Display), "screenshot", s.JPEG}}
		if *thumb != "" {
			files = append(files, file{numbered(*thumb, s.Display), "thumbnail", s.Thumbnail})
		}
		for _, f := range files {
			if err := writePrivate(f.path, f.data); err != nil {
				fmt.Fprintf(stderr, "workspace-agent shot: write the %s of display %d: %v\n", f.what, s.Display, err)
				return 1
			}
			fmt.Fprintf(stdout, "%s: %s of display %d (%dx%d at %d,%d), %d bytes, %s\n", f.path, f.what, s.Display,
				s.Bounds.Dx(), s.Bounds.Dy(), s.Bounds.Min.X, s.Bounds.Min.Y, len(f.data), method)
		}
	}
	return 0
}

// numbered names the file of display n: path itself for the first, NAME-n.EXT
// for the others.
func numbered(path string, n int) string {
	if n == 0 {
		return path
	}
	ext := filepath.Ext(path)
	return fmt.Sprintf("%s-%d%s", strings.TrimSuffix(path, ext), n, ext)
}

// writePrivate writes a file only its owner can read (a screenshot is
// private), through a temporary file renamed into place. Unlike the
// agent's state, a shot is not worth an fsync (scrot makes none either).
func writePrivate(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
