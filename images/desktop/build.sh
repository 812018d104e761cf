#!/bin/bash
# Builds the desktop workspace image from Debian packages with mmdebstrap.
# `workspace image build desktop` runs this script from a copy embedded in the
# binary; it can also be run by hand from the source tree.
#
# Input (environment):
#   VARIANT          minimal (X server + openbox, autologin) or full (XFCE + lightdm)
#   WORK             an empty directory for the build (the caller removes it)
#   OUT_DIR          where to write disk.qcow2, vmlinuz, initrd.img and cmdline
#   AGENT            a static workspace-agent binary to install
#   WS_USER          the desktop user's name
#   WS_PASSWORD      the desktop user's password
#   AUTOLOGIN        1 to log the user in without a password (always on for minimal)
#   MIRROR           Debian archive, e.g. http://deb.debian.org/debian
#   SECURITY_MIRROR  Debian security archive
#   SUITE            bookworm
#
# Output: lines "::stage NAME" mark the build's stages (the CLI shows them);
# everything else is the tools' own output. Needs root, or unprivileged user
# namespaces with a subuid/subgid range (mmdebstrap --mode=unshare).
set -euo pipefail
# System tools only (a user's python or shell shims must not stand in for
# the ones mmdebstrap runs).
export PATH=/usr/local/sbin:/usr/sbin:/sbin:/usr/local/bin:/usr/bin:/bin
HERE=$(cd "$(dirname "$0")" && pwd)
: "${VARIANT:?}" "${WORK:?}" "${OUT_DIR:?}" "${AGENT:?}" "${WS_USER:?}" "${WS_PASSWORD:?}"
: "${MIRROR:=http://deb.debian.org/debian}" "${SECURITY_MIRROR:=http://deb.debian.org/debian-security}"
: "${SUITE:=bookworm}" "${AUTOLOGIN:=0}"
export VARIANT WS_USER WS_PASSWORD AUTOLOGIN AGENT
CMDLINE="console=tty0 console=ttyS0 root=/dev/vda rw quiet"

# In root mode the tree has its real owners; without root, it belongs to a
# subuid range and every step that reads or removes it runs in that namespace.
NS=()
if [ "$(id -u)" -ne 0 ]; then
	NS=(mmdebstrap --unshare-helper)
fi

# Both variants: systemd, the full Debian kernel (bochs DRM for the VGA display,
# 9p, virtiofs and fw_cfg modules), Xorg with the modesetting driver, the
# SPICE and QEMU guest agents (with hwclock, from util-linux-extra, which
# the QEMU guest agent's guest-set-time needs: the host sets a resumed
# guest's clock with it).
pkgs=(
	systemd systemd-sysv udev dbus libpam-systemd systemd-resolved
	linux-image-amd64 initramfs-tools zstd kmod
	passwd mount e2fsprogs procps iproute2 sudo less ca-certificates
	xserver-xorg-core xserver-xorg-input-libinput xauth x11-xserver-utils x11-utils
	fonts-dejavu-core spice-vdagent qemu-guest-agent util-linux-extra
)
case "$VARIANT" in
minimal)
	pkgs+=(xinit openbox)
	;;
full)
	# A day of client work: a browser, git, a text editor (mousepad), a
	# file manager (thunar), a terminal, and what opening links, archives
	# and SSH remotes needs.
	pkgs+=(xfce4 xfce4-terminal xfce4-notifyd lightdm lightdm-gtk-greeter dbus-user-session dbus-x11
		adwaita-icon-theme at-spi2-core policykit-1 mousepad thunar
		firefox-esr fonts-liberation2 xdg-utils git openssh-client curl unzip)
	;;
*)
	echo "unknown variant $VARIANT (minimal or full)" >&2
	exit 2
	;;
esac

chmod 0755 "$WORK"
mkdir -p "$OUT_DIR"

echo "::stage packages"
# --mode=unshare also as root: the chroot's mounts live in a private mount
# namespace, so nothing stays mounted if the build is interrupted.
# No Recommends, no documentation, man pages or translations: the image stays small.
mmdebstrap --mode=unshare --variant=apt --format=directory \
	--aptopt='APT::Install-Recommends "false"' \
	--dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
	--dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*' \
	--dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-include=/usr/share/locale/locale.alias' \
	--essential-hook="$HERE/essential.sh" \
	--customize-hook="$HERE/customize.sh" \
	--include="$(
		IFS=,
		echo "${pkgs[*]}"
	)" \
	"$SUITE" "$WORK/root" \
	"deb $MIRROR $SUITE main" "deb $MIRROR $SUITE-updates main" "deb $SECURITY_MIRROR $SUITE-security main"

echo "::stage kernel"
kver=$(basename "$(ls -d "$WORK"/root/lib/modules/* | sort -V | tail -1)")
"${NS[@]}" cat "$WORK/root/boot/vmlinuz-$kver" > "$OUT_DIR/vmlinuz"
"${NS[@]}" cat "$WORK/root/boot/initrd.img-$kver" > "$OUT_DIR/initrd.img"
echo "$CMDLINE" > "$OUT_DIR/cmdline"
echo "kernel $kver"

echo "::stage filesystem"
# A partitionless ext4 root made from the tree (no loop device, no mount),
# with a quarter free; the guest grows it to the workspace's disk at boot.
used_kib=$("${NS[@]}" du -sxk "$WORK/root" | cut -f1)
size_mib=$(((used_kib * 5 / 4 / 1024 + 256 + 63) / 64 * 64))
truncate -s "${size_mib}M" "$WORK/disk.raw"
chmod 0666 "$WORK/disk.raw"
"${NS[@]}" mkfs.ext4 -q -F -L wsroot -E root_owner=0:0 -d "$WORK/root" "$WORK/disk.raw"
echo "filesystem ${size_mib} MiB, $((used_kib / 1024)) MiB used"

echo "::stage qcow2"
qemu-img convert -c -O qcow2 "$WORK/disk.raw" "$OUT_DIR/disk.qcow2"
rm -f "$WORK/disk.raw"
(cd "$OUT_DIR" && sha256sum vmlinuz initrd.img disk.qcow2 > SHA256SUMS)
echo "::stage done"
