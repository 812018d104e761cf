#!/bin/sh
# mmdebstrap essential hook ($1 = the new root), run before the kernel is
# installed: a small initramfs with only what a workspace needs to mount
# its root (virtio disk, ext4), so the guest boots faster under emulation.
set -eu
mkdir -p "$1/etc/initramfs-tools/conf.d" "$1/usr/share/initramfs-tools/modules.d"
cat > "$1/etc/initramfs-tools/conf.d/workspace.conf" <<'CONF'
MODULES=list
COMPRESS=zstd
CONF
cat > "$1/usr/share/initramfs-tools/modules.d/workspace" <<'MODS'
virtio_pci
virtio_blk
virtio_console
ext4
crc32c_generic
MODS
