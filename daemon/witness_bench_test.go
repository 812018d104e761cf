package daemon

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/workspace-sandbox/workspace/api"
	"github.com/workspace-sandbox/workspace/tracking"
	"github.com/workspace-sandbox/workspace/witness"
)

// benchRuns alternates the order of the two modes between runs (-count):
// the second daemon of a run writes to a disk the first one just filled.
var benchRuns int

// BenchmarkIngestWitness compares the durable capture ingest rate of the
// daemon (the ingestion API: sealed blobs fsynced, a WAL commit, a signed
// checkpoint, then the answer) without witnesses and with a local witness
// (`workspace witness serve`'s server on loopback) cosigning as it goes,
// in the same run. The queue submits at most once per interval; the
// benchmark uses 1 s, sixty times the default, so that the witness works
// throughout the run. Both daemons are set up first, the disk is synced
// before each is measured, and the order alternates between runs.
func BenchmarkIngestWitness(b *testing.B) {
	jpeg := testJPEG(b, 7)
	type setup struct {
		c   *api.Client
		d   *Daemon
		srv *witness.Server
	}
	prepare := func(on bool) setup {
		c, d := startDaemonWith(b, newFakeHV(), func(cfg *Config) { cfg.WitnessInterval = time.Second })
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
	modes := map[string]setup{"witness-off": prepare(false), "witness-on": prepare(true)}
	order := []string{"witness-off", "witness-on"}
	if benchRuns%2 == 1 {
		order[0], order[1] = order[1], order[0]
	}
	benchRuns++
	seq := 0
	for _, mode := range order {
		s := modes[mode]
		syscall.Sync()
		b.Run(mode, func(b *testing.B) {
			ctx := context.Background()
			start := time.Now()
			b.SetBytes(int64(len(jpeg)))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				seq++
				m := tracking.Capture{ID: fmt.Sprintf("b%d", seq), Taken: start.Add(time.Duration(i) * time.Millisecond)}
				if _, err := s.c.AddCapture(ctx, "acme", m, jpeg, nil); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "captures/s")
			if s.srv != nil {
				// The witness kept up: it cosigned during the run.
				s.d.server.witness.flush(ctx, "acme", true)
				st, _ := s.c.WitnessState(ctx, "acme")
				if st.Witnesses[0].CosignedSize == 0 || st.Witnesses[0].LastError != "" {
					b.Fatalf("the witness did not cosign: %+v", st.Witnesses[0])
				}
			}
		})
	}
}
