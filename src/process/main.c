/*
 * mproc_main, the entry point through which a re-executed image (a spawn
 * child or the forkserver) reaches mproc before any of main()'s own code
 * runs.  Such an image carries its start method's marker in argv[1];
 * mproc_main looks the marker up in the method registry and hands argv[2]
 * to that method's entry, which never returns.
 */
#include <stdbool.h>
#include <string.h>
#include <sys/prctl.h>

#include "process/context.h"
#include "process/main.h"
#include "process/method.h"

/* glibc passes main's arguments to ELF constructors, so the library sees
 * the marker even if main() never calls mproc_main; start then refuses to
 * run (a spawned child running main() from the top would otherwise start
 * children of its own, recursively). */
static bool marker_seen;
static bool main_called;

/* The method that re-executes images with @arg as argv[1], or NULL. */
static const struct mproc__proc_method *method_of_marker(const char *arg)
{
	const struct mproc__proc_method *m;
	for (size_t i = 0; (m = mproc__proc_method_at(i)) != NULL; i++)
		if (m->exec_marker && !strcmp(arg, m->exec_marker))
			return m;
	return NULL;
}

__attribute__((constructor)) static void note_marker(int argc, char **argv)
{
	if (argc >= 2 && argv && argv[1] && method_of_marker(argv[1]))
		marker_seen = true;
}

bool mproc__proc_spawned_without_main(void)
{
	return marker_seen && !main_called;
}

/* A re-executed image was started through /proc/self/exe, which makes
 * the kernel name it "exe" in ps and top; give it the program's name
 * back (argv[0] is the executable's path, see exec.c). */
static void restore_comm(const char *argv0)
{
	const char *slash = strrchr(argv0, '/');
	prctl(PR_SET_NAME, slash ? slash + 1 : argv0, 0, 0, 0);
}

MPROC_API int mproc_main(int argc, char **argv)
{
	main_called = true;
	if (argc >= 3 && argv && argv[0] && argv[1] && argv[2]) {
		const struct mproc__proc_method *m = method_of_marker(argv[1]);
		if (m) {
			restore_comm(argv[0]);
			m->exec_main(argv[2]);
		}
	}
	return 0;
}
