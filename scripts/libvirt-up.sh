#!/bin/bash
# Makes sure libvirtd (system mode) runs on this Debian machine: installs the
# packages if missing and starts virtlogd + libvirtd, with or without systemd.
# Idempotent; run as root.
set -euo pipefail

URI=qemu:///system
pkgs=(libvirt-daemon-system libvirt-daemon-driver-qemu libvirt-clients qemu-system-x86 qemu-utils dnsmasq-base iptables libxml2-utils)
source "$(dirname "$0")/apt.sh"
apt_need libvirt-up "${pkgs[@]}"

# Without udev (containers), /dev/kvm can be root-only: QEMU, running as
# libvirt-qemu, then cannot use it, and libvirt re-probes QEMU's capabilities
# on every domain definition (about a minute each). Give it to the kvm group
# as udev's rule does.
if [ -c /dev/kvm ] && getent group kvm >/dev/null; then
	if [ "$(stat -c %G:%a /dev/kvm)" != "kvm:660" ]; then
		echo "libvirt-up: giving /dev/kvm to group kvm, mode 0660 (as udev would)"
		chgrp kvm /dev/kvm && chmod 0660 /dev/kvm
	fi
	id -nG libvirt-qemu 2>/dev/null | grep -qw kvm || usermod -a -G kvm libvirt-qemu 2>/dev/null || true
fi

answers() { timeout 10 virsh -c "$URI" version >/dev/null 2>&1; }

# detached runs a daemon with no file descriptor but 0-2: the ones this
# script inherited (a `flock LOCKFILE make test` passes its lock down) would
# otherwise live as long as the daemon, and hold that lock with it.
detached() {
	(
		for fd in /proc/self/fd/*; do
			fd=${fd##*/}
			if [ "$fd" -gt 2 ]; then eval "exec $fd>&-"; fi
		done
		exec "$@" </dev/null
	)
}
if answers; then
	echo "libvirt-up: libvirtd is running"
	exit 0
fi

getent passwd libvirt-qemu >/dev/null || useradd --system --no-create-home --shell /usr/sbin/nologin libvirt-qemu
mkdir -p /var/log/libvirt /var/log/libvirt/qemu /run/libvirt

if [ -d /run/systemd/system ]; then
	echo "libvirt-up: starting libvirtd through systemd"
	systemctl start virtlogd libvirtd
else
	echo "libvirt-up: starting virtlogd and libvirtd (no systemd)"
	pgrep -x virtlogd >/dev/null || detached virtlogd -d
	pgrep -x virtlockd >/dev/null || detached virtlockd -d || true
	# A libvirtd that does not answer may still be shutting down: let it go.
	for _ in $(seq 1 40); do pgrep -x libvirtd >/dev/null || break; sleep 0.25; done
	pgrep -x libvirtd >/dev/null && pkill -9 -x libvirtd && sleep 0.5
	detached libvirtd -d
fi
for _ in $(seq 1 60); do
	if answers; then
		echo "libvirt-up: libvirtd answers at $URI"
		exit 0
	fi
	sleep 0.5
done
echo "libvirt-up: libvirtd did not come up" >&2
exit 1
