/* Wait for whichever of a pipe and a queue has data first. */
#include <stdio.h>
#include <mproc.h>

int main(void)
{
	mproc_conn *a, *b;
	mproc_queue *q;
	if (mproc_pipe(true, NULL, &a, &b) || mproc_queue_create(NULL, &q))
		return 1;
	mproc_queue_put(q, "job", 4, MPROC_NOWAIT);
	struct mproc_waitable w[2] = {
		{ .type = MPROC_WAIT_CONN, .conn = a },
		{ .type = MPROC_WAIT_QUEUE, .queue = q },
	};
	int n = mproc_wait(w, 2, MPROC_SEC);
	if (n < 0)
		fprintf(stderr, "wait: %s\n", mproc_strerror(n));
	for (int i = 0; n > 0 && i < 2; i++)
		printf("object %d ready: %d\n", i, w[i].ready);
	mproc_conn_free(a);
	mproc_conn_free(b);
	mproc_queue_free(q);
	return n < 0;
}
