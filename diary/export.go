package diary

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sort"
	"time"

	"filippo.io/age"
	"github.com/workspace-sandbox/workspace/tracking"
	"golang.org/x/mod/sumdb/tlog"
)

// ExportFormat names the export format and its version: 3 carries witness
// evidence and C2SP checkpoints (evidence.go); 2, from before witnessing,
// is still read and verified.
const (
	ExportFormat       = "workspace-diary-export/3"
	LegacyExportFormat = "workspace-diary-export/2"
)

// Limits of the export reader: a file beyond them is refused, not read.
const (
	maxManifest    = 256 << 20
	maxExportFiles = 200000
	maxExportTotal = 8 << 30
)

// manifest is manifest.json of an export.
type manifest struct {
	Format      string                  `json:"format"`
	Workspace   string                  `json:"workspace"`
	Client      string                  `json:"client,omitempty"`
	From        time.Time               `json:"from"`
	To          time.Time               `json:"to"`
	Created     time.Time               `json:"created"`
	SlotSeconds int                     `json:"slot_seconds"`
	Signer      string                  `json:"signer"`
	Checkpoint  string                  `json:"checkpoint"`
	Statement   string                  `json:"statement"` // signed: the labels above (statement.go)
	First       int64                   `json:"first"`
	Entries     []manifestEntry         `json:"entries"`
	Shots       map[string]manifestShot `json:"shots"`
	Witness     *evidence               `json:"witness,omitempty"` // format 3
}

// manifestEntry is one log entry: its exact header (the leaf), its body when
// the export is about it, and its inclusion proof in the checkpoint's tree.
type manifestEntry struct {
	I      int64    `json:"i"`
	Header string   `json:"header"`
	Body   string   `json:"body,omitempty"`
	Proof  []string `json:"proof"`
}

// manifestShot says which images of a shot the export holds. Salt is set
// only with the original (to check its commitment).
type manifestShot struct {
	Salt    string `json:"salt,omitempty"`
	Covered bool   `json:"covered,omitempty"`
}

// Export file names of a shot's images.
func shotFile(id, kind string) string {
	switch kind {
	case blobThumb:
		return "shots/" + id + ".thumb.jpg"
	case blobCovered:
		return "shots/" + id + ".covered.jpg"
	case blobCoveredThumb:
		return "shots/" + id + ".covered-thumb.jpg"
	}
	return "shots/" + id + ".jpg"
}

var shotFileRE = regexp.MustCompile(`^shots/[A-Za-z0-9][A-Za-z0-9_-]{0,63}\.(jpg|thumb\.jpg|covered\.jpg|covered-thumb\.jpg)$`)

// ExportSummary says what an export holds.
type ExportSummary struct {
	Entries    int   `json:"entries"`
	Bodies     int   `json:"bodies"`
	Shots      int   `json:"shots"`
	Checkpoint int64 `json:"checkpoint_size"`
}

// Recipients returns the age recipients of ws's exports: the client's from
// the profile, extra ones, and the freelancer's own identity.
func (s *Store) Recipients(ctx context.Context, ws string, extra []string) ([]age.Recipient, error) {
	wi, err := s.Workspace(ctx, ws)
	if err != nil {
		return nil, err
	}
	keys, err := s.Keys()
	if err != nil {
		return nil, err
	}
	var texts []string
	if wi.Recipient != "" {
		texts = append(texts, wi.Recipient)
	}
	texts = append(texts, extra...)
	if len(texts) == 0 {
		return nil, fmt.Errorf("%w: the profile of %q names no client recipient (client { recipient = \"age1...\" }); give one with --recipient", ErrInvalid, ws)
	}
	out := []age.Recipient{keys.Recipient()}
	for _, t := range texts {
		r, err := age.ParseX25519Recipient(t)
		if err != nil {
			return nil, fmt.Errorf("%w: recipient %q: %v", ErrInvalid, t, err)
		}
		out = append(out, r)
	}
	return out, nil
}

// Export writes a signed export of ws for [from, to), encrypted to the
// client's recipient (and extra ones, and the freelancer's own identity).
// It refuses a diary that fails Check.
func (s *Store) Export(ctx context.Context, ws string, from, to time.Time, extra []string, w io.Writer) (ExportSummary, error) {
	return s.ExportAt(ctx, ws, from, to, extra, 0, w)
}

// ExportAt is Export with the log's checkpoint of the given size (one the
// witnesses were just asked to cosign; 0: the latest).
func (s *Store) ExportAt(ctx context.Context, ws string, from, to time.Time, extra []string, size int64, w io.Writer) (ExportSummary, error) {
	if !to.After(from) {
		return ExportSummary{}, fmt.Errorf("%w: the range ends before it starts", ErrInvalid)
	}
	recips, err := s.Recipients(ctx, ws, extra)
	if err != nil {
		return ExportSummary{}, err
	}
	return s.exportTo(ctx, ws, from, to, recips, size, w)
}

// exportTo writes the export at the checkpoint of the given size (0: the
// latest) encrypted to recips (ExportAt's recipients, or
// ExportWithPassphrase's one scrypt recipient).
func (s *Store) exportTo(ctx context.Context, ws string, from, to time.Time, recips []age.Recipient, size int64, w io.Writer) (ExportSummary, error) {
	if !to.After(from) {
		return ExportSummary{}, fmt.Errorf("%w: the range ends before it starts", ErrInvalid)
	}
	keys, err := s.Keys()
	if err != nil {
		return ExportSummary{}, err
	}
	wi, err := s.Workspace(ctx, ws)
	if err != nil {
		return ExportSummary{}, err
	}
	if _, err := s.Check(ctx, ws); err != nil {
		return ExportSummary{}, fmt.Errorf("the diary of %q is damaged, not exporting it: %w", ws, err)
	}
	m, files, err := s.buildExport(ctx, wi, from, to, size)
	if err != nil {
		return ExportSummary{}, err
	}
	m.Signer = keys.VerifierKey()
	m.Created = s.now().UTC()
	if m.Statement, err = signStatement(m, keys.Signer()); err != nil {
		return ExportSummary{}, fmt.Errorf("export: sign its statement: %w", err)
	}
	aw, err := age.Encrypt(w, recips...)
	if err != nil {
		return ExportSummary{}, fmt.Errorf("export: %w", err)
	}
	if err := writeTar(aw, m, files); err != nil {
		return ExportSummary{}, fmt.Errorf("export: %w", err)
	}
	if err := aw.Close(); err != nil {
		return ExportSummary{}, fmt.Errorf("export: %w", err)
	}
	sum := ExportSummary{Entries: len(m.Entries), Shots: len(m.Shots)}
	for _, e := range m.Entries {
		if e.Body != "" {
			sum.Bodies++
		}
	}
	cp, err := parseCheckpointNote(m.Checkpoint)
	if err != nil {
		return sum, fmt.Errorf("export written, but its checkpoint does not parse: %w", err)
	}
	sum.Checkpoint = cp.Size
	if err := s.rememberExport(ctx, ws, cp.Size); err != nil {
		s.log.Warn("could not remember an export's checkpoint", "workspace", ws, "error", err)
	}
	return sum, nil
}

type namedFile struct {
	name string
	data []byte
}

func writeTar(w io.Writer, m *manifest, files []namedFile) error {
	mb, err := json.Marshal(m)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(w)
	all := append([]namedFile{{"manifest.json", mb}}, files...)
	for _, f := range all {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o644, Size: int64(len(f.data)), ModTime: m.Created, Format: tar.FormatPAX}); err != nil {
			return err
		}
		if _, err := tw.Write(f.data); err != nil {
			return err
		}
	}
	return tw.Close()
}

func (s *Store) buildExport(ctx context.Context, wi WorkspaceInfo, from, to time.Time, size int64) (*manifest, []namedFile, error) {
	ws := wi.Name
	signed, cp, err := s.exportCheckpoint(ctx, ws, size)
	if err != nil {
		return nil, nil, err
	}
	cands, err := s.rangeEntries(ctx, ws, from, to, false)
	if err != nil {
		return nil, nil, err
	}
	selected := selectForExport(cands, from, to)
	if len(selected) == 0 {
		return nil, nil, fmt.Errorf("%w: the diary of %q has nothing between %s and %s to export", ErrNotFound, ws, from.Format(time.DateTime), to.Format(time.DateTime))
	}
	first := cp.Size
	for i := range selected {
		first = min(first, i)
	}
	all, err := loadEntries(ctx, s.db, ws, `idx >= ? AND idx < ?`, first, cp.Size)
	if err != nil {
		return nil, nil, err
	}
	r := newHashReader(ctx, s.db, ws)
	if err := r.loadAll(); err != nil {
		return nil, nil, err
	}
	m := &manifest{Format: ExportFormat, Workspace: ws, Client: wi.Client, From: from.UTC(), To: to.UTC(), SlotSeconds: wi.SlotSeconds,
		Checkpoint: string(signed), First: first, Shots: map[string]manifestShot{}}
	var files []namedFile
	slot := 0 // the slot length of the captures in the range
	for _, e := range all {
		proof, err := proofFor(r, e.Index, cp.Size)
		if err != nil {
			return nil, nil, fmt.Errorf("proof of entry %d: %w", e.Index, err)
		}
		me := manifestEntry{I: e.Index, Header: string(e.Raw), Proof: proof}
		if selected[e.Index] {
			me.Body = string(e.Body)
			if e.Header.Type == TypeCapture {
				var c CaptureBody
				if err := decodeBody(e.Body, &c); err != nil {
					return nil, nil, fmt.Errorf("entry %d: %w", e.Index, err)
				}
				if slot == 0 {
					slot = c.SlotSeconds
				} else if c.SlotSeconds != slot {
					return nil, nil, fmt.Errorf("%w: the slot length changed inside this range (%d s and %d s slots, at entry %d): export the parts before and after the change separately", ErrInvalid, slot, c.SlotSeconds, e.Index)
				}
				fs, ms, err := s.exportShot(ctx, e.Header.Ref)
				if err != nil {
					return nil, nil, err
				}
				if ms != nil {
					m.Shots[e.Header.Ref] = *ms
					files = append(files, fs...)
				}
			}
		}
		m.Entries = append(m.Entries, me)
	}
	if slot != 0 {
		m.SlotSeconds = slot
	}
	if m.Witness, err = s.buildEvidence(ctx, ws, first, cp, r); err != nil {
		return nil, nil, err
	}
	return m, files, nil
}

// exportShot returns the images an export shows of a shot: the original
// and thumbnail (with the salt) when uncovered, only the covered image and
// thumbnail when covered, nothing when shredded.
func (s *Store) exportShot(ctx context.Context, id string) ([]namedFile, *manifestShot, error) {
	si, err := s.shot(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	if si.secret == nil {
		return nil, nil, nil
	}
	sec, err := s.shotSecret(ctx, si)
	if err != nil {
		return nil, nil, err
	}
	kinds := []string{blobOriginal, blobThumb}
	files := kinds
	ms := &manifestShot{Salt: hex.EncodeToString(sec.salt)}
	if si.state == tracking.ShotCovered {
		c, err := s.lastCover(ctx, si)
		if err != nil {
			return nil, nil, err
		}
		kinds = []string{blobCovered, blobCoveredThumb}
		img, th := c.files()
		files = []string{img, th}
		ms = &manifestShot{Covered: true}
	}
	var out []namedFile
	for i, k := range kinds {
		b, err := s.readBlob(si.ws, id, files[i], sec.key)
		if err != nil {
			return nil, nil, err
		}
		out = append(out, namedFile{shotFile(id, k), b})
	}
	return out, ms, nil
}

// selectForExport picks the entries an export of [from, to) is about.
func selectForExport(cands []Entry, from, to time.Time) map[int64]bool {
	f, t := from.UnixMilli(), to.UnixMilli()
	sel := map[int64]bool{}
	shots := map[string]bool{}
	sessions := map[string]bool{}
	for _, e := range cands {
		inRange := e.Header.Time >= f && e.Header.Time < t
		switch e.Header.Type {
		case TypeCapture:
			if inRange {
				sel[e.Index] = true
				shots[e.Header.Ref] = true
				var c CaptureBody
				if decodeBody(e.Body, &c) == nil && c.Session != "" {
					sessions[c.Session] = true
				}
			}
		case TypeActivity, TypeIdle, TypeGap, TypeManual:
			var sp SpanBody
			if inRange {
				sel[e.Index] = true
			} else if e.Header.Type != TypeActivity && decodeBody(e.Body, &sp) == nil && sp.End*1000 > f && sp.Start*1000 < t {
				sel[e.Index] = true
			}
		}
	}
	for _, e := range cands {
		switch e.Header.Type {
		case TypeCover, TypeDelete:
			if shots[e.Header.Ref] {
				sel[e.Index] = true
			}
		case TypePrune:
			var pb PruneBody
			if decodeBody(e.Body, &pb) == nil {
				for _, id := range pb.Shots {
					if shots[id] {
						sel[e.Index] = true
						break
					}
				}
			}
		case TypeSessionStart, TypeSessionStop:
			var sb SessionBody
			if decodeBody(e.Body, &sb) == nil && (sessions[sb.ID] || (sb.Time*1000 >= f && sb.Time*1000 < t)) {
				sel[e.Index] = true
			}
		}
	}
	return sel
}

// exportData is a parsed (not yet verified) export.
type exportData struct {
	m     manifest
	files map[string][]byte
}

// ErrNotExport says the input is not a (complete) export.
var ErrNotExport = errors.New("not a workspace diary export, or truncated")

// parseExport reads the decrypted tar of an export, strictly and within
// limits. It does not verify anything beyond the structure.
func parseExport(r io.Reader) (*exportData, error) {
	tr := tar.NewReader(r)
	d := &exportData{files: map[string][]byte{}}
	var total int64
	seenManifest := false
	for n := 0; ; n++ {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrNotExport, err)
		}
		if n >= maxExportFiles {
			return nil, fmt.Errorf("%w: more than %d files", ErrNotExport, maxExportFiles)
		}
		if h.Typeflag != tar.TypeReg {
			return nil, fmt.Errorf("%w: %q is not a regular file", ErrNotExport, h.Name)
		}
		limit := int64(MaxImageBytes)
		if h.Name == "manifest.json" {
			limit = maxManifest
			if n != 0 {
				return nil, fmt.Errorf("%w: manifest.json is not the first file", ErrNotExport)
			}
		} else if !shotFileRE.MatchString(h.Name) {
			return nil, fmt.Errorf("%w: unexpected file %q", ErrNotExport, h.Name)
		}
		if h.Size < 0 || h.Size > limit {
			return nil, fmt.Errorf("%w: %q is %d bytes (limit %d)", ErrNotExport, h.Name, h.Size, limit)
		}
		if total += h.Size; total > maxExportTotal {
			return nil, fmt.Errorf("%w: larger than %d bytes", ErrNotExport, int64(maxExportTotal))
		}
		if _, dup := d.files[h.Name]; dup || (h.Name == "manifest.json" && seenManifest) {
			return nil, fmt.Errorf("%w: %q appears twice", ErrNotExport, h.Name)
		}
		b, err := io.ReadAll(io.LimitReader(tr, h.Size))
		if err != nil || int64(len(b)) != h.Size {
			return nil, fmt.Errorf("%w: %q is cut short", ErrNotExport, h.Name)
		}
		if h.Name == "manifest.json" {
			seenManifest = true
			dec := json.NewDecoder(bytes.NewReader(b))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&d.m); err != nil {
				return nil, fmt.Errorf("%w: manifest.json: %v", ErrNotExport, err)
			}
			if d.m.Format != ExportFormat && d.m.Format != LegacyExportFormat {
				return nil, fmt.Errorf("%w: format %q (this program reads %s and %s)", ErrNotExport, d.m.Format, ExportFormat, LegacyExportFormat)
			}
			continue
		}
		d.files[h.Name] = b
	}
	if !seenManifest {
		return nil, fmt.Errorf("%w: no manifest.json", ErrNotExport)
	}
	return d, nil
}

// VerifyOptions tune Verify.
type VerifyOptions struct {
	// Signer pins the expected signer key; empty accepts the export's own
	// (the report prints it, to compare with what the freelancer gave).
	Signer string
	Loc    *time.Location
	// Witnesses pins witness keys (cosignature/v1 verifier keys): the
	// export's checkpoint must be cosigned by Quorum of them (all of them
	// when 0), and every slot gets the delay between its captures and
	// their first cosignature (verify_witness.go).
	Witnesses []string
	Quorum    int
	// MaxDelay is the longest such delay of a slot witnessed on time
	// (DefaultMaxDelay when 0).
	MaxDelay time.Duration
	// Context bounds the work of the verify (the report's aggregation);
	// nil for none.
	Context context.Context
}

// Verified is a verified export.
type Verified struct {
	Workspace string    `json:"workspace"`
	Client    string    `json:"client,omitempty"`
	From      time.Time `json:"from"`
	To        time.Time `json:"to"`
	Created   time.Time `json:"created"`
	Signer    string    `json:"signer"`
	// SignerPinned: the signer was checked against a key the client gave
	// (VerifyOptions.Signer); false means anyone's key was accepted.
	SignerPinned bool               `json:"signer_pinned"`
	Checkpoint   int64              `json:"checkpoint_size"`
	Entries      int                `json:"entries_checked"`
	Bodies       int                `json:"entries_with_content"`
	View         tracking.DiaryView `json:"diary"`
	Thumbs       map[string][]byte  `json:"-"`
	Images       map[string][]byte  `json:"-"`
	// Format is the export's format; Origin its log's (format 3).
	Format  string         `json:"format"`
	Origin  string         `json:"origin,omitempty"`
	Witness *WitnessReport `json:"witness,omitempty"`

	cp       Checkpoint
	entries  []Entry
	previous []provenCheckpoint
}

// DecryptExport opens an age-encrypted export with ids, with errors a
// client understands.
func DecryptExport(r io.Reader, ids []age.Identity) (io.Reader, error) {
	pr, err := age.Decrypt(r, ids...)
	if err != nil {
		var nm *age.NoIdentityMatchError
		if errors.As(err, &nm) {
			return nil, noMatchError(nm, ids)
		}
		return nil, fmt.Errorf("%w: %v", ErrNotExport, err)
	}
	return pr, nil
}

// Verify decrypts and checks an export: the checkpoint signature, every
// entry's inclusion proof, contiguity up to the checkpoint, every body
// against its header, every image against its commitment or cover entry.
// The first failure is returned, naming the entry.
func Verify(r io.Reader, ids []age.Identity, opts VerifyOptions) (*Verified, error) {
	pr, err := DecryptExport(r, ids)
	if err != nil {
		return nil, err
	}
	tr := &trackedReader{r: pr}
	d, err := parseExport(tr)
	if tr.err != nil {
		return nil, fmt.Errorf("%w: the file was modified or damaged (%v)", ErrNotExport, tr.err)
	}
	if err != nil {
		return nil, err
	}
	// age reports a damaged payload only when it is read to the end.
	if _, err := io.Copy(io.Discard, tr); err != nil {
		return nil, fmt.Errorf("%w: the file was modified or damaged (%v)", ErrNotExport, err)
	}
	return verifyData(d, opts)
}

// trackedReader remembers the first error of the decrypting reader, to
// tell a damaged file from a malformed one.
type trackedReader struct {
	r   io.Reader
	err error
}

func (t *trackedReader) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) && t.err == nil {
		t.err = err
	}
	return n, err
}

func verifyData(d *exportData, opts VerifyOptions) (*Verified, error) {
	m := &d.m
	signer := m.Signer
	if opts.Signer != "" {
		if opts.Signer != m.Signer {
			return nil, fmt.Errorf("signed by %q, not by the expected signer %q", m.Signer, opts.Signer)
		}
		signer = opts.Signer
	}
	cp, err := OpenCheckpoint([]byte(m.Checkpoint), signer, m.Workspace)
	if err != nil {
		return nil, err
	}
	if cp.Workspace != m.Workspace {
		return nil, fmt.Errorf("the checkpoint is for workspace %q, the export says %q", cp.Workspace, m.Workspace)
	}
	if m.SlotSeconds <= 0 || m.SlotSeconds > 24*3600 {
		return nil, fmt.Errorf("slot length %d s is not plausible", m.SlotSeconds)
	}
	v := &Verified{Workspace: m.Workspace, Client: m.Client, From: m.From, To: m.To, Created: m.Created, Signer: signer, SignerPinned: opts.Signer != "", Checkpoint: cp.Size,
		Thumbs: map[string][]byte{}, Images: map[string][]byte{}}
	for _, me := range m.Entries {
		if me.I >= cp.Size {
			return nil, &EntryError{Index: me.I, Err: fmt.Errorf("is beyond the signed checkpoint, which covers %d entries (an older checkpoint?)", cp.Size)}
		}
	}
	entries := make([]Entry, 0, len(m.Entries))
	next := m.First
	for _, me := range m.Entries {
		if me.I != next {
			if me.I > next {
				return nil, &EntryError{Index: next, Err: errors.New("is missing from the export")}
			}
			return nil, &EntryError{Index: me.I, Err: errors.New("appears out of order or twice")}
		}
		next++
		h, err := parseHeader([]byte(me.Header))
		if err != nil {
			return nil, &EntryError{Index: me.I, Err: err}
		}
		proof, err := parseProof(me.Proof)
		if err != nil {
			return nil, &EntryError{Index: me.I, What: describe(h), Err: err}
		}
		if err := tlog.CheckRecord(proof, cp.Size, cp.Root, me.I, tlog.RecordHash([]byte(me.Header))); err != nil {
			return nil, &EntryError{Index: me.I, What: describe(h), Err: errors.New("is not in the signed log (altered, or from another log)")}
		}
		if h.WS != m.Workspace {
			return nil, &EntryError{Index: me.I, What: describe(h), Err: fmt.Errorf("belongs to workspace %q", h.WS)}
		}
		e := Entry{Index: me.I, Header: h, Raw: []byte(me.Header)}
		if me.Body != "" {
			if sum256hex([]byte(me.Body)) != h.Body {
				return nil, &EntryError{Index: me.I, What: describe(h), Err: errors.New("its content does not match the logged hash (altered)")}
			}
			e.Body = []byte(me.Body)
			v.Bodies++
		}
		entries = append(entries, e)
	}
	if next != cp.Size {
		return nil, &EntryError{Index: next, Err: fmt.Errorf("is missing: the export ends before the signed checkpoint's %d entries (truncated)", cp.Size)}
	}
	v.Entries = len(entries)
	if err := verifyShots(d, entries, v); err != nil {
		return nil, err
	}
	// Last: the labels the entries do not sign (the entry checks above
	// name the entry when one is at fault).
	if err := checkStatement(m, signer); err != nil {
		return nil, err
	}
	loc := opts.Loc
	if loc == nil {
		loc = time.Local
	}
	if err := checkRange(m.From, m.To); err != nil {
		return nil, err
	}
	if err := checkTimes(entries, m.From, m.To); err != nil {
		return nil, err
	}
	ctx := opts.Context
	if ctx == nil {
		ctx = context.Background()
	}
	view, err := Aggregate(ctx, entries, ViewParams{Workspace: m.Workspace, Client: m.Client, From: m.From, To: m.To, SlotSeconds: m.SlotSeconds, Loc: loc})
	if err != nil {
		return nil, err
	}
	v.View = view
	v.Format, v.cp, v.entries = m.Format, cp, entries
	if err := checkWitnessing(d, cp, entries, opts, v); err != nil {
		return nil, err
	}
	return v, nil
}

func verifyShots(d *exportData, entries []Entry, v *Verified) error {
	covers := map[string]CoverBody{}
	coverAt := map[string][]Entry{} // every cover entry of a shot
	shredded := map[string]bool{}
	for _, e := range entries {
		if e.Body == nil {
			continue
		}
		switch e.Header.Type {
		case TypeCover:
			var c CoverBody
			if err := decodeBody(e.Body, &c); err != nil {
				return &EntryError{Index: e.Index, What: describe(e.Header), Err: err}
			}
			covers[c.Shot] = c
			coverAt[c.Shot] = append(coverAt[c.Shot], e)
		case TypeDelete:
			var db DeleteBody
			if err := decodeBody(e.Body, &db); err != nil {
				return &EntryError{Index: e.Index, What: describe(e.Header), Err: err}
			}
			shredded[db.Shot] = true
		case TypePrune:
			var pb PruneBody
			if err := decodeBody(e.Body, &pb); err != nil {
				return &EntryError{Index: e.Index, What: describe(e.Header), Err: err}
			}
			for _, id := range pb.Shots {
				shredded[id] = true
			}
		}
	}
	used := map[string]bool{}
	for _, e := range entries {
		if e.Body == nil || e.Header.Type != TypeCapture {
			continue
		}
		bad := func(f string, a ...any) error {
			return &EntryError{Index: e.Index, What: describe(e.Header), Err: fmt.Errorf(f, a...)}
		}
		var c CaptureBody
		if err := decodeBody(e.Body, &c); err != nil {
			return bad("%v", err)
		}
		if c.ID != e.Header.Ref {
			return bad("capture id %q does not match the header", c.ID)
		}
		// The slot length is signed in every capture entry; the manifest's
		// copy (which the totals use) must agree with it.
		if c.SlotSeconds != d.m.SlotSeconds {
			return bad("was taken with %d s slots, but the export's totals use %d s slots (altered)", c.SlotSeconds, d.m.SlotSeconds)
		}
		for _, ce := range coverAt[c.ID] {
			var cv CoverBody
			if decodeBody(ce.Body, &cv) == nil && cv.Commit != c.Commit {
				return &EntryError{Index: ce.Index, What: describe(ce.Header), Err: fmt.Errorf("its commitment differs from the one capture entry %d made", e.Index)}
			}
		}
		ms, has := d.m.Shots[c.ID]
		get := func(kind string) []byte {
			name := shotFile(c.ID, kind)
			used[name] = true
			return d.files[name]
		}
		switch {
		case shredded[c.ID]:
			if has {
				return bad("the export holds images of a shot the log says were shredded")
			}
		case !has:
			return bad("the screenshot is missing from the export")
		case ms.Covered:
			cv, ok := covers[c.ID]
			if !ok {
				return bad("the export shows the shot covered, but the log has no cover entry for it")
			}
			if ms.Salt != "" || d.files[shotFile(c.ID, blobOriginal)] != nil {
				return bad("the export holds the original of a covered shot")
			}
			img, th := get(blobCovered), get(blobCoveredThumb)
			if img == nil || sum256hex(img) != cv.Covered {
				return bad("the covered screenshot does not match its cover entry")
			}
			if th == nil || sum256hex(th) != cv.CoveredThumb {
				return bad("the covered thumbnail does not match its cover entry")
			}
			v.Images[c.ID], v.Thumbs[c.ID] = img, th
		default:
			if _, ok := covers[c.ID]; ok {
				return bad("the log says the shot was covered, but the export shows it uncovered")
			}
			salt, err := hex.DecodeString(ms.Salt)
			if err != nil || len(salt) != 32 {
				return bad("the shot's salt is malformed")
			}
			img, th := get(blobOriginal), get(blobThumb)
			if img == nil || commitment("original", salt, img) != c.Commit {
				return bad("the screenshot does not match its commitment (altered)")
			}
			if th == nil || commitment("thumbnail", salt, th) != c.ThumbCommit {
				return bad("the thumbnail does not match its commitment (altered)")
			}
			v.Images[c.ID], v.Thumbs[c.ID] = img, th
		}
	}
	var extra []string
	for name := range d.files {
		if !used[name] {
			extra = append(extra, name)
		}
	}
	if len(extra) > 0 {
		sort.Strings(extra)
		return fmt.Errorf("the export holds %s, which no entry accounts for", extra[0])
	}
	for id := range d.m.Shots {
		if !used[shotFile(id, blobOriginal)] && !used[shotFile(id, blobCovered)] {
			return fmt.Errorf("the export lists shot %s, which no entry accounts for", id)
		}
	}
	return nil
}
