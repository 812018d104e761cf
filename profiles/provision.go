package profiles

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

// Provision is what a workspace gets on top of its image: Debian packages
// (the host downloads them, the guest installs them without a network) and
// scripts run once, at the first boot as root and at the first login as the
// desktop user. Through extends, packages are a union in order (the base's
// first) and scripts run base's first, then each child's.
type Provision struct {
	Packages    []string `json:"packages,omitempty"`
	Scripts     []Script `json:"scripts,omitempty"`
	UserScripts []Script `json:"user_scripts,omitempty"`
}

// Empty tells whether there is nothing to provision.
func (p Provision) Empty() bool {
	return len(p.Packages) == 0 && len(p.Scripts) == 0 && len(p.UserScripts) == 0
}

// Script is one script's text and where it was written ("team/base.hcl:12"
// or the script_file it was read from), shown when it fails.
type Script struct {
	From string `json:"from"`
	Text string `json:"text"`
}

// Limits of a provision block: a list a guest can install in one go, and
// scripts that are scripts (larger things belong in a package or a share).
const (
	MaxPackages   = 256
	MaxScriptSize = 64 << 10
	MaxScripts    = 16
)

// debNameRE is Debian policy's package name (5.6.1), with an optional
// architecture qualifier (":amd64") apt accepts.
var debNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9+.-]{0,99}(:[a-z0-9-]{1,16})?$`)

// CheckPackageName refuses what cannot be a Debian package name (and so
// could not be passed to apt safely as one).
func CheckPackageName(v string) error {
	if !debNameRE.MatchString(v) {
		return fmt.Errorf("%q is not a Debian package name (lower-case letters, digits, '+', '-', '.', starting with a letter or digit)", v)
	}
	return nil
}

func checkScript(text string) error {
	if len(text) > MaxScriptSize {
		return fmt.Errorf("is %d bytes, at most %d", len(text), MaxScriptSize)
	}
	if !utf8.ValidString(text) || strings.ContainsRune(text, 0) {
		return errors.New("must be UTF-8 text without NUL bytes")
	}
	if strings.TrimSpace(text) == "" {
		return errors.New("is empty")
	}
	return nil
}

// PackagePosition is the Positions key of one package of the list, so an
// error about the package (not found in the archive) names its line.
func PackagePosition(name string) string { return "provision.packages[" + name + "]" }

// mergedKeys are the fields that extends concatenates (parent first)
// instead of replacing.
var mergedKeys = map[string]bool{"provision.packages": true, "provision.script": true, "provision.user_script": true}

// mergeEntry concatenates a parent's and a child's parts of a merged key.
func mergeEntry(parent, child entry) entry {
	child.parts = append(append([]entry{}, parent.parts...), child.parts...)
	return child
}

// provisionAttr turns a provision block's attributes into parts: one per
// package (with the element's range) and one per script (script_file read
// next to the profile that names it).
func (l *loader) provisionAttr(out layer, name string, a *hcl.Attribute, v cty.Value) bool {
	rng := a.Expr.Range()
	switch name {
	case "packages":
		e := entry{val: v, rng: rng}
		tup, _ := a.Expr.(*hclsyntax.TupleConsExpr)
		i := 0
		for it := v.ElementIterator(); it.Next(); i++ {
			_, ev := it.Element()
			r := rng
			if tup != nil && i < len(tup.Exprs) {
				r = tup.Exprs[i].Range()
			}
			e.parts = append(e.parts, entry{val: ev, rng: r})
		}
		out["provision.packages"] = e
		return true
	case "script", "user_script":
		if _, both := out["provision."+name]; both {
			l.errorf(&rng, "Invalid provision."+name, "set %s or %s_file, not both", name, name)
			return true
		}
		out["provision."+name] = entry{val: v, rng: rng, parts: []entry{{val: v, rng: rng}}}
		return true
	case "script_file", "user_script_file":
		key := "provision." + strings.TrimSuffix(name, "_file")
		if _, both := out[key]; both {
			l.errorf(&rng, "Invalid provision."+name, "set %s or %s, not both", strings.TrimSuffix(name, "_file"), name)
			return true
		}
		p := l.resolv(rng.Filename, v.AsString())
		b, err := l.read(p)
		if err != nil {
			l.errorf(&rng, "Invalid provision."+name, "cannot read the script: %v", err)
			return true
		}
		sv := cty.StringVal(string(b))
		if !utf8.Valid(b) {
			l.errorf(&rng, "Invalid provision."+name, "%s: must be UTF-8 text", v.AsString())
			return true
		}
		out[key] = entry{val: sv, rng: rng, parts: []entry{{val: sv, rng: rng, file: v.AsString()}}}
		return true
	}
	return false
}

// buildProvision reads the merged provision fields into p.
func (l *loader) buildProvision(m layer, p *Profile) {
	if e, ok := m["provision.packages"]; ok {
		seen := map[string]bool{}
		for _, part := range e.parts {
			name := part.val.AsString()
			if err := CheckPackageName(name); err != nil {
				l.errorf(&part.rng, "Invalid provision.packages", "%v", err)
				continue
			}
			if seen[name] {
				continue
			}
			seen[name] = true
			p.Provision.Packages = append(p.Provision.Packages, name)
			l.partPos[PackagePosition(name)] = part.rng
		}
		if len(p.Provision.Packages) > MaxPackages {
			l.errorf(&e.rng, "Invalid provision.packages", "at most %d packages, got %d", MaxPackages, len(p.Provision.Packages))
		}
	}
	scripts := func(key string, dst *[]Script) {
		e, ok := m[key]
		if !ok {
			return
		}
		for _, part := range e.parts {
			s := Script{From: fmt.Sprintf("%s:%d", part.rng.Filename, part.rng.Start.Line), Text: part.val.AsString()}
			if part.file != "" {
				s.From = l.resolv(part.rng.Filename, part.file)
			}
			if err := checkScript(s.Text); err != nil {
				l.errorf(&part.rng, "Invalid "+key, "the script %v", err)
				continue
			}
			*dst = append(*dst, s)
		}
		if len(*dst) > MaxScripts {
			l.errorf(&e.rng, "Invalid "+key, "at most %d scripts through extends, got %d", MaxScripts, len(*dst))
		}
	}
	scripts("provision.script", &p.Provision.Scripts)
	scripts("provision.user_script", &p.Provision.UserScripts)
}

// validateProvision checks a provision decoded from JSON (the daemon's side).
func validateProvision(pr Provision, add func(string, error)) {
	if len(pr.Packages) > MaxPackages {
		add("provision.packages", fmt.Errorf("at most %d packages, got %d", MaxPackages, len(pr.Packages)))
	}
	seen := map[string]bool{}
	for i, name := range pr.Packages {
		add(fmt.Sprintf("provision.packages[%d]", i), CheckPackageName(name))
		if seen[name] {
			add(fmt.Sprintf("provision.packages[%d]", i), fmt.Errorf("%q is listed twice", name))
		}
		seen[name] = true
	}
	for key, list := range map[string][]Script{"provision.script": pr.Scripts, "provision.user_script": pr.UserScripts} {
		if len(list) > MaxScripts {
			add(key, fmt.Errorf("at most %d scripts, got %d", MaxScripts, len(list)))
		}
		for i, s := range list {
			add(fmt.Sprintf("%s[%d]", key, i), checkScript(s.Text))
		}
	}
}
