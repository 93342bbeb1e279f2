#!/bin/sh
# man-pages test: every public function has a page, every page passes
# `mandoc -Tlint` at warning level and renders, and the examples the
# section-3 pages show compile against the headers.
#
# usage: check-man.sh GENMAN HEADER_DIR MAN3_DIR EXAMPLES_DIR PAGE... -- CC...
# Exit 77 (skipped) when mandoc is not installed.
set -eu
genman=$1 hdrdir=$2 man3=$3 examples=$4
shift 4
pages=
while [ "$1" != -- ]; do pages="$pages $1"; shift; done
shift
fail() { echo "FAIL: $*"; exit 1; }

# Every MPROC_API declaration sits under a comment, so it has a page ...
python3 "$genman" --check "$hdrdir"/*.h || fail "a public function has no comment, so no page"
# ... and that page was built.
for p in $(python3 "$genman" --list "$hdrdir"/*.h); do
	[ -f "$man3/$p" ] || fail "$p was not generated (reconfigure the build)"
done

command -v mandoc >/dev/null 2>&1 || { echo "mandoc not installed: lint skipped"; exit 77; }
n=0
for f in "$man3"/*.3 $pages; do
	if head -n 1 "$f" | grep -q '^\.so '; then
		target=$(head -n 1 "$f" | sed 's|^\.so man3/||')
		[ -f "$man3/$target" ] || fail "$f links to a missing page $target"
		continue
	fi
	mandoc -Tlint -W warning "$f" || fail "mandoc -Tlint: $f"
	mandoc -Tutf8 "$f" >/dev/null || fail "mandoc cannot render $f"
	n=$((n + 1))
done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for c in "$examples"/*.c; do
	"$@" -std=gnu11 -Wall -Wextra -Werror -I"$hdrdir/.." -c "$c" -o "$tmp/x.o" ||
		fail "the example $c does not compile"
done
echo "$n pages pass mandoc -Tlint; every public function has one; examples compile"
