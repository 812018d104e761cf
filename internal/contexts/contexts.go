// Package contexts keeps the user's named daemon hosts ("contexts", as in
// docker context): a name, a host URL and a description each, and which one
// is current. They live in one JSON file in the user's config folder
// (contexts.json in $XDG_CONFIG_HOME/workspace on Linux), the folder 0700
// and the file 0600, written whole and renamed into place.
package contexts

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
)

// Default is the name of the context that means "the local daemon": it is
// never stored, and `context use default` clears the current context.
const Default = "default"

// maxFile bounds the file read (it holds a few short lines per context).
const maxFile = 1 << 20

// Context is one named daemon host.
type Context struct {
	Name        string `json:"name"`
	Host        string `json:"host"`
	Description string `json:"description,omitempty"`
}

// File is the stored contexts and the current one ("" for the local daemon).
type File struct {
	Current  string    `json:"current,omitempty"`
	Contexts []Context `json:"contexts"`
}

// Find returns the context named name.
func (f *File) Find(name string) (Context, bool) {
	for _, c := range f.Contexts {
		if c.Name == name {
			return c, true
		}
	}
	return Context{}, false
}

// Store is the contexts file in a folder.
type Store struct {
	dir string
}

// NewStore keeps contexts in dir.
func NewStore(dir string) *Store { return &Store{dir: dir} }

// DefaultStore is the user's: the workspace folder in their config folder.
func DefaultStore() (*Store, error) {
	cfg, err := os.UserConfigDir()
	if err != nil {
		return nil, fmt.Errorf("contexts: find your config folder: %w", err)
	}
	return NewStore(filepath.Join(cfg, "workspace")), nil
}

// Path is the contexts file.
func (s *Store) Path() string { return filepath.Join(s.dir, "contexts.json") }

var nameRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$`)

// ValidName checks a context name: 1 to 63 letters, digits, '.', '_' or
// '-', starting with a letter or digit; not "default".
func ValidName(name string) error {
	if !nameRE.MatchString(name) {
		return fmt.Errorf("context name %q must be 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit", name)
	}
	if name == Default {
		return fmt.Errorf("context name %q is taken: it means the daemon on this machine", name)
	}
	return nil
}

// Load reads the file; a missing file is no contexts. A file other users
// may write is refused: whoever can write it chooses where the CLI sends
// passphrases and diaries.
func (s *Store) Load() (File, error) {
	p := s.Path()
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return File{}, nil
	}
	if err != nil {
		return File{}, fmt.Errorf("contexts: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return File{}, fmt.Errorf("contexts: %w", err)
	}
	if err := checkPrivate(p, fi); err != nil {
		return File{}, err
	}
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(io.LimitReader(f, maxFile+1)); err != nil {
		return File{}, fmt.Errorf("contexts: read %s: %w", p, err)
	}
	if buf.Len() > maxFile {
		return File{}, fmt.Errorf("contexts: %s is larger than %d bytes", p, maxFile)
	}
	return Parse(p, buf.Bytes())
}

// Parse decodes a contexts file's bytes (path is for errors): unknown
// fields, bad names, duplicates and a current context that does not exist
// are errors that name the file.
func Parse(path string, b []byte) (File, error) {
	var out File
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&out); err != nil {
		return File{}, fmt.Errorf("contexts: %s: %w (fix or remove the file)", path, err)
	}
	if dec.More() {
		return File{}, fmt.Errorf("contexts: %s: data after the JSON object (fix or remove the file)", path)
	}
	seen := map[string]bool{}
	for i, c := range out.Contexts {
		if err := ValidName(c.Name); err != nil {
			return File{}, fmt.Errorf("contexts: %s: context %d: %w", path, i+1, err)
		}
		if seen[c.Name] {
			return File{}, fmt.Errorf("contexts: %s: context %q is there twice", path, c.Name)
		}
		seen[c.Name] = true
		if c.Host == "" {
			return File{}, fmt.Errorf("contexts: %s: context %q has no host", path, c.Name)
		}
	}
	if out.Current != "" && !seen[out.Current] {
		return File{}, fmt.Errorf("contexts: %s: the current context %q is not in the file (workspace context use default)", path, out.Current)
	}
	return out, nil
}

// Save writes the file: the folder made 0700, the file 0600, written to a
// temporary file in the folder, synced and renamed over the old one.
func (s *Store) Save(f File) error {
	sort.Slice(f.Contexts, func(i, j int) bool { return f.Contexts[i].Name < f.Contexts[j].Name })
	if f.Contexts == nil {
		f.Contexts = []Context{}
	}
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return fmt.Errorf("contexts: %w", err)
	}
	b = append(b, '\n')
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return fmt.Errorf("contexts: %w", err)
	}
	if err := os.Chmod(s.dir, 0o700); err != nil {
		return fmt.Errorf("contexts: %w", err)
	}
	tmp, err := os.CreateTemp(s.dir, ".contexts-*.json")
	if err != nil {
		return fmt.Errorf("contexts: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("contexts: %w", err)
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("contexts: write %s: %w", tmp.Name(), err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("contexts: write %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("contexts: write %s: %w", tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), s.Path()); err != nil {
		return fmt.Errorf("contexts: %w", err)
	}
	return nil
}
