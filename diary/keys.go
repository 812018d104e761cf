package diary

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"filippo.io/age"
	"github.com/workspace-sandbox/workspace/internal/atomicfile"
	"golang.org/x/crypto/chacha20poly1305"
	"golang.org/x/mod/sumdb/note"
)

// Files of the key directory (STATE/keys).
const (
	identityFile  = "identity.age"    // age X25519 identity; scrypt-encrypted when protected
	recipientFile = "recipient.txt"   // its public recipient
	signingFile   = "signing.key.age" // note signer key, encrypted to the identity
	verifierFile  = "signing.pub"     // note verifier key (public)
	// SignerName is the note key name of every diary signing key.
	SignerName = "workspace-diary"
)

// Errors of the key store.
var (
	ErrNotInitialized = errors.New("no identity yet: run `workspace init`")
	ErrLocked         = errors.New("the identity is passphrase-protected and locked: run `workspace unlock`")
	ErrBadPassphrase  = errors.New("wrong passphrase")
	ErrInitialized    = errors.New("an identity already exists")
)

// Keys is the freelancer's unlocked identity and signing key.
type Keys struct {
	identity *age.X25519Identity
	signer   note.Signer
	vkey     string
	skey     string   // the signer's private key text, for the per-log signers
	logs     sync.Map // workspace → note.Signer named for its log (checkpoint.go)
}

// KeyInfo describes a key directory without unlocking it.
type KeyInfo struct {
	Initialized bool
	Protected   bool
	Recipient   string
	Verifier    string
}

// Recipient is the identity's public age recipient.
func (k *Keys) Recipient() *age.X25519Recipient { return k.identity.Recipient() }

// Identity is the age identity (for decrypting own exports and data keys).
func (k *Keys) Identity() age.Identity { return k.identity }

// Signer signs checkpoints.
func (k *Keys) Signer() note.Signer { return k.signer }

// VerifierKey is the public note verifier key of the signer.
func (k *Keys) VerifierKey() string { return k.vkey }

// ReadKeyInfo reports what dir holds without needing the passphrase.
func ReadKeyInfo(dir string) (KeyInfo, error) {
	raw, err := os.ReadFile(filepath.Join(dir, identityFile))
	if errors.Is(err, os.ErrNotExist) {
		return KeyInfo{}, nil
	}
	if err != nil {
		return KeyInfo{}, fmt.Errorf("read identity: %w", err)
	}
	info := KeyInfo{Initialized: true, Protected: isAgeFile(raw)}
	if b, err := os.ReadFile(filepath.Join(dir, recipientFile)); err == nil {
		info.Recipient = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile(filepath.Join(dir, verifierFile)); err == nil {
		info.Verifier = strings.TrimSpace(string(b))
	}
	return info, nil
}

func isAgeFile(b []byte) bool { return bytes.HasPrefix(b, []byte("age-encryption.org/v1\n")) }

// InitKeys creates a new identity and signing key in dir. A non-empty
// passphrase protects the identity with age's scrypt recipient.
func InitKeys(dir, passphrase string) (*Keys, error) {
	if info, err := ReadKeyInfo(dir); err != nil {
		return nil, err
	} else if info.Initialized {
		return nil, fmt.Errorf("%w in %s", ErrInitialized, dir)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create key dir: %w", err)
	}
	id, err := age.GenerateX25519Identity()
	if err != nil {
		return nil, fmt.Errorf("generate identity: %w", err)
	}
	skey, vkey, err := note.GenerateKey(rand.Reader, SignerName)
	if err != nil {
		return nil, fmt.Errorf("generate signing key: %w", err)
	}
	signer, err := note.NewSigner(skey)
	if err != nil {
		return nil, fmt.Errorf("load signing key: %w", err)
	}
	idText := []byte("# workspace diary identity\n" + id.String() + "\n")
	if passphrase != "" {
		r, err := age.NewScryptRecipient(passphrase)
		if err != nil {
			return nil, fmt.Errorf("passphrase: %w", err)
		}
		if idText, err = ageEncrypt(idText, r); err != nil {
			return nil, err
		}
	}
	sealedSigner, err := ageEncrypt([]byte(skey), id.Recipient())
	if err != nil {
		return nil, err
	}
	// The identity goes last so that a half-made directory is not taken for
	// an initialised one.
	files := []struct {
		name string
		data []byte
		mode os.FileMode
	}{
		{recipientFile, []byte(id.Recipient().String() + "\n"), 0o644},
		{verifierFile, []byte(vkey + "\n"), 0o644},
		{signingFile, sealedSigner, 0o600},
		{identityFile, idText, 0o600},
	}
	for _, f := range files {
		if err := atomicfile.Write(filepath.Join(dir, f.name), f.data, f.mode); err != nil {
			return nil, fmt.Errorf("write %s: %w", f.name, err)
		}
	}
	return &Keys{identity: id, signer: signer, vkey: vkey, skey: skey}, nil
}

// LoadKeys unlocks the keys in dir; passphrase is needed when protected.
func LoadKeys(dir, passphrase string) (*Keys, error) {
	raw, err := os.ReadFile(filepath.Join(dir, identityFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, ErrNotInitialized
	}
	if err != nil {
		return nil, fmt.Errorf("read identity: %w", err)
	}
	if isAgeFile(raw) {
		if passphrase == "" {
			return nil, ErrLocked
		}
		sid, err := age.NewScryptIdentity(passphrase)
		if err != nil {
			return nil, fmt.Errorf("passphrase: %w", err)
		}
		r, err := age.Decrypt(bytes.NewReader(raw), sid)
		if err != nil {
			var nm *age.NoIdentityMatchError
			if errors.As(err, &nm) || strings.Contains(err.Error(), "incorrect passphrase") {
				return nil, ErrBadPassphrase
			}
			return nil, fmt.Errorf("unlock identity: %w", err)
		}
		if raw, err = io.ReadAll(r); err != nil {
			return nil, fmt.Errorf("unlock identity: %w", err)
		}
	}
	ids, err := age.ParseIdentities(bytes.NewReader(raw))
	if err != nil || len(ids) != 1 {
		return nil, fmt.Errorf("identity file %s is damaged: %v", filepath.Join(dir, identityFile), err)
	}
	id, ok := ids[0].(*age.X25519Identity)
	if !ok {
		return nil, fmt.Errorf("identity file %s does not hold an X25519 identity", filepath.Join(dir, identityFile))
	}
	sealed, err := os.ReadFile(filepath.Join(dir, signingFile))
	if err != nil {
		return nil, fmt.Errorf("read signing key: %w", err)
	}
	skey, err := ageDecrypt(sealed, id)
	if err != nil {
		return nil, fmt.Errorf("open signing key: %w", err)
	}
	signer, err := note.NewSigner(string(skey))
	if err != nil {
		return nil, fmt.Errorf("signing key is damaged: %w", err)
	}
	vkey, err := os.ReadFile(filepath.Join(dir, verifierFile))
	if err != nil {
		return nil, fmt.Errorf("read verifier key: %w", err)
	}
	return &Keys{identity: id, signer: signer, vkey: strings.TrimSpace(string(vkey)), skey: string(skey)}, nil
}

func ageEncrypt(plain []byte, rs ...age.Recipient) ([]byte, error) {
	var buf bytes.Buffer
	w, err := age.Encrypt(&buf, rs...)
	if err != nil {
		return nil, fmt.Errorf("age encrypt: %w", err)
	}
	if _, err := w.Write(plain); err != nil {
		return nil, fmt.Errorf("age encrypt: %w", err)
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("age encrypt: %w", err)
	}
	return buf.Bytes(), nil
}

func ageDecrypt(sealed []byte, ids ...age.Identity) ([]byte, error) {
	r, err := age.Decrypt(bytes.NewReader(sealed), ids...)
	if err != nil {
		return nil, err
	}
	return io.ReadAll(r)
}

// newDataKey makes a random 32-byte key.
func newDataKey() ([]byte, error) {
	k := make([]byte, chacha20poly1305.KeySize)
	if _, err := rand.Read(k); err != nil {
		return nil, fmt.Errorf("random key: %w", err)
	}
	return k, nil
}

// seal encrypts plain with XChaCha20-Poly1305 under key, binding ad (the blob
// id); the output is nonce‖ciphertext.
func seal(key, plain []byte, ad string) ([]byte, error) {
	aead, err := chacha20poly1305.NewX(key)
	if err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	out := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plain)+aead.Overhead())
	if _, err := rand.Read(out); err != nil {
		return nil, fmt.Errorf("seal: random nonce: %w", err)
	}
	return aead.Seal(out, out, plain, []byte(ad)), nil
}

// open reverses seal; any change to the bytes or a different ad fails.
func open(key, sealed []byte, ad string) ([]byte, error) {
	aead, err := chacha20poly1305.NewX(key)
	if err != nil {
		return nil, fmt.Errorf("open: %w", err)
	}
	if len(sealed) < aead.NonceSize()+aead.Overhead() {
		return nil, errors.New("sealed data is too short")
	}
	n := aead.NonceSize()
	plain, err := aead.Open(nil, sealed[:n], sealed[n:], []byte(ad))
	if err != nil {
		return nil, errors.New("authentication failed (altered or wrong key)")
	}
	return plain, nil
}
