// Package domxml reads back, from a libvirt domain's XML, the devices that
// name host files. The vm package (which owns domains) and the tests'
// sweep of stale domains (which cannot import vm) both read them.
package domxml

// Files are the devices of a domain that name host files; embed it in the
// struct that unmarshals <devices>.
type Files struct {
	Disks []struct {
		Source struct {
			File string `xml:"file,attr"`
		} `xml:"source"`
	} `xml:"disk"`
	Channels []struct {
		Source struct {
			Path string `xml:"path,attr"`
		} `xml:"source"`
	} `xml:"channel"`
}

// Paths lists the host files the devices use: the disks' files and the
// channels' sockets.
func (f Files) Paths() []string {
	var out []string
	for _, d := range f.Disks {
		if d.Source.File != "" {
			out = append(out, d.Source.File)
		}
	}
	for _, c := range f.Channels {
		if c.Source.Path != "" {
			out = append(out, c.Source.Path)
		}
	}
	return out
}
