#!/bin/sh
# Write libmproc0's symbols file (deb-symbols(5)) to stdout: every public
# function (MPROC_API in the headers under HEADER_DIR) in the version node
# that the version script MAP gives the mproc_* names, plus the node itself.
# Every symbol gets VERSION, the first upstream version with a symbols
# file; a call added later must get the version it first appears in.
#
# usage: gen-symbols.sh HEADER_DIR MAP VERSION
set -eu
hdrs=$1 map=$2 version=$3
node=$(sed -n 's/^\([A-Z][A-Z0-9_]*\) *{.*/\1/p' "$map" | head -n 1)
[ -n "$node" ] || { echo "gen-symbols: no version node in $map" >&2; exit 1; }
grep -q 'mproc_\*;' "$map" || { echo "gen-symbols: $map does not export mproc_*" >&2; exit 1; }
echo "libmproc.so.0 libmproc0 #MINVER#"
echo " $node@$node $version"
# Declarations may span lines: join each from MPROC_API to its '('.
cat "$hdrs"/*.h | awk '
	/^MPROC_API/ { decl = ""; on = 1 }
	on { decl = decl " " $0; if (index($0, "(")) { on = 0; print decl } }' |
	sed 's/__attribute__((\([^()]*\)))//g; s/(.*//; s/.*[ *]//' |
	grep '^mproc_' | sort -u | sed "s/.*/ &@$node $version/"
