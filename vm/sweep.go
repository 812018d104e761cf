package vm

import (
	"context"
	"errors"
	"strings"
)

// Sweep removes every workspace of this daemon whose name starts with
// prefix: its domain, overlay, network and filter, also what a create cut
// short left of them. Other daemons' objects are not touched, whatever
// their names.
func (d *Driver) Sweep(ctx context.Context, prefix string) error {
	l, pool, err := d.pool()
	if err != nil {
		return err
	}
	ours := d.prefix() + prefix
	seen := map[string]bool{}
	add := func(name string) {
		if strings.HasPrefix(name, ours) {
			seen[strings.TrimPrefix(name, d.prefix())] = true
		}
	}
	doms, _, _ := l.ConnectListAllDomains(1, 0)
	for _, dom := range doms {
		add(dom.Name)
	}
	nets, _, _ := l.ConnectListAllNetworks(1, 0)
	for _, n := range nets {
		add(n.Name)
	}
	filters, _, _ := l.ConnectListAllNwfilters(1, 0)
	for _, f := range filters {
		add(f.Name)
	}
	vols, _, _ := l.StoragePoolListAllVolumes(pool, 1, 0)
	for _, v := range vols {
		if name, ok := strings.CutSuffix(v.Name, ".qcow2"); ok {
			add(name)
		}
	}
	for ws := range d.legacyNames() {
		if strings.HasPrefix(ws, prefix) {
			seen[ws] = true
		}
	}
	var errs []error
	for name := range seen {
		if err := d.Delete(ctx, name); err != nil && !errors.Is(err, ErrNotFound) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
