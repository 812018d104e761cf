package witness

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"filippo.io/torchwood"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// Limits of the protocol (c2sp.org/tlog-witness) and of what we read.
const (
	// MaxProofLines is the most consistency proof lines a request may carry.
	MaxProofLines = 63
	// MaxRequest bounds an add-checkpoint request body.
	MaxRequest = 64 << 10
	// MaxResponse bounds a witness's answer.
	MaxResponse = 64 << 10
	// ContentTypeSize is the Content-Type of a 409 answer.
	ContentTypeSize = "text/x.tlog.size"
)

// AddCheckpoint is an add-checkpoint request: the size of the checkpoint
// the witness last cosigned for this log, a consistency proof from it, and
// the new signed checkpoint.
type AddCheckpoint struct {
	OldSize    int64
	Proof      tlog.TreeProof
	Checkpoint []byte // a signed note: checkpoint text, blank line, signatures
}

// Marshal is the request body.
func (r AddCheckpoint) Marshal() []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "old %d\n", r.OldSize)
	for _, h := range r.Proof {
		b.WriteString(base64.StdEncoding.EncodeToString(h[:]))
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	b.Write(r.Checkpoint)
	return b.Bytes()
}

// ParseAddCheckpoint parses a request body strictly. It checks the form
// only: the checkpoint's signature is for the witness to check.
func ParseAddCheckpoint(body []byte) (AddCheckpoint, error) {
	if len(body) > MaxRequest {
		return AddCheckpoint{}, fmt.Errorf("request is larger than %d bytes", MaxRequest)
	}
	head, cp, ok := bytes.Cut(body, []byte("\n\n"))
	if !ok {
		return AddCheckpoint{}, errors.New("no blank line between the old size and proof and the checkpoint")
	}
	lines := strings.Split(string(head), "\n")
	size, ok := strings.CutPrefix(lines[0], "old ")
	if !ok {
		return AddCheckpoint{}, errors.New(`the first line is not "old SIZE"`)
	}
	old, err := parseSize(size)
	if err != nil {
		return AddCheckpoint{}, fmt.Errorf("old size: %w", err)
	}
	if len(lines)-1 > MaxProofLines {
		return AddCheckpoint{}, fmt.Errorf("%d consistency proof lines (at most %d)", len(lines)-1, MaxProofLines)
	}
	r := AddCheckpoint{OldSize: old, Checkpoint: cp}
	for i, l := range lines[1:] {
		h, err := parseHash(l)
		if err != nil {
			return AddCheckpoint{}, fmt.Errorf("proof line %d: %w", i+1, err)
		}
		r.Proof = append(r.Proof, h)
	}
	if old == 0 && len(r.Proof) > 0 {
		return AddCheckpoint{}, errors.New("a proof from size 0 must be empty")
	}
	return r, nil
}

// parseSize reads a tree size: ASCII decimal, no sign, no leading zero.
func parseSize(s string) (int64, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || strconv.FormatInt(n, 10) != s {
		return 0, fmt.Errorf("%q is not a tree size", s)
	}
	return n, nil
}

func parseHash(s string) (tlog.Hash, error) {
	var h tlog.Hash
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(b) != tlog.HashSize || base64.StdEncoding.EncodeToString(b) != s {
		return h, fmt.Errorf("%q is not a base64 SHA-256 hash", s)
	}
	copy(h[:], b)
	return h, nil
}

// ParseConflict reads the body of a 409 answer: the size of the latest
// checkpoint the witness cosigned for the log, and a newline.
func ParseConflict(body []byte) (int64, error) {
	s, ok := strings.CutSuffix(string(body), "\n")
	if !ok {
		return 0, errors.New("a witness's size answer must end with a newline")
	}
	return parseSize(s)
}

// ParseCosignatures splits a 200 answer into its note signature lines
// (each "— NAME BASE64\n"). It checks their form; verifying them against a
// key is CosignatureTime's work.
func ParseCosignatures(body []byte) ([]string, error) {
	if len(body) > MaxResponse {
		return nil, fmt.Errorf("answer is larger than %d bytes", MaxResponse)
	}
	if len(body) == 0 || body[len(body)-1] != '\n' {
		return nil, errors.New("an answer of signature lines must end with a newline")
	}
	var out []string
	for _, l := range strings.SplitAfter(string(body), "\n") {
		if l == "" {
			continue
		}
		if err := checkSigLine(l); err != nil {
			return nil, err
		}
		out = append(out, l)
	}
	return out, nil
}

func checkSigLine(l string) error {
	rest, ok := strings.CutPrefix(l, "— ")
	if !ok {
		return fmt.Errorf("%q is not a note signature line (— NAME SIGNATURE)", strings.TrimSpace(l))
	}
	rest, ok = strings.CutSuffix(rest, "\n")
	if !ok {
		return errors.New("a signature line must end with a newline")
	}
	name, sig, ok := strings.Cut(rest, " ")
	if !ok || !ValidName(name) {
		return fmt.Errorf("signature line %q: malformed name", strings.TrimSpace(l))
	}
	b, err := base64.StdEncoding.DecodeString(sig)
	if err != nil || len(b) < 5 {
		return fmt.Errorf("signature line %q: malformed signature", strings.TrimSpace(l))
	}
	return nil
}

// CosignatureTime checks that line is a valid cosignature by v of the
// checkpoint text, and returns the witness's timestamp from it.
func CosignatureTime(text string, line string, v *torchwood.CosignatureVerifier) (time.Time, error) {
	if err := checkSigLine(line); err != nil {
		return time.Time{}, err
	}
	n, err := note.Open([]byte(text+"\n"+line), note.VerifierList(v))
	if err != nil {
		return time.Time{}, fmt.Errorf("the cosignature by %s does not verify: %w", v.Name(), err)
	}
	if len(n.Sigs) != 1 {
		return time.Time{}, fmt.Errorf("no cosignature by %s", v.Name())
	}
	ts, err := torchwood.CosignatureTimestamp(n.Sigs[0])
	if err != nil {
		return time.Time{}, fmt.Errorf("the cosignature by %s: %w", v.Name(), err)
	}
	return time.Unix(ts, 0), nil
}

// FindCosignature returns the line among lines that is v's cosignature of
// text and its time; ok is false when none is. A line that names v's key
// but does not verify is an error.
func FindCosignature(text string, lines []string, v *torchwood.CosignatureVerifier) (line string, at time.Time, ok bool, err error) {
	for _, l := range lines {
		if !namesKey(l, v) {
			continue
		}
		at, err := CosignatureTime(text, l, v)
		if err != nil {
			return "", time.Time{}, false, err
		}
		return l, at, true, nil
	}
	return "", time.Time{}, false, nil
}

// namesKey reports whether a signature line claims to be by v's key: the
// same name and the same key hash in the signature's first 4 bytes.
func namesKey(line string, v note.Verifier) bool {
	rest, ok := strings.CutPrefix(strings.TrimSuffix(line, "\n"), "— ")
	if !ok {
		return false
	}
	name, sig, ok := strings.Cut(rest, " ")
	if !ok || name != v.Name() {
		return false
	}
	b, err := base64.StdEncoding.DecodeString(sig)
	if err != nil || len(b) < 4 {
		return false
	}
	return uint32(b[0])<<24|uint32(b[1])<<16|uint32(b[2])<<8|uint32(b[3]) == v.KeyHash()
}

// SplitNote splits a signed note into its text (ending in a newline) and
// its signature lines.
func SplitNote(signed []byte) (text string, sigs []string, err error) {
	i := bytes.LastIndex(signed, []byte("\n\n"))
	if i < 0 {
		return "", nil, errors.New("malformed signed note: no blank line before the signatures")
	}
	text = string(signed[:i+1])
	for _, l := range strings.SplitAfter(string(signed[i+2:]), "\n") {
		if l == "" {
			continue
		}
		if err := checkSigLine(l); err != nil {
			return "", nil, err
		}
		sigs = append(sigs, l)
	}
	return text, sigs, nil
}
