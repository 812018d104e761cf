#!/bin/sh
# Test guest init (PID 1): mounts, virtio-port links, power button, Xvfb.
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

# The guest agent runs in a respawn loop; its log stays in the guest.
if [ -x /usr/local/bin/workspace-agent ]; then
	echo "WORKSPACE-AGENT-STARTED"
	( while true; do DISPLAY=:0 /usr/local/bin/workspace-agent run >>/var/log/workspace-agent.log 2>&1; sleep 1; done ) &
fi

# PID 1 stays alive and reaps orphans.
while true; do
	wait
	sleep 1
done
