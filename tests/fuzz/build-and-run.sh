#!/bin/sh
# Build mproc's libFuzzer targets with clang (ASan + UBSan, every library
# source compiled in, so the fuzzer sees coverage inside the library and
# the sanitizers check it), then run each for a bounded time over its
# committed seed corpus.  The main build uses gcc, which has no libFuzzer,
# hence this script instead of meson targets.
#
# usage: build-and-run.sh SOURCE_ROOT OUT_DIR [TARGET...]
#   SOURCE_ROOT  the mproc checkout
#   OUT_DIR      where objects, binaries, the growing working corpus and
#                crash artifacts go (meson passes its build directory)
#   TARGET       fuzz_shm_header, fuzz_queue_ring, fuzz_pipe_ring,
#                fuzz_mpmc_consumer (all of them when none is named)
# Environment:
#   CLANG          the compiler (default: clang)
#   FUZZ_SECONDS   run time per target (default: 22)
#   FUZZ_JOBS      compiler processes at once (default: the CPU count)
#
# Exit status: 0 when every target ran clean; 1 on a crash, a sanitizer
# report, a leak, a timeout (an input that runs longer than 5 s: a hang)
# or a build failure; 77 (skip) when clang or its libFuzzer runtime is
# missing.  The last line is a one-line summary.
#
# A failing input is saved as OUT_DIR/artifacts/TARGET-crash-* (or -leak-,
# -timeout-); replay it with "OUT_DIR/TARGET FILE".  Once the bug is fixed,
# commit the input to corpus/TARGET/ as regress-NAME so that every run
# repeats it.  For a longer hunt: FUZZ_SECONDS=600 build-and-run.sh ...
set -eu

if [ $# -lt 2 ]; then
	echo "usage: $0 SOURCE_ROOT OUT_DIR [TARGET...]" >&2
	exit 2
fi
src=$(cd "$1" && pwd)
mkdir -p "$2"
out=$(cd "$2" && pwd)
shift 2
targets=${*:-fuzz_shm_header fuzz_queue_ring fuzz_pipe_ring fuzz_mpmc_consumer}
clang=${CLANG:-clang}
seconds=${FUZZ_SECONDS:-22}
jobs=${FUZZ_JOBS:-$(nproc 2>/dev/null || echo 2)}
fuzzdir=$src/tests/fuzz

if ! command -v "$clang" >/dev/null 2>&1; then
	echo "fuzz: SKIP: no $clang"
	exit 77
fi

version=$(sed -n "s/^ *version *: *'\([^']*\)'.*/\1/p" "$src/meson.build" | head -n 1)
# The project's own defines and include directories, as meson.build sets
# them for the library; -O1 keeps the sanitizers' reports readable.
# The version define is one argument with quotes in it, so it travels
# separately from the word list.
cflags="-g -O1 -std=gnu11 -Wall -Wextra -fno-omit-frame-pointer
	-fsanitize=address,undefined -fno-sanitize-recover=undefined
	-D_GNU_SOURCE -DMPROC_BUILDING -I$src/include -I$src/src"
# shellcheck disable=SC2089  # the quotes belong to the macro's value
vdef="-DMPROC_VERSION_STRING=\"$version\""
# liburcu as its pkg-config file says (the pool's wait-free queue lives in
# liburcu-common); the plain names if pkg-config does not know it.
libs="$(pkg-config --libs liburcu 2>/dev/null || echo -lurcu-common -lurcu) -lpthread -ldl"
# libcrypto: the Listener's HMAC and random bytes.
libs="$libs $(pkg-config --libs libcrypto 2>/dev/null || echo -lcrypto)"

# The libFuzzer runtime comes with libclang-rt-NN-dev on Debian.
probe=$out/probe
if ! "$clang" -fsanitize=fuzzer,address,undefined "$fuzzdir/probe.c" \
	-o "$probe" >"$probe.log" 2>&1; then
	sed 's/^/    /' "$probe.log"
	echo "fuzz: SKIP: $clang cannot link libFuzzer (install libclang-rt-dev)"
	exit 77
fi

# The library, once for all targets: -fsanitize=fuzzer-no-link adds the
# coverage instrumentation without a second main().
objdir=$out/obj
rm -rf "$objdir"
mkdir -p "$objdir"
echo "fuzz: compiling the library with $clang ($jobs jobs)"
# One "source object" pair per line, compiled by a shell under xargs that
# takes the compiler and flags from the environment.
(cd "$src" && find src -name '*.c' | sort) | while read -r f; do
	echo "$src/$f $objdir/$(echo "$f" | tr / _ | sed 's/\.c$/.o/')"
done >"$objdir/sources"
FUZZ_CC=$clang FUZZ_CFLAGS="$cflags -fsanitize=fuzzer-no-link" FUZZ_VDEF=$vdef
# shellcheck disable=SC2090  # used quoted, as one argument
export FUZZ_CC FUZZ_CFLAGS FUZZ_VDEF
# shellcheck disable=SC2016  # expanded by the inner shell
xargs -n 2 -P "$jobs" sh -c \
	'exec $FUZZ_CC $FUZZ_CFLAGS "$FUZZ_VDEF" -c "$0" -o "$1"' \
	<"$objdir/sources" ||
	{ echo "fuzz: FAIL: the library did not compile"; exit 1; }

for t in $targets; do
	echo "fuzz: linking $t"
	# shellcheck disable=SC2086  # word lists on purpose
	"$clang" $cflags -fsanitize=fuzzer "$fuzzdir/$t.c" "$objdir"/*.o \
		$libs -o "$out/$t" ||
		{ echo "fuzz: FAIL: $t did not build"; exit 1; }
done

total_execs=0
failed=0
report=
for t in $targets; do
	work=$out/corpus/$t
	mkdir -p "$work" "$out/artifacts"
	log=$out/$t.log
	echo "fuzz: running $t for ${seconds}s"
	rc=0
	# New inputs go to the first directory (the build tree); the seeds
	# in the source tree are only read.  -timeout: an input that runs
	# longer is a hang; libFuzzer's own exit codes include 77, which
	# would read as "skipped", hence the explicit ones.
	"$out/$t" -max_total_time="$seconds" -timeout=5 -rss_limit_mb=2048 \
		-max_len=4096 -print_final_stats=1 -error_exitcode=1 \
		-timeout_exitcode=1 -artifact_prefix="$out/artifacts/$t-" \
		"$work" "$fuzzdir/corpus/$t" >"$log" 2>&1 || rc=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
	done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -n 1 || true)
	cov=$(echo "$done_line" | sed -n 's/.* cov: \([0-9]*\).*/\1/p')
	ft=$(echo "$done_line" | sed -n 's/.* ft: \([0-9]*\).*/\1/p')
	corp=$(echo "$done_line" | sed -n 's/.* corp: \([0-9]*\).*/\1/p')
	total_execs=$((total_execs + ${execs:-0}))
	if [ "$rc" -ne 0 ]; then
		failed=$((failed + 1))
		echo "fuzz: FAIL: $t (exit $rc); the end of its log:"
		tail -n 60 "$log" | sed 's/^/    /'
		for a in "$out/artifacts/$t-"*; do
			[ -e "$a" ] && echo "    artifact: $a"
		done
		report="$report $t:FAIL"
	else
		echo "fuzz: $t: ${execs:-?} execs, cov ${cov:-?}, ft ${ft:-?}, corpus ${corp:-?}"
		report="$report $t:${execs:-0}"
	fi
done

n=$(echo "$targets" | wc -w)
echo "fuzz: $n targets, $failed failed, $total_execs execs in all ($report )"
[ "$failed" -eq 0 ]
