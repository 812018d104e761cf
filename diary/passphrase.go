package diary

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"
	"unicode/utf8"

	"filippo.io/age"
)

// MinExportPassphrase is the shortest passphrase an export or reveal is
// encrypted with: the file leaves the machine, and anyone who gets it can
// try passphrases offline for as long as they like.
const MinExportPassphrase = 12

// Errors of opening a passphrase export, each saying what to do instead.
var (
	ErrWrongPassphrase     = errors.New("wrong passphrase: this export is protected with a different one")
	ErrNotPassphraseExport = errors.New("this export is encrypted to an age key, not a passphrase: verify it with --identity KEYFILE")
	ErrPassphraseExport    = errors.New("this export is protected with a passphrase, not an age key: verify it with --passphrase")
)

// PassphraseRecipient checks a passphrase for an export and returns its age
// scrypt recipient. A passphrase export is encrypted to that recipient
// alone (age allows no other beside it): the freelancer reopens it with the
// same passphrase, not with their own identity.
func PassphraseRecipient(passphrase string) (age.Recipient, error) {
	if n := utf8.RuneCountInString(passphrase); n < MinExportPassphrase {
		return nil, fmt.Errorf("%w: the export passphrase has %d characters, at least %d are needed (it protects a file that leaves this machine)", ErrInvalid, n, MinExportPassphrase)
	}
	r, err := age.NewScryptRecipient(passphrase)
	if err != nil {
		return nil, fmt.Errorf("%w: export passphrase: %v", ErrInvalid, err)
	}
	return r, nil
}

// PassphraseIdentity is what a client without an age key opens a passphrase
// export (or reveal) with: pass it to Verify or VerifyReveal.
func PassphraseIdentity(passphrase string) ([]age.Identity, error) {
	if passphrase == "" {
		return nil, errors.New("empty passphrase")
	}
	id, err := age.NewScryptIdentity(passphrase)
	if err != nil {
		return nil, fmt.Errorf("passphrase: %w", err)
	}
	return []age.Identity{id}, nil
}

// ExportWithPassphrase is ExportAt for a client without an age key: the
// same signed export (at the checkpoint of the given size, 0 for the
// latest), encrypted with passphrase (age scrypt) instead of to the
// recipients. The passphrase reaches the client out of band.
func (s *Store) ExportWithPassphrase(ctx context.Context, ws string, from, to time.Time, passphrase string, size int64, w io.Writer) (ExportSummary, error) {
	r, err := PassphraseRecipient(passphrase)
	if err != nil {
		return ExportSummary{}, err
	}
	return s.exportTo(ctx, ws, from, to, []age.Recipient{r}, size, w)
}

// RevealWithPassphrase is Reveal for a client who received a passphrase
// export: the reveal file is encrypted with passphrase.
func (s *Store) RevealWithPassphrase(ctx context.Context, id, passphrase string, w io.Writer) error {
	r, err := PassphraseRecipient(passphrase)
	if err != nil {
		return err
	}
	return s.reveal(ctx, id, func(string) ([]age.Recipient, error) { return []age.Recipient{r}, nil }, w)
}

// noMatchError says why none of ids opens a file, from the kinds of its
// recipient stanzas: a passphrase file opened with a key, a key file opened
// with a passphrase, a wrong passphrase, or another key.
func noMatchError(nm *age.NoIdentityMatchError, ids []age.Identity) error {
	byPassphrase := slices.Contains(nm.StanzaTypes, "scrypt")
	withPassphrase := slices.ContainsFunc(ids, func(id age.Identity) bool {
		_, ok := id.(*age.ScryptIdentity)
		return ok
	})
	switch {
	case byPassphrase && withPassphrase:
		return ErrWrongPassphrase
	case byPassphrase:
		return ErrPassphraseExport
	case withPassphrase:
		return ErrNotPassphraseExport
	}
	return errors.New("this file is not encrypted to the given identity (wrong key, or it is meant for someone else)")
}
