/*
 * second_process - the twin of the seed's second_process.py: a process
 * type of its own, made by "subclassing" Process and overriding run().
 *
 * In C the subclass is a table of callbacks (struct mproc_process_ops) with
 * its own type name, plus the instance's state, which every process gets
 * its own copy of: here the field "max" that MyProcess.__init__ stores.
 */
#include <stdio.h>
#include <unistd.h>

#include "mproc.h"

struct my_process {
	int max;
};

/* MyProcess.run(self) */
static int my_process_run(mproc_process *self, void *state, size_t len)
{
	(void)self;
	const struct my_process *me = state;
	if (len != sizeof(*me))
		return 1;
	for (int i = 0; i < me->max; i++)
		printf("(%d) child process (parent: %d): %d\n", (int)getpid(),
		       (int)getppid(), i);
	return 0;
}

static const struct mproc_process_ops my_process_type = {
	.type_name = "MyProcess",
	.run = my_process_run,
};

/* MyProcess(max) */
static mproc_process *my_process_new(int max)
{
	struct my_process init = { .max = max };
	mproc_process *p;
	if (mproc_process_create_ops(NULL, &my_process_type, &init, sizeof(init), &p))
		return NULL;
	return p;
}

int main(int argc, char **argv)
{
	mproc_main(argc, argv);
	setvbuf(stdout, NULL, _IOLBF, 0);

	for (int i = 0; i < 100; i++) {
		printf("(%d) main process: %d\n", (int)getpid(), i);
		if (i == 20) {
			mproc_process *mp1 = my_process_new(100);
			mproc_process *mp2 = my_process_new(100);
			if (!mp1 || !mp2 || mproc_process_start(mp1) ||
			    mproc_process_start(mp2)) {
				fprintf(stderr, "cannot start the processes\n");
				return 1;
			}
			mproc_process_join(mp1, MPROC_FOREVER);
			mproc_process_join(mp2, MPROC_FOREVER);
			printf("%s and %s finished\n", mproc_process_name(mp1),
			       mproc_process_name(mp2));
			mproc_process_free(mp1);
			mproc_process_free(mp2);
		}
	}
	printf("Main process finished!\n");
	return 0;
}
