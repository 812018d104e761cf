package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"

	"github.com/workspace-sandbox/workspace/api"
	"github.com/workspace-sandbox/workspace/internal/contexts"
	"github.com/workspace-sandbox/workspace/internal/sshconn"
)

// endpoint is the daemon the CLI talks to, and what chose it.
type endpoint struct {
	// ssh is the server when the daemon is reached over SSH; nil for a
	// unix socket on this machine.
	ssh    *sshconn.Target
	socket string // the unix socket, when local
	// context is the name of the context that chose it ("" for none).
	context string
	source  string // "--host", "WORKSPACE_CONTEXT", "the current context", ...
}

// remote tells whether the daemon is on another host.
func (e endpoint) remote() bool { return e.ssh != nil }

// String is the endpoint as a host URL: ssh://... or unix:///path.
func (e endpoint) String() string {
	if e.ssh != nil {
		return e.ssh.String()
	}
	return (&url.URL{Scheme: "unix", Path: e.socket}).String()
}

// parseHost reads a host URL: ssh://[USER@]HOST[:PORT] for a daemon
// reached over SSH, unix:///PATH for a daemon socket on this machine.
func parseHost(s string) (endpoint, error) {
	switch {
	case strings.HasPrefix(s, "ssh:"):
		t, err := sshconn.Parse(s)
		if err != nil {
			return endpoint{}, err
		}
		return endpoint{ssh: &t}, nil
	case strings.HasPrefix(s, "unix:"):
		u, err := url.Parse(s)
		if err != nil || u.Host != "" || u.Path == "" || !strings.HasPrefix(u.Path, "/") || u.RawQuery != "" || u.User != nil {
			return endpoint{}, fmt.Errorf("host %q: want unix:///ABSOLUTE/PATH/TO/SOCKET", s)
		}
		return endpoint{socket: u.Path}, nil
	}
	return endpoint{}, fmt.Errorf("host %q: want ssh://[USER@]HOST[:PORT] (a daemon over SSH) or unix:///PATH (a daemon socket here)", s)
}

// resolveEndpoint picks the daemon, first match wins:
//
//	--host or --context (not both)
//	--socket
//	WORKSPACE_HOST or WORKSPACE_CONTEXT (not both)
//	WORKSPACE_SOCKET
//	the current context (workspace context use)
//	the default socket
func (a *app) resolveEndpoint() (endpoint, error) {
	socketFlag := a.root != nil && a.root.PersistentFlags().Changed("socket")
	if a.hostFlag != "" && a.contextFlag != "" {
		return endpoint{}, errors.New("--host and --context both name a daemon: give one")
	}
	if (a.hostFlag != "" || a.contextFlag != "") && socketFlag {
		return endpoint{}, errors.New("--socket names a daemon here, --host or --context another: give one")
	}
	fromHost := func(s, source string) (endpoint, error) {
		e, err := parseHost(s)
		if err != nil {
			return endpoint{}, fmt.Errorf("%s: %w", source, err)
		}
		e.source = source
		return e, nil
	}
	switch {
	case a.hostFlag != "":
		return fromHost(a.hostFlag, "--host")
	case a.contextFlag != "":
		return a.contextEndpoint(a.contextFlag, "--context")
	case socketFlag:
		return endpoint{socket: a.socket, source: "--socket"}, nil
	}
	envHost, envCtx := os.Getenv("WORKSPACE_HOST"), os.Getenv("WORKSPACE_CONTEXT")
	switch {
	case envHost != "" && envCtx != "":
		return endpoint{}, errors.New("WORKSPACE_HOST and WORKSPACE_CONTEXT are both set: unset one")
	case envHost != "":
		return fromHost(envHost, "WORKSPACE_HOST")
	case envCtx != "":
		return a.contextEndpoint(envCtx, "WORKSPACE_CONTEXT")
	case os.Getenv("WORKSPACE_SOCKET") != "":
		return endpoint{socket: a.socket, source: "WORKSPACE_SOCKET"}, nil
	}
	_, f, err := a.loadContexts()
	if err != nil {
		return endpoint{}, err
	}
	if f.Current != "" {
		c, _ := f.Find(f.Current)
		e, err := fromHost(c.Host, fmt.Sprintf("context %q", c.Name))
		e.context = c.Name
		if err == nil {
			e.source = "the current context"
		}
		return e, err
	}
	return endpoint{socket: a.socket, source: "the default"}, nil
}

// contextEndpoint is the endpoint of a named context ("default": this
// machine's socket).
func (a *app) contextEndpoint(name, source string) (endpoint, error) {
	if name == contexts.Default {
		return endpoint{socket: a.socket, context: name, source: source}, nil
	}
	_, f, err := a.loadContexts()
	if err != nil {
		return endpoint{}, err
	}
	c, ok := f.Find(name)
	if !ok {
		return endpoint{}, fmt.Errorf("%s: no context named %q (workspace context ls)", source, name)
	}
	e, err := parseHost(c.Host)
	if err != nil {
		return endpoint{}, fmt.Errorf("%s: context %q: %w", source, name, err)
	}
	e.context, e.source = name, source
	return e, nil
}

func (a *app) contextStore() (*contexts.Store, error) {
	if a.contexts != nil {
		return a.contexts, nil
	}
	return contexts.DefaultStore()
}

// loadContexts opens the contexts store and reads its file.
func (a *app) loadContexts() (*contexts.Store, contexts.File, error) {
	st, err := a.contextStore()
	if err != nil {
		return nil, contexts.File{}, err
	}
	f, err := st.Load()
	if err != nil {
		return nil, contexts.File{}, err
	}
	return st, f, nil
}

// sshCommand is the ssh program and its first arguments:
// WORKSPACE_SSH_COMMAND split into words, or "ssh".
func sshCommand() ([]string, error) {
	s := os.Getenv("WORKSPACE_SSH_COMMAND")
	if strings.TrimSpace(s) == "" {
		return []string{"ssh"}, nil
	}
	words, err := sshconn.SplitCommand(s)
	if err != nil {
		return nil, fmt.Errorf("WORKSPACE_SSH_COMMAND: %w", err)
	}
	return words, nil
}

// client is the API client of the chosen daemon, made once per run (its
// connections, ssh processes over SSH, are reused between requests). A
// daemon that cannot be chosen (a bad --host, a missing context) makes a
// client whose every request fails with the reason.
func (a *app) client() *api.Client {
	if a.api != nil {
		return a.api
	}
	ep, err := a.endpoint()
	switch {
	case err != nil:
		a.api = api.NewDialClient("", func(context.Context) (net.Conn, error) { return nil, err })
	case ep.remote():
		cmd, cerr := sshCommand()
		if cerr != nil {
			a.api = api.NewDialClient(ep.String(), func(context.Context) (net.Conn, error) { return nil, cerr })
			break
		}
		d := &sshconn.Dialer{Target: *ep.ssh, Command: cmd}
		a.api = api.NewDialClient(ep.String(), d.Dial)
	default:
		a.api = api.NewClient(ep.socket)
	}
	return a.api
}

// endpoint resolves the daemon once per run.
func (a *app) endpoint() (endpoint, error) {
	if !a.resolved {
		a.ep, a.epErr = a.resolveEndpoint()
		a.resolved = true
	}
	return a.ep, a.epErr
}
