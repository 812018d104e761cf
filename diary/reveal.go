package diary

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"filippo.io/age"
)

// RevealFormat names the reveal file format.
const RevealFormat = "workspace-diary-reveal/1"

// maxReveal bounds a decrypted reveal file.
const maxReveal = 3 * MaxImageBytes

// revealFile is what `diary reveal` writes (encrypted like an export): the
// original under a cover and the salt that opens the capture's commitment.
type revealFile struct {
	Format    string `json:"format"`
	Workspace string `json:"workspace"`
	Shot      string `json:"shot"`
	Salt      string `json:"salt"`
	Original  []byte `json:"original"`
	Thumbnail []byte `json:"thumbnail"`
}

// Reveal writes a reveal file of a shot, encrypted to the workspace's
// export recipients: it proves, against an export, what a cover hid.
func (s *Store) Reveal(ctx context.Context, id string, extra []string, w io.Writer) error {
	return s.reveal(ctx, id, func(ws string) ([]age.Recipient, error) { return s.Recipients(ctx, ws, extra) }, w)
}

// reveal writes the reveal file of a shot encrypted to what recipients
// returns for the shot's workspace.
func (s *Store) reveal(ctx context.Context, id string, recipients func(ws string) ([]age.Recipient, error), w io.Writer) error {
	si, sec, orig, err := s.shotOriginal(ctx, id)
	if err != nil {
		return err
	}
	recips, err := recipients(si.ws)
	if err != nil {
		return err
	}
	thumb, err := s.readBlob(si.ws, id, blobThumb, sec.key)
	if err != nil {
		return err
	}
	b, err := json.Marshal(revealFile{Format: RevealFormat, Workspace: si.ws, Shot: id, Salt: hex.EncodeToString(sec.salt), Original: orig, Thumbnail: thumb})
	if err != nil {
		return err
	}
	aw, err := age.Encrypt(w, recips...)
	if err != nil {
		return fmt.Errorf("reveal: %w", err)
	}
	if _, err := aw.Write(b); err != nil {
		return fmt.Errorf("reveal: %w", err)
	}
	if err := aw.Close(); err != nil {
		return fmt.Errorf("reveal: %w", err)
	}
	s.log.Info("shot revealed", "workspace", si.ws, "shot", id)
	return nil
}

// ErrNotReveal says the input is not a reveal file.
var ErrNotReveal = errors.New("not a workspace diary reveal file, or truncated")

// parseReveal decodes a decrypted reveal file strictly.
func parseReveal(b []byte) (*revealFile, error) {
	if len(b) > maxReveal {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrNotReveal, maxReveal)
	}
	var rf revealFile
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rf); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotReveal, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: trailing data", ErrNotReveal)
	}
	if rf.Format != RevealFormat {
		return nil, fmt.Errorf("%w: format %q", ErrNotReveal, rf.Format)
	}
	if err := checkID("shot", rf.Shot); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotReveal, err)
	}
	if s, err := hex.DecodeString(rf.Salt); err != nil || len(s) != 32 {
		return nil, fmt.Errorf("%w: malformed salt", ErrNotReveal)
	}
	if len(rf.Original) == 0 || len(rf.Thumbnail) == 0 {
		return nil, fmt.Errorf("%w: no image", ErrNotReveal)
	}
	return &rf, nil
}

// Revealed is a checked reveal.
type Revealed struct {
	Workspace string `json:"workspace"`
	Shot      string `json:"shot"`
	Entry     int64  `json:"entry"`
	Covered   bool   `json:"was_covered"`
	Original  []byte `json:"-"`
}

// VerifyReveal checks a reveal against an export: the export must verify,
// hold the shot's capture entry, and the revealed original and thumbnail
// must open the capture's commitments.
func VerifyReveal(export, reveal io.Reader, ids []age.Identity, opts VerifyOptions) (*Revealed, error) {
	pr, err := DecryptExport(export, ids)
	if err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	tr := &trackedReader{r: pr}
	d, err := parseExport(tr)
	if err == nil {
		_, err = io.Copy(io.Discard, tr)
	}
	if tr.err != nil || err != nil {
		return nil, fmt.Errorf("export: %w: %v", ErrNotExport, errors.Join(tr.err, err))
	}
	v, err := verifyData(d, opts)
	if err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	rr, err := age.Decrypt(reveal, ids...)
	if err != nil {
		return nil, fmt.Errorf("reveal: %w: %v", ErrNotReveal, err)
	}
	b, err := io.ReadAll(io.LimitReader(rr, maxReveal+1))
	if err != nil {
		return nil, fmt.Errorf("reveal: the file was modified or damaged (%v)", err)
	}
	rf, err := parseReveal(b)
	if err != nil {
		return nil, err
	}
	return checkReveal(d, v, rf)
}

func checkReveal(d *exportData, v *Verified, rf *revealFile) (*Revealed, error) {
	if rf.Workspace != v.Workspace {
		return nil, fmt.Errorf("the reveal is for workspace %q, the export for %q", rf.Workspace, v.Workspace)
	}
	salt, err := hex.DecodeString(rf.Salt)
	if err != nil {
		return nil, fmt.Errorf("the reveal's salt is not hex: %w", err)
	}
	for _, me := range d.m.Entries {
		h, err := parseHeader([]byte(me.Header))
		if err != nil || h.Type != TypeCapture || h.Ref != rf.Shot || me.Body == "" {
			continue
		}
		var c CaptureBody
		if err := decodeBody([]byte(me.Body), &c); err != nil {
			return nil, &EntryError{Index: me.I, What: describe(h), Err: err}
		}
		if commitment("original", salt, rf.Original) != c.Commit {
			return nil, &EntryError{Index: me.I, What: describe(h), Err: errors.New("the revealed image is not the one that was captured")}
		}
		if commitment("thumbnail", salt, rf.Thumbnail) != c.ThumbCommit {
			return nil, &EntryError{Index: me.I, What: describe(h), Err: errors.New("the revealed thumbnail is not the one that was captured")}
		}
		return &Revealed{Workspace: rf.Workspace, Shot: rf.Shot, Entry: me.I, Covered: d.m.Shots[rf.Shot].Covered, Original: rf.Original}, nil
	}
	return nil, fmt.Errorf("the export has no capture entry for shot %s", rf.Shot)
}
