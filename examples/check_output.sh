#!/bin/sh
# Run an example and check its standard output.
#
#   check_output.sh PROGRAM SPEC...
#
# Each SPEC is COUNT:REGEX - exactly COUNT lines match the extended
# regular expression REGEX - or +:REGEX - at least one line does.  The
# program must also exit with status 0.  On failure the output is shown.
prog=$1
shift
out=$("$prog")
status=$?
fail=0
if [ "$status" -ne 0 ]; then
	echo "FAIL: $prog exited with status $status"
	fail=1
fi
for spec in "$@"; do
	want=${spec%%:*}
	re=${spec#*:}
	got=$(printf '%s\n' "$out" | grep -cE -- "$re")
	if [ "$want" = "+" ]; then
		[ "$got" -ge 1 ] || { echo "FAIL: no line matches /$re/"; fail=1; }
	elif [ "$got" -ne "$want" ]; then
		echo "FAIL: $got lines match /$re/, expected $want"
		fail=1
	fi
done
if [ "$fail" -ne 0 ]; then
	echo "---- output of $prog ----"
	printf '%s\n' "$out"
	exit 1
fi
echo "ok: $prog"
