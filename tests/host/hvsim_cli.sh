#!/bin/sh
# tests/host/hvsim_cli.sh - hvsim end to end: argument errors, exit
# statuses, output prefixes, several VMs, timeout, reboot, the control
# client, and HVSIM_SOCKET guests, with the clean-room Python guest.
#
# usage: hvsim_cli.sh HVSIM SOURCE_DIR
set -u
HVSIM=$1
SRC=$2
SCALE=${VMBUS_TEST_TIME_SCALE:-1}
T=$(mktemp -d /tmp/hvsim-cli.XXXXXX)
trap 'rm -rf "$T"' EXIT
CTL=$T/ctl.sock
GUEST="python3 $SRC/tests/abi/cleanroom_guest.py --timeout 10"
fails=0

fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

# expect_status WANT DESCRIPTION -- CMD...: run, compare the exit status.
expect_status() {
	want=$1; what=$2; shift 3
	"$@" >"$T/out" 2>"$T/err"
	got=$?
	if [ "$got" != "$want" ]; then
		fail "$what: exit $got, want $want"
		sed 's/^/  | /' "$T/out" "$T/err" | tail -20
	fi
}
expect_in() { # FILE TEXT DESCRIPTION
	grep -qF -- "$2" "$1" || { fail "$3: '$2' not in output"; sed 's/^/  | /' "$1" | tail -10; }
}

# --- argument errors: exit 2 and a clear message ----------------------------
expect_status 2 "no VM with --listen" -- "$HVSIM" --control none --listen "$T/l.sock"
expect_in "$T/err" "no VM given" "no VM"
expect_status 2 "bad memory" -- "$HVSIM" --memory 3M --guest true
expect_in "$T/err" "multiple of 2 MiB" "bad memory"
expect_status 2 "bad vcpus" -- "$HVSIM" --vcpus 251 --guest true
expect_in "$T/err" "expected 1..250" "bad vcpus"
expect_status 2 "bad version" -- "$HVSIM" --hyperv-version WS2010 --guest true
expect_in "$T/err" "--hyperv-version 'WS2010'" "bad version"
expect_status 2 "unterminated quote" -- "$HVSIM" --guest "sh -c 'echo"
expect_in "$T/err" "unterminated single quote" "unterminated quote"
expect_status 2 "unknown option" -- "$HVSIM" --frobnicate 1 --guest true
expect_in "$T/err" "unknown option '--frobnicate'" "unknown option"
expect_status 2 "missing value" -- "$HVSIM" --guest
expect_in "$T/err" "needs a value" "missing value"
expect_status 2 "duplicate names" -- "$HVSIM" --control none --guest true --name a --guest true --name a
expect_in "$T/err" "two VMs named a" "duplicate names"
# A VM without --guest runs the reference guest: $HVSIM_GUEST, else hvguest
# next to hvsim (a copy of hvsim alone has none).
mkdir "$T/bin" && cp "$HVSIM" "$T/bin/hvsim"
expect_status 2 "no reference guest" -- env -u HVSIM_GUEST "$T/bin/hvsim" --control none --name lonely
expect_in "$T/err" "reference guest hvguest is not next to hvsim" "no reference guest"
expect_status 2 "default VM without a reference guest" -- env -u HVSIM_GUEST \
	XDG_CACHE_HOME="$T/cache" "$T/bin/hvsim" --control none
expect_in "$T/err" "reference guest hvguest is not next to hvsim" "default VM, no guest"
expect_status 7 "HVSIM_GUEST" -- env HVSIM_GUEST="sh -c 'exit 7'" "$T/bin/hvsim" --control none --name lonely
expect_status 2 "bad HVSIM_GUEST" -- env HVSIM_GUEST="sh -c 'x" "$T/bin/hvsim" --control none --name lonely
expect_in "$T/err" "unterminated single quote" "bad HVSIM_GUEST"

# --- device options: errors come from the parsers, exit 2 ------------------------
expect_status 2 "disk: no size for create" -- "$HVSIM" --control none --disk "$T/x.img,create" --guest true
expect_in "$T/err" "--disk '$T/x.img,create': " "disk create error names the option"
expect_status 2 "disk: unknown option" -- "$HVSIM" --control none --disk "$T/x.img,frob" --guest true
expect_in "$T/err" "--disk" "disk unknown option"
expect_status 2 "disk: ro and create" -- "$HVSIM" --control none --disk "$T/x.img,ro,create,size=1M" --guest true
expect_status 2 "disk: bad lun" -- "$HVSIM" --control none --disk "$T/x.img,lun=64" --guest true
expect_status 2 "disk: missing image" -- "$HVSIM" --control none --disk "$T/missing.img" --guest true
expect_in "$T/err" "vm0: --disk '$T/missing.img': " "missing image reason"
[ -e "$T/missing.img" ] && fail "a missing image without create was created"
expect_status 2 "scsi: bad controller" -- "$HVSIM" --control none --scsi 8 --guest true
expect_in "$T/err" "--scsi '8'" "scsi error"
expect_status 2 "scsi: bad version" -- "$HVSIM" --control none --scsi 0,version=3.0 --guest true
expect_status 2 "scsi: twice" -- "$HVSIM" --control none --scsi 0 --scsi 0,queue_depth=8 --guest true
expect_in "$T/err" "controller given twice" "scsi twice"
expect_status 2 "net: unknown back end" -- "$HVSIM" --control none --net frob --guest true
expect_in "$T/err" "--net 'frob': " "net error"
expect_status 2 "net: bad mtu" -- "$HVSIM" --control none --net switch,mtu=100 --guest true
expect_status 2 "net: bad mac" -- "$HVSIM" --control none --net null,mac=01:00:00:00:00:01 --guest true
expect_status 2 "net: bad hostfwd" -- "$HVSIM" --control none --net user,hostfwd=tcp::x-:80 --guest true
expect_status 2 "ic: bad value" -- "$HVSIM" --control none --ic maybe --guest true
expect_in "$T/err" "--ic 'maybe': use on or off" "ic error"
expect_status 2 "ic: twice" -- "$HVSIM" --control none --ic on --ic off --guest true
expect_status 2 "ic-gen: bad" -- "$HVSIM" --control none --ic-gen ws2010 --guest true
expect_in "$T/err" "--ic-gen 'ws2010'" "ic-gen error"
expect_status 2 "shutdown-timeout: bad" -- "$HVSIM" --control none --shutdown-timeout -1 --guest true
expect_status 2 "status: bad" -- "$HVSIM" --control none --status sometimes --guest true
expect_status 0 "device options accepted" -- "$HVSIM" --control none --ic off --ic-gen ws2012 \
	--scsi 0,subchannels=0 --disk "$T/ok.img,create,size=1M" --net null --guest true
[ -f "$T/ok.img" ] || fail "--disk ...,create did not create the image"

# --- config files -------------------------------------------------------------------
cat >"$T/bad.conf" <<'CONF'
# a comment
memory = 64M
frobnicate
CONF
expect_status 2 "config: syntax error" -- "$HVSIM" --control none --config "$T/bad.conf"
expect_in "$T/err" "bad.conf:3: expected 'key = value'" "config error line"
printf 'memory = 3M\n' >"$T/bad2.conf"
expect_status 2 "config: bad value" -- "$HVSIM" --control none --config "$T/bad2.conf" --guest true
expect_in "$T/err" "multiple of 2 MiB" "config bad value"
expect_status 2 "config: missing file" -- "$HVSIM" --control none --config "$T/nope.conf"
expect_in "$T/err" "nope.conf: No such file" "config missing"
printf '[vmx]\n' >"$T/bad3.conf"
expect_status 2 "config: bad section" -- "$HVSIM" --control none --config "$T/bad3.conf"
expect_in "$T/err" "unknown section" "config bad section"
printf 'config = %s\n' "$T/loop.conf" >"$T/loop.conf"
expect_status 2 "config: nesting" -- "$HVSIM" --control none --config "$T/loop.conf"
expect_in "$T/err" "nested more than 4 deep" "config nesting"
cat >"$T/two.conf" <<CONF
; two VMs, global options anywhere
control = none
[vm alpha]
memory = 64M
guest = sh -c 'echo "\$HVSIM_VM_NAME up"'
[vm beta]
guest = sh -c 'echo "\$HVSIM_VM_NAME up"; exit 4'
CONF
expect_status 4 "config: two VMs" -- "$HVSIM" --config "$T/two.conf"
expect_in "$T/out" "[alpha] alpha up" "config vm alpha"
expect_in "$T/out" "[beta] beta up" "config vm beta"
expect_status 0 "help" -- "$HVSIM" --help
expect_in "$T/out" "--hyperv-version" "help"

# --- --version names every optional back end the build found ------------------
expect_status 0 "version" -- "$HVSIM" --version
expect_in "$T/out" "partition ABI 1" "version ABI"
for f in ${HVSIM_EXPECT_FEATURES:-}; do
	case $f in
	uring) expect_in "$T/out" " uring" "version: io_uring disks" ;;
	slirp) expect_in "$T/out" " user" "version: libslirp user networking" ;;
	pcap) expect_in "$T/out" " pcap" "version: libpcap capture" ;;
	*) fail "unknown feature '$f' in HVSIM_EXPECT_FEATURES" ;;
	esac
done

# --- exit statuses and output --------------------------------------------------
expect_status 0 "guest exits 0" -- "$HVSIM" --control none --guest true
expect_status 3 "guest status" -- "$HVSIM" --control none --guest "sh -c 'exit 3'"
expect_status 127 "missing program" -- "$HVSIM" --control none --guest /nonexistent/prog
expect_in "$T/err" "cannot start guest" "missing program"
expect_status 5 "first non-zero of two" -- "$HVSIM" --control none \
	--guest "sh -c 'sleep 0.2; exit 7'" --guest "sh -c 'exit 5'"
expect_status 0 "prefixes and quoting" -- "$HVSIM" --control none --name alpha \
	--guest "sh -c 'echo \"out  line\"; echo err line >&2; printf partial'" \
	--vm --name beta -- sh -c 'echo "$HVSIM_FD:$HVSIM_VM_NAME"'
expect_in "$T/out" "[alpha] out  line" "stdout prefix"
expect_in "$T/err" "[alpha] err line" "stderr prefix"
expect_in "$T/out" "[alpha] partial" "partial last line"
expect_in "$T/out" "[beta] 3:beta" "HVSIM_FD and name"
expect_status 124 "timeout" -- "$HVSIM" --control none --timeout 0.5 --guest "sleep 100"
expect_in "$T/err" "timeout" "timeout"

# --- the clean-room guest, several VMs, versions --------------------------------
expect_status 0 "cleanroom guest x2" -- "$HVSIM" --control none --timeout $((60 * SCALE)) \
	--echo 1 --vcpus 3 --memory 64M --guest "$GUEST --open-first --expect-min-offers 1" \
	--vm --hyperv-version WS2012 --vcpus 1 --guest "$GUEST"
expect_in "$T/out" "[vm0] guest: OK" "vm0 ok"
expect_in "$T/out" "[vm1] guest: OK" "vm1 ok"
expect_in "$T/out" "[vm0] guest: WELCOME: abi 1, 3 vcpu(s), 64 MiB RAM" "vm0 config"
expect_in "$T/out" "[vm1] guest: negotiated VMBus 2.4" "vm1 version"

# --- reboot: fresh RAM, program started again ------------------------------------
expect_status 0 "reboot" -- "$HVSIM" --control none --timeout $((30 * SCALE)) \
	--guest "python3 $SRC/tests/host/reboot_guest.py $T/boots"
expect_in "$T/out" "[vm0] boot 1" "reboot boot 1"
expect_in "$T/out" "[vm0] boot 2" "reboot boot 2"
expect_in "$T/err" "rebooting" "reboot log"

# --- control socket while running -------------------------------------------------
"$HVSIM" --control "$CTL" --timeout $((30 * SCALE)) --name busy --echo 2 \
	--guest "sh -c 'sleep 20'" >"$T/hv.out" 2>"$T/hv.err" &
HV=$!
i=0; while [ ! -S "$CTL" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
expect_status 0 "ctl list" -- "$HVSIM" ctl --control "$CTL" list
expect_in "$T/out" '"name":"busy","state":"starting"' "ctl list state"
expect_in "$T/out" '"channels":2' "ctl list channels"
expect_status 0 "ctl channels" -- "$HVSIM" ctl --control "$CTL" channels busy
expect_in "$T/out" '"relid":1' "ctl channels relid"
expect_status 1 "ctl channels unknown" -- "$HVSIM" ctl --control "$CTL" channels nope
expect_in "$T/out" '"ok":false' "ctl unknown VM"
expect_status 0 "ctl fault on" -- "$HVSIM" ctl --control "$CTL" fault drop_message on type=3 times=2 vm=busy
expect_in "$T/out" '"params":{"type":3,"times":2}' "ctl fault params"
expect_status 1 "ctl fault unknown" -- "$HVSIM" ctl --control "$CTL" fault no_such on
expect_status 0 "ctl faults" -- "$HVSIM" ctl --control "$CTL" --pretty faults
expect_in "$T/out" '"name": "drop_message"' "ctl faults pretty"
expect_status 2 "ctl usage" -- "$HVSIM" ctl --control "$CTL" fault x maybe
expect_status 1 "ctl raw malformed" -- "$HVSIM" ctl --control "$CTL" raw '{"cmd":'
expect_in "$T/out" 'malformed JSON' "ctl raw"
expect_status 2 "second host on same control" -- "$HVSIM" --control "$CTL" --guest true
expect_status 0 "ctl stop" -- "$HVSIM" ctl --control "$CTL" stop busy
wait $HV
st=$?
[ "$st" = 143 ] || fail "stopped VM: hvsim exit $st, want 143 (guest SIGTERMed)"
[ -e "$CTL" ] && fail "control socket not removed"
expect_status 2 "ctl no host" -- "$HVSIM" ctl --control "$CTL" list

# --- HVSIM_SOCKET guests ----------------------------------------------------------------
LS=$T/listen.sock
"$HVSIM" --control none --listen "$LS" --timeout $((30 * SCALE)) --echo 1 --name sock0 \
	--vm --name sock1 >"$T/ls.out" 2>"$T/ls.err" &
HV=$!
i=0; while [ ! -S "$LS" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
HVSIM_SOCKET=$LS python3 "$SRC/tests/abi/cleanroom_guest.py" --timeout 10 \
	--vm-name nosuch >"$T/g.out" 2>&1 && fail "unknown VM name accepted"
HVSIM_SOCKET=$LS python3 "$SRC/tests/abi/cleanroom_guest.py" --timeout 10 \
	--vm-name sock0 --expect-min-offers 1 >"$T/g0.out" 2>&1 || fail "socket guest sock0"
HVSIM_SOCKET=$LS HVSIM_VM_NAME=sock1 python3 "$SRC/tests/abi/cleanroom_guest.py" \
	--timeout 10 >"$T/g1.out" 2>&1 || fail "socket guest sock1"
wait $HV
st=$?
[ "$st" = 0 ] || { fail "listen host exit $st"; tail "$T/ls.err" "$T/g0.out"; }
[ -e "$LS" ] && fail "listen socket not removed"

if [ $fails -ne 0 ]; then
	echo "$fails check(s) failed"
	exit 1
fi
echo "all hvsim CLI checks passed"
