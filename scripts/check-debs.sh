#!/bin/sh
# Build the Debian packages from a clean copy of this tree, check them with
# lintian, install them on this machine (dpkg -i, as root), and use them
# the way a user would: compile and run a program with pkg-config and with
# CMake's find_package, run mproc-stat, find the manual pages.  Removes the
# packages again at the end (--keep leaves them installed).  What CI's
# packaging step runs; needs root and dpkg-dev, debhelper, lintian, cmake
# (scripts/bootstrap.sh installs them).
#
# usage: scripts/check-debs.sh [--keep]
set -eu

cd "$(dirname "$0")/.."
src=$(pwd)
keep=no
[ "${1:-}" = --keep ] && keep=yes
say() { echo "check-debs: $*"; }
fail() { echo "check-debs: FAIL: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || fail "run as root (dpkg -i)"
for t in dpkg-buildpackage dh lintian cmake pkg-config; do
	command -v "$t" >/dev/null 2>&1 || fail "$t missing; run scripts/bootstrap.sh"
done

work=$(mktemp -d)
pkgs="mproc-tools libmproc-dev libmproc0"
cleanup() {
	rm -rf "$work"
	if [ "$keep" = no ]; then
		dpkg --purge $pkgs >/dev/null 2>&1 || true
	fi
}
trap cleanup EXIT

# A clean copy: the files git knows or would add (no build directories),
# so that dpkg-buildpackage's output lands in $work, not next to the tree.
version=$(sed -n '1s/^mproc (\([^)]*\)).*/\1/p' debian/changelog)
tree="$work/mproc-$version"
mkdir -p "$tree"
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	git ls-files -z --cached --others --exclude-standard |
		xargs -0 -I{} cp --parents -P {} "$tree" 2>/dev/null || true
	# Removed files that are still in the index are fine to miss.
else
	tar -C "$src" --exclude='./build*' --exclude=./.git -cf - . | tar -C "$tree" -xf -
fi

say "building mproc $version in $tree"
(cd "$tree" && dpkg-buildpackage -us -uc -b) >"$work/build.log" 2>&1 ||
	{ tail -n 60 "$work/build.log"; fail "dpkg-buildpackage"; }
ls "$work"/*.deb
changes=$(ls "$work"/*.changes)

say "lintian"
lintian --fail-on error --tag-display-limit 0 "$changes" >"$work/lintian.log" 2>&1 ||
	{ cat "$work/lintian.log"; fail "lintian reports errors"; }
cat "$work/lintian.log"

say "installing"
dpkg -i "$work"/libmproc0_*.deb "$work"/libmproc-dev_*.deb \
	"$work"/mproc-tools_*.deb >"$work/install.log" 2>&1 ||
	{ cat "$work/install.log"; fail "dpkg -i"; }

say "using the installed packages"
hello="$src/tests/install/hello.c"
# shellcheck disable=SC2046  # pkg-config's flags are words
cc -o "$work/hello" "$hello" $(pkg-config --cflags --libs mproc) ||
	fail "compiling with pkg-config mproc"
out=$("$work/hello") || fail "hello (pkg-config) exited non-zero"
[ "$out" = "mproc $version" ] || fail "hello printed '$out'"
env -u LD_LIBRARY_PATH ldd "$work/hello" | grep -q 'libmproc.so.0 => /\(usr/\)\?lib/' ||
	fail "hello did not load the packaged library"

cmake -S "$src/tests/install/cmake" -B "$work/cmake" -DHELLO_C="$hello" \
	>"$work/cmake.log" 2>&1 && cmake --build "$work/cmake" >>"$work/cmake.log" 2>&1 ||
	{ cat "$work/cmake.log"; fail "the CMake project against the packages"; }
[ "$("$work/cmake/hello_cmake")" = "mproc $version" ] || fail "hello_cmake"
[ "$("$work/cmake/hello_cmake_static")" = "mproc $version" ] || fail "hello_cmake_static"

[ "$(mproc-stat --version)" = "mproc-stat $version" ] || fail "mproc-stat --version"
mproc-stat --json >/dev/null || fail "mproc-stat --json"
mproc-bench --list >/dev/null || fail "mproc-bench --list"
for m in mproc-stat.1 mproc-bench.1 mproc.7 mproc_queue_put.3 mproc_queue_put_nowait.3; do
	f=$(dpkg -L mproc-tools libmproc-dev | grep "/$m\(\.gz\)\?\$" | head -n 1)
	[ -n "$f" ] || fail "no manual page $m in the packages"
	man -l "$f" >/dev/null 2>&1 || fail "man -l $f"
done
say "the packages build, pass lintian, install, and work"
