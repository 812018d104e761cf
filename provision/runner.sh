#!/bin/sh
# The provisioning runner, pushed into the guest by the workspace daemon
# (through the QEMU guest agent) with the packages and scripts, and started
# once: the daemon starts it only when the guest has no status file yet,
# so a second boot never runs anything again.
#
#   $D/debs/*.deb   packages resolved against this guest's dpkg status
#   $D/root/NN.sh   root scripts (NN.from: where each was written)
#   $D/user/NN.sh   the desktop user's scripts
#   $D/status       what the daemon reads: key=value lines
#   $D/root.log, $D/user.log   the output, also on the console
#
# The root phase installs the packages, then runs the root scripts in
# order and stops at the first failure. The user phase then waits for the
# desktop session (the X display :0 of the guest's uid 1000) and runs the
# user scripts as that user, with DISPLAY set.
D=${WORKSPACE_PROVISION_DIR:-/var/lib/workspace/provision}
CONSOLE=${WORKSPACE_PROVISION_CONSOLE:-/dev/console}
SESSION_WAIT=${WORKSPACE_PROVISION_SESSION_WAIT:-900}
cd "$D" || exit 1
boot=$(cat /proc/sys/kernel/random/boot_id 2>/dev/null)
root_state=running root_exit= root_step=starting
user_state=pending user_exit= user_step=
[ -n "$(ls user/*.sh 2>/dev/null)" ] || user_state=done

write_status() {
	{
		echo "version=1"
		echo "boot=$boot"
		echo "root=$root_state"
		[ -n "$root_exit" ] && echo "root_exit=$root_exit"
		echo "root_step=$root_step"
		[ "$root_state" = failed ] && tail -n 20 root.log 2>/dev/null | tr -d '\r' | sed 's/^/root_line=/'
		echo "user=$user_state"
		[ -n "$user_exit" ] && echo "user_exit=$user_exit"
		echo "user_step=$user_step"
		[ "$user_state" = failed ] && tail -n 20 user.log 2>/dev/null | tr -d '\r' | sed 's/^/user_line=/'
		true
	} >status.tmp && mv status.tmp status
}

# logged LOG CMD...: runs CMD, its output into LOG and onto the console,
# and returns its exit status.
logged() {
	log=$1
	shift
	{
		"$@" </dev/null 2>&1
		echo $? >.rc
	} | tee -a "$log" | sed -u 's/^/workspace-provision: /' >>"$CONSOLE" 2>/dev/null
	return "$(cat .rc)"
}

say() { logged "$1" echo "$2"; }

# script FILE: runs a script with its #! line, or with sh.
script() {
	chmod 0755 "$1"
	if [ "$(head -c 2 "$1")" = '#!' ]; then
		"$1"
	else
		sh "$1"
	fi
}

write_status
: >root.log
if [ -n "$(ls debs/*.deb 2>/dev/null)" ]; then
	n=$(ls debs/*.deb | wc -l)
	root_step="installing $n packages"
	write_status
	say root.log "installing $n packages: $(cat packages 2>/dev/null | tr '\n' ' ')"
	DEBIAN_FRONTEND=noninteractive
	export DEBIAN_FRONTEND
	if ! logged root.log dpkg -i --force-confdef --force-confold debs/*.deb; then
		root_state=failed root_exit=$(cat .rc)
	fi
	rm -rf debs
fi
total=$(ls root/*.sh 2>/dev/null | wc -l)
i=0
for f in $(ls root/*.sh 2>/dev/null); do
	[ "$root_state" = failed ] && break
	i=$((i + 1))
	root_step="script $i of $total ($(cat "${f%.sh}.from" 2>/dev/null))"
	write_status
	say root.log "running $root_step as root"
	if ! logged root.log script "$f"; then
		root_state=failed root_exit=$(cat .rc)
		say root.log "$root_step failed with exit status $root_exit"
	fi
done
if [ "$root_state" = running ]; then
	root_state=done root_exit=0 root_step=
	say root.log "root phase done"
fi
write_status

if [ "$user_state" = pending ] && [ "$root_state" = failed ]; then
	user_state=skipped user_step="the root phase failed"
fi
if [ "$user_state" = pending ]; then
	desk=$(awk -F: '$3 == 1000 { print $1; exit }' /etc/passwd)
	home=$(awk -F: '$3 == 1000 { print $6; exit }' /etc/passwd)
	user_state=waiting user_step="the desktop session of ${desk:-uid 1000}"
	write_status
	waited=0
	while [ -n "$desk" ] && ! { [ -S /tmp/.X11-unix/X0 ] && [ -f "$home/.Xauthority" ]; } && [ $waited -lt "$SESSION_WAIT" ]; do
		sleep 2
		waited=$((waited + 2))
	done
	if [ -z "$desk" ] || [ $waited -ge "$SESSION_WAIT" ]; then
		user_state=failed user_exit=-1
		say user.log "no desktop session of ${desk:-uid 1000} after ${SESSION_WAIT}s: the user scripts did not run"
	else
		user_state=running
		: >user.log
		total=$(ls user/*.sh | wc -l)
		i=0
		for f in $(ls user/*.sh); do
			i=$((i + 1))
			user_step="script $i of $total ($(cat "${f%.sh}.from" 2>/dev/null))"
			write_status
			say user.log "running $user_step as $desk"
			chmod 0755 user "$f"
			if ! logged user.log runuser -u "$desk" -- env DISPLAY=:0 XAUTHORITY="$home/.Xauthority" HOME="$home" USER="$desk" LOGNAME="$desk" sh -c 'cd "$HOME" && if [ "$(head -c 2 "$0")" = "#!" ]; then exec "$0"; fi; exec sh "$0"' "$D/$f"; then
				user_state=failed user_exit=$(cat .rc)
				say user.log "$user_step failed with exit status $user_exit"
				break
			fi
		done
		if [ "$user_state" = running ]; then
			user_state=done user_exit=0 user_step=
			say user.log "user phase done"
		fi
	fi
fi
write_status
