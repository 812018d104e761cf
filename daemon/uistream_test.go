package daemon

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/workspace-sandbox/workspace/api"
)

// waitUILogin waits for the web UI, which starts just after the socket
// answers, and returns a login link.
func waitUILogin(t *testing.T, c *api.Client) api.UILogin {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		l, err := c.UILogin(context.Background())
		if err == nil {
			return l
		}
		if !strings.Contains(err.Error(), "not running") || time.Now().After(deadline) {
			t.Fatal(err)
		}
	}
}

// TestUIStream logs in to the web UI through an upgraded API connection,
// as `workspace ui` does for a daemon on another host: the browser's bytes
// reach the UI unchanged (its Host header too) and its answer comes back.
func TestUIStream(t *testing.T) {
	c, _ := startDaemon(t, newFakeHV())
	l := waitUILogin(t, c)
	u, err := url.Parse(l.URL)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i := 0; i < 2; i++ { // each stream is its own connection to the UI
		s, err := c.UIStream(ctx, 0)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(s, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", u.RequestURI(), u.Host)
		resp, err := http.ReadResponse(bufio.NewReader(s), nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		s.Close()
		want := http.StatusSeeOther // the one-time token works once
		if i == 1 {
			want = http.StatusUnauthorized
		}
		if resp.StatusCode != want {
			t.Fatalf("login %d through the stream: %s, want %d", i+1, resp.Status, want)
		}
		if i == 0 && !strings.Contains(resp.Header.Get("Set-Cookie"), "HttpOnly") {
			t.Fatalf("no session cookie through the stream: %v", resp.Header)
		}
	}

	// A forward on another local port (the UI's own number is taken on
	// the client's machine): the UI refuses that Host until a stream names
	// the port, then serves it.
	other := u.Port() + "1"
	if len(other) > 5 {
		other = "40001"
	}
	fwdPort, _ := strconv.Atoi(other)
	get := func(forward int) int {
		s, err := c.UIStream(ctx, forward)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		fmt.Fprintf(s, "GET /static/app.css HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n\r\n", fwdPort)
		resp, err := http.ReadResponse(bufio.NewReader(s), nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := get(0); code != http.StatusMisdirectedRequest {
		t.Fatalf("Host of an unnamed forward port: %d, want 421", code)
	}
	if code := get(fwdPort); code != http.StatusOK {
		t.Fatalf("Host of a forward port the stream named: %d, want 200", code)
	}
	if _, err := c.UIStream(ctx, 70000); !errors.Is(err, api.ErrInvalid) {
		t.Fatalf("a forward port beyond 65535: %v", err)
	}

	// A plain GET (no upgrade) is refused.
	if err := rawAPIGet(t, c, "/v1/ui/stream"); !errors.Is(err, api.ErrInvalid) {
		t.Fatalf("ui/stream without an upgrade: %v", err)
	}
}

// rawAPIGet sends a plain GET to the daemon through the client's
// transport and returns its error class.
func rawAPIGet(t *testing.T, c *api.Client, path string) error {
	t.Helper()
	conn, err := net.Dial("unix", c.Socket())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: workspace\r\nConnection: close\r\n\r\n", path)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusBadRequest {
		return api.ErrInvalid
	}
	return fmt.Errorf("status %s", resp.Status)
}

// TestUIStreamWithoutUI: with the UI off the stream says why.
func TestUIStreamWithoutUI(t *testing.T) {
	c, _ := startDaemonWith(t, newFakeHV(), func(cfg *Config) { cfg.UIAddr = "off" })
	_, err := c.UIStream(context.Background(), 0)
	if !errors.Is(err, api.ErrUnavailable) || !strings.Contains(err.Error(), "--ui-addr off") {
		t.Fatalf("ui stream with the UI off: %v", err)
	}
}
