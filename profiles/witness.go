package profiles

import (
	"fmt"
	"net/url"
	"regexp"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"

	"github.com/workspace-sandbox/workspace/witness"
)

// Witness is a witness the daemon submits the diary's checkpoints to (the
// C2SP tlog-witness protocol), usually put in the profile by the client or
// the team's base profile:
//
//	witness "client" {
//	  url = "https://witness.example.com"
//	  key = "witness.example.com/w1+1a2b3c4d+BD3f..."
//	}
//
// A child profile may change a witness's url or key by naming it again; it
// cannot drop one its base names.
type Witness struct {
	Name string `json:"name"`
	URL  string `json:"url"`
	Key  string `json:"key"`
}

// MaxWitnesses bounds how many witnesses a profile may name.
const MaxWitnesses = 8

var witnessNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$`)

func checkWitnessName(v string) error {
	if !witnessNameRE.MatchString(v) {
		return fmt.Errorf("witness name %q must be 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit", v)
	}
	return nil
}

// checkWitnessURL: an http(s) URL of the witness's submission prefix,
// without credentials, query or fragment (the request goes to
// URL/add-checkpoint).
func checkWitnessURL(v string) error {
	u, err := url.Parse(v)
	if err != nil {
		return fmt.Errorf("%q is not a URL: %v", v, err)
	}
	switch {
	case u.Scheme != "https" && u.Scheme != "http":
		return fmt.Errorf("%q: a witness is reached over https (or http on a trusted network), not %q", v, u.Scheme)
	case u.Host == "":
		return fmt.Errorf("%q has no host", v)
	case u.User != nil:
		return fmt.Errorf("%q carries credentials: a witness needs none (it checks the log's signature)", v)
	case u.RawQuery != "" || u.Fragment != "":
		return fmt.Errorf("%q: the submission prefix has no query or fragment", v)
	}
	return nil
}

// checkWitnessKey: a cosignature/v1 note verifier key.
func checkWitnessKey(v string) error {
	_, err := witness.NewVerifier(v)
	return err
}

// buildWitnesses reads the merged witness blocks into p, in name order.
func (l *loader) buildWitnesses(m layer, p *Profile) {
	var names []string
	for k := range m {
		if rest, ok := strings.CutPrefix(k, "witness."); ok && !strings.Contains(rest, ".") {
			names = append(names, rest)
		}
	}
	sort.Strings(names)
	keys := map[string]string{}
	for _, name := range names {
		blk := m["witness."+name]
		w := Witness{Name: name}
		for _, f := range []string{"url", "key"} {
			if _, ok := m["witness."+name+"."+f]; !ok {
				l.errorf(&blk.rng, "Missing witness "+f, "witness %q needs %s = \"...\"", name, f)
			}
		}
		str := func(key string, dst *string, check func(string) error) {
			if e, ok := m[key]; ok {
				*dst = e.val.AsString()
				if err := check(*dst); err != nil {
					l.errorf(&e.rng, "Invalid "+key, "%v", err)
				}
			}
		}
		str("witness."+name+".url", &w.URL, checkWitnessURL)
		str("witness."+name+".key", &w.Key, checkWitnessKey)
		if e, ok := m["witness."+name+".key"]; ok && w.Key != "" {
			if other, dup := keys[w.Key]; dup {
				l.errorf(&e.rng, "Duplicate witness key", "witnesses %q and %q have the same key: one witness counts once", other, name)
			}
			keys[w.Key] = name
		}
		p.Witnesses = append(p.Witnesses, w)
	}
	if len(p.Witnesses) > MaxWitnesses {
		l.diags = append(l.diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Too many witnesses", Detail: fmt.Sprintf("a profile names at most %d witnesses, this one %d", MaxWitnesses, len(p.Witnesses))})
	}
}

// validateWitnesses checks witnesses decoded from JSON (the daemon's side).
func validateWitnesses(ws []Witness) []error {
	var errs []error
	if len(ws) > MaxWitnesses {
		errs = append(errs, fmt.Errorf("witnesses: at most %d, got %d", MaxWitnesses, len(ws)))
	}
	seen := map[string]bool{}
	keys := map[string]bool{}
	for _, w := range ws {
		for _, c := range []struct {
			field string
			err   error
		}{{"", checkWitnessName(w.Name)}, {".url", checkWitnessURL(w.URL)}, {".key", checkWitnessKey(w.Key)}} {
			if c.err != nil {
				errs = append(errs, fmt.Errorf("witness.%s%s: %w", w.Name, c.field, c.err))
			}
		}
		if seen[w.Name] {
			errs = append(errs, fmt.Errorf("witness.%s: named twice", w.Name))
		}
		if keys[w.Key] {
			errs = append(errs, fmt.Errorf("witness.%s.key: another witness has the same key", w.Name))
		}
		seen[w.Name], keys[w.Key] = true, true
	}
	return errs
}
