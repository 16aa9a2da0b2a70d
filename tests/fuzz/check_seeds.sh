#!/bin/sh
# tests/fuzz/check_seeds.sh GEN CORPUS - the seed-* files GEN writes are
# the ones checked in under CORPUS, byte for byte (a seed generator changed
# without regenerating, or one that misbehaves under the sanitizers of the
# build it runs in, fails here).
set -eu
gen=$1 corpus=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$gen" "$tmp" >/dev/null
n=0 bad=0
for f in "$tmp"/*/*; do
	rel=${f#"$tmp"/}
	n=$((n + 1))
	if ! cmp -s "$f" "$corpus/$rel"; then
		echo "check_seeds: $rel differs from the generator's (run tests/fuzz/run.sh --seeds --seconds 0)"
		bad=1
	fi
done
[ "$n" -gt 0 ] || { echo "check_seeds: the generator wrote nothing"; exit 1; }
[ "$bad" = 0 ] && echo "check_seeds: $n seeds current"
exit "$bad"
