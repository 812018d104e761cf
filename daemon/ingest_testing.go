//go:build ingesttest

package daemon

import (
	"bytes"
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

// The HTTP ingestion endpoints exist only in a build with the ingesttest
// tag: the end-to-end tests build the daemon so to fill a diary with
// backdated synthetic captures and records. A daemon built for use has
// none (ingest_notest.go): through them any member of the workspace group
// could backdate captures, past every check of the guest's channel.

func testRoutes(s *server) map[string]endpoint {
	return map[string]endpoint{
		"POST /workspaces/{name}/captures": s.handleCapture,
		"POST /workspaces/{name}/records":  s.handleRecords,
	}
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
