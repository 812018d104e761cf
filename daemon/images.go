package daemon

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/workspace-sandbox/workspace/api"
	"github.com/workspace-sandbox/workspace/internal/atomicfile"
)

// imageStore keeps the metadata of imported images as one JSON file per
// image under StateDir/images; the bytes live in the libvirt pool.
type imageStore struct {
	dir string
	hv  Hypervisor
	log hclog.Logger
}

// Volume names in the pool for an image's parts. The suffix keeps parts of
// different images from colliding whatever their names are.
func diskVolume(image string) string   { return "img-" + image + ".disk" }
func kernelVolume(image string) string { return "img-" + image + ".kernel" }
func initrdVolume(image string) string { return "img-" + image + ".initrd" }

func (s *imageStore) path(name string) string { return filepath.Join(s.dir, name+".json") }

func (s *imageStore) get(name string) (api.Image, error) {
	b, err := os.ReadFile(s.path(name))
	if errors.Is(err, os.ErrNotExist) {
		return api.Image{}, fmt.Errorf("%w: image %q is not imported (see `workspace image list`)", api.ErrNotFound, name)
	}
	if err != nil {
		return api.Image{}, fmt.Errorf("read image %q: %w", name, err)
	}
	var img api.Image
	if err := json.Unmarshal(b, &img); err != nil {
		return api.Image{}, fmt.Errorf("read image %q: %s: %w", name, s.path(name), err)
	}
	return img, nil
}

func (s *imageStore) list() ([]api.Image, error) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("list images: %w", err)
	}
	out := []api.Image{}
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok || e.IsDir() {
			continue
		}
		img, err := s.get(name)
		if err != nil {
			s.log.Warn("skipping unreadable image record", "file", e.Name(), "error", err)
			continue
		}
		out = append(out, img)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func (s *imageStore) put(img api.Image) error {
	b, err := json.MarshalIndent(img, "", "  ")
	if err != nil {
		return fmt.Errorf("encode image %q: %w", img.Name, err)
	}
	return atomicfile.Write(s.path(img.Name), b, 0o644)
}

// diskHeader describes what the first bytes of a disk say about it.
type diskHeader struct {
	format      string
	virtualSize uint64
}

const qcow2Magic = "QFI\xfb"

// sniffDisk reads a disk's format from its first bytes. A qcow2 that names a
// backing file is refused: it could make QEMU read any file on the host.
func sniffDisk(head []byte, size int64) (diskHeader, error) {
	if len(head) >= 4 && string(head[:4]) == qcow2Magic {
		if len(head) < 32 {
			return diskHeader{}, fmt.Errorf("%w: qcow2 header is truncated", api.ErrInvalid)
		}
		if backing := binary.BigEndian.Uint64(head[8:16]); backing != 0 {
			return diskHeader{}, fmt.Errorf("%w: qcow2 image has a backing file; flatten it first (qemu-img convert -O qcow2)", api.ErrInvalid)
		}
		vs := binary.BigEndian.Uint64(head[24:32])
		if vs == 0 {
			return diskHeader{}, fmt.Errorf("%w: qcow2 image has a virtual size of 0", api.ErrInvalid)
		}
		return diskHeader{format: "qcow2", virtualSize: vs}, nil
	}
	if size <= 0 {
		return diskHeader{}, fmt.Errorf("%w: disk is empty", api.ErrInvalid)
	}
	return diskHeader{format: "raw", virtualSize: uint64(size)}, nil
}

// importImage reads a multipart upload (meta, disk, then optional kernel and
// initrd) and streams each part into the pool as it arrives. Anything made
// is removed again if a later step fails.
func (s *imageStore) importImage(ctx context.Context, mr *multipart.Reader) (img api.Image, err error) {
	part, err := mr.NextPart()
	if err != nil || part.FormName() != "meta" {
		return img, fmt.Errorf("%w: upload must start with a meta part", api.ErrInvalid)
	}
	var meta api.ImportMeta
	if err := json.NewDecoder(io.LimitReader(part, 64<<10)).Decode(&meta); err != nil {
		return img, fmt.Errorf("%w: decode meta part: %v", api.ErrInvalid, err)
	}
	if err := api.ValidateImageName(meta.Name); err != nil {
		return img, err
	}
	if meta.DiskSize <= 0 {
		return img, fmt.Errorf("%w: disk_size must be positive", api.ErrInvalid)
	}
	if _, err := s.get(meta.Name); err == nil {
		return img, fmt.Errorf("%w: image %q is already imported (remove it first with `workspace image rm %s`)", api.ErrExists, meta.Name, meta.Name)
	}
	log := s.log.With("image", meta.Name)

	var made []string
	defer func() {
		if err == nil {
			return
		}
		for i := len(made) - 1; i >= 0; i-- {
			if derr := s.hv.DeleteVolume(context.WithoutCancel(ctx), made[i]); derr != nil {
				log.Error("rollback: delete volume", "volume", made[i], "error", derr)
			}
		}
	}()

	img = api.Image{Name: meta.Name, Size: meta.DiskSize, Cmdline: meta.Cmdline}
	for {
		part, perr := mr.NextPart()
		if errors.Is(perr, io.EOF) {
			break
		}
		if perr != nil {
			return img, fmt.Errorf("%w: read upload: %v", api.ErrInvalid, perr)
		}
		switch part.FormName() {
		case "disk":
			br := bufio.NewReaderSize(part, 64<<10)
			head, _ := br.Peek(72)
			hdr, herr := sniffDisk(head, meta.DiskSize)
			if herr != nil {
				return img, herr
			}
			sum, uerr := s.upload(ctx, diskVolume(meta.Name), hdr.format, hdr.virtualSize, br, meta.DiskSize)
			if uerr != nil {
				return img, fmt.Errorf("import image %q: disk: %w", meta.Name, uerr)
			}
			made = append(made, diskVolume(meta.Name))
			img.Format, img.VirtualSize, img.SHA256 = hdr.format, hdr.virtualSize, sum
		case "kernel", "initrd":
			size, vol := meta.KernelSize, kernelVolume(meta.Name)
			if part.FormName() == "initrd" {
				size, vol = meta.InitrdSize, initrdVolume(meta.Name)
			}
			if size <= 0 {
				return img, fmt.Errorf("%w: %s part without a %s_size", api.ErrInvalid, part.FormName(), part.FormName())
			}
			if _, uerr := s.upload(ctx, vol, "raw", uint64(size), part, size); uerr != nil {
				return img, fmt.Errorf("import image %q: %s: %w", meta.Name, part.FormName(), uerr)
			}
			made = append(made, vol)
		default:
			return img, fmt.Errorf("%w: unexpected upload part %q", api.ErrInvalid, part.FormName())
		}
	}
	hasKernel := contains(made, kernelVolume(meta.Name))
	if img.SHA256 == "" {
		return img, fmt.Errorf("%w: upload has no disk part", api.ErrInvalid)
	}
	if hasKernel != contains(made, initrdVolume(meta.Name)) {
		return img, fmt.Errorf("%w: --kernel and --initrd go together", api.ErrInvalid)
	}
	img.Kernel = hasKernel
	img.ImportedAt = time.Now().UTC()
	if err := s.put(img); err != nil {
		return img, err
	}
	log.Info("image imported", "format", img.Format, "size", img.Size, "sha256", img.SHA256)
	return img, nil
}

// upload streams exactly length bytes of r into a new volume and returns
// their sha256. More or fewer bytes than declared is an error.
func (s *imageStore) upload(ctx context.Context, vol, format string, capacity uint64, r io.Reader, length int64) (string, error) {
	h := sha256.New()
	cr := &countingReader{r: io.TeeReader(io.LimitReader(r, length), h)}
	if _, err := s.hv.UploadVolume(ctx, vol, format, capacity, cr, length); err != nil {
		return "", classify(err)
	}
	var extra [1]byte
	if cr.n != length {
		return "", s.discard(ctx, vol, fmt.Errorf("%w: got %d bytes, declared %d", api.ErrInvalid, cr.n, length))
	}
	// A read error here is the end of the body as far as the length goes:
	// only a byte more than declared is refused.
	if n, _ := io.ReadFull(r, extra[:]); n > 0 {
		return "", s.discard(ctx, vol, fmt.Errorf("%w: more bytes than the declared %d", api.ErrInvalid, length))
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// discard deletes a volume whose upload was refused for why, and returns
// why (with the failed deletion, which leaves the volume to image gc).
func (s *imageStore) discard(ctx context.Context, vol string, why error) error {
	if err := s.hv.DeleteVolume(context.WithoutCancel(ctx), vol); err != nil {
		s.log.Warn("delete the refused upload's volume", "volume", vol, "error", err)
	}
	return why
}

func (s *imageStore) remove(ctx context.Context, name string, users []string) error {
	img, err := s.get(name)
	if err != nil {
		return err
	}
	if len(users) > 0 {
		return fmt.Errorf("%w: image %q is used by workspace %s; destroy %s first", api.ErrConflict, name, strings.Join(quoteAll(users), ", "), pluralIt(len(users)))
	}
	vols := []string{diskVolume(name)}
	if img.Kernel {
		vols = append(vols, kernelVolume(name), initrdVolume(name))
	}
	for _, v := range vols {
		if err := s.hv.DeleteVolume(ctx, v); err != nil && !errors.Is(classify(err), api.ErrNotFound) {
			return fmt.Errorf("remove image %q: %w", name, classify(err))
		}
	}
	if err := os.Remove(s.path(name)); err != nil {
		return fmt.Errorf("remove image %q: %w", name, err)
	}
	s.log.Info("image removed", "image", name)
	return nil
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func quoteAll(list []string) []string {
	out := make([]string, len(list))
	for i, s := range list {
		out[i] = fmt.Sprintf("%q", s)
	}
	return out
}

func pluralIt(n int) string {
	if n == 1 {
		return "it"
	}
	return "them"
}

func (s *server) handleImages(r *http.Request) (any, error) {
	imgs, err := s.images.list()
	if err != nil {
		return nil, err
	}
	for i := range imgs {
		// Usage is best effort: the list still answers while libvirt is away.
		if users, err := s.m.usersOf(r.Context(), imgs[i].Name); err == nil {
			imgs[i].UsedBy = users
		}
	}
	return imgs, nil
}

func (s *server) handleImport(r *http.Request) (any, error) {
	mr, err := r.MultipartReader()
	if err != nil {
		return nil, fmt.Errorf("%w: image upload must be multipart: %v", api.ErrInvalid, err)
	}
	img, err := s.images.importImage(r.Context(), mr)
	if err != nil {
		return nil, err
	}
	return created{img}, nil
}

func (s *server) handleImageRemove(r *http.Request) (any, error) {
	name := r.PathValue("name")
	if err := api.ValidateImageName(name); err != nil {
		return nil, err
	}
	s.m.bases.Lock()
	defer s.m.bases.Unlock()
	users, err := s.m.usersOf(r.Context(), name)
	if err != nil {
		return nil, fmt.Errorf("remove image %q: cannot tell which workspaces use it: %w", name, err)
	}
	return noContent{}, s.images.remove(r.Context(), name, users)
}

// handleImageGC removes every image no workspace uses (vagrant-libvirt
// users waited years for this); with dry_run=true it only says which.
func (s *server) handleImageGC(r *http.Request) (any, error) {
	dry := r.URL.Query().Get("dry_run") == "true"
	s.m.bases.Lock()
	defer s.m.bases.Unlock()
	imgs, err := s.images.list()
	if err != nil {
		return nil, err
	}
	out := api.GCResult{DryRun: dry}
	for _, img := range imgs {
		users, err := s.m.usersOf(r.Context(), img.Name)
		if err != nil {
			return nil, fmt.Errorf("image gc: cannot tell which workspaces use %q: %w", img.Name, err)
		}
		if len(users) > 0 {
			out.Kept = append(out.Kept, img.Name)
			continue
		}
		if !dry {
			if err := s.images.remove(r.Context(), img.Name, nil); err != nil {
				return nil, fmt.Errorf("image gc: %w", err)
			}
		}
		out.Removed = append(out.Removed, img.Name)
		out.Bytes += img.Size
	}
	return out, nil
}
