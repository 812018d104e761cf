package vm

import (
	"fmt"
	"path/filepath"
	"strings"

	libvirt "github.com/digitalocean/go-libvirt"
)

// checkOwned makes sure dom is workspace's domain and stamped with this
// driver's identity. Anything else is, to this daemon, not there.
func (d *Driver) checkOwned(l *libvirt.Libvirt, dom libvirt.Domain, workspace string) error {
	x, err := l.DomainGetXMLDesc(dom, 0)
	if err != nil {
		return fmt.Errorf("domain %s: %w", dom.Name, d.lverr(err))
	}
	meta, _, err := parseDomain([]byte(x))
	if err != nil {
		return fmt.Errorf("domain %s: %w", dom.Name, err)
	}
	if meta.Owner != d.id || meta.Workspace != workspace {
		return fmt.Errorf("domain %s: %w: it is not this daemon's workspace %q", dom.Name, ErrNotFound, workspace)
	}
	return nil
}

// adoptLegacy finds the domains named ws-NAME that this daemon owns
// although they do not carry its short id in their names: those made by
// an earlier version without an identity, whose files are in this daemon's
// state folder (adopted now: stamped with the identity), and those adopted
// at an earlier start. Domains of other daemons, and unstamped ones whose
// files are elsewhere, are left alone and unlisted.
func (d *Driver) adoptLegacy(l *libvirt.Libvirt) error {
	doms, _, err := l.ConnectListAllDomains(1, 0)
	if err != nil {
		return fmt.Errorf("list domains: %w", d.lverr(err))
	}
	for _, dom := range doms {
		if !strings.HasPrefix(dom.Name, "ws-") || strings.HasPrefix(dom.Name, d.prefix()) {
			continue
		}
		x, err := l.DomainGetXMLDesc(dom, libvirt.DomainXMLInactive)
		if err != nil {
			continue // undefined meanwhile
		}
		meta, _, err := parseDomain([]byte(x))
		if err != nil || meta.Workspace == "" || dom.Name != "ws-"+meta.Workspace {
			continue
		}
		switch meta.Owner {
		case d.id:
			d.setLegacy(meta.Workspace, dom.Name)
			continue
		case "":
		default:
			continue // another daemon's
		}
		if !d.holdsFiles(x, dom.Name, meta.Workspace) {
			d.log.Debug("not adopting a domain of an earlier version: its files are not in this state folder", "domain", dom.Name)
			continue
		}
		if err := d.stamp(l, dom); err != nil {
			return fmt.Errorf("adopt domain %s: %w", dom.Name, err)
		}
		d.setLegacy(meta.Workspace, dom.Name)
		d.log.Info("adopted a workspace made by an earlier version (its files are in this state folder); it keeps its libvirt names", "workspace", meta.Workspace, "domain", dom.Name)
	}
	return nil
}

// holdsFiles says whether a legacy domain's overlay is in this daemon's
// pool and its agent socket in this daemon's workspace folder.
func (d *Driver) holdsFiles(x, domain, workspace string) bool {
	files, err := parseDomainFiles([]byte(x))
	if err != nil {
		return false
	}
	overlay := filepath.Join(d.poolDir(), domain+".qcow2")
	agent := WorkspacePaths(d.opts.StateDir, workspace).AgentSocket
	var hasOverlay, hasAgent bool
	for _, f := range files {
		hasOverlay = hasOverlay || filepath.Clean(f) == overlay
		hasAgent = hasAgent || filepath.Clean(f) == agent
	}
	return hasOverlay && hasAgent
}

// stamp writes this driver's identity into a domain's metadata (an element
// of its own: the workspace's element stays as it is), in its persistent
// definition and, while it runs, in the live one. libvirt puts the element
// into the namespace it is given.
func (d *Driver) stamp(l *libvirt.Libvirt, dom libvirt.Domain) error {
	flags := libvirt.DomainAffectConfig
	if active, err := l.DomainIsActive(dom); err == nil && active == 1 {
		flags |= libvirt.DomainAffectLive
	}
	err := l.DomainSetMetadata(dom, int32(libvirt.DomainMetadataElement), libvirt.OptString{"<owner>" + xmlEscape(d.id) + "</owner>"},
		libvirt.OptString{"wso"}, libvirt.OptString{OwnerNS}, flags)
	return d.lverr(err)
}
