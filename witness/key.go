// Package witness owns the diary's side of the C2SP tlog-witness protocol:
// witness keys (cosignature/v1, the note verifier format), the
// add-checkpoint request and response formats, a client that submits a
// log's checkpoints to a witness, and a witness server that keeps, per log,
// the latest cosigned size and root in SQLite and cosigns only consistent
// growth. A witness sees checkpoints only: a log's origin, a size and a
// root hash, never an entry.
//
// Notes, checkpoints and cosignatures come from filippo.io/torchwood and
// golang.org/x/mod/sumdb/note; what torchwood v0.6.1 does not export (the
// add-checkpoint wire format lives in an internal package of litewitness,
// and cosignature verifier keys can only be made from a signer) is here.
package witness

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"filippo.io/torchwood"
	"golang.org/x/mod/sumdb/note"
)

// Signature algorithm bytes of the note verifier key format.
const (
	algEd25519       = 1 // a log's checkpoint key (c2sp.org/signed-note)
	algCosignatureV1 = 4 // a witness's key (c2sp.org/tlog-cosignature)
)

// ValidName reports whether name can be a note key name: not empty, valid
// UTF-8, no Unicode space and no '+'.
func ValidName(name string) bool {
	return name != "" && utf8.ValidString(name) && strings.IndexFunc(name, unicode.IsSpace) < 0 && !strings.Contains(name, "+")
}

// GenerateKey makes a new witness key named name. skey is the private key
// in the signed-note private key format (keep it secret, mode 0600); vkey
// is the witness's cosignature/v1 verifier key, which clients pin and
// profiles name.
func GenerateKey(name string) (skey, vkey string, err error) {
	if !ValidName(name) {
		return "", "", fmt.Errorf("witness name %q: use no spaces and no '+'", name)
	}
	skey, _, err = note.GenerateKey(rand.Reader, name)
	if err != nil {
		return "", "", fmt.Errorf("generate witness key: %w", err)
	}
	s, err := NewSigner(skey)
	if err != nil {
		return "", "", err
	}
	return skey, s.Verifier().String(), nil
}

// NewSigner loads a witness's private key (the signed-note private key
// format GenerateKey writes) as a cosignature/v1 signer.
func NewSigner(skey string) (*torchwood.CosignatureSigner, error) {
	skey = strings.TrimSpace(skey)
	// note.NewSigner checks the format and the key hash.
	if _, err := note.NewSigner(skey); err != nil {
		return nil, fmt.Errorf("witness key: %w", err)
	}
	parts := strings.SplitN(skey, "+", 5)
	if len(parts) != 5 {
		return nil, errors.New("witness key: malformed")
	}
	name := parts[2]
	key, err := base64.StdEncoding.DecodeString(parts[4])
	if err != nil || len(key) != 1+ed25519.SeedSize || key[0] != algEd25519 {
		return nil, errors.New("witness key: not an Ed25519 signed-note private key")
	}
	s, err := torchwood.NewCosignatureSigner(name, ed25519.NewKeyFromSeed(key[1:]))
	if err != nil {
		return nil, fmt.Errorf("witness key: %w", err)
	}
	return s, nil
}

// publicOnly is a crypto.Signer that holds only a public key: torchwood
// v0.6.1 builds a CosignatureVerifier only from a signer, and this lets its
// verification code check cosignatures from a verifier key alone.
type publicOnly ed25519.PublicKey

func (p publicOnly) Public() crypto.PublicKey { return ed25519.PublicKey(p) }
func (p publicOnly) Sign(io.Reader, []byte, crypto.SignerOpts) ([]byte, error) {
	return nil, errors.New("a verifier key cannot sign")
}

// NewVerifier parses a witness's cosignature/v1 verifier key
// (NAME+HASH+BASE64, the key's first byte 0x04) into torchwood's verifier.
func NewVerifier(vkey string) (*torchwood.CosignatureVerifier, error) {
	vkey = strings.TrimSpace(vkey)
	name, rest, ok1 := strings.Cut(vkey, "+")
	hash16, key64, ok2 := strings.Cut(rest, "+")
	if !ok1 || !ok2 || !ValidName(name) || len(hash16) != 8 {
		return nil, fmt.Errorf("witness key %q is not a note verifier key (NAME+HASH+KEY)", vkey)
	}
	hash, err := strconv.ParseUint(hash16, 16, 32)
	if err != nil {
		return nil, fmt.Errorf("witness key %q: malformed key hash", vkey)
	}
	key, err := base64.StdEncoding.DecodeString(key64)
	if err != nil || len(key) == 0 {
		return nil, fmt.Errorf("witness key %q: malformed key", vkey)
	}
	switch {
	case key[0] == algEd25519:
		return nil, fmt.Errorf("witness key %q is a plain Ed25519 note key (a log's key); a witness signs with cosignature/v1 keys (algorithm 4), as `workspace witness init` and litewitness print", vkey)
	case key[0] != algCosignatureV1:
		return nil, fmt.Errorf("witness key %q: unknown signature algorithm %d (want cosignature/v1, 4)", vkey, key[0])
	case len(key) != 1+ed25519.PublicKeySize:
		return nil, fmt.Errorf("witness key %q: malformed key", vkey)
	}
	s, err := torchwood.NewCosignatureSigner(name, publicOnly(key[1:]))
	if err != nil {
		return nil, fmt.Errorf("witness key %q: %w", vkey, err)
	}
	v := s.Verifier()
	if v.KeyHash() != uint32(hash) {
		return nil, fmt.Errorf("witness key %q: the key hash does not match the name and key", vkey)
	}
	return v, nil
}

// VerifierKey is the cosignature/v1 verifier key of a witness named name
// with Ed25519 public key pub (litewitness prints the same for its key).
func VerifierKey(name string, pub ed25519.PublicKey) (string, error) {
	s, err := torchwood.NewCosignatureSigner(name, publicOnly(pub))
	if err != nil {
		return "", err
	}
	return s.Verifier().String(), nil
}
