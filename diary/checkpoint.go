package diary

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"filippo.io/torchwood"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// Checkpoints are signed notes in the C2SP tlog-checkpoint format, so that
// a witness can check and cosign them:
//
//	workspace-diary/3f1c0a9e5b7d2c44/acme
//	1523
//	<base64 tree root>
//
//	— workspace-diary/3f1c0a9e5b7d2c44/acme <signature>
//
// Each workspace's log has its own origin: the diary's name, the first 16
// hex digits of the SHA-256 of the freelancer's signing public key, and the
// workspace. Its key name is the origin (as the format asks), with the same
// Ed25519 key as the freelancer's signer: a client who pins the signer key
// (workspace-diary+…) can derive every log key from it.
//
// Diaries made before witnessing signed "workspace-diary/v1" notes (the
// workspace on the second line), which no witness reads. They still verify
// (legacyPrefix); the store re-signs its latest checkpoint in the new
// format before it submits or exports it.

// originPrefix starts every log origin.
const originPrefix = "workspace-diary/"

// legacyPrefix starts the text of a checkpoint signed before witnessing.
const legacyPrefix = "workspace-diary/v1\n"

// Checkpoint is a signed statement of a workspace log's size and root.
type Checkpoint struct {
	Origin    string // empty for a legacy checkpoint
	Workspace string
	Size      int64
	Root      tlog.Hash
}

// Legacy reports whether c was read from a checkpoint of the format before
// witnessing.
func (c Checkpoint) Legacy() bool { return c.Origin == "" }

// signerPublic returns the Ed25519 public key of a note verifier key.
func signerPublic(vkey string) (ed25519.PublicKey, error) {
	parts := strings.SplitN(strings.TrimSpace(vkey), "+", 3)
	if len(parts) != 3 {
		return nil, fmt.Errorf("signer key %q is not a note verifier key", vkey)
	}
	if _, err := note.NewVerifier(strings.TrimSpace(vkey)); err != nil {
		return nil, fmt.Errorf("signer key %q: %w", vkey, err)
	}
	b, err := base64.StdEncoding.DecodeString(parts[2])
	if err != nil || len(b) != 1+ed25519.PublicKeySize || b[0] != 1 {
		return nil, fmt.Errorf("signer key %q is not an Ed25519 note key", vkey)
	}
	return ed25519.PublicKey(b[1:]), nil
}

// LogOrigin is the origin of ws's log under the signer key signerVKey.
func LogOrigin(signerVKey, ws string) (string, error) {
	pub, err := signerPublic(signerVKey)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(pub)
	return originPrefix + hex.EncodeToString(sum[:8]) + "/" + ws, nil
}

// LogKey is the verifier key of ws's log (its key name is the origin),
// derived from the signer key signerVKey. A witness registers this key.
func LogKey(signerVKey, ws string) (string, error) {
	origin, err := LogOrigin(signerVKey, ws)
	if err != nil {
		return "", err
	}
	pub, _ := signerPublic(signerVKey)
	return note.NewEd25519VerifierKey(origin, pub)
}

// logSigner returns the note signer of ws's log: the signing key under the
// log's origin as its name.
func (k *Keys) logSigner(ws string) (note.Signer, error) {
	if s, ok := k.logs.Load(ws); ok {
		return s.(note.Signer), nil
	}
	origin, err := LogOrigin(k.vkey, ws)
	if err != nil {
		return nil, err
	}
	vkey, err := LogKey(k.vkey, ws)
	if err != nil {
		return nil, err
	}
	// PRIVATE+KEY+name+hash+key: the same key under the log's name and
	// that name's key hash (taken from the verifier key).
	parts := strings.SplitN(k.skey, "+", 5)
	vparts := strings.SplitN(vkey, "+", 3)
	if len(parts) != 5 || len(vparts) != 3 {
		return nil, errors.New("the signing key is malformed")
	}
	s, err := note.NewSigner("PRIVATE+KEY+" + origin + "+" + vparts[1] + "+" + parts[4])
	if err != nil {
		return nil, fmt.Errorf("log signer of %q: %w", ws, err)
	}
	k.logs.Store(ws, s)
	return s, nil
}

// checkpointText is the C2SP checkpoint text of a tree of ws's log.
func checkpointText(origin string, size int64, root tlog.Hash) string {
	return torchwood.Checkpoint{Origin: origin, Tree: tlog.Tree{N: size, Hash: root}}.String()
}

// signCheckpoint returns the signed checkpoint of ws's log at size.
func signCheckpoint(k *Keys, ws string, size int64, root tlog.Hash) ([]byte, error) {
	s, err := k.logSigner(ws)
	if err != nil {
		return nil, err
	}
	return note.Sign(&note.Note{Text: checkpointText(s.Name(), size, root)}, s)
}

// OpenCheckpoint checks a signed checkpoint of ws's log against the
// freelancer's signer key signerVKey: the signature by the log's key
// derived from it and the origin (or, for a checkpoint signed before
// witnessing, the signature by the signer key itself). Signatures by other
// keys (a witness's cosignatures) are ignored here.
func OpenCheckpoint(signed []byte, signerVKey, ws string) (Checkpoint, error) {
	if strings.HasPrefix(string(signed), legacyPrefix) {
		v, err := note.NewVerifier(signerVKey)
		if err != nil {
			return Checkpoint{}, fmt.Errorf("signer key %q: %w", signerVKey, err)
		}
		n, err := note.Open(signed, note.VerifierList(v))
		if err != nil {
			return Checkpoint{}, fmt.Errorf("checkpoint signature does not verify: %w", err)
		}
		c, err := parseLegacy(n.Text)
		if err == nil && c.Workspace != ws {
			err = fmt.Errorf("the checkpoint is for workspace %q, not %q", c.Workspace, ws)
		}
		return c, err
	}
	lkey, err := LogKey(signerVKey, ws)
	if err != nil {
		return Checkpoint{}, err
	}
	v, err := note.NewVerifier(lkey)
	if err != nil {
		return Checkpoint{}, err
	}
	n, err := note.Open(signed, note.VerifierList(v))
	if err != nil {
		origin, _, _ := strings.Cut(string(signed), "\n")
		if want := v.Name(); origin != want {
			return Checkpoint{}, fmt.Errorf("the checkpoint is of log %q, not of %q (workspace %q of this signer)", origin, want, ws)
		}
		return Checkpoint{}, fmt.Errorf("checkpoint signature does not verify: %w", err)
	}
	return parseC2SP(n.Text, v.Name(), ws)
}

func parseC2SP(text, origin, ws string) (Checkpoint, error) {
	c, err := torchwood.ParseCheckpoint(text)
	if err != nil {
		return Checkpoint{}, fmt.Errorf("malformed checkpoint: %w", err)
	}
	if c.Extension != "" {
		return Checkpoint{}, errors.New("malformed checkpoint: unexpected extension lines")
	}
	if c.Origin != origin {
		return Checkpoint{}, fmt.Errorf("the checkpoint is of log %q, not %q", c.Origin, origin)
	}
	return Checkpoint{Origin: c.Origin, Workspace: ws, Size: c.N, Root: c.Hash}, nil
}

func parseLegacy(text string) (Checkpoint, error) {
	if !strings.HasPrefix(text, legacyPrefix) {
		return Checkpoint{}, errors.New("not a workspace diary checkpoint")
	}
	lines := strings.Split(strings.TrimPrefix(text, legacyPrefix), "\n")
	if len(lines) != 4 || lines[3] != "" {
		return Checkpoint{}, errors.New("malformed checkpoint")
	}
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil || size < 0 {
		return Checkpoint{}, errors.New("malformed checkpoint size")
	}
	root, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(root) != tlog.HashSize {
		return Checkpoint{}, errors.New("malformed checkpoint root")
	}
	c := Checkpoint{Workspace: lines[0], Size: size}
	copy(c.Root[:], root)
	return c, nil
}

// parseCheckpointNote reads a signed checkpoint of either format without
// checking its signature (the store's own, already checked).
func parseCheckpointNote(signed string) (Checkpoint, error) {
	text, _, ok := strings.Cut(signed, "\n\n")
	if !ok {
		return Checkpoint{}, errors.New("malformed signed checkpoint")
	}
	text += "\n"
	if strings.HasPrefix(text, legacyPrefix) {
		return parseLegacy(text)
	}
	c, err := torchwood.ParseCheckpoint(text)
	if err != nil {
		return Checkpoint{}, fmt.Errorf("malformed checkpoint: %w", err)
	}
	ws := c.Origin[strings.LastIndex(c.Origin, "/")+1:]
	return Checkpoint{Origin: c.Origin, Workspace: ws, Size: c.N, Root: c.Hash}, nil
}
