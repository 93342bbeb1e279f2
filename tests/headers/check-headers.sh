#!/bin/sh
# Every public header must stand on its own: compiled alone, as C11 and as
# C++11, with warnings as errors.  The headers are listed at run time, so a
# module that adds include/mproc/NAME.h is covered without editing this
# file; the umbrella mproc.h must include each of them.
#
# usage: check-headers.sh INCLUDE_DIR CC [CXX]   (CC, CXX: commands,
# possibly with arguments, as meson's compiler.cmd_array() gives them)
# Exit status: 0 all good, 1 a header failed, 77 (skip) no C compiler.
set -eu

incdir=$1
cc=$2
cxx=${3:-}

# CC may be a command with arguments ("ccache cc"): split it on spaces.
# shellcheck disable=SC2086
set -- $cc
command -v "$1" >/dev/null 2>&1 || { echo "no C compiler '$cc'"; exit 77; }
if [ -z "$cxx" ] || ! command -v "${cxx%% *}" >/dev/null 2>&1; then
	echo "note: no C++ compiler; checking C only"
	cxx=
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

headers=$(cd "$incdir" && ls mproc.h mproc/*.h)
failed=0
checked=0

compile() { # LANG COMPILER STD HEADER
	src="$tmp/one.$1"
	printf '#include <%s>\n' "$4" >"$src"
	# A second include must be harmless (include guards).
	printf '#include <%s>\nint mproc_header_check_%s;\n' "$4" "$1" >>"$src"
	if ! $2 -std="$3" -Wall -Wextra -Werror -pedantic -fsyntax-only \
		-I"$incdir" "$src" 2>"$tmp/err"; then
		echo "FAIL: $4 as $1 ($3):"
		sed 's/^/    /' "$tmp/err"
		failed=$((failed + 1))
	fi
	checked=$((checked + 1))
}

for h in $headers; do
	compile c "$cc" c11 "$h"
	[ -n "$cxx" ] && compile cpp "$cxx" c++11 "$h"
done

# The umbrella header brings in every module header.
for h in $headers; do
	[ "$h" = mproc.h ] && continue
	if ! grep -q "^#include \"$h\"" "$incdir/mproc.h" &&
	   ! grep -q "^#include <$h>" "$incdir/mproc.h"; then
		echo "FAIL: mproc.h does not include $h"
		failed=$((failed + 1))
	fi
done

echo "$checked header compilations, $failed failures"
[ "$failed" -eq 0 ]
