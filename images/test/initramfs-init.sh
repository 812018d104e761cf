#!/bin/sh
# Test guest initramfs: load the virtio (and button/evdev) modules in the
# order computed at build time, mount the ext4 root and switch to it.
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for m in $(cat /lib/modules/order); do
	insmod /lib/modules/$m 2>/dev/null
done
for i in $(seq 1 50); do
	[ -b /dev/vda ] && break
	sleep 0.1
done
if ! mount -t ext4 -o rw /dev/vda /newroot; then
	echo "WORKSPACE-GUEST-NOROOT"
	exec sh
fi
umount /proc /sys
mount --move /dev /newroot/dev
exec switch_root /newroot /sbin/init
