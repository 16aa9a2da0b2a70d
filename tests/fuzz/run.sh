#!/usr/bin/env bash
# tests/fuzz/run.sh - build the libFuzzer harnesses with clang and run each
# for a bounded time; fails if any of them finds a crash, a sanitizer
# report, a leak, a hang or an oracle failure (docs/fuzzing.md).
#
#   tests/fuzz/run.sh [options] [harness...]     (default: every harness)
#     --seconds N      run each harness N seconds (default 30; 0: build,
#                      --seeds and --merge only)
#     --jobs J         run J harnesses at once (default 1)
#     --build-dir D    clang build directory (default build/fuzz-clang)
#     --no-build       use the harnesses already built in D
#     --merge          afterwards, merge what the runs found (D/fuzz-work)
#                      into the corpus: the seed-* and regress-* files
#                      (fixed bugs' reproducers) stay, other files
#                      are replaced by a smallest set of inputs that adds
#                      the same edges (-set_cover_merge=1 -use_counters=0,
#                      a few dozen files per harness)
#     --runs N         stop each harness after N executions (libFuzzer
#                      -runs; --seconds then defaults to a day, a cap)
#     --seeds          regenerate the seed-* files first (fuzz_gen_seeds)
#     --list           print the harness names and exit
#     --tally          print each harness's executions summed over every
#                      run recorded in D/fuzz-work/tally.tsv, and exit
#     --total N        run each harness in runs of --chunk executions
#                      until its successful runs in the tally add up to N
#                      (a harness stops at its first failure); a run cut
#                      short (a reboot, the end of a session) costs at
#                      most one chunk, and the next call goes on from the
#                      tally, on the corpus grown so far
#     --chunk M        executions per run with --total (default 1000000)
#     --since T        with --total and --tally: count only runs recorded
#                      at or after T (UTC, as in the tally, e.g.
#                      2026-11-27T10:46:11Z: after a fix in the code a
#                      harness covers, earlier runs no longer count)
#     --past-failure   with --total: go on with a harness whose last run
#                      (since T) failed; without it such a harness stops
#                      at once (a failure found in an earlier call is not
#                      passed over). For a failure whose fix leaves the
#                      code under test as it was (a harness false
#                      positive, recorded with its reproducer)
#
# New inputs go to D/fuzz-work/<harness>, crashes to
# D/fuzz-artifacts/<harness>/; the checked-in corpus is only read (unless
# --merge). Every run appends a line to D/fuzz-work/tally.tsv (date,
# commit, harness, executions, seconds, ok/FAIL). Longer local run:
# tests/fuzz/run.sh --total 10000000 --jobs 2
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
corpus=$here/corpus

seconds= runs=0 jobs=1 build= nobuild=0 merge=0 seeds=0 list=0 tally=0
total=0 chunk=1000000 since= pastfail=0
harnesses=()
while [ $# -gt 0 ]; do
	case "$1" in
	--seconds) seconds=$2; shift ;;
	--jobs) jobs=$2; shift ;;
	--build-dir) build=$2; shift ;;
	--no-build) nobuild=1 ;;
	--merge) merge=1 ;;
	--runs) runs=$2; shift ;;
	--seeds) seeds=1 ;;
	--list) list=1 ;;
	--tally) tally=1 ;;
	--total) total=$2; shift ;;
	--chunk) chunk=$2; shift ;;
	--since) since=$2; shift ;;
	--past-failure) pastfail=1 ;;
	-h|--help) sed -n '2,46p' "$0"; exit 0 ;;
	-*) echo "run.sh: unknown option $1" >&2; exit 2 ;;
	*) harnesses+=("$1") ;;
	esac
	shift
done
[ -n "$build" ] || build=$root/build/fuzz-clang
case "$build" in /*) ;; *) build=$PWD/$build ;; esac
case "$total$chunk" in
*[!0-9]*) echo "run.sh: --total and --chunk take a count" >&2; exit 2 ;;
esac
[ "$chunk" -gt 0 ] || { echo "run.sh: --chunk must be > 0" >&2; exit 2; }
if [ -z "$seconds" ]; then
	seconds=30
	[ "$runs" != 0 ] || [ "$total" != 0 ] && seconds=86400
fi
tallyf=$build/fuzz-work/tally.tsv
if [ "$tally" = 1 ]; then
	[ -f "$tallyf" ] || { echo "run.sh: no runs recorded in $tallyf"; exit 1; }
	awk -F'\t' -v s="$since" '$1 >= s && $6 == "ok" {
			n[$3] += $4; t[$3] += $5; k[$3]++ }
		$1 >= s && $6 != "ok" { n[$3] += 0; f[$3]++; last[$3] = $1 }
		END { for (h in n) {
			printf "%-14s %12d executions in %6d s, %d runs", h, n[h], t[h], k[h]
			if (f[h]) printf ", %d FAILED (last %s: not counted)", f[h], last[h]
			printf "\n" } }' "$tallyf" | sort
	exit 0
fi
# Executions of harness $1's successful runs in the tally (since --since).
tally_of() {
	[ -f "$tallyf" ] || { echo 0; return; }
	awk -F'\t' -v h="$1" -v s="$since" \
		'$3 == h && $6 == "ok" && $1 >= s { n += $4 } END { print n + 0 }' \
		"$tallyf"
}

if [ ${#harnesses[@]} -eq 0 ]; then
	for d in "$corpus"/*/; do
		harnesses+=("$(basename "$d")")
	done
fi
if [ "$list" = 1 ]; then
	printf '%s\n' "${harnesses[@]}"
	exit 0
fi

if [ "$nobuild" = 0 ]; then
	gen=()
	command -v ninja >/dev/null && gen=(-G Ninja)
	CC=clang cmake -S "$root" -B "$build" "${gen[@]}" >/dev/null || exit 1
	targets=(fuzz_gen_seeds)
	for h in "${harnesses[@]}"; do targets+=("fuzz_$h"); done
	cmake --build "$build" -j "$(nproc)" --target "${targets[@]}" || exit 1
fi
bindir=$build/tests/fuzz
# Harnesses steer clear of bugs already saved under crashes/ (docs).
export FUZZ_SKIP_KNOWN=1

if [ "$seeds" = 1 ]; then
	"$bindir/fuzz_gen_seeds" "$corpus" || exit 1
fi
[ "$seconds" = 0 ] && [ "$merge" = 0 ] && exit 0

run_one() {
	local h=$1 exe=$bindir/fuzz_$1 work=$build/fuzz-work/$1
	local nruns=${2:-$runs}
	local art=$build/fuzz-artifacts/$1 log=$build/fuzz-work/$1.log
	local dict=() rc
	local help=
	[ -x "$exe" ] && help=$("$exe" -help=1 2>&1)
	case "$help" in
	*max_total_time*) ;;
	*)	echo "run.sh: $exe is not a libFuzzer build (clang?)"
		return 1 ;;
	esac
	mkdir -p "$work" "$art"
	[ -f "$here/$h.dict" ] && dict=(-dict="$here/$h.dict")
	local limit=() t0=$SECONDS rev
	[ "$nruns" != 0 ] && limit=(-runs="$nruns")
	"$exe" -max_total_time="$seconds" "${limit[@]}" -timeout=20 \
		-rss_limit_mb=4096 -print_final_stats=1 -artifact_prefix="$art/" \
		"${dict[@]}" "$work" "$corpus/$h" >"$log" 2>&1
	rc=$?
	local n took=$((SECONDS - t0))
	n=$(grep -aE '^stat::number_of_executed_units' "$log" | awk '{print $2}')
	rev=$(git -C "$root" describe --always --dirty 2>/dev/null || echo -)
	printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$(date -u +%FT%TZ)" "$rev" "$h" \
		"${n:-0}" "$took" "$([ $rc = 0 ] && echo ok || echo FAIL)" \
		>>"$tallyf"
	if [ $rc -ne 0 ]; then
		echo "FAIL $h (exit $rc, ${n:-?} runs): see $log"
		grep -aE 'ERROR|ORACLE|SUMMARY|Test unit written' "$log" | head -5
		return 1
	fi
	echo "ok   $h: ${n:-?} runs in ${took}s"
	return 0
}

# The result ("ok" or "FAIL") of harness $1's latest run since --since.
last_result() {
	[ -f "$tallyf" ] || return 0
	awk -F'\t' -v h="$1" -v s="$since" \
		'$3 == h && $1 >= s { r = $6 " at " $1 } END { print r }' "$tallyf"
}

# --total: chunks until the tally reaches the total (or a run fails).
run_total() {
	local h=$1 have left last
	last=$(last_result "$h")
	if [ "$pastfail" = 0 ] && [ "${last%% *}" = FAIL ]; then
		echo "FAIL $h: its last run failed ($last; artifacts in" \
			"$build/fuzz-artifacts/$h). Fix it, then go on with" \
			"--since after the fix, or --past-failure if the fix left" \
			"the code under test as it was"
		return 1
	fi
	while :; do
		have=$(tally_of "$h")
		if [ "$have" -ge "$total" ]; then
			echo "done $h: $have executions${since:+ since $since}"
			return 0
		fi
		left=$((total - have))
		run_one "$h" $((left < chunk ? left : chunk)) || return 1
	done
}

failed=0
pids=()
names=()
for h in "${harnesses[@]}"; do
	[ "$seconds" = 0 ] && break
	if [ "$total" != 0 ]; then
		run_total "$h" &
	else
		run_one "$h" &
	fi
	pids+=($!)
	names+=("$h")
	while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do
		wait -n || true
	done
done
for i in "${!pids[@]}"; do
	wait "${pids[$i]}" || failed=1
done

if [ "$merge" = 1 ] && [ "$failed" = 0 ]; then
	for h in "${harnesses[@]}"; do
		tmp=$(mktemp -d)
		old=$(mktemp -d)
		cp "$corpus/$h"/seed-* "$corpus/$h"/regress-* "$tmp"/ \
			2>/dev/null
		find "$corpus/$h" -maxdepth 1 -type f ! -name 'seed-*' \
			! -name 'regress-*' -exec cp {} "$old"/ \;
		mkdir -p "$build/fuzz-work/$h"
		if "$bindir/fuzz_$h" -set_cover_merge=1 -use_counters=0 \
			"$tmp" "$old" "$build/fuzz-work/$h" >"$tmp.log" 2>&1; then
			find "$corpus/$h" -maxdepth 1 -type f ! -name 'seed-*' \
				! -name 'regress-*' -delete
			# CI replays the corpus without FUZZ_SKIP_KNOWN: an
			# input on a known bug's path stays out (crashes/ has
			# that bug's reproducer).
			known=0
			for f in "$tmp"/*; do
				case "$(basename "$f")" in
				seed-*|regress-*) continue ;;
				esac
				if env -u FUZZ_SKIP_KNOWN "$bindir/fuzz_$h" \
					-runs=1 "$f" >/dev/null 2>&1; then
					cp "$f" "$corpus/$h"/
				else
					known=$((known + 1))
				fi
			done
			echo "merged $h: $(ls "$corpus/$h" | wc -l) files," \
				"$(cat "$corpus/$h"/* | wc -c) bytes" \
				"($known left out: known bugs)"
		else
			echo "FAIL merge $h (corpus unchanged): $(tail -1 "$tmp.log")"
			failed=1
		fi
		rm -f "$tmp.log"
		rm -rf "$tmp" "$old"
	done
fi
exit $failed
