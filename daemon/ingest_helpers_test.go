package daemon

import (
	"context"

	"github.com/workspace-sandbox/workspace/tracking"
)

// addCapture and addRecords store what tests need in a workspace's diary
// as the daemon's ingestion does, with the diary's checks but not the
// guest's (there is no HTTP ingestion endpoint; agents_test.go and
// hostile_test.go go through the channel and its guard).
func addCapture(ctx context.Context, d *Daemon, ws string, c tracking.Capture, orig, thumb []byte) (tracking.Ack, error) {
	ack, err := d.server.diary.ingestCapture(ctx, ws, c, orig, thumb)
	return ack, diaryErr(err)
}

func addRecords(ctx context.Context, d *Daemon, ws string, recs []tracking.Record) (tracking.Ack, error) {
	ack, err := d.server.diary.ingestRecords(ctx, ws, recs)
	return ack, diaryErr(err)
}
