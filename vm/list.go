package vm

import (
	"context"
	"errors"
	"fmt"

	libvirt "github.com/digitalocean/go-libvirt"
)

func stateOf(s int32) State {
	switch libvirt.DomainState(s) {
	case libvirt.DomainRunning, libvirt.DomainBlocked:
		return "running"
	case libvirt.DomainPaused, libvirt.DomainPmsuspended:
		return "paused"
	case libvirt.DomainCrashed:
		return "crashed"
	}
	return "stopped"
}

func (d *Driver) info(l *libvirt.Libvirt, dom libvirt.Domain) (Info, error) {
	st, _, err := l.DomainGetState(dom, 0)
	if err != nil {
		return Info{}, fmt.Errorf("domain %s: %w", dom.Name, d.lverr(err))
	}
	x, err := l.DomainGetXMLDesc(dom, 0)
	if err != nil {
		return Info{}, fmt.Errorf("domain %s: %w", dom.Name, d.lverr(err))
	}
	meta, display, err := parseDomain([]byte(x))
	if err != nil {
		return Info{}, err
	}
	p := WorkspacePaths(d.opts.StateDir, meta.Workspace)
	info := Info{Name: dom.Name, State: stateOf(st), Meta: meta, DisplayType: display, AgentSocket: p.AgentSocket, ConsoleLog: p.ConsoleLog}
	if display != "none" {
		info.DisplaySocket = p.DisplaySocket
	}
	if d.uri.Host != "" {
		info.ConsoleLog = ""
	}
	switch info.State {
	case "stopped":
		if saved, ok := d.readSavedState(dom.Name); ok {
			info.State, info.Saved = "suspended", &saved
		}
	case "running", "paused":
		info.RSSBytes = d.memoryRSS(l, dom)
	}
	return info, nil
}

// Info describes one workspace.
func (d *Driver) Info(ctx context.Context, name string) (Info, error) {
	l, dom, err := d.domain(name)
	if err != nil {
		return Info{}, err
	}
	return d.info(l, dom)
}

// List describes every workspace of this daemon: the domains named after
// it (owner.go) or adopted by it that carry its identity.
func (d *Driver) List(ctx context.Context) ([]Info, error) {
	l, err := d.conn()
	if err != nil {
		return nil, err
	}
	doms, _, err := l.ConnectListAllDomains(1, 0)
	if err != nil {
		return nil, fmt.Errorf("list domains: %w", d.lverr(err))
	}
	var out []Info
	for _, dom := range doms {
		if _, ok := d.ownedWorkspace(dom.Name); !ok {
			continue
		}
		info, err := d.info(l, dom)
		if errors.Is(err, ErrNotFound) {
			continue // undefined meanwhile
		}
		if err != nil {
			return nil, err
		}
		if info.Meta.Owner != d.id || info.Meta.Workspace == "" {
			d.log.Warn("a domain named like ours is not stamped with this daemon's identity: ignored", "domain", dom.Name, "owner", info.Meta.Owner)
			continue
		}
		out = append(out, info)
	}
	return out, nil
}
