package witness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"filippo.io/torchwood"
	"golang.org/x/mod/sumdb/tlog"
)

// Client submits a log's checkpoints to one witness.
type Client struct {
	// URL is the witness's submission prefix; the request goes to
	// URL/add-checkpoint.
	URL string
	// Verifier is the witness's pinned key: an answer is accepted only
	// with a valid cosignature by it.
	Verifier *torchwood.CosignatureVerifier
	// HTTP is the client to use; a client with a 30 s timeout by default.
	HTTP *http.Client
}

// ConflictError is a 409 answer: the witness last cosigned a checkpoint of
// size Known, not the old size sent (or the same size with another root).
type ConflictError struct {
	Known  int64
	Reason string
}

func (e *ConflictError) Error() string {
	if e.Reason != "" {
		return fmt.Sprintf("the witness has cosigned size %d of this log, not the old size sent: %s", e.Known, e.Reason)
	}
	return fmt.Sprintf("the witness has cosigned size %d of this log, not the old size sent", e.Known)
}

// RefusedError is an answer that refuses the checkpoint for good, until
// something changes on either side: the witness does not know the log
// (404), the log's signature does not verify with the keys it has for it
// (403), the consistency proof failed (422: the log is not an extension of
// what the witness cosigned), or the request was malformed (400).
type RefusedError struct {
	Status int
	Reason string // the witness's own words
}

func (e *RefusedError) Error() string {
	what := map[int]string{
		http.StatusNotFound:            "the witness does not know this log (register its origin and key there)",
		http.StatusForbidden:           "the witness does not accept the log's signature (unknown log or key)",
		http.StatusUnprocessableEntity: "the witness refused the checkpoint: it is not consistent with what the witness cosigned before",
		http.StatusBadRequest:          "the witness found the request malformed",
	}[e.Status]
	if what == "" {
		what = fmt.Sprintf("the witness refused the checkpoint (HTTP %d)", e.Status)
	}
	if e.Reason != "" {
		return what + ": " + e.Reason
	}
	return what
}

// Cosigned is a witness's cosignature of a checkpoint.
type Cosigned struct {
	Line string    // the note signature line
	Time time.Time // the witness's timestamp in it
}

// AddCheckpoint submits signed (a checkpoint note signed by the log) with
// a consistency proof from oldSize, the size the witness last cosigned.
// It returns the witness's verified cosignature; a *ConflictError, a
// *RefusedError, or another error (the witness is unreachable or failed:
// try again later).
func (c *Client) AddCheckpoint(ctx context.Context, oldSize int64, proof tlog.TreeProof, signed []byte) (Cosigned, error) {
	text, _, err := SplitNote(signed)
	if err != nil {
		return Cosigned{}, err
	}
	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	body := AddCheckpoint{OldSize: oldSize, Proof: proof, Checkpoint: signed}.Marshal()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(c.URL, "/")+"/add-checkpoint", bytes.NewReader(body))
	if err != nil {
		return Cosigned{}, fmt.Errorf("witness %s: %w", c.URL, err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return Cosigned{}, fmt.Errorf("witness %s: %w", c.URL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponse+1))
	if err != nil {
		return Cosigned{}, fmt.Errorf("witness %s: read answer: %w", c.URL, err)
	}
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusConflict:
		if ct := resp.Header.Get("Content-Type"); strings.HasPrefix(ct, ContentTypeSize) {
			n, err := ParseConflict(b)
			if err != nil {
				return Cosigned{}, fmt.Errorf("witness %s: its 409 answer: %w", c.URL, err)
			}
			return Cosigned{}, &ConflictError{Known: n}
		}
		// Same size, another root: the spec answers 409 without a size.
		return Cosigned{}, &RefusedError{Status: http.StatusConflict, Reason: reason(b)}
	case http.StatusNotFound, http.StatusForbidden, http.StatusUnprocessableEntity, http.StatusBadRequest:
		return Cosigned{}, &RefusedError{Status: resp.StatusCode, Reason: reason(b)}
	default:
		return Cosigned{}, fmt.Errorf("witness %s: HTTP %d: %s", c.URL, resp.StatusCode, reason(b))
	}
	lines, err := ParseCosignatures(b)
	if err != nil {
		return Cosigned{}, fmt.Errorf("witness %s: its answer: %w", c.URL, err)
	}
	line, at, ok, err := FindCosignature(text, lines, c.Verifier)
	if err != nil {
		return Cosigned{}, fmt.Errorf("witness %s: %w", c.URL, err)
	}
	if !ok {
		return Cosigned{}, fmt.Errorf("witness %s answered without a cosignature by the pinned key %s", c.URL, c.Verifier.String())
	}
	return Cosigned{Line: line, Time: at}, nil
}

// reason is a witness's error text, cut short and printable.
func reason(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 && r != ' ' {
			return ' '
		}
		return r
	}, s)
}

// IsPermanent reports whether err is a refusal that retrying as it is
// will not change (a *RefusedError).
func IsPermanent(err error) bool {
	var re *RefusedError
	return errors.As(err, &re)
}
