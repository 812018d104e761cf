package vm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"

	libvirt "github.com/digitalocean/go-libvirt"
	"github.com/workspace-sandbox/workspace/internal/dirperm"
)

func (d *Driver) poolDir() string { return filepath.Join(d.opts.StateDir, "pool") }

// findPool settles which pool is this daemon's, before anything else uses
// the name. A pool of the given name is used (ensurePool checks that its
// folder is STATE/pool). When there is none but another pool already has
// STATE/pool as its folder (made by an earlier version, or with --pool),
// that one is used if no name was given, and refused with its name if one
// was (libvirt allows one pool per folder).
func (d *Driver) findPool(l *libvirt.Libvirt, defaultName bool) error {
	if _, err := l.StoragePoolLookupByName(d.opts.PoolName); err == nil || !errors.Is(d.lverr(err), ErrNotFound) {
		return nil
	}
	pools, _, err := l.ConnectListAllStoragePools(1, 0)
	if err != nil {
		return fmt.Errorf("list storage pools: %w", d.lverr(err))
	}
	for _, p := range pools {
		dir, err := d.poolPath(l, p)
		if err != nil || filepath.Clean(dir) != d.poolDir() {
			continue
		}
		if !defaultName {
			return fmt.Errorf("storage pool %q: this state folder's pool folder %s is already the pool %q: use --pool %s, or leave --pool out", d.opts.PoolName, d.poolDir(), p.Name, p.Name)
		}
		d.log.Info("using the storage pool that already holds this state folder's pool folder", "pool", p.Name, "path", dir)
		d.opts.PoolName = p.Name
		return nil
	}
	return nil
}

func (d *Driver) ensurePool(ctx context.Context) error {
	l, err := d.conn()
	if err != nil {
		return err
	}
	pool, err := l.StoragePoolLookupByName(d.opts.PoolName)
	if err != nil {
		if !errors.Is(d.lverr(err), ErrNotFound) {
			return fmt.Errorf("storage pool %q: %w", d.opts.PoolName, d.lverr(err))
		}
		if err := dirperm.Ensure(d.poolDir(), 0o711); err != nil {
			return fmt.Errorf("storage pool %q: %w", d.opts.PoolName, err)
		}
		pool, err = l.StoragePoolDefineXML(string(renderPool(d.opts.PoolName, d.poolDir())), 0)
		if err != nil {
			return fmt.Errorf("define storage pool %q: %w", d.opts.PoolName, d.lverr(err))
		}
		_ = l.StoragePoolSetAutostart(pool, 1)
		d.log.Info("defined storage pool", "pool", d.opts.PoolName, "path", d.poolDir())
	}
	// A pool of our name that keeps its volumes elsewhere is another
	// daemon's (or a user's): never put ours there.
	dir, err := d.poolPath(l, pool)
	if err != nil {
		return err
	}
	if filepath.Clean(dir) != d.poolDir() {
		return fmt.Errorf("storage pool %q keeps its volumes in %s, not in this state folder's %s: it is another daemon's or a user's pool; name another one with --pool, or leave --pool out for this state folder's own", d.opts.PoolName, dir, d.poolDir())
	}
	state, _, _, _, err := l.StoragePoolGetInfo(pool)
	if err != nil {
		return fmt.Errorf("storage pool %q: %w", d.opts.PoolName, d.lverr(err))
	}
	if libvirt.StoragePoolState(state) != libvirt.StoragePoolRunning {
		if err := dirperm.Ensure(d.poolDir(), 0o711); err != nil {
			return fmt.Errorf("storage pool %q: %w", d.opts.PoolName, err)
		}
		if err := l.StoragePoolCreate(pool, 0); err != nil {
			return fmt.Errorf("start storage pool %q: %w", d.opts.PoolName, d.lverr(err))
		}
	} else {
		_ = l.StoragePoolRefresh(pool, 0)
	}
	return nil
}

func (d *Driver) pool() (*libvirt.Libvirt, libvirt.StoragePool, error) {
	l, err := d.conn()
	if err != nil {
		return nil, libvirt.StoragePool{}, err
	}
	p, err := l.StoragePoolLookupByName(d.opts.PoolName)
	if err != nil {
		return nil, p, fmt.Errorf("storage pool %q: %w", d.opts.PoolName, d.lverr(err))
	}
	return l, p, nil
}

// UploadVolume creates a volume and streams length bytes of r into it.
func (d *Driver) UploadVolume(ctx context.Context, name, format string, capacity uint64, r io.Reader, length int64) (string, error) {
	l, pool, err := d.pool()
	if err != nil {
		return "", err
	}
	if _, err := l.StorageVolLookupByName(pool, name); err == nil {
		return "", fmt.Errorf("volume %q: %w", name, ErrExists)
	}
	vol, err := l.StorageVolCreateXML(pool, string(renderVolume(name, format, capacity, "", "")), 0)
	if err != nil {
		return "", fmt.Errorf("create volume %q: %w", name, d.lverr(err))
	}
	if err := l.StorageVolUpload(vol, r, 0, uint64(length), 0); err != nil {
		_ = l.StorageVolDelete(vol, 0)
		return "", fmt.Errorf("upload volume %q: %w", name, d.lverr(err))
	}
	path, err := l.StorageVolGetPath(vol)
	if err != nil {
		return "", fmt.Errorf("volume %q: %w", name, d.lverr(err))
	}
	d.log.Info("uploaded volume", "volume", name, "format", format, "bytes", length)
	return path, nil
}

// DeleteVolume removes a volume from the pool.
func (d *Driver) DeleteVolume(ctx context.Context, name string) error {
	l, pool, err := d.pool()
	if err != nil {
		return err
	}
	vol, err := l.StorageVolLookupByName(pool, name)
	if err != nil {
		return fmt.Errorf("volume %q: %w", name, d.lverr(err))
	}
	if err := l.StorageVolDelete(vol, 0); err != nil {
		return fmt.Errorf("delete volume %q: %w", name, d.lverr(err))
	}
	return nil
}

// VolumePath returns a volume's path on the libvirt host.
func (d *Driver) VolumePath(ctx context.Context, name string) (string, error) {
	l, pool, err := d.pool()
	if err != nil {
		return "", err
	}
	vol, err := l.StorageVolLookupByName(pool, name)
	if err != nil {
		return "", fmt.Errorf("volume %q: %w", name, d.lverr(err))
	}
	p, err := l.StorageVolGetPath(vol)
	if err != nil {
		return "", fmt.Errorf("volume %q: %w", name, d.lverr(err))
	}
	return p, nil
}

// overlayName is the overlay volume of the workspace whose domain is named
// domain.
func overlayName(domain string) string { return domain + ".qcow2" }
