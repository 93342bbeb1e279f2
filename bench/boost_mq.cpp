// boost_mq.cpp - the C++ side of boost_mq.h: Boost.Interprocess
// message_queue behind C functions, so that the row itself is C like
// every other row.  No exception crosses into C: each is caught here and
// reported as a negative errno (the native error when Boost has one) with
// its message in the caller's note.
#include "boost_mq.h"

#include <cerrno>
#include <cstdio>
#include <new>

#include <boost/interprocess/ipc/message_queue.hpp>

namespace bip = boost::interprocess;

namespace {

int fail(const char *what, const std::exception &e, char *why, size_t len)
{
	std::snprintf(why, len, "%s: %s", what, e.what());
	const bip::interprocess_exception *ie =
		dynamic_cast<const bip::interprocess_exception *>(&e);
	int native = ie ? ie->get_native_error() : 0;
	return native > 0 ? -native : -EIO;
}

} // namespace

extern "C" int bench_boost_mq_create(const char *name, size_t depth,
				     size_t msg_size, char *why,
				     size_t why_len)
{
	try {
		bip::message_queue q(bip::create_only, name, depth, msg_size);
		return 0;
	} catch (const std::exception &e) {
		return fail("message_queue(create_only)", e, why, why_len);
	}
}

extern "C" int bench_boost_mq_open(const char *name, void **q, char *why,
				   size_t why_len)
{
	try {
		*q = new bip::message_queue(bip::open_only, name);
		return 0;
	} catch (const std::exception &e) {
		return fail("message_queue(open_only)", e, why, why_len);
	}
}

extern "C" int bench_boost_mq_send(void *q, const void *buf, size_t len,
				   char *why, size_t why_len)
{
	try {
		static_cast<bip::message_queue *>(q)->send(buf, len, 0);
		return 0;
	} catch (const std::exception &e) {
		return fail("message_queue::send", e, why, why_len);
	}
}

extern "C" ssize_t bench_boost_mq_receive(void *q, void *buf, size_t len,
					  char *why, size_t why_len)
{
	try {
		bip::message_queue::size_type got = 0;
		unsigned int prio = 0;
		static_cast<bip::message_queue *>(q)->receive(buf, len, got,
							      prio);
		return static_cast<ssize_t>(got);
	} catch (const std::exception &e) {
		return fail("message_queue::receive", e, why, why_len);
	}
}

extern "C" void bench_boost_mq_close(void *q)
{
	delete static_cast<bip::message_queue *>(q);
}

extern "C" void bench_boost_mq_remove(const char *name)
{
	bip::message_queue::remove(name);
}
