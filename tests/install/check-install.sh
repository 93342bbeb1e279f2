#!/bin/sh
# Install the build into a scratch DESTDIR and use it the way a user
# would: compile and link a program with `pkg-config mproc`, and with
# CMake's find_package(mproc) (when cmake is installed), run them, and
# check what the installed shared library exports.
#
# usage: check-install.sh BUILD_DIR SOURCE_INCLUDE_DIR HELLO_C VERSION
#                         SANITIZE CC...
#   SANITIZE is meson's b_sanitize ("none", "address,undefined", ...): a
#   sanitized libmproc.so needs a sanitized program to load it.
set -eu

builddir=$1 srcinc=$2 hello=$3 version=$4 sanitize=$5
shift 5
# The rest is the C compiler command, possibly with arguments.

dest=$(mktemp -d)
trap 'rm -rf "$dest"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

meson install -C "$builddir" --destdir "$dest" --no-rebuild --quiet \
	>"$dest/install.log" 2>&1 || { cat "$dest/install.log"; fail "meson install"; }

pc=$(find "$dest" -name mproc.pc | head -n 1)
[ -n "$pc" ] || fail "no mproc.pc installed"
so=$(find "$dest" -name libmproc.so | head -n 1)
[ -n "$so" ] || fail "no libmproc.so installed"
libdir=$(dirname "$so")
find "$dest" -name 'libmproc.a' | grep -q . || fail "no libmproc.a installed"

# Every public header is installed, at the same relative path.
for h in $(cd "$srcinc" && ls mproc.h mproc/*.h); do
	find "$dest" -path "*/include/$h" | grep -q . || fail "header $h not installed"
done

# The tools and the manual pages.
stat=$(find "$dest" -path '*/bin/mproc-stat' | head -n 1)
[ -n "$stat" ] || fail "mproc-stat not installed"
LD_LIBRARY_PATH=$libdir "$stat" --version | grep -qx "mproc-stat $version" ||
	fail "the installed mproc-stat does not run"
for m in man1/mproc-stat.1 man1/mproc-bench.1 man7/mproc.7 man3/mproc_queue_put.3 \
	man3/mproc_queue_put_nowait.3; do
	find "$dest" -path "*/share/man/$m" | grep -q . || fail "manual page $m not installed"
done

# pkg-config resolves the .pc file's paths inside the scratch root.
PKG_CONFIG_PATH=$(dirname "$pc")
PKG_CONFIG_SYSROOT_DIR=$dest
export PKG_CONFIG_PATH PKG_CONFIG_SYSROOT_DIR
[ "$(pkg-config --modversion mproc)" = "$version" ] ||
	fail "pkg-config --modversion says $(pkg-config --modversion mproc)"
flags=$(pkg-config --cflags --libs mproc) || fail "pkg-config --cflags --libs"
echo "pkg-config: $flags"
case "$flags" in
*"$dest"*) ;;
*) fail "pkg-config flags do not point into the install root" ;;
esac

san=
[ "$sanitize" = none ] || san="-fsanitize=$sanitize"
# shellcheck disable=SC2086  # flags are deliberately split into words
"$@" $san -o "$dest/hello" "$hello" $flags ||
	fail "compiling a program against the installed mproc"

out=$(LD_LIBRARY_PATH=$libdir "$dest/hello") || fail "hello exited non-zero"
[ "$out" = "mproc $version" ] || fail "hello printed '$out', not 'mproc $version'"
LD_LIBRARY_PATH=$libdir ldd "$dest/hello" | grep -q "$libdir/libmproc.so" ||
	fail "hello did not load the installed libmproc.so"

# CMake: find_package(mproc) through the installed package configuration,
# the shared and the static imported target.
cmakedir=$(find "$dest" -name mprocConfig.cmake -exec dirname {} \; | head -n 1)
if ! command -v cmake >/dev/null 2>&1; then
	echo "cmake not installed: the CMake consumer check is skipped"
else
	[ -n "$cmakedir" ] || fail "no mprocConfig.cmake installed"
	find "$cmakedir" -name mprocConfigVersion.cmake | grep -q . ||
		fail "no mprocConfigVersion.cmake installed"
	cm="$dest/cmake-build"
	# The compiler command may carry arguments (meson's cmd_array): the
	# first word is the compiler, the rest go with the sanitizer flags.
	ccbin=$1
	shift
	CC=$ccbin cmake -S "$(dirname "$hello")/cmake" -B "$cm" \
		-DCMAKE_PREFIX_PATH="$cmakedir" -DHELLO_C="$hello" \
		-DCMAKE_C_FLAGS="$* $san" -DCMAKE_BUILD_TYPE=Release \
		>"$dest/cmake.log" 2>&1 || { cat "$dest/cmake.log"; fail "cmake configure"; }
	cmake --build "$cm" >>"$dest/cmake.log" 2>&1 ||
		{ cat "$dest/cmake.log"; fail "cmake build"; }
	out=$(LD_LIBRARY_PATH=$libdir "$cm/hello_cmake") || fail "hello_cmake exited non-zero"
	[ "$out" = "mproc $version" ] || fail "hello_cmake printed '$out'"
	LD_LIBRARY_PATH=$libdir ldd "$cm/hello_cmake" | grep -q "$libdir/libmproc.so" ||
		fail "hello_cmake did not load the installed libmproc.so"
	out=$("$cm/hello_cmake_static") || fail "hello_cmake_static exited non-zero"
	[ "$out" = "mproc $version" ] || fail "hello_cmake_static printed '$out'"
	echo "cmake: find_package(mproc) builds against mproc::mproc and mproc::mproc_static"
fi

# Only the public API leaves the shared library: mproc_ names (never the
# internal mproc__ ones) and the version node.
syms=$(nm -D --defined-only "$so" | awk '{ print $3 }' | sed 's/@.*//')
[ -n "$syms" ] || fail "nm found no symbols"
bad=$(printf '%s\n' "$syms" | grep -v -e '^mproc_[a-z0-9]' -e '^MPROC_0$' || true)
[ -z "$bad" ] || fail "unexpected exported symbols: $(printf '%s\n' "$bad" | tr '\n' ' ')"
printf '%s\n' "$syms" | grep -qx MPROC_0 || fail "no MPROC_0 version node"
printf '%s\n' "$syms" | grep -qx mproc_version || fail "mproc_version not exported"

echo "installed mproc $version works; $(printf '%s\n' "$syms" | grep -c '^mproc_') exported functions"
