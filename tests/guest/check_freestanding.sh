#!/bin/sh
# check_freestanding.sh SRCDIR - the guest core and the common ring code must
# stay freestanding (DESIGN rule 1):
#  1. every #include in src/guest/** and src/common/** is a compiler header
#     from the allow-list, a project header "hv/..." / "vmbus/...", or a
#     local private header ("name.h" next to the file or in src/common);
#  2. every .c there compiles with clang -std=c11 -ffreestanding for
#     aarch64 and s390x (big-endian), against the compiler's own headers
#     only (-nostdinc), so no libc header can sneak in.
set -u
src=${1:?usage: check_freestanding.sh SRCDIR}
fail=0
allow='stdint.h stddef.h stdbool.h stdalign.h stdatomic.h stdarg.h limits.h'

tmpfail=$(mktemp)
trap 'rm -f "$tmpfail"' EXIT

files=$(find "$src/src/guest" "$src/src/common" -name '*.[ch]' | sort)
[ -n "$files" ] || { echo "no sources found under $src"; exit 1; }

for f in $files; do
	dir=$(dirname "$f")
	grep -n '^[[:space:]]*#[[:space:]]*include' "$f" | while IFS= read -r line; do
		num=${line%%:*}
		inc=$(printf '%s\n' "$line" | sed -n 's/.*#[[:space:]]*include[[:space:]]*\([<"][^>"]*[>"]\).*/\1/p')
		name=$(printf '%s' "$inc" | sed 's/^[<"]//; s/[>"]$//')
		case "$inc" in
		\<*\>)
			ok=0
			for a in $allow; do [ "$name" = "$a" ] && ok=1; done
			[ $ok = 1 ] || { echo "$f:$num: not freestanding: $inc"; echo x >> "$tmpfail"; }
			;;
		\"hv/*\"|\"vmbus/*\")
			[ -f "$src/include/$name" ] || { echo "$f:$num: no such project header: $inc"; echo x >> "$tmpfail"; }
			;;
		\"*\")
			if [ ! -f "$dir/$name" ] && [ ! -f "$src/src/common/$name" ] && [ ! -f "$src/src/guest/$name" ]; then
				echo "$f:$num: not a local private header: $inc"; echo x >> "$tmpfail"
			fi
			;;
		*)
			echo "$f:$num: unparsed include: $line"; echo x >> "$tmpfail"
			;;
		esac
	done
done
[ -s "$tmpfail" ] && fail=1

# 2. compile for foreign targets with the compiler's headers only
cc=${CLANG:-clang}
if ! command -v "$cc" >/dev/null 2>&1; then
	echo "clang not found: cannot run the cross-target check"
	exit 1
fi
res=$("$cc" -print-resource-dir)
for t in aarch64-linux-gnu s390x-linux-gnu; do
	for f in $files; do
		case "$f" in *.c) ;; *) continue ;; esac
		if ! "$cc" -std=c11 -ffreestanding -fsyntax-only --target=$t \
		    -nostdinc -isystem "$res/include" \
		    -Wall -Wextra -Werror \
		    -I"$src/include" -I"$src/src" -I"$src/src/common" \
		    -I"$(dirname "$f")" -I"$src/src/guest" "$f"; then
			echo "$f: does not compile freestanding for $t"
			fail=1
		fi
	done
done
[ $fail = 0 ] && echo "freestanding check: OK ($(echo "$files" | wc -l) files)"
exit $fail
