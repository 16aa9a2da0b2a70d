#!/usr/bin/env bash
# scripts/deps.sh - install the Debian packages vmbus needs, when missing.
# Sourced by scripts/run and scripts/test. As root it runs apt-get; otherwise
# it prints the exact commands and stops.
set -euo pipefail

VMBUS_DEBS=(build-essential cmake ninja-build pkg-config clang
            libcmocka-dev liburing-dev libslirp-dev libpcap-dev liblwip-dev
            python3 curl libnbd-bin e2fsprogs)

vmbus_missing_debs() {
	local missing=() p
	for p in "${VMBUS_DEBS[@]}"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
			missing+=("$p")
	done
	echo "${missing[@]:-}"
}

vmbus_install_deps() {
	local missing
	missing=$(vmbus_missing_debs)
	[ -z "$missing" ] && return 0
	if [ "$(id -u)" = 0 ]; then
		echo "vmbus: installing Debian packages: $missing" >&2
		export DEBIAN_FRONTEND=noninteractive
		apt-get update
		# shellcheck disable=SC2086
		apt-get install -y $missing
	else
		echo "vmbus: missing Debian packages: $missing" >&2
		echo "vmbus: run as root:" >&2
		echo "  apt-get update" >&2
		echo "  apt-get install -y $missing" >&2
		exit 1
	fi
}
