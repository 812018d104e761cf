package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/url"

	"github.com/workspace-sandbox/workspace/api"
	"github.com/workspace-sandbox/workspace/tracking"
)

// The end-to-end tests fill diaries with backdated synthetic captures and
// records through the HTTP ingestion endpoints that only a test build of
// the daemon has (the ingesttest tag, which TestMain builds with; a daemon
// built for use has none: they would let any member of the workspace group
// backdate captures). A guest's captures go through its channel.

// ingestPost posts body to the test build's endpoint of workspace ws and
// decodes its ack.
func ingestPost(ctx context.Context, socket, ws, what, contentType string, body io.Reader) (tracking.Ack, error) {
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", socket)
	}}}
	defer hc.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://workspace/"+api.Version+"/workspaces/"+url.PathEscape(ws)+"/"+what, body)
	if err != nil {
		return tracking.Ack{}, err
	}
	req.Header.Set("Content-Type", contentType)
	resp, err := hc.Do(req)
	if err != nil {
		return tracking.Ack{}, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode/100 != 2 {
		return tracking.Ack{}, fmt.Errorf("%s: daemon answered %s: %s", what, resp.Status, bytes.TrimSpace(b))
	}
	var ack tracking.Ack
	if err := json.Unmarshal(b, &ack); err != nil {
		return tracking.Ack{}, fmt.Errorf("%s: decode ack: %w", what, err)
	}
	return ack, nil
}

// addCapture sends one screenshot (meta, original, thumbnail when given).
func addCapture(ctx context.Context, socket, ws string, meta tracking.Capture, original, thumbnail []byte) (tracking.Ack, error) {
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	mb, err := json.Marshal(meta)
	if err != nil {
		return tracking.Ack{}, err
	}
	for _, p := range []struct {
		name string
		data []byte
	}{{"meta", mb}, {"original", original}, {"thumbnail", thumbnail}} {
		if p.data == nil {
			continue
		}
		w, err := mw.CreateFormFile(p.name, p.name)
		if err != nil {
			return tracking.Ack{}, err
		}
		if _, err := w.Write(p.data); err != nil {
			return tracking.Ack{}, err
		}
	}
	if err := mw.Close(); err != nil {
		return tracking.Ack{}, err
	}
	return ingestPost(ctx, socket, ws, "captures", mw.FormDataContentType(), &body)
}

// addRecords sends activity, idle, session and gap records.
func addRecords(ctx context.Context, socket, ws string, recs []tracking.Record) (tracking.Ack, error) {
	b, err := json.Marshal(recs)
	if err != nil {
		return tracking.Ack{}, err
	}
	return ingestPost(ctx, socket, ws, "records", "application/json", bytes.NewReader(b))
}
