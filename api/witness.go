package api

import (
	"context"
	"net/http"
	"net/url"
	"time"
)

// WitnessState is a workspace log's witnessing, as the daemon sees it: the
// log's origin and key (a witness registers them), its size, and each
// witness of the profile.
type WitnessState struct {
	Origin    string          `json:"origin"`
	LogKey    string          `json:"log_key"`
	Size      int64           `json:"size"`
	Witnesses []WitnessStatus `json:"witnesses"`
}

// WitnessStatus is one witness of a workspace: the latest size it cosigned
// and when, since when entries wait for it (zero when none wait), and why
// the last attempt failed.
type WitnessStatus struct {
	Name         string    `json:"name"`
	URL          string    `json:"url"`
	Key          string    `json:"key"`
	CosignedSize int64     `json:"cosigned_size"`
	CosignedAt   time.Time `json:"cosigned_at,omitzero"`
	QueuedSince  time.Time `json:"queued_since,omitzero"`
	Pending      int64     `json:"pending_entries"`
	LastError    string    `json:"last_error,omitempty"`
	NextAttempt  time.Time `json:"next_attempt,omitzero"`
}

// WitnessState returns a workspace's log witnessing: its origin and log
// key (what a witness registers) and each witness of its profile.
func (c *Client) WitnessState(ctx context.Context, workspace string) (WitnessState, error) {
	var out WitnessState
	err := c.do(ctx, http.MethodGet, "/workspaces/"+url.PathEscape(workspace)+"/witness", nil, &out)
	return out, err
}
