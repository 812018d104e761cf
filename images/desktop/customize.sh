#!/bin/bash
# mmdebstrap customize hook ($1 = the new root): the desktop user, the agent
# and its session start, the share mounts, autologin, network.
# Environment: VARIANT, WS_USER, WS_PASSWORD, AUTOLOGIN, AGENT (see build.sh).
set -euo pipefail
R=$1
F=$(cd "$(dirname "$0")" && pwd)/files
echo "::stage configure"
inroot() { chroot "$R" "$@"; }

echo workspace > "$R/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\tworkspace\n::1\tlocalhost ip6-localhost ip6-loopback\n' > "$R/etc/hosts"
# The root is the whole virtio disk, no partition table; discard keeps the
# workspace's overlay from growing with deleted files.
echo '/dev/vda / ext4 defaults,discard,errors=remount-ro 0 1' > "$R/etc/fstab"

# The desktop user, in the group that may open the agent's port.
inroot groupadd --system workspace-agent
inroot useradd --create-home --shell /bin/bash --groups sudo,workspace-agent,video,audio,input "$WS_USER"
printf '%s:%s\n' "$WS_USER" "$WS_PASSWORD" | inroot chpasswd
install -d -o "$(inroot id -u "$WS_USER")" -g "$(inroot id -g "$WS_USER")" -m 0750 "$R/var/lib/workspace-agent"
ln -s /mnt/shares "$R/home/$WS_USER/shares"
inroot chown -h "$WS_USER:$WS_USER" "/home/$WS_USER/shares"
install -d "$R/mnt/shares"

# The agent and how it starts in the desktop session.
install -m 0755 "$AGENT" "$R/usr/local/bin/workspace-agent"
install -d "$R/usr/lib/workspace" "$R/usr/share/workspace"
install -m 0755 "$F/start-agent" "$F/mount-shares" "$R/usr/lib/workspace/"
install -m 0644 "$F/workspace-agent.service" "$R/usr/lib/systemd/user/workspace-agent.service"
install -m 0644 "$F/workspace-agent.desktop" "$R/etc/xdg/autostart/workspace-agent.desktop" 2>/dev/null ||
	{ install -d "$R/etc/xdg/autostart" && install -m 0644 "$F/workspace-agent.desktop" "$R/etc/xdg/autostart/"; }
install -m 0644 "$F/60-workspace-agent.rules" "$R/etc/udev/rules.d/"

# The screen never blanks (the host decides).
install -d "$R/etc/X11/xorg.conf.d"
install -m 0644 "$F/10-workspace-noblank.conf" "$R/etc/X11/xorg.conf.d/"

# Shared folders (9p, virtiofs) and the growing root, at boot.
install -m 0644 "$F/workspace-shares.service" "$F/workspace-growfs.service" "$R/etc/systemd/system/"
inroot systemctl enable workspace-shares.service workspace-growfs.service

# Boot time: no drivers for hardware a VM lacks, no e2scrub (it needs LVM).
install -m 0644 "$F/modprobe-workspace.conf" "$R/etc/modprobe.d/workspace.conf"
# The balloon with free page reporting gives what the guest frees back.
install -D -m 0644 "$F/modules-load-workspace.conf" "$R/etc/modules-load.d/workspace.conf"
inroot systemctl mask e2scrub_reap.service e2scrub_all.timer

# Network: DHCP on the first NIC when the profile gives one.
install -m 0644 "$F/20-wired.network" "$R/etc/systemd/network/"
inroot systemctl enable systemd-networkd.service systemd-resolved.service

case "$VARIANT" in
minimal)
	# Autologin on tty1, whose login shell starts X (rootless Xorg through
	# logind) with the minimal session: a known background and openbox.
	install -m 0755 "$F/minimal-session" "$R/usr/lib/workspace/"
	install -m 0644 "$F/background.xbm" "$R/usr/share/workspace/"
	install -d "$R/etc/systemd/system/getty@tty1.service.d"
	printf '[Service]\nExecStart=\nExecStart=-/sbin/agetty --autologin %s --noclear %%I $TERM\n' "$WS_USER" \
		> "$R/etc/systemd/system/getty@tty1.service.d/autologin.conf"
	install -m 0644 -o "$(inroot id -u "$WS_USER")" -g "$(inroot id -g "$WS_USER")" "$F/bash_profile" "$R/home/$WS_USER/.bash_profile"
	;;
full)
	# lightdm on the VGA display, an XFCE session; autologin when asked.
	install -d "$R/etc/lightdm/lightdm.conf.d"
	{
		echo "[Seat:*]"
		echo "user-session=xfce"
		if [ "$AUTOLOGIN" = 1 ]; then
			echo "autologin-user=$WS_USER"
			echo "autologin-user-timeout=0"
		fi
	} > "$R/etc/lightdm/lightdm.conf.d/50-workspace.conf"
	if [ "$AUTOLOGIN" = 1 ]; then
		inroot groupadd --system --force autologin
		inroot gpasswd --add "$WS_USER" autologin >/dev/null
	fi
	;;
esac
inroot systemctl set-default "$([ "$VARIANT" = full ] && echo graphical || echo multi-user).target"
echo "configured $VARIANT for user $WS_USER"
