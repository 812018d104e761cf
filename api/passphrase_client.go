package api

import (
	"context"
	"io"
	"net/http"
	"net/url"
)

// RevealWithPassphrase writes a reveal file of a shot encrypted with
// passphrase (for a client who received a passphrase export) to w.
func (c *Client) RevealWithPassphrase(ctx context.Context, id, passphrase string, w io.Writer) error {
	return c.stream(ctx, http.MethodPost, "/shots/"+url.PathEscape(id)+"/reveal", nil, ExportRequest{Passphrase: passphrase}, nil, w)
}
