// Package sshconn reaches a workspace daemon on another host through the
// system's ssh client, as docker's ssh:// hosts do: it parses ssh:// host
// URLs, runs `ssh [options] -- HOST workspace system dial-stdio` and makes
// that process's stdin and stdout one connection to the daemon's API.
//
// Everything SSH is the ssh client's: keys, agents, ProxyJump, known_hosts
// and ~/.ssh/config work as they do for the user's own ssh. Nothing secret
// is ever put on its command line (a host URL with a password is refused).
// The code is portable Go (os/exec and pipes): it runs wherever an OpenSSH
// client does.
package sshconn

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"unicode"
)

// Target is a parsed ssh:// host URL: ssh://[USER@]HOST[:PORT].
type Target struct {
	User string // "" for ssh's default (the ssh config's, or the local user)
	Host string // a host name, an ssh config alias or an IP address (no brackets)
	Port int    // 0 for ssh's default (the ssh config's, or 22)
}

// Parse reads an ssh:// host URL. It refuses what ssh would misread or what
// must not be there: a password, a path, a query, a host or user starting
// with '-' (ssh would take it for an option), control characters.
func Parse(s string) (Target, error) {
	shown := s // what errors show: never a password
	bad := func(why string) (Target, error) {
		return Target{}, fmt.Errorf("host %q: %s", shown, why)
	}
	if strings.IndexFunc(s, func(r rune) bool { return unicode.IsControl(r) || unicode.IsSpace(r) }) >= 0 {
		return bad("spaces and control characters are not allowed")
	}
	u, err := url.Parse(s)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		shown = "(not shown: it is not a URL)"
		return bad(fmt.Sprintf("not a URL: %v", err))
	}
	shown = u.Redacted()
	if u.Scheme != "ssh" {
		return bad("want ssh://[USER@]HOST[:PORT]")
	}
	if u.Opaque != "" {
		return bad("want ssh://[USER@]HOST[:PORT] (with the two slashes)")
	}
	if u.Path != "" && u.Path != "/" {
		return bad("a path is not used: the server's `workspace system dial-stdio` finds its daemon's socket itself (WORKSPACE_SOCKET there, or the default)")
	}
	if u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
		return bad("a query or fragment is not used")
	}
	var t Target
	if u.User != nil {
		if _, has := u.User.Password(); has {
			return bad("the URL carries a password: ssh:// hosts use your SSH keys or agent, and a password in a URL ends up on command lines and in config files")
		}
		t.User = u.User.Username()
		if t.User == "" {
			return bad("the user before '@' is empty")
		}
		if strings.HasPrefix(t.User, "-") {
			return bad("a user name cannot start with '-'")
		}
	}
	t.Host = u.Hostname()
	if t.Host == "" {
		return bad("no host")
	}
	if strings.HasPrefix(t.Host, "-") {
		return bad("a host cannot start with '-'")
	}
	if strings.ContainsAny(t.Host, "@/\\%") {
		return bad("the host has a character a host name cannot have")
	}
	if strings.Contains(t.Host, ":") && net.ParseIP(t.Host) == nil {
		return bad("the host is not a valid IPv6 address")
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return bad(fmt.Sprintf("port %q is not a number from 1 to 65535", p))
		}
		t.Port = n
	} else if strings.HasSuffix(u.Host, ":") {
		return bad("empty port after ':'")
	}
	return t, nil
}

// String is the canonical URL of t.
func (t Target) String() string {
	u := url.URL{Scheme: "ssh", Host: t.Host}
	if strings.Contains(t.Host, ":") {
		u.Host = "[" + t.Host + "]"
	}
	if t.Port != 0 {
		u.Host += ":" + strconv.Itoa(t.Port)
	}
	if t.User != "" {
		u.User = url.User(t.User)
	}
	return u.String()
}

// Args are ssh's arguments to run remote on t: no terminal (the stream is
// binary), no escape character, no agent or X11 forwarding and none of the
// config's port forwardings (one ssh runs per connection, and the server
// needs none of them), no RemoteCommand from the config (ours is the
// command), then the user, the port and, after "--", the host.
func (t Target) Args(remote ...string) []string {
	a := []string{"-T", "-x", "-a", "-e", "none", "-o", "ClearAllForwardings=yes", "-o", "RemoteCommand=none"}
	if t.User != "" {
		a = append(a, "-l", t.User)
	}
	if t.Port != 0 {
		a = append(a, "-p", strconv.Itoa(t.Port))
	}
	a = append(a, "--", t.Host)
	return append(a, remote...)
}

// SplitCommand splits a command line such as WORKSPACE_SSH_COMMAND's into
// words: spaces separate words; single quotes keep everything up to the
// next single quote; double quotes keep everything up to the next double
// quote, where \" and \\ stand for " and \. A backslash elsewhere is an
// ordinary character (Windows paths need no quoting). No variables, no
// globbing: no shell runs.
func SplitCommand(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	rs := []rune(s)
	for i := 0; i < len(rs); i++ {
		r := rs[i]
		switch {
		case r == '\'':
			inWord = true
			end := indexRune(rs[i+1:], '\'')
			if end < 0 {
				return nil, fmt.Errorf("command %q: a single quote is not closed", s)
			}
			cur.WriteString(string(rs[i+1 : i+1+end]))
			i += end + 1
		case r == '"':
			inWord = true
			closed := false
			for i++; i < len(rs); i++ {
				if rs[i] == '\\' && i+1 < len(rs) && (rs[i+1] == '"' || rs[i+1] == '\\') {
					i++
					cur.WriteRune(rs[i])
					continue
				}
				if rs[i] == '"' {
					closed = true
					break
				}
				cur.WriteRune(rs[i])
			}
			if !closed {
				return nil, fmt.Errorf("command %q: a double quote is not closed", s)
			}
		case unicode.IsSpace(r):
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			inWord = true
			cur.WriteRune(r)
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	if len(words) == 0 {
		return nil, fmt.Errorf("command %q: empty", s)
	}
	return words, nil
}

func indexRune(rs []rune, r rune) int {
	for i, x := range rs {
		if x == r {
			return i
		}
	}
	return -1
}
