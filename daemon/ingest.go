package daemon

import (
	"context"
	"fmt"

	"github.com/workspace-sandbox/workspace/tracking"
)

// Ingestion: the one place where captures and records enter the diary.
// They come from a workspace's agent over its channel, checked by the
// ingestion guard first (guestingest.go), or from the daemon itself (its
// session and refusal records). The workspace is always the one of the
// channel, never a field of what was sent. There is no HTTP ingestion
// endpoint: it would let any member of the workspace group backdate
// captures (only a test build has one, ingest_testing.go).

// ingestCapture stores one capture of workspace name durably (the diary is
// made first if the workspace has none yet).
func (d *diaryService) ingestCapture(ctx context.Context, name string, c tracking.Capture, orig, thumb []byte) (tracking.Ack, error) {
	st, done := d.use()
	defer done()
	if err := d.ensureFromLibvirt(ctx, st, name); err != nil {
		return tracking.Ack{}, fmt.Errorf("capture for %q: %w", name, err)
	}
	ack, err := st.AddCapture(ctx, name, c, orig, thumb)
	if err != nil {
		return tracking.Ack{}, fmt.Errorf("capture for %q: %w", name, err)
	}
	return ack, nil
}

// ingestRecords stores a batch of records of workspace name durably.
func (d *diaryService) ingestRecords(ctx context.Context, name string, recs []tracking.Record) (tracking.Ack, error) {
	st, done := d.use()
	defer done()
	if err := d.ensureFromLibvirt(ctx, st, name); err != nil {
		return tracking.Ack{}, fmt.Errorf("records for %q: %w", name, err)
	}
	ack, err := st.AddRecords(ctx, name, recs)
	if err != nil {
		return tracking.Ack{}, fmt.Errorf("records for %q: %w", name, err)
	}
	return ack, nil
}

// testRoutes are the endpoints only a test build has (none here).
func (s *server) testRoutes() map[string]endpoint { return testRoutes(s) }
