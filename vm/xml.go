package vm

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"path/filepath"
	"time"
)

// MetadataNS is the XML namespace of our <metadata> element.
const MetadataNS = "https://workspace-sandbox.github.io/xmlns/workspace/1"

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

// DomainName is the libvirt name of a workspace's objects.
func DomainName(workspace string) string { return "ws-" + workspace }

type domainXML struct {
	XMLName  xml.Name    `xml:"domain"`
	Type     string      `xml:"type,attr"`
	Name     string      `xml:"name"`
	Metadata *metadataEl `xml:"metadata,omitempty"`
	Memory   memoryXML   `xml:"memory"`
	VCPU     int         `xml:"vcpu"`
	OS       osXML       `xml:"os"`
	Features *struct {
		ACPI struct{} `xml:"acpi"`
	} `xml:"features"`
	CPU        *cpuXML `xml:"cpu,omitempty"`
	OnPoweroff string  `xml:"on_poweroff"`
	OnReboot   string  `xml:"on_reboot"`
	OnCrash    string  `xml:"on_crash"`
	Devices    devices `xml:"devices"`
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
	Disks      []diskXML      `xml:"disk"`
	Controller []controller   `xml:"controller"`
	Interfaces []interfaceXML `xml:"interface"`
	Serials    []serialXML    `xml:"serial"`
	Consoles   []consoleXML   `xml:"console"`
	Channels   []channelXML   `xml:"channel"`
	Graphics   []graphicsXML  `xml:"graphics"`
	Video      []videoXML     `xml:"video"`
	MemBalloon *struct {
		Model string `xml:"model,attr"`
	} `xml:"memballoon"`
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
	Type   string `xml:"type,attr"`
	Source struct {
		Network string `xml:"network,attr"`
	} `xml:"source"`
	Model struct {
		Type string `xml:"type,attr"`
	} `xml:"model"`
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
	Source struct {
		Mode string `xml:"mode,attr"`
		Path string `xml:"path,attr"`
	} `xml:"source"`
	Target struct {
		Type string `xml:"type,attr"`
		Name string `xml:"name,attr"`
	} `xml:"target"`
}

type graphicsXML struct {
	Type   string     `xml:"type,attr"`
	Socket string     `xml:"socket,attr,omitempty"`
	Listen *listenXML `xml:"listen,omitempty"`
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

// domainInput is everything the pure renderer needs.
type domainInput struct {
	Spec       Spec
	Type       string // kvm | qemu
	Paths      Paths
	Overlay    string // overlay volume path
	KernelPath string
	InitrdPath string
}

// renderDomain builds a workspace's domain XML. It is a pure function of its
// input (golden-tested).
func renderDomain(in domainInput) ([]byte, error) {
	s := in.Spec
	if s.VCPUs < 1 || s.MemoryBytes == 0 {
		return nil, fmt.Errorf("domain %s: cpus and memory must be positive", DomainName(s.Name))
	}
	d := domainXML{
		Type: in.Type,
		Name: DomainName(s.Name),
		Metadata: &metadataEl{Inner: renderMetadata(workspaceMeta{
			Name: s.Meta.Workspace, Profile: s.Meta.Profile, Image: s.Meta.Image,
			CreatedAt: s.Meta.CreatedAt.UTC().Format(time.RFC3339), Settings: s.Meta.ProfileJSON,
			Disposable: s.Meta.Disposable,
		})},
		Memory:     memoryXML{Unit: "KiB", Value: s.MemoryBytes / 1024},
		VCPU:       s.VCPUs,
		OS:         osXML{Type: osType{Arch: "x86_64", Machine: "pc", Value: "hvm"}},
		OnPoweroff: "destroy", OnReboot: "restart", OnCrash: "destroy",
	}
	d.Features = &struct {
		ACPI struct{} `xml:"acpi"`
	}{}
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
	switch s.NetworkMode {
	case "nat", "isolated":
		var nic interfaceXML
		nic.Type = "network"
		nic.Source.Network = DomainName(s.Name)
		nic.Model.Type = "virtio"
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
		c.Source.Mode, c.Source.Path = "bind", path
		c.Target.Type, c.Target.Name = "virtio", name
		return c
	}
	dv.Channels = []channelXML{
		ch(in.Paths.AgentSocket, "org.workspace.agent.0"),
		ch(in.Paths.QGASocket, "org.qemu.guest_agent.0"),
	}
	var video videoXML
	switch s.DisplayType {
	case "vnc":
		dv.Graphics = []graphicsXML{{Type: "vnc", Socket: in.Paths.DisplaySocket}}
		video.Model.Type = "vga"
	case "spice":
		dv.Graphics = []graphicsXML{{Type: "spice", Listen: &listenXML{Type: "socket", Socket: in.Paths.DisplaySocket}}}
		video.Model.Type = "vga"
	case "none", "":
		video.Model.Type = "none"
	default:
		return nil, fmt.Errorf("domain %s: unknown display type %q", d.Name, s.DisplayType)
	}
	dv.Video = []videoXML{video}
	dv.MemBalloon = &struct {
		Model string `xml:"model,attr"`
	}{Model: "none"}
	return xml.MarshalIndent(d, "", "  ")
}

// parsedDomain is what we read back from a defined domain.
type parsedDomain struct {
	Metadata struct {
		Workspace workspaceMeta `xml:"https://workspace-sandbox.github.io/xmlns/workspace/1 workspace"`
	} `xml:"metadata"`
	Devices struct {
		Graphics []struct {
			Type   string `xml:"type,attr"`
			Socket string `xml:"socket,attr"`
			Listen []struct {
				Socket string `xml:"socket,attr"`
			} `xml:"listen"`
		} `xml:"graphics"`
	} `xml:"devices"`
}

func parseDomain(b []byte) (Metadata, string, error) {
	var p parsedDomain
	if err := xml.Unmarshal(b, &p); err != nil {
		return Metadata{}, "", fmt.Errorf("parse domain XML: %w", err)
	}
	w := p.Metadata.Workspace
	m := Metadata{Workspace: w.Name, Profile: w.Profile, Image: w.Image, ProfileJSON: w.Settings, Disposable: w.Disposable}
	if t, err := time.Parse(time.RFC3339, w.CreatedAt); err == nil {
		m.CreatedAt = t
	}
	display := "none"
	if len(p.Devices.Graphics) > 0 {
		display = p.Devices.Graphics[0].Type
	}
	return m, display, nil
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
		} `xml:"dhcp"`
	} `xml:"ip"`
}

// renderNetwork builds the network of one workspace on subnet 10.213.N.0/24.
func renderNetwork(workspace, mode string, n int) ([]byte, error) {
	nw := networkXML{Name: DomainName(workspace)}
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
	nw.IP.DHCP.Range.Start = fmt.Sprintf("10.213.%d.10", n)
	nw.IP.DHCP.Range.End = fmt.Sprintf("10.213.%d.250", n)
	return xml.MarshalIndent(nw, "", "  ")
}

func renderPool(name, dir string) []byte {
	return []byte(fmt.Sprintf("<pool type='dir'><name>%s</name><target><path>%s</path></target></pool>", xmlEscape(name), xmlEscape(dir)))
}

func renderVolume(name, format string, capacity uint64, backingPath, backingFormat string) []byte {
	b := fmt.Sprintf("<volume><name>%s</name><capacity unit='bytes'>%d</capacity><allocation>0</allocation><target><format type='%s'/><permissions><mode>0644</mode></permissions></target>",
		xmlEscape(name), capacity, xmlEscape(format))
	if backingPath != "" {
		b += fmt.Sprintf("<backingStore><path>%s</path><format type='%s'/></backingStore>", xmlEscape(backingPath), xmlEscape(backingFormat))
	}
	return []byte(b + "</volume>")
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
