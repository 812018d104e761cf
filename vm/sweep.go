package vm

import (
	"context"
	"errors"
	"strings"
)

// Sweep removes every domain, network and volume named "ws-"+prefix*.
func (d *Driver) Sweep(ctx context.Context, prefix string) error {
	l, err := d.conn()
	if err != nil {
		return err
	}
	doms, _, _ := l.ConnectListAllDomains(1, 0)
	nets, _, _ := l.ConnectListAllNetworks(1, 0)
	seen := map[string]bool{}
	for _, dom := range doms {
		if strings.HasPrefix(dom.Name, "ws-"+prefix) {
			seen[strings.TrimPrefix(dom.Name, "ws-")] = true
		}
	}
	for _, n := range nets {
		if strings.HasPrefix(n.Name, "ws-"+prefix) {
			seen[strings.TrimPrefix(n.Name, "ws-")] = true
		}
	}
	filters, _, _ := l.ConnectListAllNwfilters(1, 0)
	for _, f := range filters {
		if strings.HasPrefix(f.Name, "ws-"+prefix) {
			seen[strings.TrimPrefix(f.Name, "ws-")] = true
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
