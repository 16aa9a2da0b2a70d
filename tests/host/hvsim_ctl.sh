#!/bin/sh
# tests/host/hvsim_ctl.sh - hvsim's control commands against a running
# guest that has its echo channels open: stats (server and partition
# counters, GPADL windows), rescind (the guest releases the relid, the
# ring window goes), and their error answers.
#
# usage: hvsim_ctl.sh HVSIM HVGUEST
set -u
HVSIM=$1
HVGUEST=$2
SCALE=${VMBUS_TEST_TIME_SCALE:-1}
T=$(mktemp -d /tmp/hvsim-ctl.XXXXXX)
CTL=$T/ctl.sock
HV=
cleanup() {
	[ -n "$HV" ] && kill "$HV" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

ctl() { "$HVSIM" ctl --control "$CTL" "$@"; }

# jget FILE EXPR: evaluate a Python expression on the JSON answer j.
jget() {
	python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"
}

# expect WANT_STATUS DESCRIPTION -- CMD...: run, keep the answer in $T/out.
expect() {
	want=$1; what=$2; shift 3
	"$@" >"$T/out" 2>"$T/err"
	got=$?
	if [ "$got" != "$want" ]; then
		fail "$what: exit $got, want $want"
		sed 's/^/  | /' "$T/out" "$T/err" | tail -5
	fi
}
expect_eq() { # EXPR WANT DESCRIPTION (on $T/out)
	got=$(jget "$T/out" "$1" 2>&1)
	[ "$got" = "$2" ] || fail "$3: $1 = '$got', want '$2'"
}

# until_stats EXPR WANT: poll `ctl stats vm0` until EXPR == WANT (scaled
# deadline); the last answer stays in $T/out.
until_stats() {
	i=0
	while [ $i -lt $((100 * SCALE)) ]; do
		ctl stats vm0 >"$T/out" 2>/dev/null &&
			[ "$(jget "$T/out" "$1" 2>/dev/null)" = "$2" ] && return 0
		sleep 0.1
		i=$((i + 1))
	done
	fail "timed out waiting for $1 == $2"
	sed 's/^/  | /' "$T/out" | tail -3
	return 1
}

"$HVSIM" --control "$CTL" --listen "$T/listen.sock" --timeout $((60 * SCALE)) \
	--echo 2 --vcpus 2 --memory 64M \
	--guest "$HVGUEST --open-all-echo --stay $((40 * SCALE))" \
	--vm --name idle >"$T/hv.out" 2>"$T/hv.err" &
HV=$!
i=0; while [ ! -S "$CTL" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done

# --- stats: both echo channels open, one ring window each ---------------------
until_stats "j['vmbus']['gpadl_windows']" 2
expect 0 "stats" -- ctl stats vm0
expect_eq "j['vm']" vm0 "stats vm"
expect_eq "j['state']" running "stats state"
expect_eq "j['vmbus']['connected']" True "stats connected"
expect_eq "j['vmbus']['version']" 5.3 "stats version"
expect_eq "j['vmbus']['gpadls']" 2 "stats gpadls"
expect_eq "j['partition']['state']" running "stats partition state"
expect_eq "j['partition']['windows']" 2 "stats partition windows"
expect_eq "j['partition']['ram_bytes']" 67108864 "stats partition RAM"
expect_eq "j['partition']['posts'] > 0" True "stats partition posts"
expect_eq "j['vmbus']['msgs_in'] == j['partition']['posts']" True "posts reach the server"
expect 0 "stats pretty" -- ctl --pretty stats vm0
grep -q '"gpadl_windows": 2' "$T/out" || fail "stats --pretty"
# a VM without a guest yet: no partition
expect 0 "stats idle" -- ctl stats idle
expect_eq "j['state']" waiting "idle state"
expect_eq "j['partition']" None "idle partition"
expect_eq "j['vmbus']['connected']" False "idle not connected"

# --- rescind ---------------------------------------------------------------------
expect 0 "rescind 1" -- ctl rescind vm0 1
expect_eq "j['relid']" 1 "rescind answer"
grep -q "control: channel relid 1 rescinded" "$T/hv.err" || fail "rescind log line"
# the guest closes, releases the relid: channel and ring window gone
until_stats "j['vmbus']['gpadl_windows']" 1
expect_eq "j['partition']['windows']" 1 "window unmapped after rescind"
expect 0 "channels" -- ctl channels vm0
expect_eq "[c['relid'] for c in j['channels']]" "[2]" "relid 1 gone"
expect 1 "rescind 1 again" -- ctl rescind vm0 1
expect_eq "j['error']" "no such channel" "rescind gone channel"
expect 0 "rescind 2" -- ctl rescind vm0 2
ctl rescind vm0 2 >"$T/out" 2>&1 && fail "second rescind of 2 accepted"
grep -qE 'already rescinded|no such channel' "$T/out" || fail "second rescind of 2: $(cat "$T/out")"
until_stats "j['partition']['windows']" 0
expect 1 "rescind 999" -- ctl rescind vm0 999
expect_eq "j['error']" "no such channel" "rescind 999"
expect 1 "rescind unknown VM" -- ctl rescind nosuch 1
expect_eq "j['error']" "no such VM" "rescind unknown VM"
expect 2 "rescind relid 0" -- ctl rescind vm0 0
expect 2 "rescind relid x" -- ctl rescind vm0 x
expect 2 "rescind no relid" -- ctl rescind vm0
expect 1 "raw rescind string relid" -- ctl raw '{"cmd":"rescind","vm":"vm0","relid":"1"}'
expect_eq "'relid' in j['error']" True "raw rescind string relid"
expect 1 "raw rescind no relid" -- ctl raw '{"cmd":"rescind","vm":"vm0"}'
expect 1 "raw rescind no vm" -- ctl raw '{"cmd":"rescind","relid":1}'
expect 1 "stats unknown VM" -- ctl stats nosuch
expect 2 "stats without VM" -- ctl stats
expect 0 "help lists the commands" -- ctl --help
grep -q "rescind VM RELID" "$T/out" && grep -q "stats VM" "$T/out" || fail "ctl --help"

# --- the end ------------------------------------------------------------------------
expect 0 "shutdown" -- ctl shutdown
wait "$HV"
st=$?
HV=
# the guest either sees its partition end and exits 0, or gets SIGTERM first
[ "$st" = 143 ] || [ "$st" = 0 ] ||
	{ fail "hvsim exit $st, want 0 or 143 (guest SIGTERMed)"; tail "$T/hv.err"; }

if [ $fails -ne 0 ]; then
	echo "$fails check(s) failed"
	exit 1
fi
echo "all hvsim control checks passed"
