package api

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/url"
	"os"
	"syscall"
)

// DefaultSocket is where the daemon listens unless told otherwise.
const DefaultSocket = "/run/workspace/workspace.sock"

// SocketFromEnv returns $WORKSPACE_SOCKET or DefaultSocket.
func SocketFromEnv() string {
	if s := os.Getenv("WORKSPACE_SOCKET"); s != "" {
		return s
	}
	return DefaultSocket
}

// DialFunc opens one connection to the daemon's API: the unix socket on
// this host, or a stream to a daemon on another host (see NewDialClient).
// The client dials once per HTTP connection it keeps and once per upgraded
// stream (a display channel, a web UI connection).
type DialFunc func(ctx context.Context) (net.Conn, error)

// Client talks to the daemon: over its unix socket (NewClient) or over a
// connection another transport makes (NewDialClient).
type Client struct {
	socket string // the unix socket, for a local daemon
	where  string // what errors name: the socket or the remote host
	dial   DialFunc
	tr     *http.Transport
	http   *http.Client
}

// NewClient returns a client for the daemon listening on socket.
func NewClient(socket string) *Client {
	c := newClient(socket, func(ctx context.Context) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", socket)
	})
	c.socket = socket
	return c
}

// NewDialClient returns a client whose connections come from dial; where
// names the daemon in errors (for instance ssh://alice@server). dial's
// errors should say what failed: they reach the user as they are, after
// "talk to the daemon at WHERE:" (nothing when where is "").
func NewDialClient(where string, dial DialFunc) *Client {
	return newClient(where, dial)
}

func newClient(where string, dial DialFunc) *Client {
	tr := &http.Transport{
		DialContext:        func(ctx context.Context, _, _ string) (net.Conn, error) { return dial(ctx) },
		DisableCompression: true,
	}
	return &Client{where: where, dial: dial, tr: tr, http: &http.Client{Transport: tr}}
}

// Socket returns the socket path the client dials ("" for a client on
// another transport).
func (c *Client) Socket() string { return c.socket }

// Where names the daemon the client talks to: its socket, or its host.
func (c *Client) Where() string { return c.where }

// Close closes the idle connections the client keeps (over SSH, each is an
// ssh process). Requests still in flight are not affected.
func (c *Client) Close() { c.tr.CloseIdleConnections() }

func (c *Client) url(path string, q url.Values) string {
	u := "http://workspace/" + Version + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	return u
}

// do sends a request and decodes a JSON answer into out (when out is non-nil).
func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("encode request: %w", err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.url(path, nil), body)
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return c.send(req, out)
}

// roundTrip sends req and returns the daemon's 2xx response, whose body the
// caller closes; any other answer is the daemon's error, mapped.
func (c *Client) roundTrip(req *http.Request) (*http.Response, error) {
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, c.dialError(err)
	}
	if err := checkResponse(resp); err != nil {
		resp.Body.Close()
		return nil, err
	}
	return resp, nil
}

func (c *Client) send(req *http.Request, out any) error {
	resp, err := c.roundTrip(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return c.dialError(fmt.Errorf("decode daemon response: %w", err))
	}
	return nil
}

// dialError explains a failure to reach or talk to the daemon. For the
// unix socket it says what to do; a remote transport's errors explain
// themselves.
func (c *Client) dialError(err error) error {
	// The URL is always http://workspace/...: it says nothing to a user.
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	if c.socket == "" {
		if c.where == "" {
			return err
		}
		return fmt.Errorf("talk to the daemon at %s: %w", c.where, err)
	}
	if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("%w (no daemon listens on %s): start it with `sudo workspace daemon`, or point --socket / WORKSPACE_SOCKET at a running one: %w",
			ErrDaemonNotRunning, c.socket, err)
	}
	if errors.Is(err, syscall.EACCES) {
		return fmt.Errorf("%w: permission denied on %s: join the `workspace` group or use sudo", ErrForbidden, c.socket)
	}
	return fmt.Errorf("talk to daemon at %s: %w", c.socket, err)
}

func checkResponse(resp *http.Response) error {
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	var e Error
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err := json.Unmarshal(b, &e); err != nil || e.Message == "" {
		e = Error{Code: CodeInternal, Message: fmt.Sprintf("daemon answered %s: %s", resp.Status, bytes.TrimSpace(b))}
	}
	return &RemoteError{Code: e.Code, Message: e.Message, Status: resp.StatusCode}
}

// doJSON sends in (when not nil) as JSON and decodes the daemon's answer
// into a T.
func doJSON[T any](ctx context.Context, c *Client, method, path string, in any) (T, error) {
	var out T
	err := c.do(ctx, method, path, in, &out)
	return out, err
}

// Info returns facts about the daemon.
func (c *Client) Info(ctx context.Context) (Info, error) {
	return doJSON[Info](ctx, c, http.MethodGet, "/info", nil)
}

// Workspaces lists all workspaces.
func (c *Client) Workspaces(ctx context.Context) ([]Workspace, error) {
	return doJSON[[]Workspace](ctx, c, http.MethodGet, "/workspaces", nil)
}

// Workspace returns one workspace.
func (c *Client) Workspace(ctx context.Context, name string) (Workspace, error) {
	return doJSON[Workspace](ctx, c, http.MethodGet, "/workspaces/"+url.PathEscape(name), nil)
}

// Create defines a workspace; it does not start it.
func (c *Client) Create(ctx context.Context, req CreateRequest) (Workspace, error) {
	return doJSON[Workspace](ctx, c, http.MethodPost, "/workspaces", req)
}

// Start boots a workspace.
func (c *Client) Start(ctx context.Context, name string, req StartRequest) (Workspace, error) {
	return doJSON[Workspace](ctx, c, http.MethodPost, "/workspaces/"+url.PathEscape(name)+"/start", req)
}

// Stop shuts a workspace down.
func (c *Client) Stop(ctx context.Context, name string, req StopRequest) (Workspace, error) {
	return doJSON[Workspace](ctx, c, http.MethodPost, "/workspaces/"+url.PathEscape(name)+"/stop", req)
}

// Restart stops a workspace as Stop does, then starts it again.
func (c *Client) Restart(ctx context.Context, name string, req StopRequest) (Workspace, error) {
	return doJSON[Workspace](ctx, c, http.MethodPost, "/workspaces/"+url.PathEscape(name)+"/restart", req)
}

// Suspend saves a running workspace's memory to disk and frees its host
// memory; Start resumes it.
func (c *Client) Suspend(ctx context.Context, name string) (Workspace, error) {
	return doJSON[Workspace](ctx, c, http.MethodPost, "/workspaces/"+url.PathEscape(name)+"/suspend", nil)
}

// Switch suspends every other running workspace, then starts or resumes
// name.
func (c *Client) Switch(ctx context.Context, name string, req StartRequest) (SwitchResult, error) {
	return doJSON[SwitchResult](ctx, c, http.MethodPost, "/workspaces/"+url.PathEscape(name)+"/switch", req)
}

// Destroy removes a workspace: its domain, overlay, network and folder.
func (c *Client) Destroy(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodDelete, "/workspaces/"+url.PathEscape(name), nil, nil)
}

// Images lists the imported base images.
func (c *Client) Images(ctx context.Context) ([]Image, error) {
	return doJSON[[]Image](ctx, c, http.MethodGet, "/images", nil)
}

// ImageGC removes every image no workspace uses (only lists them with dryRun).
func (c *Client) ImageGC(ctx context.Context, dryRun bool) (GCResult, error) {
	var out GCResult
	q := url.Values{}
	if dryRun {
		q.Set("dry_run", "true")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url("/images/gc", q), nil)
	if err != nil {
		return out, err
	}
	err = c.send(req, &out)
	return out, err
}

// RemoveImage deletes an image no workspace uses.
func (c *Client) RemoveImage(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodDelete, "/images/"+url.PathEscape(name), nil, nil)
}

// ImportSource is an image to upload: the disk and, for direct kernel boot,
// a kernel and an initrd. Readers are streamed; sizes must be exact.
type ImportSource struct {
	Meta   ImportMeta
	Disk   io.Reader
	Kernel io.Reader
	Initrd io.Reader
}

// ImportImage streams an image to the daemon as one multipart body. The
// daemon stores the parts in its pool while they arrive, so progress on the
// readers is upload progress.
func (c *Client) ImportImage(ctx context.Context, src ImportSource) (Image, error) {
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		pw.CloseWithError(writeImportParts(mw, src))
	}()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url("/images", nil), pr)
	if err != nil {
		return Image{}, fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	var out Image
	err = c.send(req, &out)
	pr.Close()
	return out, err
}

func writeImportParts(mw *multipart.Writer, src ImportSource) error {
	meta, err := mw.CreateFormField("meta")
	if err != nil {
		return err
	}
	if err := json.NewEncoder(meta).Encode(src.Meta); err != nil {
		return err
	}
	parts := []struct {
		name string
		r    io.Reader
	}{{"disk", src.Disk}, {"kernel", src.Kernel}, {"initrd", src.Initrd}}
	for _, p := range parts {
		if p.r == nil {
			continue
		}
		w, err := mw.CreateFormFile(p.name, p.name)
		if err != nil {
			return err
		}
		if _, err := io.Copy(w, p.r); err != nil {
			return fmt.Errorf("read %s: %w", p.name, err)
		}
	}
	return mw.Close()
}

// Events streams lifecycle events until ctx ends or the daemon goes away.
func (c *Client) Events(ctx context.Context, fn func(Event) error) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url("/events", nil), nil)
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	resp, err := c.roundTrip(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var ev Event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			return fmt.Errorf("decode event: %w", err)
		}
		if err := fn(ev); err != nil {
			return err
		}
	}
	if ctx.Err() != nil {
		return nil
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read events from the daemon at %s: %w", c.where, err)
	}
	return errors.New("daemon closed the event stream")
}
