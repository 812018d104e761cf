#!/bin/sh
# Test guest init (PID 1): mounts, virtio-port links, power button, network,
# shared folders, qemu-guest-agent, Xvfb and the workspace agent.
export PATH=/bin:/sbin:/usr/bin:/usr/local/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run
hostname -F /etc/hostname

# No udev: make /dev/virtio-ports/NAME links like udev would.
mkdir -p /dev/virtio-ports
for p in /sys/class/virtio-ports/*; do
	[ -f "$p/name" ] || continue
	ln -sf "../$(basename "$p")" "/dev/virtio-ports/$(cat "$p/name")"
done
echo "WORKSPACE-GUEST-BOOTED"
if [ -e /dev/virtio-ports/org.workspace.agent.0 ]; then
	echo "WORKSPACE-AGENT-PORT-OK"
else
	echo "WORKSPACE-AGENT-PORT-MISSING"
fi

# qemu-guest-agent: libvirt's guest-exec and guest-ping (tests use them).
if [ -e /dev/virtio-ports/org.qemu.guest_agent.0 ]; then
	mkdir -p /var/run /usr/local/var/run
	( while true; do /usr/sbin/qemu-ga -m virtio-serial -p /dev/virtio-ports/org.qemu.guest_agent.0 2>&1 | sed 's/^/WORKSPACE-QGA: /'; sleep 1; done ) &
fi

# Network: a NIC exists when the profile's network mode is nat or isolated.
ip link set lo up
if [ -e /sys/class/net/eth0 ]; then
	udhcpc -i eth0 -s /etc/udhcpc.sh -b -t 20 -T 1 -A 2 2>/dev/null
fi

# Shared folders: the host lists them in fw_cfg, one "TAG FSTYPE MODE" line
# each; mount them at /mnt/shares/TAG.
shares=/sys/firmware/qemu_fw_cfg/by_name/opt/org.workspace/shares/raw
if [ -r "$shares" ]; then
	while read -r tag fstype mode; do
		[ -n "$tag" ] || continue
		mkdir -p "/mnt/shares/$tag"
		case "$fstype" in
		9p) opts="trans=virtio,version=9p2000.L,msize=262144" ;;
		*) opts="" ;;
		esac
		[ "$mode" = ro ] && opts="${opts:+$opts,}ro"
		if mount -t "$fstype" ${opts:+-o "$opts"} "$tag" "/mnt/shares/$tag" 2>/tmp/mount.err; then
			echo "WORKSPACE-SHARE-MOUNTED $tag $fstype $mode"
		else
			echo "WORKSPACE-SHARE-FAILED $tag $fstype $mode: $(cat /tmp/mount.err)"
		fi
	done < "$shares"
fi

# ACPI power button (libvirt's shutdown) -> clean power-off.
for e in /sys/class/input/event*; do
	if [ "$(cat "$e/device/name" 2>/dev/null)" = "Power Button" ]; then
		dev=/dev/input/$(basename "$e")
		( dd if="$dev" bs=24 count=1 >/dev/null 2>&1; echo "WORKSPACE-GUEST-POWEROFF"; sync; poweroff -f ) &
	fi
done

Xvfb :0 -screen 0 1024x768x24 +xinerama -nolisten tcp -noreset -wr >/var/log/Xvfb.log 2>&1 &
for i in $(seq 1 100); do
	[ -S /tmp/.X11-unix/X0 ] && break
	sleep 0.1
done
if [ -S /tmp/.X11-unix/X0 ]; then
	# The known picture the tests look for in every screenshot: orange and
	# dark blue stripes (images/test/picture.xbm).
	if ! out=$(DISPLAY=:0 xsetroot -bitmap /usr/share/workspace-test/picture.xbm -fg '#ff8800' -bg '#003366' 2>&1); then
		echo "WORKSPACE-GUEST-PICTURE-FAILED: $out"
	fi
	echo "WORKSPACE-GUEST-XREADY"
else
	echo "WORKSPACE-GUEST-XFAILED"
	cat /var/log/Xvfb.log
fi

# The end-to-end test of the host's defences shares a hostile agent in as
# share "hostile" (it is built by that test, in no image): it then runs
# instead of the real agent.
if [ -x /mnt/shares/hostile/workspace-hostile ]; then
	echo "WORKSPACE-HOSTILE-AGENT"
	( /mnt/shares/hostile/workspace-hostile $(cat /mnt/shares/hostile/args 2>/dev/null) >/var/log/workspace-hostile.log 2>&1 ) &
# The guest agent runs in a respawn loop; its log stays in the guest.
elif [ -x /usr/local/bin/workspace-agent ]; then
	echo "WORKSPACE-AGENT-STARTED"
	( while true; do DISPLAY=:0 /usr/local/bin/workspace-agent run >>/var/log/workspace-agent.log 2>&1; sleep 1; done ) &
fi

# PID 1 stays alive and reaps orphans.
while true; do
	wait
	sleep 1
done
