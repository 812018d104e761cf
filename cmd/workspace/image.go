package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/workspace-sandbox/workspace/api"
)

func newImageCmd(a *app) *cobra.Command {
	return group("image", "Manage base images",
		newImageImportCmd(a), newImageBuildCmd(a), newImageListCmd(a), newImageRmCmd(a), newImageGCCmd(a))
}

func newImageImportCmd(a *app) *cobra.Command {
	var kernel, initrd, cmdline string
	var asJSON bool
	cmd := command("import NAME DISK [--kernel FILE --initrd FILE --cmdline TEXT]", "Upload a qcow2 or raw disk (and optionally a kernel and initrd) into the daemon's pool", cobra.ExactArgs(2), func(cmd *cobra.Command, args []string) error {
		name, diskPath := args[0], args[1]
		if err := api.ValidateImageName(name); err != nil {
			return err
		}
		if (kernel == "") != (initrd == "") {
			return fmt.Errorf("--kernel and --initrd go together")
		}
		if cmdline != "" && kernel == "" {
			return fmt.Errorf("--cmdline needs --kernel and --initrd")
		}
		img, err := a.uploadImage(cmd.Context(), name, diskPath, kernel, initrd, cmdline)
		if err != nil {
			return err
		}
		if asJSON {
			return printJSON(a.stdout, img)
		}
		fmt.Fprintf(a.stdout, "imported image %q: %s, %s (virtual %s), sha256 %s\n", img.Name, img.Format, humanBytes(uint64(img.Size)), humanBytes(img.VirtualSize), img.SHA256)
		return nil
	})
	cmd.Flags().StringVar(&kernel, "kernel", "", "kernel for direct boot")
	cmd.Flags().StringVar(&initrd, "initrd", "", "initrd for direct boot")
	cmd.Flags().StringVar(&cmdline, "cmdline", "", "kernel command line for direct boot")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the imported image as JSON")
	return cmd
}

// uploadImage streams a disk, and a kernel and initrd when given, to the
// daemon with a progress bar on a terminal. The daemon removes whatever it
// made when an upload fails.
func (a *app) uploadImage(ctx context.Context, name, diskPath, kernel, initrd, cmdline string) (api.Image, error) {
	var files []*os.File
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	open := func(path, what string) (*os.File, int64, error) {
		f, err := os.Open(path)
		if err != nil {
			return nil, 0, fmt.Errorf("open %s: %w", what, err)
		}
		files = append(files, f)
		fi, err := f.Stat()
		if err != nil {
			return nil, 0, fmt.Errorf("stat %s: %w", what, err)
		}
		if !fi.Mode().IsRegular() {
			return nil, 0, fmt.Errorf("%s %s is not a regular file", what, path)
		}
		return f, fi.Size(), nil
	}
	disk, diskSize, err := open(diskPath, "disk")
	if err != nil {
		return api.Image{}, err
	}
	src := api.ImportSource{Meta: api.ImportMeta{Name: name, DiskSize: diskSize, Cmdline: cmdline}}
	total := diskSize
	var readers []io.Reader
	if kernel != "" {
		k, ks, err := open(kernel, "kernel")
		if err != nil {
			return api.Image{}, err
		}
		i, is, err := open(initrd, "initrd")
		if err != nil {
			return api.Image{}, err
		}
		src.Meta.KernelSize, src.Meta.InitrdSize = ks, is
		total += ks + is
		readers = append(readers, k, i)
	}
	bar := newProgress(a.stderr, "importing "+name, total)
	src.Disk = bar.wrap(disk)
	if len(readers) == 2 {
		src.Kernel, src.Initrd = bar.wrap(readers[0]), bar.wrap(readers[1])
	}
	img, err := a.client().ImportImage(ctx, src)
	bar.done(err == nil)
	if err != nil {
		return api.Image{}, err
	}
	return img, nil
}

func newImageListCmd(a *app) *cobra.Command {
	cmd := command("list", "List imported images", cobra.NoArgs, nil)
	cmd.Aliases = []string{"ls"}
	return readCmd(a, cmd,
		func(cmd *cobra.Command, _ []string) ([]api.Image, error) { return a.client().Images(cmd.Context()) },
		func(_ []string, imgs []api.Image) error {
			if len(imgs) == 0 {
				fmt.Fprintln(a.stderr, "no images yet: import one with `workspace image import NAME DISK`")
				return nil
			}
			tw := newTable(a.stdout)
			fmt.Fprintln(tw, "NAME\tFORMAT\tSIZE\tVIRTUAL\tKERNEL\tUSED BY\tSHA256")
			for _, img := range imgs {
				used := strings.Join(img.UsedBy, ",")
				if used == "" {
					used = "-"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%v\t%s\t%.12s\n", img.Name, img.Format, humanBytes(uint64(img.Size)), humanBytes(img.VirtualSize), img.Kernel, used, img.SHA256)
			}
			return tw.Flush()
		})
}

func newImageRmCmd(a *app) *cobra.Command {
	return command("rm NAME", "Remove an image no workspace uses", cobra.ExactArgs(1), func(cmd *cobra.Command, args []string) error {
		if err := a.client().RemoveImage(cmd.Context(), args[0]); err != nil {
			return err
		}
		fmt.Fprintf(a.stdout, "image %q removed\n", args[0])
		return nil
	})
}

// progress draws a one-line progress bar on a terminal and stays silent
// otherwise (pipes, CI logs).
type progress struct {
	w      io.Writer
	label  string
	total  int64
	n      int64
	tty    bool
	start  time.Time
	last   time.Time
	closed bool
}

func newProgress(w io.Writer, label string, total int64) *progress {
	p := &progress{w: w, label: label, total: total, start: time.Now()}
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			p.tty = true
		}
	}
	return p
}

func (p *progress) wrap(r io.Reader) io.Reader { return &progressReader{r: r, p: p} }

func (p *progress) add(n int) {
	p.n += int64(n)
	if !p.tty || time.Since(p.last) < 100*time.Millisecond {
		return
	}
	p.last = time.Now()
	p.draw()
}

func (p *progress) draw() {
	const width = 30
	frac := 1.0
	if p.total > 0 {
		frac = float64(p.n) / float64(p.total)
	}
	filled := int(frac * width)
	rate := float64(p.n) / max(time.Since(p.start).Seconds(), 0.001)
	fmt.Fprintf(p.w, "\r%s [%s%s] %3.0f%% %s/%s %s/s ", p.label, strings.Repeat("=", filled), strings.Repeat(" ", width-filled),
		frac*100, humanBytes(uint64(p.n)), humanBytes(uint64(p.total)), humanBytes(uint64(rate)))
}

func (p *progress) done(ok bool) {
	if !p.tty || p.closed {
		return
	}
	p.closed = true
	if ok {
		p.draw()
	}
	fmt.Fprintln(p.w)
}

type progressReader struct {
	r io.Reader
	p *progress
}

func (r *progressReader) Read(b []byte) (int, error) {
	n, err := r.r.Read(b)
	r.p.add(n)
	return n, err
}

func newImageGCCmd(a *app) *cobra.Command {
	var dry, asJSON bool
	cmd := command("gc", "Remove every base image no workspace uses", cobra.NoArgs, func(cmd *cobra.Command, _ []string) error {
		res, err := a.client().ImageGC(cmd.Context(), dry)
		if err != nil {
			return err
		}
		if asJSON {
			return printJSON(a.stdout, res)
		}
		verb := "removed"
		if dry {
			verb = "would remove"
		}
		if len(res.Removed) == 0 {
			fmt.Fprintln(a.stdout, "No unused images.")
		} else {
			fmt.Fprintf(a.stdout, "%s %d unused images (%s): %s\n", verb, len(res.Removed), humanBytes(uint64(res.Bytes)), strings.Join(res.Removed, ", "))
		}
		if len(res.Kept) > 0 {
			fmt.Fprintf(a.stdout, "kept (in use): %s\n", strings.Join(res.Kept, ", "))
		}
		return nil
	})
	cmd.Flags().BoolVar(&dry, "dry-run", false, "only list what would be removed")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
