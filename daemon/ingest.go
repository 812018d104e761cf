package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"

	"github.com/workspace-sandbox/workspace/api"
	"github.com/workspace-sandbox/workspace/diary"
	"github.com/workspace-sandbox/workspace/tracking"
)

// Ingestion: the one place where captures and records enter the diary,
// whether they come from a workspace's agent over its channel (agents.go)
// or through the HTTP ingestion API (tests and tools). The workspace is
// always the one of the channel or URL, never a field of what was sent.

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

// handleCapture is the ingestion endpoint for one screenshot: a multipart
// body of meta (JSON), original and thumbnail. It answers only after the
// capture is durably committed.
func (s *server) handleCapture(r *http.Request) (any, error) {
	meta, orig, thumb, err := readCaptureParts(r)
	if err != nil {
		return nil, err
	}
	return s.diary.ingestCapture(r.Context(), r.PathValue("name"), meta, orig, thumb)
}

func readCaptureParts(r *http.Request) (tracking.Capture, []byte, []byte, error) {
	var meta tracking.Capture
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/form-data" {
		return meta, nil, nil, fmt.Errorf("%w: a capture is a multipart/form-data body (meta, original, thumbnail)", api.ErrInvalid)
	}
	mr := multipart.NewReader(io.LimitReader(r.Body, 3*diary.MaxImageBytes), params["boundary"])
	var orig, thumb []byte
	for i := 0; ; i++ {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil || i > 3 {
			return meta, nil, nil, fmt.Errorf("%w: capture body: %v", api.ErrInvalid, err)
		}
		b, err := io.ReadAll(io.LimitReader(part, diary.MaxImageBytes+1))
		if err != nil {
			return meta, nil, nil, fmt.Errorf("%w: capture part %q: %v", api.ErrInvalid, part.FormName(), err)
		}
		switch part.FormName() {
		case "meta":
			dec := json.NewDecoder(bytes.NewReader(b))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&meta); err != nil {
				return meta, nil, nil, fmt.Errorf("%w: capture meta: %v", api.ErrInvalid, err)
			}
		case "original":
			orig = b
		case "thumbnail":
			thumb = b
		default:
			return meta, nil, nil, fmt.Errorf("%w: unknown capture part %q", api.ErrInvalid, part.FormName())
		}
	}
	if meta.ID == "" || orig == nil {
		return meta, nil, nil, fmt.Errorf("%w: a capture needs a meta part with an id and an original part", api.ErrInvalid)
	}
	return meta, orig, thumb, nil
}

func (s *server) handleRecords(r *http.Request) (any, error) {
	var recs []tracking.Record
	dec := json.NewDecoder(io.LimitReader(r.Body, 16<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&recs); err != nil {
		return nil, fmt.Errorf("%w: records: %v", api.ErrInvalid, err)
	}
	return s.diary.ingestRecords(r.Context(), r.PathValue("name"), recs)
}
