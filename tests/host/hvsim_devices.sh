#!/bin/sh
# tests/host/hvsim_devices.sh - hvsim's devices end to end: a VM with a disk
# (--disk, a sparse temp image), a NIC (--net null) and the integration
# services, running the reference guest (hvguest --full), which lists the
# storage, network and IC channels; then the control verbs (heartbeat,
# time, ic, kvp-set/get/list/delete through the mirror, disks with hot add
# and remove, nics and nic-link, guest-shutdown, error answers); a guest
# that ignores the shutdown request powered off at the deadline; and the
# default VM (hvsim with no arguments) shut down by SIGINT.
#
# usage: hvsim_devices.sh PART HVSIM HVGUEST [IC_GUEST]
#   PART      devices (the VM with a disk and a NIC, the control verbs) or
#             default (the deadline, the default VM)
#   IC_GUEST  tests/ic/ic_e2e_guest (the deadline check is skipped without it)
set -u
PART=$1
HVSIM=$2
HVGUEST=$3
ICGUEST=${4:-}
SCALE=${VMBUS_TEST_TIME_SCALE:-1}
T=$(mktemp -d /tmp/hvsim-dev.XXXXXX)
HV=
cleanup() {
	[ -n "$HV" ] && kill -KILL "$HV" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
ok() { echo "ok: $*"; }

CTL=$T/ctl.sock
ctl() { "$HVSIM" ctl --control "$CTL" "$@"; }
# jget FILE EXPR: a Python expression on the JSON answer j.
jget() {
	python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"
}
# expect WANT_STATUS DESCRIPTION -- CMD...: run; the answer stays in $T/out.
expect() {
	want=$1; what=$2; shift 3
	"$@" >"$T/out" 2>"$T/err"
	got=$?
	if [ "$got" != "$want" ]; then
		fail "$what: exit $got, want $want"
		sed 's/^/  | /' "$T/out" "$T/err" | tail -5
		return 1
	fi
	return 0
}
expect_eq() { # EXPR WANT DESCRIPTION (on $T/out)
	got=$(jget "$T/out" "$1" 2>&1)
	if [ "$got" = "$2" ]; then ok "$3"; else fail "$3: $1 = '$got', want '$2'"; fi
}
# until_ctl EXPR WANT CTL-ARGS...: poll until EXPR == WANT (scaled bound).
until_ctl() {
	expr=$1; want=$2; shift 2
	i=0
	while [ $i -lt $((150 * SCALE)) ]; do
		ctl "$@" >"$T/out" 2>/dev/null &&
			[ "$(jget "$T/out" "$expr" 2>/dev/null)" = "$want" ] && return 0
		sleep 0.1
		i=$((i + 1))
	done
	fail "timed out waiting for $expr == $want ($*)"
	sed 's/^/  | /' "$T/out" | tail -3
	return 1
}
# wait_line FILE PATTERN: bounded wait for an extended-regex line.
wait_line() {
	i=0
	while [ $i -lt $((150 * SCALE)) ]; do
		grep -Eq -- "$2" "$1" && return 0
		sleep 0.1
		i=$((i + 1))
	done
	fail "timed out waiting for '$2' in $(basename "$1")"
	tail -10 "$1" | sed 's/^/  | /'
	return 1
}
has() { # FILE PATTERN DESCRIPTION
	if grep -Eq -- "$2" "$1"; then ok "$3"; else fail "$3: no '$2'"; fi
}
# wait_exit PID SECONDS: the exit status, or 255 after killing it.
wait_exit() {
	i=0
	while kill -0 "$1" 2>/dev/null && [ $i -lt $(($2 * 10 * SCALE)) ]; do
		sleep 0.1
		i=$((i + 1))
	done
	if kill -0 "$1" 2>/dev/null; then
		kill -KILL "$1" 2>/dev/null
		wait "$1"
		return 255
	fi
	wait "$1"
}

if [ "$PART" = devices ]; then
# --- one VM: disk, NIC, integration services, the reference guest -------------
# (the second VM, "bare", has no guest: it waits on --listen, no ICs)
"$HVSIM" --control "$CTL" --timeout $((60 * SCALE)) --shutdown-timeout $((10 * SCALE)) \
	--guest "$HVGUEST --full --kvp-file $T/vm0.kvp" --clock-skew 3600 \
	--memory 64M --disk "$T/d.img,create,size=16M" --net null \
	--vm --name bare --ic off --listen "$T/l.sock" >"$T/hv.out" 2>"$T/hv.err" &
HV=$!
wait_line "$T/hv.out" '^\[vm0\] nic0: MAC'
f=$T/hv.out
has "$f" '^\[vm0\] VMBUS ID +[0-9]+: .* - Heartbeat$' "guest lists the heartbeat channel"
has "$f" '^\[vm0\] VMBUS ID +[0-9]+: .* - Guest shutdown$' "guest lists the shutdown channel"
has "$f" '^\[vm0\] VMBUS ID +[0-9]+: .* - Time synchronization$' "guest lists the time sync channel"
has "$f" '^\[vm0\] VMBUS ID +[0-9]+: .* - Data exchange \(KVP\)$' "guest lists the KVP channel"
has "$f" '^\[vm0\] VMBUS ID +[0-9]+: .* - Synthetic SCSI controller$' "guest lists the SCSI channel"
has "$f" '^\[vm0\] VMBUS ID +[0-9]+: .* - Synthetic network adapter$' "guest lists the NIC channel"
has "$f" '^\[vm0\] disk0: .*32768 blocks x 512 B' "guest sees the 16 MiB disk"
has "$f" '^\[vm0\] ic: kvp negotiated' "guest negotiated KVP"
until_ctl "j['storage']['controllers'][0]['version'] != 'none'" True disks vm0
until_ctl "j['nics'][0]['nvsp_version'] != 0 and j['nics'][0]['rndis_up']" True nics vm0
has "$T/hv.err" 'devices offered: heartbeat \(relid 1\), shutdown \(relid 2\), timesync \(relid 3\), kvp \(relid 4\), scsi0 \(relid 5\), net0 \(relid 6\)' "hvsim logs the devices offered"
wait_line "$T/hv.err" 'scsi0: VSTOR [0-9.]+ negotiated'
wait_line "$T/hv.err" 'net0: NVSP [0-9.]+, NDIS [0-9.]+ negotiated'
has "$T/hv.err" 'channel 5 scsi0 opened by the guest' "hvsim logs the channels opened"
[ "$(stat -c %b "$T/d.img")" -lt 1024 ] && ok "the image is sparse" || fail "image not sparse"

expect 0 "channels" -- ctl channels vm0
expect_eq "sorted(set(c['name'] for c in j['channels']))" \
	"['heartbeat', 'kvp', 'net0', 'scsi0', 'shutdown', 'timesync']" "host channels"
expect 0 "list" -- ctl list
expect_eq "[(v['name'], v['ic'], v['disks'], v['nics']) for v in j['vms']]" \
	"[('vm0', True, 1, 1), ('bare', False, 0, 0)]" "list: ic, disks, nics"

# heartbeat, time, ic
until_ctl "j['heartbeat']" ok heartbeat vm0
ok "heartbeat shows ok"
expect_eq "j['good'] >= 1 and j['bad'] == 0" True "heartbeat counters"
expect 0 "time" -- ctl time vm0
expect_eq "j['syncs'] >= 1 and j['refused'] == 0" True "time: a SYNC answered"
expect 0 "time sync measure" -- ctl time vm0 sync measure
expect_eq "(j['sync_queued'], j['measure_queued'])" "(True, True)" "time sync/measure queued"
until_ctl "j['offset_ns'] is not None and abs(j['offset_ns']) < 1000000000" True time vm0
# --clock-skew 3600: the guest started an hour ahead; time sync 4.0 (the
# partition's reference time) stepped it back
wait_line "$T/hv.out" '^\[vm0\] ic: timesync: clock stepped by -3600[0-9]{3}\.[0-9]+ ms' &&
	ok "--clock-skew: the guest's clock was stepped back an hour"
has "$T/hv.err" 'ic-timesync: negotiated framework [0-9.]+, service 4\.0' "time sync 4.0 under hvsim"
ok "time: the guest clock offset is known"
expect 0 "ic" -- ctl --pretty ic vm0
grep -q '"generation": "auto"' "$T/out" && ok "ic pretty" || fail "ic: no generation"
expect 0 "ic" -- ctl ic vm0
expect_eq "[j[s]['state'] for s in ('heartbeat','shutdown','timesync','kvp')]" \
	"['ready', 'ready', 'ready', 'ready']" "ic: all four negotiated"

# KVP through the mirror
expect 0 "kvp-set" -- ctl kvp-set vm0 Greeting "hello world"
expect_eq "(j['queued'], j['pool'])" "(True, 0)" "kvp-set queued in pool 0"
until_ctl "j['value']" "hello world" kvp-get vm0 Greeting
ok "kvp-set then kvp-get through the mirror"
wait_line "$T/hv.out" '^\[vm0\] ic: kvp: host set Greeting = "hello world" in pool 0'
expect 0 "kvp-set u32" -- ctl kvp-set vm0 Answer 42 pool=external type=u32
until_ctl "(j['value'], j['type'])" "('42', 'u32')" kvp-get vm0 Answer pool=0
ok "kvp-set of a u32"
expect 0 "kvp-list" -- ctl kvp-list vm0 auto refresh
expect_eq "'OSName' in [r['key'] for r in j['pools'][0]['records']]" True "kvp-list auto pool"
until_ctl "any(r['key'] == 'GuestSystemTimeUtc' for r in j['pools'][1]['records'])" True kvp-list vm0
ok "kvp-list: the guest pool"
expect 0 "kvp-delete" -- ctl kvp-delete vm0 Greeting
i=0
while ctl kvp-get vm0 Greeting pool=0 >"$T/out" 2>&1 && [ $i -lt $((100 * SCALE)) ]; do
	sleep 0.1; i=$((i + 1))
done
expect_eq "j['error'].startswith('no such key')" True "kvp-delete reaches the mirror"
expect 1 "kvp-get unknown" -- ctl kvp-get vm0 NoSuchKey
expect 2 "kvp-get bad pool" -- ctl kvp-get vm0 X pool=7
expect 2 "kvp-set no value" -- ctl kvp-set vm0 X
expect 1 "raw kvp-set bad type" -- ctl raw '{"cmd":"kvp-set","vm":"vm0","key":"K","value":"v","type":"float"}'
expect_eq "j['error']" '"type" is string, u32 or u64' "kvp-set bad type"

# disks: list, hot add, hot remove
expect 0 "disks" -- ctl disks vm0
expect_eq "[(d['lun'], d['path'], d['size']) for c in j['storage']['controllers'] for d in c['disks']]" \
	"[(0, '$T/d.img', 16777216)]" "disks lists the disk"
expect 0 "disk-add" -- ctl disk-add vm0 "$T/e.img,create,size=8M"
expect_eq "(j['controller'], j['lun'])" "(0, 1)" "disk-add at 0:1"
wait_line "$T/hv.out" '^\[vm0\] disk 0:0:1: added by the host: .*, 16384 blocks x 512 B'
until_ctl "len(j['storage']['controllers'][0]['disks'])" 2 disks vm0
expect 1 "disk-add twice (locked)" -- ctl disk-add vm0 "$T/e.img"
expect_eq "'in use' in j['error'] or 'taken' in j['error'] or 'lock' in j['error']" True "second open refused"
expect 1 "disk-add bad spec" -- ctl disk-add vm0 "$T/f.img,create"
expect_eq "'size' in j['error']" True "disk-add bad spec error"
expect 0 "disk-remove" -- ctl disk-remove vm0 0 1
until_ctl "len(j['storage']['controllers'][0]['disks'])" 1 disks vm0
wait_line "$T/hv.out" '^\[vm0\] disk 0:0:1: removed by the host'
expect 1 "disk-remove again" -- ctl disk-remove vm0 0 1
expect 2 "disk-remove bad lun" -- ctl disk-remove vm0 0 64

# NICs
expect 0 "nics" -- ctl nics vm0
expect_eq "[(n['name'], n['backend'], n['link']) for n in j['nics']]" \
	"[('vm0/net0', 'null', True)]" "nics lists the NIC"
expect 0 "nic-link down" -- ctl nic-link vm0 0 down
until_ctl "j['nics'][0]['link']" False nics vm0
wait_line "$T/hv.out" '^\[vm0\] nic0: link down'
ok "nic-link down reaches the guest"
expect 0 "nic-link up" -- ctl nic-link vm0 0 up
wait_line "$T/hv.out" '^\[vm0\] nic0: link up'

expect 1 "nic-link no such NIC" -- ctl nic-link vm0 3 up
expect 2 "nic-link bad state" -- ctl nic-link vm0 0 sideways

# rescind the NIC: the guest lets it go, hvsim forgets it (its watcher reads
# the NIC every 250 ms: a use after free under Asan before)
expect 0 "nics" -- ctl nics vm0
nic_relid=$(jget "$T/out" "j['nics'][0]['relid']")
expect 0 "rescind the NIC" -- ctl rescind vm0 "$nic_relid"
wait_line "$T/hv.out" '^\[vm0\] nic0: removed by the host' &&
	ok "the guest lets the rescinded NIC go"
until_ctl "len(j['nics'])" 0 nics vm0
sleep 1	# the watcher looks every 250 ms
expect 0 "stats after the NIC rescind" -- ctl stats vm0
kill -0 "$HV" 2>/dev/null && ok "hvsim runs on after the NIC is gone" ||
	fail "hvsim died after the NIC rescind"
expect 1 "nic-link on the removed NIC" -- ctl nic-link vm0 0 up

# a VM without integration services
expect 1 "heartbeat without ICs" -- ctl heartbeat bare
expect_eq "j['error']" "integration services are off for this VM (--ic on)" "ic off answer"
expect 1 "unknown VM" -- ctl heartbeat nosuch
expect 2 "guest-shutdown bad action" -- ctl guest-shutdown vm0 sideways
expect 1 "raw guest-shutdown bad action" -- ctl raw '{"cmd":"guest-shutdown","vm":"vm0","action":"x"}'

# guest-shutdown: the guest shuts down through the shutdown service
expect 0 "guest-shutdown" -- ctl guest-shutdown vm0
expect_eq "(j['action'], j['state'])" "('poweroff', 'sent')" "guest-shutdown sent"
wait_line "$T/hv.out" '^\[vm0\] unloaded \(0\)'
has "$T/hv.out" '^\[vm0\] ic: shutdown: host requests power off' "the guest got the request"
wait_line "$T/hv.err" '\[vm0\] VM done, status 0'
has "$T/hv.err" '\[vm0\] guest requested power off' "the guest powered itself off"
ctl stop bare >/dev/null 2>&1
wait_exit "$HV" 20
st=$?
HV=
[ "$st" = 0 ] && ok "hvsim exits 0" || { fail "hvsim exit $st"; tail -5 "$T/hv.err"; }

fi # devices

if [ "$PART" = default ]; then
# --- a guest that ignores the request is powered off at the deadline -------------
if [ -n "$ICGUEST" ] && [ -x "$ICGUEST" ]; then
	"$HVSIM" --control "$CTL" --timeout $((60 * SCALE)) \
		--guest "$ICGUEST --ignore-shutdown" >"$T/d.out" 2>"$T/d.err" &
	HV=$!
	until_ctl "j['shutdown']['state']" ready ic vm0
	expect 0 "guest-shutdown deadline=1" -- ctl guest-shutdown vm0 force deadline=1
	expect_eq "j['force']" True "forced"
	wait_exit "$HV" 20
	st=$?
	HV=
	[ "$st" = 0 ] && ok "hvsim exits 0 after the power off" || fail "deadline: hvsim exit $st"
	has "$T/d.err" 'ic-shutdown: the guest accepted' "the guest accepted"
	has "$T/d.err" 'powering the VM off' "powered off at the deadline"
	has "$T/d.err" 'partition ended \(power-off\)' "partition ended by power off"
else
	echo "note: no IC test guest; the deadline part was skipped"
fi

# --- the default VM: no arguments; SIGINT shuts it down ----------------------------
mkdir -p "$T/xdg/run" "$T/xdg/cache" "$T/xdg/state"
chmod 700 "$T/xdg/run"
env XDG_RUNTIME_DIR="$T/xdg/run" XDG_CACHE_HOME="$T/xdg/cache" \
	XDG_STATE_HOME="$T/xdg/state" HVSIM_GUEST= "$HVSIM" \
	>"$T/def.out" 2>"$T/def.err" &
HV=$!
DCTL=$T/xdg/run/hvsim/control.sock
dctl() { "$HVSIM" ctl --control "$DCTL" "$@"; }
i=0; while [ ! -S "$DCTL" ] && [ $i -lt $((100 * SCALE)) ]; do sleep 0.05; i=$((i + 1)); done
i=0
while [ $i -lt $((150 * SCALE)) ]; do
	dctl heartbeat vm0 >"$T/out" 2>/dev/null &&
		[ "$(jget "$T/out" "j['heartbeat']")" = ok ] && break
	sleep 0.1
	i=$((i + 1))
done
expect_eq "j['heartbeat']" ok "default VM: heartbeat ok"
dctl list >"$T/out" 2>&1
expect_eq "[(v['name'], v['vcpus'], v['ram'], v['ic'], v['disks'], v['nics']) for v in j['vms']]" \
	"[('vm0', 2, 536870912, True, 1, 1)]" "default VM: 2 vCPUs, 512M, ICs, a disk, a NIC"
dctl disks vm0 >"$T/out" 2>&1
expect_eq "[(d['path'], d['size']) for c in j['storage']['controllers'] for d in c['disks']]" \
	"[('$T/xdg/cache/hvsim/vm0.img', 1073741824)]" "default VM: 1 GiB image in the cache folder"
dctl nics vm0 >"$T/out" 2>&1
if "$HVSIM" --version | grep -q ' user'; then
	expect_eq "j['nics'][0]['backend']" user "default VM: user networking"
	has "$T/def.out" "^hvsim: vm0's TCP port 80 is at http://127.0.0.1:[0-9]+/" "default VM: the forwarded port is printed"
else
	expect_eq "j['nics'][0]['backend']" switch "default VM: a switch without libslirp"
fi
# The status line comes once a second; the heartbeat can be faster than that.
wait_line "$T/def.out" '^hvsim: status: \[vm0\] running' &&
	ok "default VM: status lines (not a tty)"
kill -INT "$HV"
wait_exit "$HV" 30
st=$?
HV=
[ "$st" = 0 ] && ok "default VM: SIGINT -> exit 0" || { fail "default VM: exit $st"; tail -8 "$T/def.err"; }
has "$T/def.err" 'shutting down \(SIGINT\): asking the guests to shut down' "SIGINT asks the guest"
has "$T/def.out" '^\[vm0\] ic: shutdown: host requests power off' "default VM: the guest got the request"
has "$T/def.out" '^\[vm0\] unloaded \(0\)' "default VM: clean unload"
[ -f "$T/xdg/cache/hvsim/vm0.img" ] && ok "the image is kept" || fail "the image is gone"
[ -e "$DCTL" ] && fail "default control socket left behind"
fi # default

if [ $fails -ne 0 ]; then
	echo "$fails check(s) failed"
	exit 1
fi
echo "all hvsim device checks passed"
