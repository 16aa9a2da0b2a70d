#!/bin/sh
# hvsim_e2e.sh HVSIM NVGUEST NICSPEC [GUEST ARGS...] - nvguest under hvsim
# with two NICs (--net NICSPEC twice). Exits 77 (skipped) while hvsim has
# no --net option; the in-process runner (nvrun) covers the same ground.
set -u
hvsim=$1 guest=$2 nic=$3
shift 3
if ! "$hvsim" --help 2>&1 | grep -q -- '--net'; then
	echo "hvsim has no --net yet: skipped"
	exit 77
fi
exec "$hvsim" --control none --timeout 120 --vcpus 2 --memory 128M \
	--net "$nic" --net "$nic" -- "$guest" "$@"
