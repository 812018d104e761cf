package witness

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/workspace-sandbox/workspace/internal/litewitnesstest"
)

func TestKeyRoundTrip(t *testing.T) {
	skey, vkey, err := GenerateKey("witness.example/w1")
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	v, err := NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	if v.String() != vkey || s.Verifier().String() != vkey || v.Name() != "witness.example/w1" {
		t.Fatalf("keys differ: %s %s %s", vkey, v, s.Verifier())
	}
	if _, _, err := GenerateKey("bad name"); err == nil {
		t.Fatal("a name with a space was accepted")
	}
}

func TestNewVerifierRefuses(t *testing.T) {
	l := newTestLog(t, "example.com/log")
	_, vkey, _ := GenerateKey("w")
	for _, c := range []struct{ key, want string }{
		{l.vkey, "plain Ed25519 note key"},
		{"w+00000000+BAAA", "malformed key"},
		{strings.Replace(vkey, "w+", "x+", 1), "key hash does not match"},
		{"nothing", "not a note verifier key"},
		{"w+zz+AAAA", "not a note verifier key"},
	} {
		if _, err := NewVerifier(c.key); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("NewVerifier(%q) = %v, want %q", c.key, err, c.want)
		}
	}
}

func TestRequestRoundTrip(t *testing.T) {
	l := newTestLog(t, "example.com/log")
	l.append("a", "b", "c", "d", "e")
	req := AddCheckpoint{OldSize: 2, Proof: l.proof(2, 5), Checkpoint: l.checkpoint(5)}
	got, err := ParseAddCheckpoint(req.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	if got.OldSize != 2 || len(got.Proof) != len(req.Proof) || string(got.Checkpoint) != string(req.Checkpoint) {
		t.Fatalf("round trip: %+v", got)
	}
	for _, bad := range []string{"", "old 1\n", "new 1\n\nx", "old 01\n\nx", "old -1\n\nx", "old 0\nAAAA\n\nx", "old 3\nnot-base64\n\nx"} {
		if _, err := ParseAddCheckpoint([]byte(bad)); err == nil {
			t.Errorf("ParseAddCheckpoint(%q) accepted", bad)
		}
	}
}

type testWitness struct {
	srv  *Server
	http *httptest.Server
	vkey string
	cl   *Client
}

func startWitness(t *testing.T, name string) *testWitness {
	t.Helper()
	skey, vkey, err := GenerateKey(name)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := NewSigner(skey)
	srv, err := OpenServer(context.Background(), filepath.Join(t.TempDir(), "w.db"), s, nil)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(func() { hs.Close(); srv.Close() })
	v, _ := NewVerifier(vkey)
	return &testWitness{srv: srv, http: hs, vkey: vkey, cl: &Client{URL: hs.URL, Verifier: v}}
}

func TestServerCosignsOnlyConsistentGrowth(t *testing.T) {
	ctx := context.Background()
	w := startWitness(t, "witness.example/w")
	l := newTestLog(t, "example.com/log")
	l.append("a", "b", "c")

	// Unknown log: 404, saying how to register it.
	_, err := w.cl.AddCheckpoint(ctx, 0, nil, l.checkpoint(3))
	var re *RefusedError
	if !errors.As(err, &re) || re.Status != http.StatusNotFound || !strings.Contains(err.Error(), "add-log") {
		t.Fatalf("unknown log: %v", err)
	}
	if err := w.srv.AddLog(ctx, l.origin, l.vkey); err != nil {
		t.Fatal(err)
	}
	// A log signed by another key of the same name: 403.
	other := newTestLog(t, l.origin)
	other.append("a", "b", "c")
	if _, err := w.cl.AddCheckpoint(ctx, 0, nil, other.checkpoint(3)); !errors.As(err, &re) || re.Status != http.StatusForbidden {
		t.Fatalf("wrong log key: %v", err)
	}
	before := time.Now().Add(-time.Second)
	c, err := w.cl.AddCheckpoint(ctx, 0, nil, l.checkpoint(3))
	if err != nil {
		t.Fatal(err)
	}
	if c.Time.Before(before) || c.Time.After(time.Now().Add(time.Second)) {
		t.Fatalf("cosignature time %s", c.Time)
	}
	// The wrong old size: 409 with the size the witness knows.
	l.append("d", "e")
	var ce *ConflictError
	if _, err := w.cl.AddCheckpoint(ctx, 0, nil, l.checkpoint(5)); !errors.As(err, &ce) || ce.Known != 3 {
		t.Fatalf("old size 0 after 3: %v", err)
	}
	if _, err := w.cl.AddCheckpoint(ctx, 3, l.proof(3, 5), l.checkpoint(5)); err != nil {
		t.Fatal(err)
	}
	// A smaller tree: never (old 5 > size 3 is malformed; old 3 conflicts).
	if _, err := w.cl.AddCheckpoint(ctx, 5, nil, l.checkpoint(3)); !errors.As(err, &re) || re.Status != http.StatusBadRequest {
		t.Fatalf("smaller tree: %v", err)
	}
	// The same size again, same root: cosigned again (a lost answer).
	if _, err := w.cl.AddCheckpoint(ctx, 5, nil, l.checkpoint(5)); err != nil {
		t.Fatalf("same tree again: %v", err)
	}
	// A forked log of the same origin and key: the same size with another
	// root, and a larger tree whose proof cannot verify.
	fork := &testLog{t: t, origin: l.origin, signer: l.signer, vkey: l.vkey, hashes: map[int64]tlog.Hash{}}
	fork.append("a", "b", "X", "d", "e", "f")
	if _, err := w.cl.AddCheckpoint(ctx, 5, nil, fork.checkpoint(5)); !errors.As(err, &re) || re.Status != http.StatusConflict || !strings.Contains(err.Error(), "forked") {
		t.Fatalf("fork at the same size: %v", err)
	}
	if _, err := w.cl.AddCheckpoint(ctx, 5, fork.proof(5, 6), fork.checkpoint(6)); !errors.As(err, &re) || re.Status != http.StatusUnprocessableEntity || !strings.Contains(err.Error(), "does not extend") {
		t.Fatalf("fork beyond: %v", err)
	}
	logs, err := w.srv.Logs(ctx)
	if err != nil || len(logs) != 1 || logs[0].Size != 5 || logs[0].Refused != 4 {
		t.Fatalf("logs: %+v %v", logs, err)
	}
	if !IsPermanent(&RefusedError{Status: 422}) || IsPermanent(errors.New("x")) {
		t.Fatal("IsPermanent")
	}
}

func TestClientRejectsAForeignCosignature(t *testing.T) {
	ctx := context.Background()
	w := startWitness(t, "witness.example/w")
	l := newTestLog(t, "example.com/log")
	l.append("a")
	w.srv.AddLog(ctx, l.origin, l.vkey)
	_, vkey, _ := GenerateKey("witness.example/w")
	v, _ := NewVerifier(vkey)
	cl := &Client{URL: w.http.URL, Verifier: v}
	if _, err := cl.AddCheckpoint(ctx, 0, nil, l.checkpoint(1)); err == nil || !strings.Contains(err.Error(), "without a cosignature by the pinned key") {
		t.Fatalf("a cosignature by another key was accepted: %v", err)
	}
}

// TestClientAgainstLitewitness submits a log's checkpoints to the real
// litewitness (built from the module proxy, its key in an ssh-agent):
// the first tree, growth with a consistency proof, a 409 answered with the
// size it knows, and a fork it refuses.
func TestClientAgainstLitewitness(t *testing.T) {
	if testing.Short() {
		t.Skip("builds litewitness")
	}
	lw := litewitnesstest.Start(t, "witness.example/lite")
	ctx := context.Background()
	l := newTestLog(t, "example.com/log")
	lw.AddLog(l.origin, l.vkey)
	if k, err := VerifierKey(lw.Name, lw.PublicKey); err != nil || k != lw.VKey {
		t.Fatalf("our verifier key of litewitness's key is %q (%v); it says %q", k, err, lw.VKey)
	}
	v, err := NewVerifier(lw.VKey)
	if err != nil {
		t.Fatal(err)
	}
	cl := &Client{URL: lw.URL, Verifier: v}
	l.append("a", "b", "c")
	if _, err := cl.AddCheckpoint(ctx, 0, nil, l.checkpoint(3)); err != nil {
		t.Fatalf("first checkpoint: %v\n%s", err, lw.Log())
	}
	l.append("d", "e", "f", "g")
	var ce *ConflictError
	if _, err := cl.AddCheckpoint(ctx, 0, nil, l.checkpoint(7)); !errors.As(err, &ce) || ce.Known != 3 {
		t.Fatalf("stale old size: %v", err)
	}
	c, err := cl.AddCheckpoint(ctx, 3, l.proof(3, 7), l.checkpoint(7))
	if err != nil {
		t.Fatalf("growth: %v\n%s", err, lw.Log())
	}
	if time.Since(c.Time) > time.Minute {
		t.Fatalf("cosignature time %s", c.Time)
	}
	fork := &testLog{t: t, origin: l.origin, signer: l.signer, vkey: l.vkey, hashes: map[int64]tlog.Hash{}}
	fork.append("a", "b", "X", "d", "e", "f", "g", "h")
	var re *RefusedError
	if _, err := cl.AddCheckpoint(ctx, 7, fork.proof(7, 8), fork.checkpoint(8)); !errors.As(err, &re) || re.Status != http.StatusUnprocessableEntity {
		t.Fatalf("fork: %v", err)
	}
	other := newTestLog(t, "example.com/unknown")
	other.append("a")
	if _, err := cl.AddCheckpoint(ctx, 0, nil, other.checkpoint(1)); !errors.As(err, &re) || (re.Status != http.StatusNotFound && re.Status != http.StatusForbidden) {
		t.Fatalf("unknown log: %v", err)
	}
}
