package diary

import (
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"
)

// An export's statement is a note signed with the diary's key that binds
// what the entries and the checkpoint do not sign: the workspace, the
// client's name, the range, the creation time, the slot length the totals
// use, and which checkpoint it is. Changing any of them in the manifest
// breaks verify.

const statementPrefix = "workspace diary export statement\n"

func statementText(m *manifest) string {
	var b strings.Builder
	b.WriteString(statementPrefix)
	fmt.Fprintf(&b, "workspace %s\n", m.Workspace)
	fmt.Fprintf(&b, "client %s\n", base64.StdEncoding.EncodeToString([]byte(m.Client)))
	fmt.Fprintf(&b, "from %s\n", m.From.UTC().Format(time.RFC3339Nano))
	fmt.Fprintf(&b, "to %s\n", m.To.UTC().Format(time.RFC3339Nano))
	fmt.Fprintf(&b, "created %s\n", m.Created.UTC().Format(time.RFC3339Nano))
	fmt.Fprintf(&b, "slot %d\n", m.SlotSeconds)
	fmt.Fprintf(&b, "first %d\n", m.First)
	fmt.Fprintf(&b, "checkpoint %s\n", sum256hex([]byte(m.Checkpoint)))
	return b.String()
}

// signStatement signs the manifest's statement.
func signStatement(m *manifest, signer note.Signer) (string, error) {
	b, err := note.Sign(&note.Note{Text: statementText(m)}, signer)
	return string(b), err
}

// checkStatement verifies the manifest's statement with the signer's key
// and that it states exactly the manifest's labels; it names the first
// label that differs.
func checkStatement(m *manifest, vkey string) error {
	if m.Statement == "" {
		return fmt.Errorf("the export has no signed statement of its workspace, client, range and slot length")
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		return fmt.Errorf("signer key %q: %w", vkey, err)
	}
	n, err := note.Open([]byte(m.Statement), note.VerifierList(v))
	if err != nil {
		return fmt.Errorf("the export's statement signature does not verify: %w", err)
	}
	got, want := strings.Split(n.Text, "\n"), strings.Split(statementText(m), "\n")
	if len(got) != len(want) || got[0] != want[0] {
		return fmt.Errorf("the export's statement is malformed")
	}
	for i := range want {
		if got[i] != want[i] {
			label, _, _ := strings.Cut(want[i], " ")
			return fmt.Errorf("the export's %s was altered: the signed statement says %s", label, strconv.Quote(got[i]))
		}
	}
	return nil
}
