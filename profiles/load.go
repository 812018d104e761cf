package profiles

import (
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

// DiagnosticsError holds every problem found while loading a profile.
type DiagnosticsError struct {
	Diags hcl.Diagnostics
	Files map[string]*hcl.File
}

// Error renders each diagnostic as "file:line:col: summary: detail" with the
// source line and a marker under the offending range.
func (e *DiagnosticsError) Error() string {
	var b strings.Builder
	for i, d := range e.Diags {
		if i > 0 {
			b.WriteString("\n")
		}
		msg := d.Summary
		if d.Detail != "" {
			msg += ": " + d.Detail
		}
		if d.Subject == nil {
			b.WriteString("error: " + msg + "\n")
			continue
		}
		r := d.Subject
		fmt.Fprintf(&b, "%s:%d:%d: %s\n", r.Filename, r.Start.Line, r.Start.Column, msg)
		if f := e.Files[r.Filename]; f != nil {
			lines := strings.Split(string(f.Bytes), "\n")
			if r.Start.Line >= 1 && r.Start.Line <= len(lines) {
				line := strings.TrimRight(lines[r.Start.Line-1], "\r")
				fmt.Fprintf(&b, "  %4d | %s\n", r.Start.Line, line)
				width := 1
				if r.End.Line == r.Start.Line && r.End.Column > r.Start.Column {
					width = r.End.Column - r.Start.Column
				}
				pad := strings.Map(func(c rune) rune {
					if c == '\t' {
						return '\t'
					}
					return ' '
				}, prefixRunes(line, r.Start.Column-1))
				fmt.Fprintf(&b, "       | %s%s\n", pad, strings.Repeat("^", width))
			}
		}
	}
	return strings.TrimRight(b.String(), "\n")
}

func prefixRunes(s string, n int) string {
	r := []rune(s)
	if n > len(r) {
		n = len(r)
	}
	if n < 0 {
		n = 0
	}
	return string(r[:n])
}

// attribute types by path; share attributes use "share.*".
var attrTypes = map[string]cty.Type{
	"extends": cty.String, "description": cty.String, "image": cty.String,
	"cpus": cty.Number, "memory": cty.String, "disk": cty.String, "clipboard": cty.String,
	"network.mode": cty.String, "network.allow": cty.List(cty.String),
	"display.type":                  cty.String,
	"tracking.slot":                 cty.String,
	"tracking.screenshots_per_slot": cty.Number,
	"tracking.idle_timeout":         cty.String,
	"tracking.blur":                 cty.Bool,
	"tracking.jpeg_quality":         cty.Number,
	"tracking.spool_limit":          cty.String,
	"tracking.diary_limit":          cty.String,
	"client.name":                   cty.String, "client.recipient": cty.String,
	"share.host": cty.String, "share.readonly": cty.Bool,
	"witness.url": cty.String, "witness.key": cty.String,
	"provision.packages": cty.List(cty.String), "provision.script": cty.String, "provision.script_file": cty.String,
	"provision.user_script": cty.String, "provision.user_script_file": cty.String,
}

func schemaFor(prefix string) *hcl.BodySchema {
	s := &hcl.BodySchema{}
	var names []string
	for k := range attrTypes {
		rest, ok := strings.CutPrefix(k, prefix)
		if prefix == "" {
			rest, ok = k, !strings.Contains(k, ".")
		}
		if ok {
			names = append(names, rest)
		}
	}
	sort.Strings(names)
	for _, n := range names {
		s.Attributes = append(s.Attributes, hcl.AttributeSchema{Name: n})
	}
	if prefix == "" {
		s.Blocks = []hcl.BlockHeaderSchema{{Type: "network"}, {Type: "display"}, {Type: "tracking"}, {Type: "client"}, {Type: "share", LabelNames: []string{"tag"}}, {Type: "witness", LabelNames: []string{"name"}}, {Type: "provision"}}
	}
	return s
}

// entry is one value a file set, with where it was set.
type entry struct {
	val cty.Value
	rng hcl.Range
	// parts are the items of a field that extends concatenates
	// (provision packages and scripts), each with where it was written;
	// file is the script_file a script part was read from.
	parts []entry
	file  string
}

// layer is what one file says, keyed by field path ("network.mode",
// "share.TAG.host"; a block's own key marks that it is present).
type layer map[string]entry

type loader struct {
	read func(name string) ([]byte, error)
	// realPath resolves symlinks on this machine (Load only): a share that
	// links into a system folder is refused here already.
	realPath func(name string) (string, error)
	resolv   func(from, rel string) string
	abs      func(name string) string
	parser   *hclparse.Parser
	diags    hcl.Diagnostics
	chain    []string
	// partPos are the positions of list items (one package each).
	partPos map[string]hcl.Range
}

// Load parses the profile at path, follows extends, merges, applies defaults
// and validates. Any problem gives a *DiagnosticsError with all of them.
func Load(p string) (*Profile, error) {
	l := &loader{
		read:     os.ReadFile,
		realPath: filepath.EvalSymlinks,
		resolv: func(from, rel string) string {
			if filepath.IsAbs(rel) {
				return filepath.Clean(rel)
			}
			return filepath.Join(filepath.Dir(from), rel)
		},
		abs: func(name string) string {
			if a, err := filepath.Abs(name); err == nil {
				return a
			}
			return name
		},
	}
	return l.run(p)
}

// LoadFS is Load over an fs.FS with slash-separated paths.
func LoadFS(fsys fs.FS, p string) (*Profile, error) {
	l := &loader{
		read:   func(name string) ([]byte, error) { return fs.ReadFile(fsys, name) },
		resolv: func(from, rel string) string { return path.Clean(path.Join(path.Dir(from), rel)) },
		abs:    func(name string) string { return "/" + path.Clean(name) },
	}
	return l.run(path.Clean(p))
}

func (l *loader) run(p string) (*Profile, error) {
	l.parser = hclparse.NewParser()
	l.partPos = map[string]hcl.Range{}
	merged := l.loadFile(p, nil, nil)
	var prof *Profile
	if merged != nil {
		prof = l.build(merged)
		prof.Positions = map[string]string{}
		for k, e := range merged {
			prof.Positions[k] = fmt.Sprintf("%s:%d:%d", e.rng.Filename, e.rng.Start.Line, e.rng.Start.Column)
		}
		for k, rng := range l.partPos {
			prof.Positions[k] = fmt.Sprintf("%s:%d:%d", rng.Filename, rng.Start.Line, rng.Start.Column)
		}
	}
	if l.diags.HasErrors() {
		return nil, &DiagnosticsError{Diags: l.diags, Files: l.parser.Files()}
	}
	prof.Source = l.abs(p)
	for _, c := range l.chain {
		prof.Extends = append(prof.Extends, l.abs(c))
	}
	return prof, nil
}

func (l *loader) errorf(rng *hcl.Range, summary, format string, args ...any) {
	l.diags = append(l.diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: summary, Detail: fmt.Sprintf(format, args...), Subject: rng})
}

// loadFile returns the merged layer of name and everything it extends.
// from is the extends attribute that named it, for error positions.
func (l *loader) loadFile(name string, stack []string, from *hcl.Range) layer {
	key := l.abs(name)
	for i, s := range stack {
		if s == key {
			cycle := append(append([]string{}, stack[i:]...), key)
			l.errorf(from, "Extends cycle", "profiles extend each other in a circle: %s", strings.Join(cycle, " -> "))
			return nil
		}
	}
	src, err := l.read(name)
	if err != nil {
		if from == nil {
			l.diags = append(l.diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Cannot read profile", Detail: err.Error()})
		} else {
			l.errorf(from, "Cannot read extended profile", "%v", err)
		}
		return nil
	}
	file, diags := l.parser.ParseHCL(src, name)
	l.diags = append(l.diags, diags...)
	if diags.HasErrors() {
		return nil
	}
	own := l.decode(file.Body)
	out := layer{}
	if ext, ok := own["extends"]; ok && ext.val.IsKnown() && !ext.val.IsNull() {
		rng := ext.rng
		parentName := l.resolv(name, ext.val.AsString())
		parent := l.loadFile(parentName, append(stack, key), &rng)
		if parent == nil {
			return nil
		}
		l.chain = append(l.chain, parentName)
		for k, v := range parent {
			out[k] = v
		}
	}
	for k, v := range own {
		if k == "extends" {
			continue
		}
		if prev, ok := out[k]; ok && mergedKeys[k] {
			v = mergeEntry(prev, v)
		}
		out[k] = v
	}
	return out
}

// decode reads one file's body strictly: unknown attributes or blocks are
// errors, and every value must have its field's type.
func (l *loader) decode(body hcl.Body) layer {
	out := layer{}
	content, diags := body.Content(schemaFor(""))
	l.diags = append(l.diags, diags...)
	l.attrs(out, content.Attributes, "")
	seen := map[string]hcl.Range{}
	for _, blk := range content.Blocks {
		prefix := blk.Type + "."
		key := blk.Type
		if blk.Type == "share" || blk.Type == "witness" {
			label := blk.Labels[0]
			check, summary := checkTag, "Invalid share tag"
			if blk.Type == "witness" {
				check, summary = checkWitnessName, "Invalid witness name"
			}
			if err := check(label); err != nil {
				rng := blk.LabelRanges[0]
				l.errorf(&rng, summary, "%v", err)
				continue
			}
			key = blk.Type + "." + label
			prefix = key + "."
		}
		if prev, dup := seen[key]; dup {
			rng := blk.DefRange
			l.errorf(&rng, "Duplicate block", "%s is already defined at %s:%d", key, prev.Filename, prev.Start.Line)
			continue
		}
		seen[key] = blk.DefRange
		out[key] = entry{val: cty.True, rng: blk.DefRange}
		schemaPrefix := blk.Type + "."
		bc, d := blk.Body.Content(schemaFor(schemaPrefix))
		l.diags = append(l.diags, d...)
		l.attrs(out, bc.Attributes, prefix)
	}
	return out
}

func (l *loader) attrs(out layer, attrs hcl.Attributes, prefix string) {
	for name, a := range attrs {
		typeKey := prefix + name
		for _, labelled := range []string{"share.", "witness."} {
			if strings.HasPrefix(prefix, labelled) {
				typeKey = labelled + name
			}
		}
		v, d := a.Expr.Value(nil)
		l.diags = append(l.diags, d...)
		if d.HasErrors() {
			continue
		}
		rng := a.Expr.Range()
		cv, err := convert.Convert(v, attrTypes[typeKey])
		if err != nil || cv.IsNull() || !cv.IsWhollyKnown() {
			l.errorf(&rng, "Incorrect attribute value type", "%s must be %s", prefix+name, attrTypes[typeKey].FriendlyName())
			continue
		}
		if prefix == "provision." && l.provisionAttr(out, name, a, cv) {
			continue
		}
		out[prefix+name] = entry{val: cv, rng: rng}
	}
}

// build applies defaults, converts and checks each value, and reports
// problems at the range of the attribute that set them (in whichever file).
func (l *loader) build(m layer) *Profile {
	p := &Profile{
		CPUs: DefaultCPUs, Memory: DefaultMemory, Disk: DefaultDisk,
		Network: Network{Mode: DefaultNetwork}, Display: Display{Type: DefaultDisplay},
		Clipboard: DefaultClipboard, Tracking: DefaultTracking,
	}
	str := func(key string, dst *string, check func(string) error) {
		if e, ok := m[key]; ok {
			*dst = e.val.AsString()
			if check != nil {
				if err := check(*dst); err != nil {
					l.errorf(&e.rng, "Invalid "+key, "%v", err)
				}
			}
		}
	}
	num := func(key string, dst *int, check func(int) error) {
		if e, ok := m[key]; ok {
			bf := e.val.AsBigFloat()
			n, acc := bf.Int64()
			if !bf.IsInt() || acc != 0 || n > 1<<20 || n < -(1<<20) {
				l.errorf(&e.rng, "Invalid "+key, "must be a whole number, got %s", bf.String())
				return
			}
			*dst = int(n)
			if err := check(*dst); err != nil {
				l.errorf(&e.rng, "Invalid "+key, "%v", err)
			}
		}
	}
	size := func(key string, dst *Size, check func(Size) error) {
		if e, ok := m[key]; ok {
			v, err := ParseSize(e.val.AsString())
			if err == nil {
				*dst = v
				err = check(v)
			}
			if err != nil {
				l.errorf(&e.rng, "Invalid "+key, "%v", err)
			}
		}
	}
	dur := func(key string, dst *Duration, check func(Duration) error) {
		if e, ok := m[key]; ok {
			v, err := time.ParseDuration(e.val.AsString())
			if err != nil {
				err = fmt.Errorf("%q is not a duration like \"10m\" or \"30s\"", e.val.AsString())
			} else {
				*dst = Duration(v)
				err = check(*dst)
			}
			if err != nil {
				l.errorf(&e.rng, "Invalid "+key, "%v", err)
			}
		}
	}
	boolean := func(key string, dst *bool) {
		if e, ok := m[key]; ok {
			*dst = e.val.True()
		}
	}

	str("description", &p.Description, nil)
	if _, ok := m["image"]; !ok {
		l.diags = append(l.diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Missing image", Detail: "a profile (or one it extends) must set image = \"NAME\" to an imported image"})
	}
	str("image", &p.Image, checkImage)
	num("cpus", &p.CPUs, checkCPUs)
	size("memory", &p.Memory, checkMemory)
	size("disk", &p.Disk, checkDisk)
	str("clipboard", &p.Clipboard, checkClipboard)
	str("network.mode", &p.Network.Mode, checkNetworkMode)
	if e, ok := m["network.allow"]; ok {
		for it := e.val.ElementIterator(); it.Next(); {
			_, v := it.Element()
			p.Network.Allow = append(p.Network.Allow, v.AsString())
			if err := checkAllow(v.AsString()); err != nil {
				l.errorf(&e.rng, "Invalid network.allow", "%v", err)
			}
		}
	}
	str("display.type", &p.Display.Type, checkDisplay)
	if e, ok := m["clipboard"]; ok && checkClipboard(p.Clipboard) == nil && checkDisplay(p.Display.Type) == nil {
		if err := checkClipboardDisplay(p.Clipboard, p.Display.Type); err != nil {
			l.errorf(&e.rng, "Invalid clipboard", "%v", err)
		}
	}
	if e, ok := m["network.allow"]; ok {
		if err := checkAllowMode(p.Network.Mode, p.Network.Allow); err != nil {
			l.errorf(&e.rng, "Invalid network.allow", "%v", err)
		}
	}
	dur("tracking.slot", &p.Tracking.Slot, checkSlot)
	num("tracking.screenshots_per_slot", &p.Tracking.ScreenshotsPerSlot, checkShots)
	dur("tracking.idle_timeout", &p.Tracking.IdleTimeout, checkIdle)
	boolean("tracking.blur", &p.Tracking.Blur)
	num("tracking.jpeg_quality", &p.Tracking.JPEGQuality, checkQuality)
	size("tracking.spool_limit", &p.Tracking.SpoolLimit, checkSpool)
	size("tracking.diary_limit", &p.Tracking.DiaryLimit, checkDiary)
	if blk, ok := m["client"]; ok {
		p.Client = &Client{}
		if _, ok := m["client.name"]; !ok {
			l.errorf(&blk.rng, "Missing client.name", "a client block needs name = \"...\"")
		}
		str("client.name", &p.Client.Name, checkClientName)
		str("client.recipient", &p.Client.Recipient, checkRecipient)
	}
	var tags []string
	for k := range m {
		if rest, ok := strings.CutPrefix(k, "share."); ok && !strings.Contains(rest, ".") {
			tags = append(tags, rest)
		}
	}
	sort.Strings(tags)
	for _, tag := range tags {
		s := Share{Tag: tag, ReadOnly: true}
		if _, ok := m["share."+tag+".host"]; !ok {
			blk := m["share."+tag]
			l.errorf(&blk.rng, "Missing share host", "share %q needs host = \"/absolute/path\"", tag)
		}
		str("share."+tag+".host", &s.Host, checkHostPath)
		if e, ok := m["share."+tag+".host"]; ok && l.realPath != nil && checkHostPath(s.Host) == nil {
			if real, err := l.realPath(s.Host); err == nil && real != s.Host {
				if err := CheckShareFolder(real); err != nil {
					l.errorf(&e.rng, "Invalid share."+tag+".host", "%q is a symbolic link to %q, which cannot be shared: %v", s.Host, real, err)
				}
			}
		}
		boolean("share."+tag+".readonly", &s.ReadOnly)
		p.Shares = append(p.Shares, s)
	}
	l.buildWitnesses(m, p)
	l.buildProvision(m, p)
	return p
}
