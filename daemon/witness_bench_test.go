package daemon

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/hashicorp/go-hclog"

	"github.com/workspace-sandbox/workspace/api"
	"github.com/workspace-sandbox/workspace/tracking"
	"github.com/workspace-sandbox/workspace/witness"
)

// BenchmarkIngestWitness compares the durable capture ingest rate of the
// daemon (the ingestion API: sealed blobs fsynced, a WAL commit, a signed
// checkpoint, then the answer) without witnesses and with a local witness
// (`workspace witness serve`'s server on loopback) cosigning as it goes,
// in the same run. The queue submits at most once per interval; the
// benchmark uses 1 s, sixty times the default, so that the witness works
// throughout the run. Both daemons run side by side and take one capture
// each in turn, so the machine's load falls on both alike; on/off is the
// ratio of their rates (the target: at least 0.9).
func BenchmarkIngestWitness(b *testing.B) {
	jpeg := testJPEG(b, 7)
	type setup struct {
		c   *api.Client
		d   *Daemon
		srv *witness.Server
	}
	prepare := func(on bool) setup {
		c, d := startDaemonWith(b, newFakeHV(), func(cfg *Config) { cfg.WitnessInterval, cfg.Logger = time.Second, hclog.NewNullLogger() })
		ctx := context.Background()
		if _, err := importBytes(b, c, "test", qcow2Bytes(1<<30, false, 4096)); err != nil {
			b.Fatal(err)
		}
		client, _ := age.GenerateX25519Identity()
		src := `image = "test"
client {
  name      = "ACME"
  recipient = "` + client.Recipient().String() + `"
}
`
		var srv *witness.Server
		if on {
			skey, vkey, _ := witness.GenerateKey("bench.example/witness")
			signer, _ := witness.NewSigner(skey)
			var err error
			if srv, err = witness.OpenServer(ctx, filepath.Join(b.TempDir(), "w.db"), signer, nil); err != nil {
				b.Fatal(err)
			}
			l, _ := net.Listen("tcp", "127.0.0.1:0")
			hs := &http.Server{Handler: srv}
			go hs.Serve(l)
			b.Cleanup(func() { hs.Close(); srv.Close() })
			src += fmt.Sprintf("witness \"local\" {\n  url = \"http://%s\"\n  key = \"%s\"\n}\n", l.Addr(), vkey)
		}
		if _, err := c.Create(ctx, api.CreateRequest{Name: "acme", ProfilePath: "/p.hcl", Profile: testProfile(b, src)}); err != nil {
			b.Fatal(err)
		}
		if _, err := c.Init(ctx, api.InitRequest{}); err != nil {
			b.Fatal(err)
		}
		if srv != nil {
			st, err := c.WitnessState(ctx, "acme")
			if err != nil {
				b.Fatal(err)
			}
			if err := srv.AddLog(ctx, st.Origin, st.LogKey); err != nil {
				b.Fatal(err)
			}
		}
		return setup{c, d, srv}
	}
	off, on := prepare(false), prepare(true)
	ctx := context.Background()
	begin := time.Now()
	var spent [2]time.Duration
	b.SetBytes(int64(2 * len(jpeg)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		// One capture to each daemon, alternating which goes first: the
		// machine's load falls on both alike.
		for k := 0; k < 2; k++ {
			j := (i + k) % 2
			s := []setup{off, on}[j]
			m := tracking.Capture{ID: fmt.Sprintf("b%d", i), Taken: begin.Add(time.Duration(i) * time.Millisecond)}
			t0 := time.Now()
			if _, err := addCapture(ctx, s.d, "acme", m, jpeg, nil); err != nil {
				b.Fatal(err)
			}
			spent[j] += time.Since(t0)
		}
	}
	b.StopTimer()
	offRate, onRate := float64(b.N)/spent[0].Seconds(), float64(b.N)/spent[1].Seconds()
	b.ReportMetric(offRate, "off-captures/s")
	b.ReportMetric(onRate, "on-captures/s")
	b.ReportMetric(onRate/offRate, "on/off")
	// The witness kept up: it cosigned during the run.
	on.d.server.witness.flush(ctx, "acme", true)
	st, _ := on.c.WitnessState(ctx, "acme")
	if st.Witnesses[0].CosignedSize == 0 || st.Witnesses[0].LastError != "" {
		b.Fatalf("the witness did not cosign: %+v", st.Witnesses[0])
	}
}
