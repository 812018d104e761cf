package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/workspace-sandbox/workspace/tracking"
)

// DiaryStatus reports whether the freelancer's keys exist and are unlocked.
func (c *Client) DiaryStatus(ctx context.Context) (DiaryStatus, error) {
	return doJSON[DiaryStatus](ctx, c, http.MethodGet, "/diary", nil)
}

// Init creates the freelancer's identity and signing key in the daemon.
func (c *Client) Init(ctx context.Context, req InitRequest) (DiaryStatus, error) {
	return doJSON[DiaryStatus](ctx, c, http.MethodPost, "/diary/init", req)
}

// Unlock unlocks a passphrase-protected identity.
func (c *Client) Unlock(ctx context.Context, passphrase string) (DiaryStatus, error) {
	return doJSON[DiaryStatus](ctx, c, http.MethodPost, "/diary/unlock", UnlockRequest{Passphrase: passphrase})
}

// Diary returns a workspace's diary for [from, to), days in time zone tz
// (an IANA name; empty for the daemon's local zone).
func (c *Client) Diary(ctx context.Context, workspace string, from, to time.Time, tz string) (tracking.DiaryView, error) {
	q := url.Values{"from": {from.Format(time.RFC3339)}, "to": {to.Format(time.RFC3339)}}
	if tz != "" {
		q.Set("tz", tz)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url("/workspaces/"+url.PathEscape(workspace)+"/diary", q), nil)
	if err != nil {
		return tracking.DiaryView{}, err
	}
	var out tracking.DiaryView
	err = c.send(req, &out)
	return out, err
}

// AddManual adds manual time.
func (c *Client) AddManual(ctx context.Context, workspace string, req ManualRequest) (tracking.ManualEntry, error) {
	return doJSON[tracking.ManualEntry](ctx, c, http.MethodPost, "/workspaces/"+url.PathEscape(workspace)+"/diary/manual", req)
}

// Prune crypto-shreds shots taken before req.Before.
func (c *Client) Prune(ctx context.Context, workspace string, req PruneRequest) (PruneResult, error) {
	return doJSON[PruneResult](ctx, c, http.MethodPost, "/workspaces/"+url.PathEscape(workspace)+"/diary/prune", req)
}

// CheckDiary checks a workspace's stored diary end to end.
func (c *Client) CheckDiary(ctx context.Context, workspace string) (CheckResult, error) {
	return doJSON[CheckResult](ctx, c, http.MethodGet, "/workspaces/"+url.PathEscape(workspace)+"/diary/check", nil)
}

// ShotImage returns a shot's image: kind is "current" (covered if covered),
// "original" or "thumbnail".
func (c *Client) ShotImage(ctx context.Context, id, kind string) ([]byte, error) {
	var buf bytes.Buffer
	err := c.stream(ctx, http.MethodGet, "/shots/"+url.PathEscape(id), url.Values{"kind": {kind}}, nil, nil, &buf)
	return buf.Bytes(), err
}

// Cover covers regions of a shot (all of it when req.Rects is empty).
func (c *Client) Cover(ctx context.Context, id string, req CoverRequest) error {
	return c.do(ctx, http.MethodPost, "/shots/"+url.PathEscape(id)+"/cover", req, nil)
}

// Retake asks the agent in the shot's VM for a retake of the shot now,
// while its slot runs, and waits until the retake is in the diary.
func (c *Client) Retake(ctx context.Context, id string) (Retake, error) {
	return doJSON[Retake](ctx, c, http.MethodPost, "/shots/"+url.PathEscape(id)+"/retake", nil)
}

// DeleteShot crypto-shreds a shot.
func (c *Client) DeleteShot(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodPost, "/shots/"+url.PathEscape(id)+"/delete", nil, nil)
}

// Reveal writes a shot's reveal file to w.
func (c *Client) Reveal(ctx context.Context, id string, recipients []string, w io.Writer) error {
	return c.stream(ctx, http.MethodPost, "/shots/"+url.PathEscape(id)+"/reveal", nil, ExportRequest{Recipients: recipients}, nil, w)
}

// Export writes a workspace's signed, encrypted export to w.
func (c *Client) Export(ctx context.Context, workspace string, req ExportRequest, w io.Writer) error {
	return c.stream(ctx, http.MethodPost, "/workspaces/"+url.PathEscape(workspace)+"/diary/export", nil, req, nil, w)
}

// Backup writes an encrypted backup of the diary and keys to w.
func (c *Client) Backup(ctx context.Context, passphrase string, w io.Writer) error {
	return c.stream(ctx, http.MethodPost, "/backup", nil, nil, map[string]string{PassphraseHeader: passphrase}, w)
}

// Restore replaces the daemon's diary and keys with a backup's.
func (c *Client) Restore(ctx context.Context, passphrase string, backup io.Reader, force bool) (RestoreResult, error) {
	q := url.Values{}
	if force {
		q.Set("force", "true")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url("/restore", q), backup)
	if err != nil {
		return RestoreResult{}, err
	}
	req.Header.Set(PassphraseHeader, passphrase)
	req.Header.Set("Content-Type", "application/octet-stream")
	var out RestoreResult
	err = c.send(req, &out)
	return out, err
}

// stream sends a request (JSON body in, when set) and copies a successful
// answer's body to w.
func (c *Client) stream(ctx context.Context, method, path string, q url.Values, in any, headers map[string]string, w io.Writer) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.url(path, q), body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := c.roundTrip(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(w, resp.Body); err != nil {
		return fmt.Errorf("read daemon response: %w", err)
	}
	return nil
}

// Track turns tracking on or off.
func (c *Client) Track(ctx context.Context, workspace string, req TrackRequest) (TrackStatus, error) {
	return doJSON[TrackStatus](ctx, c, http.MethodPost, "/workspaces/"+url.PathEscape(workspace)+"/track", req)
}

// TrackStatus reports tracking and the agent's state.
func (c *Client) TrackStatus(ctx context.Context, workspace string) (TrackStatus, error) {
	return doJSON[TrackStatus](ctx, c, http.MethodGet, "/workspaces/"+url.PathEscape(workspace)+"/track", nil)
}

// Screen returns the workspace's current screen as PNG.
func (c *Client) Screen(ctx context.Context, workspace string) ([]byte, error) {
	var buf bytes.Buffer
	err := c.stream(ctx, http.MethodGet, "/workspaces/"+url.PathEscape(workspace)+"/screen", nil, nil, nil, &buf)
	return buf.Bytes(), err
}

// UILogin asks for a one-time login link to the web UI.
func (c *Client) UILogin(ctx context.Context) (UILogin, error) {
	return doJSON[UILogin](ctx, c, http.MethodPost, "/ui/login", nil)
}

// Report writes the HTML report (format "html") or CSV timesheet ("csv") of
// a range, made from a verified export.
func (c *Client) Report(ctx context.Context, workspace, format string, req ExportRequest, w io.Writer) error {
	return c.stream(ctx, http.MethodPost, "/workspaces/"+url.PathEscape(workspace)+"/diary/report", url.Values{"format": {format}}, req, nil, w)
}
