package diary

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/workspace-sandbox/workspace/internal/atomicfile"
)

// A client who verified an export before can check that a new one extends
// the same log: the new export carries a consistency proof from every
// checkpoint the freelancer exported before (evidence.go). A history
// rewritten after the earlier export (a log minted again, an entry
// changed) cannot show one.

// RewrittenError says that an export's log does not extend one the client
// saw, naming the first entry that differs when both exports hold it.
type RewrittenError struct {
	Size   int64 // the size of the log the client saw
	Index  int64 // the first differing entry, or -1 when not known
	What   string
	Reason string
}

func (e *RewrittenError) Error() string {
	msg := fmt.Sprintf("the log was rewritten: this export does not extend the log of %d entries seen before (%s)", e.Size, e.Reason)
	if e.Index >= 0 {
		msg += fmt.Sprintf("; the first entry that differs is entry %d (%s)", e.Index, e.What)
	}
	return msg
}

// extends reports whether v's log is proven to extend the checkpoint
// (size, root), and why not.
func extends(v *Verified, size int64, root tlog.Hash) (bool, string) {
	if size == v.cp.Size {
		if root == v.cp.Root {
			return true, ""
		}
		return false, fmt.Sprintf("the same size %d with another root", size)
	}
	for _, pc := range v.previous {
		if pc.Size == size {
			if pc.Root == root {
				return true, ""
			}
			return false, fmt.Sprintf("its proof is from another tree of size %d", size)
		}
	}
	if size > v.cp.Size {
		return false, fmt.Sprintf("this export's log has only %d entries", v.cp.Size)
	}
	return false, fmt.Sprintf("it carries no consistency proof from size %d", size)
}

// CheckPrevious refuses v unless its log extends the one of earlier, an
// export of the same workspace verified before. It names the first entry
// that differs between the two exports when they share one.
func CheckPrevious(v, earlier *Verified) error {
	if earlier.Workspace != v.Workspace || earlier.Signer != v.Signer {
		return fmt.Errorf("the earlier export is of workspace %q signed by %s, this one of %q signed by %s: not the same log", earlier.Workspace, earlier.Signer, v.Workspace, v.Signer)
	}
	ok, reason := extends(v, earlier.cp.Size, earlier.cp.Root)
	if ok {
		return nil
	}
	re := &RewrittenError{Size: earlier.cp.Size, Index: -1, Reason: reason}
	old := map[int64]Entry{}
	for _, e := range earlier.entries {
		old[e.Index] = e
	}
	sort.Slice(v.entries, func(i, j int) bool { return v.entries[i].Index < v.entries[j].Index })
	for _, e := range v.entries {
		if o, ok := old[e.Index]; ok && !bytes.Equal(o.Raw, e.Raw) {
			re.Index = e.Index
			re.What = fmt.Sprintf("%s now, %s in the earlier export", describe(e.Header), describe(o.Header))
			break
		}
	}
	return re
}

// ClientState is what a client keeps between verifies (a small JSON file):
// per log, the latest checkpoint verified. A later export must extend it.
type ClientState struct {
	Version int                 `json:"version"`
	Logs    map[string]StateLog `json:"logs"`
}

// StateLog is the latest verified checkpoint of one log.
type StateLog struct {
	Workspace string    `json:"workspace"`
	Signer    string    `json:"signer"`
	Size      int64     `json:"size"`
	Root      string    `json:"root"`
	Verified  time.Time `json:"verified"`
}

const maxStateFile = 4 << 20

// stateKey names v's log in a state file: its origin, or for an export
// from before witnessing the signer and workspace.
func stateKey(v *Verified) string {
	if v.Origin != "" {
		return v.Origin
	}
	return "legacy/" + v.Signer + "/" + v.Workspace
}

// LoadState reads a state file; a missing file is an empty state.
func LoadState(path string) (*ClientState, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return &ClientState{Version: 1, Logs: map[string]StateLog{}}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("state file: %w", err)
	}
	st, err := parseState(b)
	if err != nil {
		return nil, fmt.Errorf("state file %s: %w", path, err)
	}
	return st, nil
}

func parseState(b []byte) (*ClientState, error) {
	if len(b) > maxStateFile {
		return nil, fmt.Errorf("larger than %d bytes", maxStateFile)
	}
	var st ClientState
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&st); err != nil {
		return nil, fmt.Errorf("not a verify state file: %v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("not a verify state file: trailing data")
	}
	if st.Version != 1 {
		return nil, fmt.Errorf("state file version %d (this program reads 1)", st.Version)
	}
	if st.Logs == nil {
		st.Logs = map[string]StateLog{}
	}
	for k, l := range st.Logs {
		if r, err := base64.StdEncoding.DecodeString(l.Root); err != nil || len(r) != tlog.HashSize || l.Size < 0 {
			return nil, fmt.Errorf("log %q: malformed size or root", k)
		}
	}
	return &st, nil
}

// Check refuses v when the state has seen its log at a checkpoint that v
// does not prove it extends.
func (st *ClientState) Check(v *Verified) error {
	l, ok := st.Logs[stateKey(v)]
	if !ok {
		return nil
	}
	var root tlog.Hash
	b, _ := base64.StdEncoding.DecodeString(l.Root)
	copy(root[:], b)
	if ok, reason := extends(v, l.Size, root); !ok {
		return &RewrittenError{Size: l.Size, Index: -1, Reason: fmt.Sprintf("%s; you verified that log on %s: compare with that export using --previous to find the entry that differs", reason, l.Verified.Format(time.DateOnly))}
	}
	return nil
}

// Update records v's checkpoint as the latest seen of its log (a smaller
// one, from an older export verified later, leaves the state as it is).
func (st *ClientState) Update(v *Verified, now time.Time) {
	k := stateKey(v)
	if l, ok := st.Logs[k]; ok && l.Size > v.cp.Size {
		return
	}
	st.Logs[k] = StateLog{Workspace: v.Workspace, Signer: v.Signer, Size: v.cp.Size, Root: base64.StdEncoding.EncodeToString(v.cp.Root[:]), Verified: now.UTC()}
}

// Save writes the state file atomically, readable by its owner only.
func (st *ClientState) Save(path string) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.Write(path, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("state file %s: %w", filepath.Base(path), err)
	}
	return nil
}
