package vm

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"net/netip"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/workspace-sandbox/workspace/internal/domxml"
)

// MetadataNS is the XML namespace of our <metadata> element.
const MetadataNS = "https://workspace-sandbox.github.io/xmlns/workspace/1"

// OwnerNS is the XML namespace of the metadata element that holds the
// identity of the daemon a domain belongs to (owner.go). It is an element
// of its own so that adopting a domain writes only it.
const OwnerNS = "https://workspace-sandbox.github.io/xmlns/workspace-owner/1"

// Paths are the host-side files of one workspace.
type Paths struct {
	Dir, AgentSocket, QGASocket, DisplaySocket, ConsoleLog string
}

// WorkspacePaths returns the files of workspace name under stateDir.
func WorkspacePaths(stateDir, name string) Paths {
	dir := filepath.Join(stateDir, "workspaces", name)
	return Paths{
		Dir:           dir,
		AgentSocket:   filepath.Join(dir, "agent.sock"),
		QGASocket:     filepath.Join(dir, "qga.sock"),
		DisplaySocket: filepath.Join(dir, "display.sock"),
		ConsoleLog:    filepath.Join(dir, "console.log"),
	}
}

type domainXML struct {
	XMLName       xml.Name          `xml:"domain"`
	Type          string            `xml:"type,attr"`
	Name          string            `xml:"name"`
	Metadata      *metadataEl       `xml:"metadata,omitempty"`
	Memory        memoryXML         `xml:"memory"`
	MemoryBacking *memoryBackingXML `xml:"memoryBacking,omitempty"`
	VCPU          int               `xml:"vcpu"`
	SysInfo       *sysinfoXML       `xml:"sysinfo,omitempty"`
	OS            osXML             `xml:"os"`
	Features      *featuresXML      `xml:"features"`
	CPU           *cpuXML           `xml:"cpu,omitempty"`
	OnPoweroff    string            `xml:"on_poweroff"`
	OnReboot      string            `xml:"on_reboot"`
	OnCrash       string            `xml:"on_crash"`
	Devices       devices           `xml:"devices"`
	// SecLabel runs QEMU as a given user (a read-write share's owner).
	SecLabel *secLabelXML `xml:"seclabel,omitempty"`
}

// secLabelXML is a static DAC label: QEMU runs as +UID:+GID, and libvirt
// gives it its disks, kernel and sockets for the run.
type secLabelXML struct {
	Type    string `xml:"type,attr"`
	Model   string `xml:"model,attr"`
	Relabel string `xml:"relabel,attr"`
	Label   string `xml:"label"`
}

type metadataEl struct {
	Inner string `xml:",innerxml"`
}

type workspaceMeta struct {
	Name      string `xml:"https://workspace-sandbox.github.io/xmlns/workspace/1 name"`
	Profile   string `xml:"https://workspace-sandbox.github.io/xmlns/workspace/1 profile"`
	Image     string `xml:"https://workspace-sandbox.github.io/xmlns/workspace/1 image"`
	CreatedAt string `xml:"https://workspace-sandbox.github.io/xmlns/workspace/1 created_at"`
	Settings  string `xml:"https://workspace-sandbox.github.io/xmlns/workspace/1 settings"`
	// Disposable is written only when true (older domains lack it).
	Disposable bool `xml:"https://workspace-sandbox.github.io/xmlns/workspace/1 disposable,omitempty"`
}

// memoryBackingXML shares the guest's memory with vhost-user processes
// (virtiofsd needs it).
type memoryBackingXML struct {
	Source struct {
		Type string `xml:"type,attr"`
	} `xml:"source"`
	Access struct {
		Mode string `xml:"mode,attr"`
	} `xml:"access"`
}

// sysinfoXML passes data to the guest through QEMU's fw_cfg.
type sysinfoXML struct {
	Type    string         `xml:"type,attr"`
	Entries []fwcfgEntryEl `xml:"entry"`
}

type fwcfgEntryEl struct {
	Name  string `xml:"name,attr"`
	Value string `xml:",chardata"`
}

type memoryXML struct {
	Unit  string `xml:"unit,attr"`
	Value uint64 `xml:",chardata"`
}

type osXML struct {
	Type    osType `xml:"type"`
	Kernel  string `xml:"kernel,omitempty"`
	Initrd  string `xml:"initrd,omitempty"`
	Cmdline string `xml:"cmdline,omitempty"`
	Boot    *struct {
		Dev string `xml:"dev,attr"`
	} `xml:"boot,omitempty"`
}

type osType struct {
	Arch    string `xml:"arch,attr"`
	Machine string `xml:"machine,attr"`
	Value   string `xml:",chardata"`
}

type cpuXML struct {
	Mode string `xml:"mode,attr"`
}

type devices struct {
	Disks       []diskXML       `xml:"disk"`
	Controller  []controller    `xml:"controller"`
	Filesystems []filesystemXML `xml:"filesystem"`
	Interfaces  []interfaceXML  `xml:"interface"`
	Serials     []serialXML     `xml:"serial"`
	Consoles    []consoleXML    `xml:"console"`
	Channels    []channelXML    `xml:"channel"`
	Graphics    []graphicsXML   `xml:"graphics"`
	Video       []videoXML      `xml:"video"`
	MemBalloon  *memBalloonXML  `xml:"memballoon"`
}

// memBalloonXML is the virtio balloon. With free page reporting the guest
// hands the pages it frees back to the host, so an idle guest's host
// memory shrinks; autodeflate gives the balloon's pages back to the guest
// before its OOM killer would run.
type memBalloonXML struct {
	Model             string `xml:"model,attr"`
	AutoDeflate       string `xml:"autodeflate,attr,omitempty"`
	FreePageReporting string `xml:"freePageReporting,attr,omitempty"`
}

type diskXML struct {
	Type   string `xml:"type,attr"`
	Device string `xml:"device,attr"`
	Driver struct {
		Name    string `xml:"name,attr"`
		Type    string `xml:"type,attr"`
		Discard string `xml:"discard,attr,omitempty"`
	} `xml:"driver"`
	Source struct {
		File string `xml:"file,attr"`
	} `xml:"source"`
	Target struct {
		Dev string `xml:"dev,attr"`
		Bus string `xml:"bus,attr"`
	} `xml:"target"`
	// Transient makes libvirt put a throw-away overlay over the disk at
	// every start and delete it at stop (disposable workspaces).
	Transient *struct{} `xml:"transient,omitempty"`
}

type controller struct {
	Type  string `xml:"type,attr"`
	Index int    `xml:"index,attr"`
}

type interfaceXML struct {
	Type string `xml:"type,attr"`
	MAC  *struct {
		Address string `xml:"address,attr"`
	} `xml:"mac,omitempty"`
	Source struct {
		Network string `xml:"network,attr"`
	} `xml:"source"`
	Model struct {
		Type string `xml:"type,attr"`
	} `xml:"model"`
	FilterRef *filterRefParamsXML `xml:"filterref,omitempty"`
}

type filterRefParamsXML struct {
	Filter string           `xml:"filter,attr"`
	Params []filterParamXML `xml:"parameter"`
}

type filterParamXML struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

// filesystemXML is a shared folder: 9p (driver path) or virtiofs.
type filesystemXML struct {
	Type       string `xml:"type,attr"`
	AccessMode string `xml:"accessmode,attr"`
	Driver     struct {
		Type  string `xml:"type,attr"`
		Queue int    `xml:"queue,attr,omitempty"`
	} `xml:"driver"`
	Source struct {
		Dir string `xml:"dir,attr"`
	} `xml:"source"`
	Target struct {
		Dir string `xml:"dir,attr"`
	} `xml:"target"`
	ReadOnly *struct{} `xml:"readonly,omitempty"`
}

type serialXML struct {
	Type string `xml:"type,attr"`
	Log  *struct {
		File   string `xml:"file,attr"`
		Append string `xml:"append,attr"`
	} `xml:"log,omitempty"`
	Target struct {
		Port int `xml:"port,attr"`
	} `xml:"target"`
}

type consoleXML struct {
	Type   string `xml:"type,attr"`
	Target struct {
		Type string `xml:"type,attr"`
		Port int    `xml:"port,attr"`
	} `xml:"target"`
}

type channelXML struct {
	Type   string `xml:"type,attr"`
	Source *struct {
		Mode string `xml:"mode,attr"`
		Path string `xml:"path,attr"`
	} `xml:"source,omitempty"`
	Target struct {
		Type string `xml:"type,attr"`
		Name string `xml:"name,attr"`
	} `xml:"target"`
}

type graphicsXML struct {
	Type      string     `xml:"type,attr"`
	Socket    string     `xml:"socket,attr,omitempty"`
	Listen    *listenXML `xml:"listen,omitempty"`
	Clipboard *struct {
		CopyPaste string `xml:"copypaste,attr"`
	} `xml:"clipboard,omitempty"`
	FileTransfer *struct {
		Enable string `xml:"enable,attr"`
	} `xml:"filetransfer,omitempty"`
}

type listenXML struct {
	Type   string `xml:"type,attr"`
	Socket string `xml:"socket,attr,omitempty"`
}

type videoXML struct {
	Model struct {
		Type string `xml:"type,attr"`
	} `xml:"model"`
}

// featuresXML is <features>: ACPI, and under TCG the size of QEMU's
// translation cache.
type featuresXML struct {
	ACPI struct{} `xml:"acpi"`
	TCG  *tcgXML  `xml:"tcg,omitempty"`
}

type tcgXML struct {
	TBCache memoryXML `xml:"tb-cache"`
}

// domainInput is everything the pure renderer needs.
type domainInput struct {
	Spec Spec
	// Name is the libvirt name of the domain, its network and its
	// nwfilter (ws-SHORT-NAME, see owner.go).
	Name string
	// Owner is the identity of the daemon that makes it.
	Owner string
	Type  string // kvm | qemu
	// TBCacheMiB caps QEMU's TCG translation cache (type qemu only; 0
	// keeps QEMU's default, 1 GiB, most of an idle guest's host memory).
	TBCacheMiB uint64
	Paths      Paths
	Overlay    string // overlay volume path
	KernelPath string
	InitrdPath string
	// Virtiofs makes read-write shares virtiofs instead of 9p. The driver
	// never sets it: Debian 12's virtiofsd runs as root with the guest's
	// uids (see shares.go); it waits for a virtiofsd with id mapping.
	Virtiofs bool
	// Subnet is N of the workspace's network 10.213.N.0/24 (nat and
	// isolated modes).
	Subnet int
}

// SharesFwCfg is the fw_cfg entry through which the guest learns its
// shares: one "TAG FSTYPE MODE" line each (FSTYPE 9p or virtiofs, MODE ro
// or rw). In a Linux guest it is
// /sys/firmware/qemu_fw_cfg/by_name/opt/org.workspace/shares/raw.
const SharesFwCfg = "opt/org.workspace/shares"

// shareFS picks a share's file system. Read-only shares are 9p, whose
// read-only mode QEMU enforces on the host; libvirt before 11.0 cannot make
// a virtiofs share read-only, and a guest-side "ro" mount option is no
// protection against the guest. Read-write shares use virtiofs when
// virtiofsd is there (faster, and files keep the guest user's owner), else
// 9p.
func shareFS(sh ShareSpec, virtiofs bool) string {
	if !sh.ReadOnly && virtiofs {
		return "virtiofs"
	}
	return "9p"
}

// renderDomain builds a workspace's domain XML. It is a pure function of its
// input (golden-tested).
func renderDomain(in domainInput) ([]byte, error) {
	s := in.Spec
	if s.VCPUs < 1 || s.MemoryBytes == 0 {
		return nil, fmt.Errorf("domain %s: cpus and memory must be positive", in.Name)
	}
	if in.Name == "" || in.Owner == "" {
		return nil, fmt.Errorf("workspace %q: a domain needs a name and an owner", s.Name)
	}
	d := domainXML{
		Type: in.Type,
		Name: in.Name,
		Metadata: &metadataEl{Inner: renderMetadata(workspaceMeta{
			Name: s.Meta.Workspace, Profile: s.Meta.Profile, Image: s.Meta.Image,
			CreatedAt: s.Meta.CreatedAt.UTC().Format(time.RFC3339), Settings: s.Meta.ProfileJSON,
			Disposable: s.Meta.Disposable,
		}) + renderOwner(in.Owner)},
		Memory:     memoryXML{Unit: "KiB", Value: s.MemoryBytes / 1024},
		VCPU:       s.VCPUs,
		OS:         osXML{Type: osType{Arch: "x86_64", Machine: "pc", Value: "hvm"}},
		OnPoweroff: "destroy", OnReboot: "restart", OnCrash: "destroy",
	}
	d.Features = &featuresXML{}
	if in.Type == "qemu" && in.TBCacheMiB > 0 {
		d.Features.TCG = &tcgXML{TBCache: memoryXML{Unit: "MiB", Value: in.TBCacheMiB}}
	}
	if in.Type == "kvm" {
		d.CPU = &cpuXML{Mode: "host-model"}
	}
	if in.KernelPath != "" {
		d.OS.Kernel, d.OS.Initrd, d.OS.Cmdline = in.KernelPath, in.InitrdPath, s.Cmdline
	} else {
		d.OS.Boot = &struct {
			Dev string `xml:"dev,attr"`
		}{Dev: "hd"}
	}
	var disk diskXML
	disk.Type, disk.Device = "file", "disk"
	disk.Driver.Name, disk.Driver.Type, disk.Driver.Discard = "qemu", "qcow2", "unmap"
	disk.Source.File = in.Overlay
	disk.Target.Dev, disk.Target.Bus = "vda", "virtio"
	if s.Meta.Disposable {
		disk.Transient = &struct{}{}
	}
	dv := &d.Devices
	dv.Disks = []diskXML{disk}
	dv.Controller = []controller{{Type: "virtio-serial", Index: 0}}
	if err := renderShares(&d, s.Shares, in.Virtiofs); err != nil {
		return nil, err
	}
	if s.RunAs != nil {
		if s.RunAs.UID <= 0 || s.RunAs.GID < 0 {
			return nil, fmt.Errorf("domain %s: QEMU cannot run as uid %d gid %d", d.Name, s.RunAs.UID, s.RunAs.GID)
		}
		d.SecLabel = &secLabelXML{Type: "static", Model: "dac", Relabel: "yes", Label: fmt.Sprintf("+%d:+%d", s.RunAs.UID, s.RunAs.GID)}
	}
	switch s.NetworkMode {
	case "nat", "isolated":
		var nic interfaceXML
		nic.Type = "network"
		nic.Source.Network = in.Name
		nic.Model.Type = "virtio"
		if in.Subnet < 1 || in.Subnet > 254 {
			return nil, fmt.Errorf("domain %s: network mode %s needs a subnet, got %d", d.Name, s.NetworkMode, in.Subnet)
		}
		nic.MAC = &struct {
			Address string `xml:"address,attr"`
		}{Address: guestMAC(in.Subnet)}
		nic.FilterRef = &filterRefParamsXML{Filter: in.Name,
			Params: []filterParamXML{{Name: "IP", Value: guestIP(in.Subnet).String()}}}
		dv.Interfaces = []interfaceXML{nic}
	case "none", "":
	default:
		return nil, fmt.Errorf("domain %s: unknown network mode %q", d.Name, s.NetworkMode)
	}
	var ser serialXML
	ser.Type = "pty"
	ser.Log = &struct {
		File   string `xml:"file,attr"`
		Append string `xml:"append,attr"`
	}{File: in.Paths.ConsoleLog, Append: "off"}
	dv.Serials = []serialXML{ser}
	var con consoleXML
	con.Type = "pty"
	con.Target.Type = "serial"
	dv.Consoles = []consoleXML{con}
	ch := func(path, name string) channelXML {
		var c channelXML
		c.Type = "unix"
		c.Source = &struct {
			Mode string `xml:"mode,attr"`
			Path string `xml:"path,attr"`
		}{Mode: "bind", Path: path}
		c.Target.Type, c.Target.Name = "virtio", name
		return c
	}
	dv.Channels = []channelXML{
		ch(in.Paths.AgentSocket, "org.workspace.agent.0"),
		ch(in.Paths.QGASocket, "org.qemu.guest_agent.0"),
	}
	if s.Clipboard && s.DisplayType != "spice" {
		return nil, fmt.Errorf("domain %s: a shared clipboard needs a spice display, not %q", d.Name, s.DisplayType)
	}
	var video videoXML
	switch s.DisplayType {
	case "vnc":
		dv.Graphics = []graphicsXML{{Type: "vnc", Socket: in.Paths.DisplaySocket}}
		video.Model.Type = "vga"
	case "spice":
		g := graphicsXML{Type: "spice", Listen: &listenXML{Type: "socket", Socket: in.Paths.DisplaySocket}}
		// Files never cross through SPICE (shares are the way in), and
		// the clipboard only when the profile says so. With the clipboard
		// off there is no SPICE agent channel at all, so nothing can
		// cross whatever the viewer or the guest's vdagent try.
		g.FileTransfer = &struct {
			Enable string `xml:"enable,attr"`
		}{Enable: "no"}
		if s.Clipboard {
			var c channelXML
			c.Type = "spicevmc"
			c.Target.Type, c.Target.Name = "virtio", "com.redhat.spice.0"
			dv.Channels = append(dv.Channels, c)
		} else {
			g.Clipboard = &struct {
				CopyPaste string `xml:"copypaste,attr"`
			}{CopyPaste: "no"}
		}
		dv.Graphics = []graphicsXML{g}
		video.Model.Type = "vga"
	case "none", "":
		video.Model.Type = "none"
	default:
		return nil, fmt.Errorf("domain %s: unknown display type %q", d.Name, s.DisplayType)
	}
	dv.Video = []videoXML{video}
	dv.MemBalloon = &memBalloonXML{Model: "virtio", AutoDeflate: "on", FreePageReporting: "on"}
	return xml.MarshalIndent(d, "", "  ")
}

// renderShares adds a filesystem device per share and tells the guest about
// them through fw_cfg; virtiofs also needs shared guest memory.
func renderShares(d *domainXML, shares []ShareSpec, virtiofs bool) error {
	if len(shares) == 0 {
		return nil
	}
	var list strings.Builder
	seen := map[string]bool{}
	for _, sh := range shares {
		if !shareTagRE.MatchString(sh.Tag) {
			return fmt.Errorf("domain %s: share tag %q must be 1-31 letters, digits, '_' or '-'", d.Name, sh.Tag)
		}
		if seen[sh.Tag] {
			return fmt.Errorf("domain %s: share tag %q given twice", d.Name, sh.Tag)
		}
		seen[sh.Tag] = true
		if !filepath.IsAbs(sh.HostPath) {
			return fmt.Errorf("domain %s: share %q: host path %q is not absolute", d.Name, sh.Tag, sh.HostPath)
		}
		var fs filesystemXML
		fs.Type = "mount"
		fs.Source.Dir, fs.Target.Dir = sh.HostPath, sh.Tag
		mode := "rw"
		if sh.ReadOnly {
			fs.ReadOnly, mode = &struct{}{}, "ro"
		}
		typ := shareFS(sh, virtiofs)
		switch typ {
		case "virtiofs":
			fs.AccessMode = "passthrough"
			fs.Driver.Type, fs.Driver.Queue = "virtiofs", 1024
			if d.MemoryBacking == nil {
				d.MemoryBacking = &memoryBackingXML{}
				d.MemoryBacking.Source.Type, d.MemoryBacking.Access.Mode = "memfd", "shared"
			}
		default:
			// QEMU runs unprivileged: "mapped" keeps the guest's owners
			// and modes in extended attributes instead of chown'ing host
			// files (which it could not do anyway).
			fs.AccessMode = "mapped"
			fs.Driver.Type = "path"
		}
		d.Devices.Filesystems = append(d.Devices.Filesystems, fs)
		fmt.Fprintf(&list, "%s %s %s\n", sh.Tag, typ, mode)
	}
	d.SysInfo = &sysinfoXML{Type: "fwcfg", Entries: []fwcfgEntryEl{{Name: SharesFwCfg, Value: list.String()}}}
	return nil
}

var shareTagRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,31}$`)

// parsedDomain is what we read back from a defined domain.
type parsedDomain struct {
	Metadata struct {
		Workspace workspaceMeta `xml:"https://workspace-sandbox.github.io/xmlns/workspace/1 workspace"`
		// Owner is absent from domains of earlier versions until adopted.
		Owner string `xml:"https://workspace-sandbox.github.io/xmlns/workspace-owner/1 owner"`
	} `xml:"metadata"`
	Devices struct {
		domxml.Files
		Graphics []struct {
			Type   string `xml:"type,attr"`
			Socket string `xml:"socket,attr"`
			Listen []struct {
				Socket string `xml:"socket,attr"`
			} `xml:"listen"`
		} `xml:"graphics"`
	} `xml:"devices"`
}

func parseInto(b []byte, p *parsedDomain) error {
	if err := xml.Unmarshal(b, p); err != nil {
		return fmt.Errorf("parse domain XML: %w", err)
	}
	return nil
}

func parseDomain(b []byte) (Metadata, string, error) {
	var p parsedDomain
	if err := parseInto(b, &p); err != nil {
		return Metadata{}, "", err
	}
	w := p.Metadata.Workspace
	m := Metadata{Workspace: w.Name, Owner: strings.TrimSpace(p.Metadata.Owner), Profile: w.Profile, Image: w.Image, ProfileJSON: w.Settings, Disposable: w.Disposable}
	if t, err := time.Parse(time.RFC3339, w.CreatedAt); err == nil {
		m.CreatedAt = t
	}
	display := "none"
	if len(p.Devices.Graphics) > 0 {
		display = p.Devices.Graphics[0].Type
	}
	return m, display, nil
}

// parseDomainFiles lists the host files a domain uses: its disks' files
// and its channels' sockets.
func parseDomainFiles(b []byte) ([]string, error) {
	var p parsedDomain
	if err := parseInto(b, &p); err != nil {
		return nil, err
	}
	return p.Devices.Paths(), nil
}

type networkXML struct {
	XMLName xml.Name `xml:"network"`
	Name    string   `xml:"name"`
	Forward *struct {
		Mode string `xml:"mode,attr"`
	} `xml:"forward,omitempty"`
	Bridge struct {
		STP   string `xml:"stp,attr"`
		Delay string `xml:"delay,attr"`
	} `xml:"bridge"`
	IP struct {
		Address string `xml:"address,attr"`
		Netmask string `xml:"netmask,attr"`
		DHCP    struct {
			Range struct {
				Start string `xml:"start,attr"`
				End   string `xml:"end,attr"`
			} `xml:"range"`
			Host struct {
				MAC string `xml:"mac,attr"`
				IP  string `xml:"ip,attr"`
			} `xml:"host"`
		} `xml:"dhcp"`
	} `xml:"ip"`
}

// guestMAC and guestIP are the address of the one guest on workspace
// network n: fixed, so the network filter knows the guest's IP from the
// start instead of learning it from its traffic (libvirt instantiates no
// rules at all while it is still learning).
func guestMAC(n int) string { return fmt.Sprintf("52:54:00:0a:d5:%02x", n) }

func guestIP(n int) netip.Addr { return netip.AddrFrom4([4]byte{10, 213, byte(n), 10}) }

func gatewayIP(n int) netip.Addr { return netip.AddrFrom4([4]byte{10, 213, byte(n), 1}) }

// renderNetwork builds the network of one workspace, named name, on subnet
// 10.213.N.0/24.
func renderNetwork(name, mode string, n int) ([]byte, error) {
	nw := networkXML{Name: name}
	switch mode {
	case "nat":
		nw.Forward = &struct {
			Mode string `xml:"mode,attr"`
		}{Mode: "nat"}
	case "isolated":
	default:
		return nil, fmt.Errorf("network %s: mode %q has no network", nw.Name, mode)
	}
	nw.Bridge.STP, nw.Bridge.Delay = "on", "0"
	nw.IP.Address = fmt.Sprintf("10.213.%d.1", n)
	nw.IP.Netmask = "255.255.255.0"
	nw.IP.DHCP.Range.Start = fmt.Sprintf("10.213.%d.11", n)
	nw.IP.DHCP.Range.End = fmt.Sprintf("10.213.%d.250", n)
	nw.IP.DHCP.Host.MAC, nw.IP.DHCP.Host.IP = guestMAC(n), guestIP(n).String()
	return xml.MarshalIndent(nw, "", "  ")
}

func renderPool(name, dir string) []byte {
	return []byte(fmt.Sprintf("<pool type='dir'><name>%s</name><target><path>%s</path></target></pool>", xmlEscape(name), xmlEscape(dir)))
}

func renderVolume(name, format string, capacity uint64, backingPath, backingFormat string) []byte {
	b := fmt.Sprintf("<volume><name>%s</name><capacity unit='bytes'>%d</capacity><allocation>0</allocation><target><format type='%s'/><permissions><mode>0600</mode></permissions></target>",
		xmlEscape(name), capacity, xmlEscape(format))
	if backingPath != "" {
		b += fmt.Sprintf("<backingStore><path>%s</path><format type='%s'/></backingStore>", xmlEscape(backingPath), xmlEscape(backingFormat))
	}
	return []byte(b + "</volume>")
}

// renderOwner is the metadata element that stamps a domain with the
// identity of the daemon it belongs to.
func renderOwner(id string) string {
	return `<wso:owner xmlns:wso="` + OwnerNS + `">` + xmlEscape(id) + `</wso:owner>`
}

func xmlEscape(s string) string {
	var b bytes.Buffer
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

// renderMetadata writes our metadata with a namespace prefix, as libvirt
// wants for custom metadata.
func renderMetadata(m workspaceMeta) string {
	el := func(name, v string) string { return "<ws:" + name + ">" + xmlEscape(v) + "</ws:" + name + ">" }
	return `<ws:workspace xmlns:ws="` + MetadataNS + `">` + el("name", m.Name) + el("profile", m.Profile) +
		el("image", m.Image) + el("created_at", m.CreatedAt) + el("settings", m.Settings) + disposableEl(m.Disposable) + "</ws:workspace>"
}
