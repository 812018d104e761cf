# Sourced by the set-up scripts (deps, libvirt-up, the image builds).
#
# apt_need WHO PACKAGE...: installs, from Debian, those of the packages that
# are not installed yet, saying so as WHO; needs root only when one is
# missing.
apt_need() {
	local who=$1 p
	shift
	local need=()
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
	done
	if [ ${#need[@]} -eq 0 ]; then
		return 0
	fi
	if [ "$(id -u)" -ne 0 ]; then
		echo "$who: missing ${need[*]}; run as root (sudo make ...)" >&2
		return 1
	fi
	echo "$who: installing ${need[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
}
