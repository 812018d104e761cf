package diary

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"filippo.io/age"
	"github.com/workspace-sandbox/workspace/internal/atomicfile"
)

// BackupFormat names the backup format.
const BackupFormat = "workspace-backup/1"

type backupManifest struct {
	Format  string            `json:"format"`
	Created time.Time         `json:"created"`
	Files   map[string]string `json:"files"` // name → SHA-256
}

// Backup writes the diary (a consistent database snapshot, sealed blobs,
// checkpoints) and the key directory as a tar encrypted with passphrase
// (age scrypt): without the passphrase it can be neither read nor forged.
func (s *Store) Backup(ctx context.Context, keyDir, passphrase string, w io.Writer) (int, error) {
	if passphrase == "" {
		return 0, fmt.Errorf("%w: a backup needs a passphrase", ErrInvalid)
	}
	r, err := age.NewScryptRecipient(passphrase)
	if err != nil {
		return 0, fmt.Errorf("backup: %w", err)
	}
	s.wmu.Lock() // no writes while blobs and database are copied
	defer s.wmu.Unlock()
	snap := filepath.Join(s.dir, ".backup-snapshot.db")
	os.Remove(snap)
	defer os.Remove(snap)
	if _, err := s.db.ExecContext(ctx, `VACUUM INTO ?`, snap); err != nil {
		return 0, fmt.Errorf("backup: snapshot database: %w", err)
	}
	files := map[string]string{} // archive name → source path
	files["diary/diary.db"] = snap
	for _, sub := range []string{"blobs", "checkpoints"} {
		root := filepath.Join(s.dir, sub)
		err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err != nil {
				if errors.Is(err, os.ErrNotExist) {
					return nil
				}
				return err
			}
			if d.Type().IsRegular() && !strings.HasSuffix(p, ".tmp") {
				rel, err := filepath.Rel(s.dir, p)
				if err != nil {
					return err
				}
				files["diary/"+filepath.ToSlash(rel)] = p
			}
			return nil
		})
		if err != nil {
			return 0, fmt.Errorf("backup: %w", err)
		}
	}
	if ents, err := os.ReadDir(keyDir); err == nil {
		for _, e := range ents {
			if e.Type().IsRegular() && !strings.HasPrefix(e.Name(), ".") {
				files["keys/"+e.Name()] = filepath.Join(keyDir, e.Name())
			}
		}
	}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	m := backupManifest{Format: BackupFormat, Created: s.now().UTC(), Files: map[string]string{}}
	data := map[string][]byte{}
	for _, n := range names {
		b, err := os.ReadFile(files[n])
		if err != nil {
			return 0, fmt.Errorf("backup: %w", err)
		}
		data[n] = b
		m.Files[n] = sum256hex(b)
	}
	mb, err := json.Marshal(m)
	if err != nil {
		return 0, err
	}
	aw, err := age.Encrypt(w, r)
	if err != nil {
		return 0, fmt.Errorf("backup: %w", err)
	}
	tw := tar.NewWriter(aw)
	put := func(name string, b []byte) error {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o600, Size: int64(len(b)), ModTime: m.Created, Format: tar.FormatPAX}); err != nil {
			return err
		}
		_, err := tw.Write(b)
		return err
	}
	if err := put("backup.json", mb); err != nil {
		return 0, fmt.Errorf("backup: %w", err)
	}
	for _, n := range names {
		if err := put(n, data[n]); err != nil {
			return 0, fmt.Errorf("backup: %w", err)
		}
	}
	if err := tw.Close(); err != nil {
		return 0, fmt.Errorf("backup: %w", err)
	}
	if err := aw.Close(); err != nil {
		return 0, fmt.Errorf("backup: %w", err)
	}
	return len(names), nil
}

var backupNameRE = regexp.MustCompile(`^(diary/diary\.db|diary/blobs/[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*|diary/checkpoints/[A-Za-z0-9][A-Za-z0-9_.-]*|keys/[A-Za-z0-9][A-Za-z0-9_.-]*)$`)

// ErrBadBackup says a backup was refused.
var ErrBadBackup = errors.New("backup refused")

// StageRestore decrypts and checks a backup completely into a new directory
// under stateDir, and returns it (holding diary/ and keys/). Nothing else is
// touched; on any error the staging directory is removed.
func StageRestore(r io.Reader, passphrase, stateDir string) (string, error) {
	sid, err := age.NewScryptIdentity(passphrase)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrBadBackup, err)
	}
	pr, err := age.Decrypt(r, sid)
	if err != nil {
		if strings.Contains(err.Error(), "incorrect passphrase") || strings.Contains(err.Error(), "no identity matched") {
			return "", fmt.Errorf("%w: wrong passphrase, or not a backup made with one", ErrBadBackup)
		}
		return "", fmt.Errorf("%w: not a workspace backup: %v", ErrBadBackup, err)
	}
	stage, err := os.MkdirTemp(stateDir, ".restore-")
	if err != nil {
		return "", fmt.Errorf("restore: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			os.RemoveAll(stage)
		}
	}()
	tr := tar.NewReader(&trackedReader{r: pr})
	var m *backupManifest
	seen := map[string]string{}
	var total int64
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return "", fmt.Errorf("%w: the file was modified, damaged or truncated (%v)", ErrBadBackup, err)
		}
		if h.Typeflag != tar.TypeReg || h.Size < 0 || h.Size > 1<<34 {
			return "", fmt.Errorf("%w: unexpected entry %q", ErrBadBackup, h.Name)
		}
		if total += h.Size; total > 1<<36 {
			return "", fmt.Errorf("%w: too large", ErrBadBackup)
		}
		var buf bytes.Buffer
		if _, err := io.Copy(&buf, io.LimitReader(tr, h.Size)); err != nil || int64(buf.Len()) != h.Size {
			return "", fmt.Errorf("%w: the file was modified, damaged or truncated (%v)", ErrBadBackup, err)
		}
		if h.Name == "backup.json" && m == nil {
			m = &backupManifest{}
			dec := json.NewDecoder(&buf)
			dec.DisallowUnknownFields()
			if err := dec.Decode(m); err != nil || m.Format != BackupFormat {
				return "", fmt.Errorf("%w: not a %s manifest", ErrBadBackup, BackupFormat)
			}
			continue
		}
		if m == nil {
			return "", fmt.Errorf("%w: the manifest is not first", ErrBadBackup)
		}
		if !backupNameRE.MatchString(h.Name) || strings.Contains(h.Name, "..") || path.Clean(h.Name) != h.Name {
			return "", fmt.Errorf("%w: unexpected file %q", ErrBadBackup, h.Name)
		}
		if _, dup := seen[h.Name]; dup {
			return "", fmt.Errorf("%w: %q appears twice", ErrBadBackup, h.Name)
		}
		sum := sum256hex(buf.Bytes())
		if m.Files[h.Name] != sum {
			return "", fmt.Errorf("%w: %q does not match the manifest", ErrBadBackup, h.Name)
		}
		seen[h.Name] = sum
		p := filepath.Join(stage, filepath.FromSlash(h.Name))
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			return "", fmt.Errorf("restore: %w", err)
		}
		if err := os.WriteFile(p, buf.Bytes(), 0o600); err != nil {
			return "", fmt.Errorf("restore: %w", err)
		}
	}
	if m == nil {
		return "", fmt.Errorf("%w: empty", ErrBadBackup)
	}
	for name := range m.Files {
		if _, ok := seen[name]; !ok {
			return "", fmt.Errorf("%w: %q is listed but missing (truncated)", ErrBadBackup, name)
		}
	}
	if _, ok := seen["diary/diary.db"]; !ok {
		return "", fmt.Errorf("%w: no diary database", ErrBadBackup)
	}
	for _, d := range []string{"diary/blobs", "keys"} {
		if err := os.MkdirAll(filepath.Join(stage, d), 0o700); err != nil {
			return "", fmt.Errorf("restore: %w", err)
		}
	}
	if err := syncTree(stage); err != nil {
		return "", fmt.Errorf("restore: %w", err)
	}
	ok = true
	return stage, nil
}

// syncTree fsyncs every file and directory under root.
func syncTree(root string) error {
	return filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		return f.Sync()
	})
}

// SwapRestore moves diaryDir and keyDir aside (to NAME.replaced-TIME, kept
// for the user) and puts a staged restore in their place.
func SwapRestore(stage, diaryDir, keyDir string, now time.Time) (replaced []string, err error) {
	suffix := ".replaced-" + now.UTC().Format("20060102T150405")
	pairs := [][2]string{{filepath.Join(stage, "diary"), diaryDir}, {filepath.Join(stage, "keys"), keyDir}}
	for _, p := range pairs {
		if _, err := os.Stat(p[1]); err == nil {
			if err := os.Rename(p[1], p[1]+suffix); err != nil {
				return replaced, fmt.Errorf("restore: move %s aside: %w", p[1], err)
			}
			replaced = append(replaced, p[1]+suffix)
		}
		if err := os.Rename(p[0], p[1]); err != nil {
			return replaced, fmt.Errorf("restore: %w", err)
		}
	}
	os.RemoveAll(stage)
	return replaced, atomicfile.SyncDir(filepath.Dir(diaryDir))
}
