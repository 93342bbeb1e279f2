/*
 * boost_mq.h - a C view of Boost.Interprocess message_queue, for the
 * boost_mq peer row (peer_boost_mq.c).  The queue is a named object in
 * /dev/shm; boost_mq.cpp wraps its C++ calls and turns exceptions into
 * negative errno values with a note in @why.
 */
#ifndef MPROC_BENCH_BOOST_MQ_H
#define MPROC_BENCH_BOOST_MQ_H

#include <stddef.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Create the queue @name (which must not exist) for @depth messages of
 * at most @msg_size bytes, and let go of it: it lives on until
 * bench_boost_mq_remove.  0 or a negative errno. */
int bench_boost_mq_create(const char *name, size_t depth, size_t msg_size,
			  char *why, size_t why_len);
/* Open the existing queue @name in this process: 0 and *q, or a negative
 * errno. */
int bench_boost_mq_open(const char *name, void **q, char *why,
			size_t why_len);
/* Send @len bytes, waiting while the queue is full.  0 or -errno. */
int bench_boost_mq_send(void *q, const void *buf, size_t len, char *why,
			size_t why_len);
/* Receive one message into @buf (@len bytes at least the queue's
 * message size), waiting while the queue is empty.  Its length or
 * -errno. */
ssize_t bench_boost_mq_receive(void *q, void *buf, size_t len, char *why,
			       size_t why_len);
void bench_boost_mq_close(void *q);
/* Remove the queue's name; processes that have it open keep it. */
void bench_boost_mq_remove(const char *name);

#ifdef __cplusplus
}
#endif

#endif /* MPROC_BENCH_BOOST_MQ_H */
