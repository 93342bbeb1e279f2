#!/bin/sh
# Run one program under MPI with a head and two agents:
#   run.sh PROGRAM [ARGS...]
# The launcher is $MPIEXEC (meson sets it to the launcher of the MPI
# built against), else the one that matches the program's MPI.  Open MPI
# refuses to run as root without its two ALLOW_RUN_AS_ROOT variables,
# and more ranks than CPUs without --oversubscribe; MPICH's Hydra needs
# neither.  Set here, for the tests
# and the bench, never in the library.
set -eu
launcher=${MPIEXEC:-}
# Else the launcher of the MPI the program is linked against: Debian's
# plain mpiexec is whichever MPI its alternatives select, and an MPICH
# program started by Open MPI's mpiexec (or the reverse) runs as
# independent singletons.
case $(ldd "$1" 2>/dev/null) in
*libmpich*) candidates="mpiexec.mpich mpiexec.hydra mpiexec" ;;
*libmpi.so*) candidates="mpiexec.openmpi mpiexec" ;;
*) candidates="mpiexec mpiexec.mpich mpiexec.openmpi" ;;
esac
if [ -z "$launcher" ]; then
	for l in $candidates; do
		if command -v "$l" >/dev/null 2>&1; then
			launcher=$l
			break
		fi
	done
fi
if [ -z "$launcher" ]; then
	echo "run.sh: no MPI launcher (mpiexec) found" >&2
	exit 77
fi
flags=
if "$launcher" --version 2>&1 | grep -q -e 'Open MPI' -e 'OpenRTE'; then
	export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
	# Shared memory between the ranks of one machine, nothing else:
	# quiet on machines without a network for the other transports.
	flags="--oversubscribe --mca btl self,vader"
fi
# shellcheck disable=SC2086
exec "$launcher" $flags -n "${MPI_RANKS:-3}" "$@"
