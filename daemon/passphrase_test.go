package daemon

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/workspace-sandbox/workspace/api"
	"github.com/workspace-sandbox/workspace/diary"
)

// TestExportForRefusesPassphraseWithRecipients: a passphrase export is
// encrypted with the passphrase alone, so a request with both is refused
// before anything is written, as is a short passphrase.
func TestExportForRefusesPassphraseWithRecipients(t *testing.T) {
	ctx := context.Background()
	st, err := diary.Open(ctx, t.TempDir(), diary.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	from := time.Date(2026, 11, 16, 0, 0, 0, 0, time.UTC)
	for _, req := range []api.ExportRequest{
		{From: from, To: from.AddDate(0, 0, 1), Passphrase: "a long enough passphrase", Recipients: []string{"age1x"}},
		{From: from, To: from.AddDate(0, 0, 1), Passphrase: "short"},
	} {
		var buf bytes.Buffer
		if _, err := exportFor(ctx, st, "acme", req, 0, &buf); !errors.Is(err, api.ErrInvalid) && !errors.Is(err, diary.ErrInvalid) || buf.Len() != 0 {
			t.Errorf("export %+v: %v (%d bytes written)", req, err, buf.Len())
		}
		if err := revealFor(ctx, st, "shot-1", req, &buf); !errors.Is(err, api.ErrInvalid) && !errors.Is(err, diary.ErrInvalid) || buf.Len() != 0 {
			t.Errorf("reveal %+v: %v (%d bytes written)", req, err, buf.Len())
		}
	}
}
