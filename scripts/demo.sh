#!/bin/bash
# The demo: a daemon, the test image, and a workspace that boots, tracks
# (the guest agent's screenshots land in the diary) and shows its diary.
#   bash scripts/demo.sh         set up and show the demo workspace
#   bash scripts/demo.sh clean   remove it again
# Run as root (libvirt's system mode needs it). `make demo` builds first.
set -euo pipefail
cd "$(dirname "$0")/.."

WS=bin/workspace
STATE_DIR=${WORKSPACE_STATE_DIR:-/var/lib/workspace}
export WORKSPACE_SOCKET=${WORKSPACE_SOCKET:-/run/workspace/workspace.sock}
LOG=/var/log/workspace-daemon.log
NAME=demo

if [ "$(id -u)" -ne 0 ]; then
	echo "demo: run as root (sudo make demo): libvirt's system mode needs it" >&2
	exit 1
fi

daemon_up() { "$WS" list >/dev/null 2>&1; }

if [ "${1:-}" = clean ]; then
	if daemon_up; then
		"$WS" destroy "$NAME" --yes 2>/dev/null || true
		"$WS" image rm test 2>/dev/null || true
	fi
	if [ -f /run/workspace/daemon.pid ]; then
		kill "$(cat /run/workspace/daemon.pid)" 2>/dev/null || true
		rm -f /run/workspace/daemon.pid
	fi
	echo "demo: removed the demo workspace and image, stopped the daemon"
	exit 0
fi

getent group workspace >/dev/null || groupadd --system workspace

if ! daemon_up; then
	echo "demo: starting the daemon (log: $LOG)"
	mkdir -p /run/workspace
	setsid "$WS" daemon --state-dir "$STATE_DIR" >>"$LOG" 2>&1 < /dev/null &
	echo $! > /run/workspace/daemon.pid
	for _ in $(seq 1 50); do daemon_up && break; sleep 0.2; done
	daemon_up || { echo "demo: the daemon did not come up; see $LOG" >&2; tail -20 "$LOG" >&2; exit 1; }
fi
"$WS" version

# The freelancer's diary identity (once; without a passphrase for the demo).
if ! out=$("$WS" init 2>&1); then
	echo "$out" | grep -q "already exists" || { echo "$out" >&2; exit 1; }
	echo "demo: the diary identity exists already"
else
	echo "$out"
fi

if ! "$WS" image list --json | grep -q '"name": "test"'; then
	B=images/test/build
	"$WS" image import test "$B/disk.qcow2" --kernel "$B/vmlinuz" --initrd "$B/initrd.img" \
		--cmdline "$(cat $B/cmdline)"
fi
"$WS" image list

if ! "$WS" status "$NAME" >/dev/null 2>&1; then
	"$WS" profile validate profiles/examples/demo.hcl
	"$WS" create "$NAME" --profile profiles/examples/demo.hcl
fi
"$WS" start "$NAME" --wait
"$WS" list
"$WS" status "$NAME"

CONSOLE=$("$WS" status "$NAME" --json | sed -n 's/.*"console_log": "\(.*\)".*/\1/p')
echo
echo "demo: waiting for the guest's desktop (X server) to come up..."
for _ in $(seq 1 120); do
	grep -q WORKSPACE-GUEST-XREADY "$CONSOLE" 2>/dev/null && break
	sleep 1
done
echo "---- guest console ($CONSOLE) ----"
tail -n 15 "$CONSOLE" || true
echo "----"
echo
echo "demo: waiting for the guest agent to connect..."
for _ in $(seq 1 60); do
	"$WS" status "$NAME" --json | grep -q '"connected": true' && break
	sleep 1
done
"$WS" track status "$NAME" | sed -n 's/^agent: */demo: agent /p'
"$WS" track status "$NAME" --json | grep -q '"tracking": true' || "$WS" track start "$NAME" --memo "make demo"
echo "demo: tracking with 30-second slots; waiting for the first screenshot in the diary..."
for _ in $(seq 1 90); do
	"$WS" diary "$NAME" --json | grep -q '"shots": 0,' || break
	sleep 1
done
echo
"$WS" diary "$NAME"
"$WS" diary check "$NAME"
echo
echo "demo: the diary in the browser (one-time link):"
"$WS" ui --no-open || true
cat <<MSG

The demo workspace "$NAME" is running. Try:
  $WS status $NAME --json
  $WS events --json          (in another terminal, then stop/start the workspace)
  $WS stop $NAME
  $WS diary $NAME               (the work diary; see docs/diary.md)
  $WS track stop $NAME          (tracking goes on until you stop it)
  $WS ui                        (a new login link for the browser)
Clean up with:  sudo make demo-clean   (destroys the workspace and image, stops the daemon)
MSG
