package daemon

import (
	"context"
	"fmt"
	"io"

	"github.com/workspace-sandbox/workspace/api"
	"github.com/workspace-sandbox/workspace/diary"
)

// exportFor writes the export req asks for, at the checkpoint of the given
// size (0: the latest): to the recipients, or with the passphrase alone
// (age allows no recipient beside a passphrase).
func exportFor(ctx context.Context, st *diary.Store, ws string, req api.ExportRequest, size int64, w io.Writer) (diary.ExportSummary, error) {
	if req.Passphrase == "" {
		return st.ExportAt(ctx, ws, req.From, req.To, req.Recipients, size, w)
	}
	if len(req.Recipients) > 0 {
		return diary.ExportSummary{}, errPassphraseAndRecipients
	}
	return st.ExportWithPassphrase(ctx, ws, req.From, req.To, req.Passphrase, size, w)
}

// revealFor writes a reveal file the way exportFor writes an export.
func revealFor(ctx context.Context, st *diary.Store, shot string, req api.ExportRequest, w io.Writer) error {
	if req.Passphrase == "" {
		return st.Reveal(ctx, shot, req.Recipients, w)
	}
	if len(req.Recipients) > 0 {
		return errPassphraseAndRecipients
	}
	return st.RevealWithPassphrase(ctx, shot, req.Passphrase, w)
}

var errPassphraseAndRecipients = fmt.Errorf("%w: a passphrase export is encrypted with the passphrase alone: give no recipient with it", api.ErrInvalid)
