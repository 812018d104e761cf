package main

import (
	"errors"

	"filippo.io/age"
	"github.com/spf13/cobra"

	"github.com/workspace-sandbox/workspace/diary"
)

// exportPassphraseEnv is where an export's passphrase may come from besides
// a file or the terminal (never from a flag's value).
const exportPassphraseEnv = "WORKSPACE_EXPORT_PASSPHRASE"

// exportPassphrase is --passphrase on the commands that write an export or
// a reveal for a client without an age key.
type exportPassphrase struct {
	on  bool
	src passphraseSource
}

func (p *exportPassphrase) flags(cmd *cobra.Command) {
	p.src.env = exportPassphraseEnv
	cmd.Flags().BoolVar(&p.on, "passphrase", false, "encrypt with a passphrase (age scrypt) instead of to age keys, for a client without one; give it to the client out of band")
	p.src.flags(cmd)
}

// wanted says whether a passphrase was asked for (--passphrase-file alone
// asks too).
func (p *exportPassphrase) wanted() bool { return p.on || p.src.file != "" }

// read returns the passphrase when one was asked for, else "".
func (p *exportPassphrase) read(a *app) (string, error) {
	if !p.wanted() {
		return "", nil
	}
	return p.src.read(a, "Passphrase for the client (at least 12 characters): ", true)
}

// exportKey is how the client opens an export or a reveal: an age identity
// file, or the passphrase the freelancer gave them.
type exportKey struct {
	identity string
	pass     exportPassphrase
}

func (k *exportKey) flags(cmd *cobra.Command) {
	k.pass.src.env = exportPassphraseEnv
	cmd.Flags().StringVar(&k.identity, "identity", "", "age identity file to decrypt with")
	cmd.Flags().BoolVar(&k.pass.on, "passphrase", false, "decrypt with the passphrase the freelancer gave you (asked on the terminal, or $"+exportPassphraseEnv+")")
	k.pass.src.flags(cmd)
}

func (k *exportKey) identities(a *app) ([]age.Identity, error) {
	usePass := k.pass.wanted()
	switch {
	case usePass && k.identity != "":
		return nil, errors.New("give --identity KEYFILE or --passphrase, not both")
	case !usePass:
		if k.identity == "" {
			return nil, errors.New("--identity KEYFILE or --passphrase is required: the age identity the export was encrypted to, or its passphrase")
		}
		return loadIdentities(k.identity)
	}
	p, err := k.pass.src.read(a, "Passphrase of the export: ", false)
	if err != nil {
		return nil, err
	}
	return diary.PassphraseIdentity(p)
}
