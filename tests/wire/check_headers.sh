#!/bin/sh
# check_headers.sh INCLUDE_DIR [CC]
#
# Compiles every header in INCLUDE_DIR/hv/ on its own (a translation unit
# that includes only that header, twice, to check its include guard) with
# the freestanding flags of the project, for the host compiler and, with
# clang, for aarch64 and s390x (big-endian). The core wire headers (those a
# 32-bit guest needs) are also checked for i686, where u64 is 4-aligned.
# All but the first run use -nostdinc plus the compiler's own include dir
# (for clang its resource dir), which provides only the freestanding
# headers (stdint.h, stddef.h, ...): a header that needs libc fails.
# Exit 0 = all good, 1 = a header failed, 77 = nothing could be checked.
set -u

inc=${1:?usage: check_headers.sh INCLUDE_DIR [CC]}
cc=${2:-cc}
flags="-std=c11 -ffreestanding -fsyntax-only -Wall -Wextra -Werror -Wconversion -Wsign-compare -pedantic"
tu=$(mktemp "${TMPDIR:-/tmp}/check_headers.XXXXXX")
trap 'rm -f "$tu"' EXIT

fail=0
checked=0

check() {	# check LABEL COMPILER-AND-FLAGS...
	label=$1
	shift
	for h in $headers; do
		name=hv/$(basename "$h")
		printf '#include "%s"\n#include "%s"\n' "$name" "$name" >"$tu"
		if "$@" $flags -I"$inc" -x c "$tu" 2>"$tu.err"; then
			checked=$((checked + 1))
		else
			echo "FAIL [$label] $name"
			sed 's/^/    /' "$tu.err" | head -20
			fail=1
		fi
		rm -f "$tu.err"
	done
}

headers=$(ls "$inc"/hv/*.h)
check host "$cc"
# Without the C library's headers: only compiler-provided ones (DESIGN:
# include/hv/ is freestanding, no libc).
if command -v gcc >/dev/null 2>&1; then
	check gcc-nostdinc gcc -nostdinc -isystem "$(gcc -print-file-name=include)"
fi

if command -v clang >/dev/null 2>&1; then
	res=$(clang -print-resource-dir)/include
	check clang-nostdinc clang -nostdinc -isystem "$res"
	for t in aarch64-linux-gnu s390x-linux-gnu; do
		check "$t" clang --target=$t -nostdinc -isystem "$res"
	done
	headers=
	for h in wire tlfs vmbus_msg vmbus_pkt guid; do
		headers="$headers $inc/hv/$h.h"
	done
	check i686-linux-gnu clang --target=i686-linux-gnu -nostdinc -isystem "$res"
else
	echo "NOTE: clang not found, cross-target checks skipped"
fi

echo "checked $checked header compilations"
[ "$fail" -ne 0 ] && exit 1
[ "$checked" -eq 0 ] && exit 77
exit 0
