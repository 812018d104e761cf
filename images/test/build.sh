#!/bin/bash
# Builds the small test guest from Debian packages into images/test/build/:
#   vmlinuz     the Debian cloud kernel
#   initrd.img  a busybox initramfs that loads the virtio modules and switches to /dev/vda
#   disk.qcow2  an ext4 root (made with mkfs.ext4 -d, no mount): busybox, Xvfb and its libraries,
#               xsetroot and a known picture for the screen, and workspace-agent (built here, static)
#   cmdline     the kernel command line to import the image with
# Idempotent: skips the build when the outputs match this script (FORCE=1 rebuilds). Run as root.
set -euo pipefail
cd "$(dirname "$0")"
HERE=$PWD
OUT=$HERE/build
CACHE=$OUT/cache
CMDLINE="console=ttyS0 root=/dev/vda rw quiet"
REPO=$(cd ../.. && pwd)
export PATH=/usr/local/go/bin:$PATH
# The stamp covers this recipe and the agent's sources, so a changed agent
# rebuilds the image.
STAMP=$( (cat build.sh init.sh initramfs-init.sh udhcpc.sh picture.xbm; cd "$REPO" && cat go.sum $(find cmd/workspace-agent guestagent channel tracking internal \( -name '*.go' -o -name '*.s' \) ! -name '*_test.go' | sort)) | sha256sum | cut -d' ' -f1)

if [ "${FORCE:-0}" != 1 ] && [ -f "$OUT/.stamp" ] && [ "$(cat "$OUT/.stamp")" = "$STAMP" ] \
	&& [ -f "$OUT/disk.qcow2" ] && [ -f "$OUT/vmlinuz" ] && [ -f "$OUT/initrd.img" ]; then
	echo "test-image: up to date in $OUT"
	exit 0
fi

source "$REPO/scripts/apt.sh"
apt_need test-image busybox-static e2fsprogs cpio qemu-utils qemu-guest-agent xvfb xauth x11-xkb-utils x11-xserver-utils xkb-data kmod

mkdir -p "$CACHE"
# Debian's generic kernel, not the cloud one: the cloud kernel has no 9p,
# which read-only shared folders use.
kpkg() { apt-cache depends linux-image-amd64 2>/dev/null | sed -n 's/.*Depends: \(linux-image-[0-9][^ ]*-amd64\)$/\1/p' | head -1; }
KPKG=$(kpkg)
if [ -z "$KPKG" ]; then
	apt-get update -qq
	KPKG=$(kpkg)
fi
KVER=${KPKG#linux-image-}
if ! ls "$CACHE"/"$KPKG"_*.deb >/dev/null 2>&1; then
	echo "test-image: downloading $KPKG"
	(cd "$CACHE" && chmod 777 . && apt-get download "$KPKG" 2>&1 | grep -v '^W: Download is performed unsandboxed' || true)
fi
KDEB=$(ls "$CACHE"/"$KPKG"_*.deb | head -1)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
dpkg-deb -x "$KDEB" "$WORK/kernel"
MODDIR=$WORK/kernel/lib/modules/$KVER

# ---- initramfs: busybox + the modules the guest needs, in dependency order
declare -A seen
order=()
add_mod() {
	local m=$1 f dep
	[ -n "${seen[$m]:-}" ] && return
	seen[$m]=1
	f=$(find "$MODDIR" -name "$m.ko*" | head -1)
	[ -n "$f" ] || { echo "test-image: module $m not found (built in?)" >&2; return; }
	for dep in $(modinfo -F depends "$f" | tr ',' ' '); do add_mod "$dep"; done
	order+=("$f")
}
for m in virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci virtio_blk virtio_console button evdev \
	crc32c_generic ext4 virtio_net 9pnet_virtio 9p virtiofs qemu_fw_cfg virtio_balloon; do
	add_mod "$m"
done
IR=$WORK/initramfs
mkdir -p "$IR"/{bin,dev,proc,sys,newroot,lib/modules}
cp /bin/busybox "$IR/bin/busybox"
for a in sh mount umount insmod switch_root sleep mkdir echo cat ls; do ln -s busybox "$IR/bin/$a"; done
: > "$IR/lib/modules/order"
for f in "${order[@]}"; do
	b=$(basename "$f")
	case "$b" in
	*.xz) xz -dc "$f" > "$IR/lib/modules/${b%.xz}"; b=${b%.xz} ;;
	*.zst) zstd -qdc "$f" > "$IR/lib/modules/${b%.zst}"; b=${b%.zst} ;;
	*) cp "$f" "$IR/lib/modules/$b" ;;
	esac
	echo "$b" >> "$IR/lib/modules/order"
done
install -m 0755 "$HERE/initramfs-init.sh" "$IR/init"
(cd "$IR" && find . | cpio -o -H newc --quiet | gzip -9) > "$OUT/initrd.img.tmp"

# ---- root filesystem
ROOT=$WORK/root
mkdir -p "$ROOT"/{bin,sbin,dev,proc,sys,tmp,run,etc,root,var/log,usr/bin,usr/local/bin,usr/share/X11}
cp /bin/busybox "$ROOT/bin/busybox"
for a in $("$ROOT/bin/busybox" --list); do
	[ -e "$ROOT/bin/$a" ] || ln -s busybox "$ROOT/bin/$a"
done
# qemu-ga's guest-set-time (the host sets a resumed guest's clock) needs
# /sbin/hwclock; busybox has one.
ln -s ../bin/busybox "$ROOT/sbin/hwclock"
install -m 0755 "$HERE/init.sh" "$ROOT/sbin/init"
echo "root:x:0:0:root:/root:/bin/sh" > "$ROOT/etc/passwd"
echo "root:x:0:" > "$ROOT/etc/group"
echo wstest > "$ROOT/etc/hostname"
copy_with_libs() {
	local bin=$1 lib
	mkdir -p "$ROOT$(dirname "$bin")"
	cp -L "$bin" "$ROOT$bin"
	for lib in $(ldd "$bin" | grep -o '/[^ ]*'); do
		[ -e "$ROOT$lib" ] && continue
		mkdir -p "$ROOT$(dirname "$lib")"
		cp -L "$lib" "$ROOT$lib"
	done
}
copy_with_libs /usr/bin/Xvfb
copy_with_libs /usr/bin/xkbcomp
copy_with_libs /usr/bin/xsetroot
copy_with_libs /usr/sbin/qemu-ga
install -m 0755 "$HERE/udhcpc.sh" "$ROOT/etc/udhcpc.sh"
mkdir -p "$ROOT/usr/share/workspace-test" "$ROOT/var/lib/workspace-agent"
cp "$HERE/picture.xbm" "$ROOT/usr/share/workspace-test/picture.xbm"
echo "test-image: building workspace-agent (static)"
(cd "$REPO" && CGO_ENABLED=0 go build -trimpath -ldflags "-X main.version=$(git describe --always --dirty 2>/dev/null || echo dev)" \
	-o "$ROOT/usr/local/bin/workspace-agent" ./cmd/workspace-agent)
cp -a /usr/share/X11/xkb "$ROOT/usr/share/X11/"
mkdir -p "$ROOT/usr/share/X11/xkb/compiled" "$ROOT/var/lib/xkb"
[ -d /usr/lib/xorg ] && mkdir -p "$ROOT/usr/lib/xorg" && cp -a /usr/lib/xorg/protocol.txt "$ROOT/usr/lib/xorg/" 2>/dev/null || true

rm -f "$OUT/disk.raw"
truncate -s 256M "$OUT/disk.raw"
mkfs.ext4 -q -F -L wsroot -d "$ROOT" "$OUT/disk.raw"
qemu-img convert -c -O qcow2 "$OUT/disk.raw" "$OUT/disk.qcow2.tmp"
rm -f "$OUT/disk.raw"

cp "$WORK/kernel/boot/vmlinuz-$KVER" "$OUT/vmlinuz"
mv "$OUT/initrd.img.tmp" "$OUT/initrd.img"
mv "$OUT/disk.qcow2.tmp" "$OUT/disk.qcow2"
echo "$CMDLINE" > "$OUT/cmdline"
(cd "$OUT" && sha256sum vmlinuz initrd.img disk.qcow2 > SHA256SUMS)
echo "$STAMP" > "$OUT/.stamp"
echo "test-image: built $OUT (kernel $KVER)"
ls -la "$OUT"
