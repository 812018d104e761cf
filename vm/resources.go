package vm

import (
	"context"
	"fmt"
)

// Resources is what the host can give a workspace at most.
type Resources struct {
	CPUs        int    // logical CPUs of the host
	MemoryBytes uint64 // the host's memory
	PoolFree    uint64 // free bytes in the storage pool
}

// Resources asks libvirt what the host has (so it also works for a remote
// libvirt): its CPUs and memory, and the pool's free space.
func (d *Driver) Resources(ctx context.Context) (Resources, error) {
	l, pool, err := d.pool()
	if err != nil {
		return Resources{}, err
	}
	_, memKiB, cpus, _, _, _, _, _, err := l.NodeGetInfo()
	if err != nil {
		return Resources{}, fmt.Errorf("host resources: %w", d.lverr(err))
	}
	_ = l.StoragePoolRefresh(pool, 0)
	_, _, _, avail, err := l.StoragePoolGetInfo(pool)
	if err != nil {
		return Resources{}, fmt.Errorf("storage pool %q: %w", d.opts.PoolName, d.lverr(err))
	}
	return Resources{CPUs: int(cpus), MemoryBytes: memKiB * 1024, PoolFree: avail}, nil
}
