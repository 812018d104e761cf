package witness

import (
	"crypto/rand"
	"fmt"
	"testing"

	"filippo.io/torchwood"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// testLog is a small real Merkle log with a signed-note signer, as the
// diary keeps one per workspace.
type testLog struct {
	t      *testing.T
	origin string
	signer note.Signer
	vkey   string
	hashes map[int64]tlog.Hash
	n      int64
}

func newTestLog(t *testing.T, origin string) *testLog {
	t.Helper()
	skey, vkey, err := note.GenerateKey(rand.Reader, origin)
	if err != nil {
		t.Fatal(err)
	}
	s, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	return &testLog{t: t, origin: origin, signer: s, vkey: vkey, hashes: map[int64]tlog.Hash{}}
}

func (l *testLog) ReadHashes(idx []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(idx))
	for i, x := range idx {
		h, ok := l.hashes[x]
		if !ok {
			return nil, fmt.Errorf("hash %d missing", x)
		}
		out[i] = h
	}
	return out, nil
}

func (l *testLog) append(leaves ...string) {
	for _, leaf := range leaves {
		hs, err := tlog.StoredHashes(l.n, []byte(leaf), l)
		if err != nil {
			l.t.Fatal(err)
		}
		base := tlog.StoredHashIndex(0, l.n)
		for i, h := range hs {
			l.hashes[base+int64(i)] = h
		}
		l.n++
	}
}

func (l *testLog) root(n int64) tlog.Hash {
	h, err := tlog.TreeHash(n, l)
	if err != nil {
		l.t.Fatal(err)
	}
	return h
}

// checkpoint signs the checkpoint of the first n entries.
func (l *testLog) checkpoint(n int64) []byte {
	text := torchwood.Checkpoint{Origin: l.origin, Tree: tlog.Tree{N: n, Hash: l.root(n)}}.String()
	b, err := note.Sign(&note.Note{Text: text}, l.signer)
	if err != nil {
		l.t.Fatal(err)
	}
	return b
}

func (l *testLog) proof(from, to int64) tlog.TreeProof {
	if from == 0 || from == to {
		return nil
	}
	p, err := tlog.ProveTree(to, from, l)
	if err != nil {
		l.t.Fatal(err)
	}
	return p
}
