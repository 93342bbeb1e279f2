#!/bin/sh
# shellcheck disable=SC2086  # package lists are split into words on purpose
# Install the Debian packages mproc needs to build and test, and only
# those that are missing: a machine that has them all is left untouched
# (no apt-get update, no root needed).  Safe to run any number of times.
#
# usage: scripts/bootstrap.sh [--required-only] [--peers] [--mpi] [--mpich]
#
# Required: the compiler, meson/ninja/pkg-config, liburcu, Criterion and
# OpenSSL's libcrypto (HMAC of the Listener's handshake).
# Optional, tried but never fatal: clang with its runtime (libFuzzer and
# the fuzz suite), gnuplot (plots from the benchmark), mandoc (the lint of
# the manual pages), cmake (the find_package check of the install test)
# and what building and checking the Debian packages takes
# (scripts/check-debs.sh: build-essential, dpkg-dev, debhelper, lintian,
# man-db).  --required-only skips the optional ones.
#
# --peers also installs, as optional packages, the libraries mproc-bench's
# peer rows measure mproc against: DPDK (rte_ring), Concurrency Kit
# (ck_ring), Boost.Interprocess, ZeroMQ and nng.  DPDK alone brings in
# about 250 packages; reconfigure the build afterwards (meson setup
# --reconfigure build) so that meson finds them.
#
# --mpi also installs, as optional packages, Debian's default MPI (Open
# MPI: openmpi-bin, libopenmpi-dev) for the Pool over MPI and its suite
# `mpi`, and python3-mpi4py for mproc-bench's python_mpi4py row;
# reconfigure the build afterwards so that meson finds MPI.
#
# --mpich also installs MPICH (mpich, libmpich-dev), optional, beside
# Open MPI: Debian's alternatives keep Open MPI as the default mpicc and
# mpiexec (priority 50 against MPICH's 40).  Build against it in a build
# directory of its own: meson setup build-mpich -Dmpi_impl=mpich.
#
# Runs apt-get directly as root, through sudo otherwise.
set -eu

required="gcc g++ pkg-config meson ninja-build python3 liburcu-dev libcriterion-dev libssl-dev"
optional="clang libclang-rt-14-dev gnuplot-nox mandoc cmake build-essential dpkg-dev debhelper lintian man-db"
# libdpdk-dev, not dpdk-dev: the headers and pkg-config file, without the
# Python tools dpdk-dev adds on top.
peers="libdpdk-dev libck-dev libboost-dev libzmq3-dev libnng-dev"
mpi="openmpi-bin libopenmpi-dev python3-mpi4py"
mpich="mpich libmpich-dev"

with_optional=yes
with_peers=no
with_mpi=no
with_mpich=no
for arg in "$@"; do
	case $arg in
	--required-only) with_optional=no ;;
	--with-optional) with_optional=yes ;;
	--peers) with_peers=yes ;;
	--mpi) with_mpi=yes ;;
	--mpich) with_mpich=yes ;;
	-h | --help)
		awk 'NR > 1 && /^# shellcheck/ { next } NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
		exit 0
		;;
	*)
		echo "bootstrap: unknown argument '$arg'" >&2
		exit 2
		;;
	esac
done

say() { echo "bootstrap: $*"; }

missing() { # print the packages of "$@" that are not installed
	for p in "$@"; do
		st=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
		[ "$st" = installed ] || printf '%s ' "$p"
	done
}

if ! command -v dpkg-query >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
	say "not a Debian-like system; install these yourself: $required"
	exit 1
fi

installable() { # print the packages of "$@" the package lists offer
	for p in "$@"; do
		if apt-cache policy "$p" 2>/dev/null | grep -q 'Candidate: [^(]'; then
			printf '%s ' "$p"
		else
			say "optional $p is not offered here; skipped" >&2
		fi
	done
}

need=$(missing $required)
want=
[ "$with_optional" = yes ] && want=$(missing $optional)
[ "$with_peers" = yes ] && want="$want$(missing $peers)"
[ "$with_mpi" = yes ] && want="$want$(missing $mpi)"
[ "$with_mpich" = yes ] && want="$want$(missing $mpich)"
# With nothing required missing, only optional packages this release
# offers are worth an update: do not refresh the lists on every run for
# one that does not exist here (the clang runtime's name has a version).
if [ -z "$need" ] && [ -n "$want" ]; then
	want=$(installable $want)
fi

if [ -z "$need" ] && [ -z "$want" ]; then
	say "all packages present"
	exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
	as_root=
elif command -v sudo >/dev/null 2>&1; then
	as_root=sudo
else
	say "missing: $need$want; run this as root (no sudo here)" >&2
	exit 1
fi

apt() {
	# Non-interactive: CI has no terminal and no stdin.
	$as_root env DEBIAN_FRONTEND=noninteractive apt-get \
		-y -q -o Dpkg::Use-Pty=0 "$@" </dev/null
}

say "updating the package lists"
apt update >/dev/null || say "apt-get update reported errors; trying anyway"

if [ -n "$need" ]; then
	say "installing $need"
	apt install --no-install-recommends $need >/dev/null
fi

if [ -n "$want" ]; then
	# One at a time, so that a package this release lacks (the clang
	# runtime's name carries its version) does not block the others.
	for p in $want; do
		if apt install --no-install-recommends "$p" >/dev/null 2>&1; then
			say "installed optional $p"
		else
			say "optional $p not installed (fine: its extras are skipped)"
		fi
	done
fi

left=$(missing $required)
if [ -n "$left" ]; then
	say "still missing: $left" >&2
	exit 1
fi
say "done"
