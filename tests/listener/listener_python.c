/*
 * Listener and Client against the Python on the machine
 * (multiprocessing.connection, 3.11 here: the legacy HMAC-MD5 handshake):
 * a Python Client to a C listener and a C client to a Python Listener,
 * right and wrong key, messages of 0 bytes, 64 KiB and 100 MiB.  Python
 * never gets the shared-memory offer: the connections stay on the socket.
 * A message just over 2^31 bytes (the 8-byte length form) comes from
 * Python when 8 GiB are available, and is skipped with a note otherwise
 * (what mproc sends in that form is checked byte for byte in
 * tests/pipe/pipe_fdconn.c).
 */
#include <inttypes.h>
#include <signal.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "listener_test.h"

extern char **environ;

#ifndef PY312_AUTH
#error "PY312_AUTH: the path of py312_auth.py (meson passes it)"
#endif

/* Run python3 with @pre (one or two words: "-c" and a script, or a
 * file) then @args; returns its pid. */
static pid_t run_python_argv(const char *const pre[2], char *const args[])
{
	char *argv[8] = { "python3" };
	int n = 1;
	for (int i = 0; i < 2 && pre[i]; i++)
		argv[n++] = (char *)pre[i];
	for (int i = 0; args[i] && i < 4; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	/* Python's os.read allocates the whole remaining length for every
	 * read of a 100 MiB message; with meson's MALLOC_PERTURB_ glibc
	 * fills each of those buffers, which makes one exchange take tens of
	 * seconds.  The variable is for our own allocations, not Python's. */
	unsetenv("MALLOC_PERTURB_");
	pid_t pid;
	int rc = posix_spawnp(&pid, "python3", NULL, NULL, argv, environ);
	cr_assert_eq(rc, 0, "python3: %s", strerror(rc));
	return pid;
}

/* Run python3 -c @script with arguments. */
static pid_t run_python(const char *script, char *const args[])
{
	const char *pre[2] = { "-c", script };
	return run_python_argv(pre, args);
}

static int python_status(pid_t pid)
{
	int st;
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* The sizes exchanged, and a checksum both sides compute. */
static const size_t sizes[] = { 0, 65536, 100 << 20 };

static unsigned char *pattern(size_t n)
{
	unsigned char *m = malloc(n ? n : 1);
	for (size_t i = 0; i < n; i++)
		m[i] = (unsigned char)(i % 251);
	return m;
}

/* Python client: echo each message it receives, with its length
 * checked against the pattern; exit 3 on an authentication error. */
static const char py_client[] =
	"import sys\n"
	"from multiprocessing.connection import Client\n"
	"from multiprocessing import AuthenticationError\n"
	"try:\n"
	"    c = Client(sys.argv[1], authkey=sys.argv[2].encode())\n"
	"except AuthenticationError:\n"
	"    sys.exit(3)\n"
	"while True:\n"
	"    m = c.recv_bytes()\n"
	"    if m == b'bye':\n"
	"        break\n"
	"    if m != bytes(i % 251 for i in range(len(m))) if len(m) < 100000 else m[:502] != bytes(i % 251 for i in range(502)):\n"
	"        sys.exit(4)\n"
	"    c.send_bytes(m)\n"
	"c.close()\n";

Test(listener_python, python_client_to_c_listener, .timeout = 120)
{
	int fds_before = count_fds();
	char addr[64];
	test_address(addr, sizeof(addr), 0);
	mproc_listener *l = listen_on(addr, KEY, KEY_LEN, 0);
	char *args[] = { addr, KEY, NULL };
	pid_t pid = run_python(py_client, args);
	mproc_conn *c;
	int rc = mproc_listener_accept(l, 60 * MPROC_SEC, &c);
	cr_assert_eq(rc, 0, "accept: %s", mproc_strerror(rc));
	cr_assert_not(is_eventfd(mproc_conn_fileno(c)), "Python stays on the socket");
	struct mproc_peer_cred cr;
	cr_assert_eq(mproc_listener_peer_cred(c, &cr), 0);
	cr_assert_eq(cr.pid, pid);
	for (size_t i = 0; i < 3; i++) {
		unsigned char *m = pattern(sizes[i]);
		ssize_t n = mproc_conn_send_bytes(c, m, sizes[i]);
		cr_assert_eq(n, (ssize_t)sizes[i], "%s", mproc_strerror((int)n));
		void *got;
		size_t len;
		n = mproc_conn_recv_bytes(c, MPROC_CONN_NOLIMIT, &got, &len);
		cr_assert_eq(n, (ssize_t)sizes[i], "%zu: %s", sizes[i],
			     mproc_strerror((int)n));
		cr_assert(memcmp(got, m, sizes[i]) == 0);
		free(got);
		free(m);
	}
	cr_assert_eq(mproc_conn_send_bytes(c, "bye", 3), 3);
	cr_assert_eq(python_status(pid), 0);
	char b[4];
	cr_assert_eq(mproc_conn_recv_bytes_into(c, b, 4), -MPROC_EEOF);
	mproc_conn_free(c);

	/* Wrong key: AuthenticationError there, -MPROC_EAUTH here. */
	char *wrong[] = { addr, "not-the-key", NULL };
	pid = run_python(py_client, wrong);
	rc = mproc_listener_accept(l, 60 * MPROC_SEC, &c);
	cr_assert_eq(rc, -MPROC_EAUTH, "%s", mproc_strerror(rc));
	cr_assert_eq(python_status(pid), 3);
	mproc_listener_close(l);
	/* The offers Python never took were freed with their pipes. */
	cr_assert_eq(count_fds(), fds_before);
}

/* Python listener: accept one client, echo until b'bye'; exit 3 on an
 * authentication error.  It prints its address when it listens. */
static const char py_listener[] =
	"import sys\n"
	"from multiprocessing.connection import Listener\n"
	"from multiprocessing import AuthenticationError\n"
	"l = Listener(sys.argv[1], authkey=sys.argv[2].encode())\n"
	"open(sys.argv[3], 'w').close()\n"
	"try:\n"
	"    c = l.accept()\n"
	"except AuthenticationError:\n"
	"    sys.exit(3)\n"
	"while True:\n"
	"    m = c.recv_bytes()\n"
	"    if m == b'bye':\n"
	"        break\n"
	"    c.send_bytes(m)\n"
	"c.close()\n"
	"l.close()\n";

static pid_t start_py_listener(const char *addr, const char *key)
{
	char ready[96];
	snprintf(ready, sizeof(ready), "%s.ready", addr);
	unlink(ready);
	char *args[] = { (char *)addr, (char *)key, ready, NULL };
	pid_t pid = run_python(py_listener, args);
	for (int i = 0; i < 3000 && access(ready, F_OK) != 0; i++)
		usleep(10000);
	cr_assert_eq(access(ready, F_OK), 0, "the Python listener started");
	unlink(ready);
	return pid;
}

Test(listener_python, c_client_to_python_listener, .timeout = 120)
{
	char addr[64];
	test_address(addr, sizeof(addr), 0);
	pid_t pid = start_py_listener(addr, KEY);
	mproc_conn *c;
	int rc = mproc_client(addr, KEY, KEY_LEN, 60 * MPROC_SEC, &c);
	cr_assert_eq(rc, 0, "client: %s", mproc_strerror(rc));
	cr_assert_not(is_eventfd(mproc_conn_fileno(c)));
	for (size_t i = 0; i < 3; i++) {
		unsigned char *m = pattern(sizes[i]);
		ssize_t n = mproc_conn_send_bytes(c, m, sizes[i]);
		cr_assert_eq(n, (ssize_t)sizes[i], "%s", mproc_strerror((int)n));
		void *got;
		size_t len;
		n = mproc_conn_recv_bytes(c, MPROC_CONN_NOLIMIT, &got, &len);
		cr_assert_eq(n, (ssize_t)sizes[i], "%s", mproc_strerror((int)n));
		cr_assert(memcmp(got, m, sizes[i]) == 0);
		free(got);
		free(m);
	}
	cr_assert_eq(mproc_conn_send_bytes(c, "bye", 3), 3);
	cr_assert_eq(python_status(pid), 0);
	mproc_conn_free(c);

	/* Wrong key. */
	test_address(addr, sizeof(addr), 0);
	pid = start_py_listener(addr, KEY);
	rc = mproc_client(addr, "wrong", 5, 60 * MPROC_SEC, &c);
	cr_assert_eq(rc, -MPROC_EAUTH, "%s", mproc_strerror(rc));
	cr_assert_eq(python_status(pid), 3);
	unlink(addr);
}

/* TCP and the abstract namespace with Python too. */
Test(listener_python, abstract_and_tcp, .timeout = 120)
{
	for (int kind = 1; kind < 3; kind++) {
		char addr[64];
		test_address(addr, sizeof(addr), kind);
		mproc_listener *l = listen_on(addr, KEY, KEY_LEN, 0);
		char bound[MPROC_LISTENER_ADDRESS_MAX], pyaddr[MPROC_LISTENER_ADDRESS_MAX + 16];
		cr_assert_gt(mproc_listener_address(l, bound, sizeof(bound)), 0);
		static const char py[] =
			"import sys\n"
			"from multiprocessing.connection import Client\n"
			"a = sys.argv[1]\n"
			"if a.startswith('@'):\n"
			"    a = '\\0' + a[1:]\n"
			"else:\n"
			"    h, p = a.rsplit(':', 1)\n"
			"    a = (h, int(p))\n"
			"c = Client(a, authkey=sys.argv[2].encode())\n"
			"c.send_bytes(c.recv_bytes() + b'!')\n"
			"c.close()\n";
		snprintf(pyaddr, sizeof(pyaddr), "%s", bound);
		char *args[] = { pyaddr, KEY, NULL };
		pid_t pid = run_python(py, args);
		mproc_conn *c;
		int rc = mproc_listener_accept(l, 60 * MPROC_SEC, &c);
		cr_assert_eq(rc, 0, "%s: %s", bound, mproc_strerror(rc));
		cr_assert_eq(mproc_conn_send_bytes(c, "hi", 2), 2);
		char b[8];
		cr_assert_eq(mproc_conn_recv_bytes_into(c, b, sizeof(b)), 3);
		cr_assert_arr_eq(b, "hi!", 3);
		cr_assert_eq(python_status(pid), 0);
		mproc_conn_free(c);
		mproc_listener_close(l);
	}
}

/* Python 3.12's handshake (py312_auth.py: the {digest}-tagged challenge
 * and response, written independently of mproc) against mproc, both ways,
 * with sha256 and the other digests Python allows, and a wrong key. */
static pid_t run_py312(char *const args[], const char *digest)
{
	setenv("MPROC_TEST_DIGEST", digest, 1);
	const char *pre[2] = { PY312_AUTH, NULL };
	pid_t pid = run_python_argv(pre, args);
	unsetenv("MPROC_TEST_DIGEST");
	return pid;
}

Test(listener_python, python312_handshake_both_ways, .timeout = 120)
{
	const char *digests[] = { "sha256", "md5", "sha384", "sha3_256", "sha3_384" };
	for (int d = 0; d < 5; d++) {
		/* A 3.12 client to the C listener. */
		char addr[64];
		test_address(addr, sizeof(addr), 0);
		mproc_listener *l = listen_on(addr, KEY, KEY_LEN, 0);
		char *cargs[] = { "client", addr, KEY, NULL };
		pid_t pid = run_py312(cargs, digests[d]);
		mproc_conn *c;
		int rc = mproc_listener_accept(l, 60 * MPROC_SEC, &c);
		cr_assert_eq(rc, 0, "%s: accept: %s", digests[d], mproc_strerror(rc));
		void *m;
		size_t len;
		cr_assert_eq(mproc_conn_recv_bytes(c, 100, &m, &len), 8);
		cr_assert_eq(mproc_conn_send_bytes(c, m, len), 8);
		free(m);
		cr_assert_eq(python_status(pid), 0, "%s", digests[d]);
		mproc_conn_free(c);
		if (d == 0) {
			char *wrong[] = { "client", addr, "wrong", NULL };
			pid = run_py312(wrong, digests[d]);
			rc = mproc_listener_accept(l, 60 * MPROC_SEC, &c);
			cr_assert_eq(rc, -MPROC_EAUTH, "%s", mproc_strerror(rc));
			cr_assert_eq(python_status(pid), 3);
		}
		mproc_listener_close(l);

		/* The C client to a 3.12 listener. */
		test_address(addr, sizeof(addr), 0);
		char ready[96];
		snprintf(ready, sizeof(ready), "%s.ready", addr);
		char *largs[] = { "listen", addr, KEY, ready, NULL };
		pid = run_py312(largs, digests[d]);
		for (int i = 0; i < 3000 && access(ready, F_OK) != 0; i++)
			usleep(10000);
		unlink(ready);
		rc = mproc_client(addr, KEY, KEY_LEN, 60 * MPROC_SEC, &c);
		cr_assert_eq(rc, 0, "%s: client: %s", digests[d], mproc_strerror(rc));
		cr_assert_eq(mproc_conn_send_bytes(c, "pong", 4), 4);
		char b[8];
		cr_assert_eq(mproc_conn_recv_bytes_into(c, b, sizeof(b)), 4);
		mproc_conn_free(c);
		cr_assert_eq(python_status(pid), 0, "%s", digests[d]);
		unlink(addr);
	}
}

/* Bytes of memory the kernel says are available, or 0. */
static uint64_t mem_available(void)
{
	FILE *f = fopen("/proc/meminfo", "r");
	char line[128];
	uint64_t kib = 0;
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "MemAvailable: %" SCNu64 " kB", &kib) == 1)
			break;
	if (f)
		fclose(f);
	return kib * 1024;
}

/* A message just over 2^31 bytes from Python: Python's 8-byte length
 * form, read by mproc.  (The other way, Python's reader allocates the
 * whole remaining length for every read(2), some 10^4 times for 2 GiB,
 * which takes longer than a unit test should; what mproc sends in that
 * form is checked byte for byte in tests/pipe/pipe_fdconn.c.)  Runs when
 * 8 GiB are available, and is skipped with a note otherwise. */
static const char py_huge[] =
	"import sys\n"
	"from multiprocessing.connection import Client\n"
	"c = Client('\\0' + sys.argv[1][1:], authkey=sys.argv[2].encode())\n"
	"c.send_bytes(bytes((1 << 31) + 5))\n"
	"c.recv_bytes()\n"
	"c.close()\n";

Test(listener_python, eight_byte_length_form_from_python, .timeout = 120)
{
	if (mem_available() < ((uint64_t)8 << 30))
		cr_skip_test("needs 8 GiB of available memory for a 2 GiB "
			     "message on each side; the 8-byte form is checked "
			     "byte for byte in tests/pipe/pipe_fdconn.c");
	char addr[64];
	test_address(addr, sizeof(addr), 1);
	mproc_listener *l = listen_on(addr, KEY, KEY_LEN, 0);
	char *args[] = { addr, KEY, NULL };
	pid_t pid = run_python(py_huge, args);
	mproc_conn *c;
	int rc = mproc_listener_accept(l, 60 * MPROC_SEC, &c);
	cr_assert_eq(rc, 0, "%s", mproc_strerror(rc));
	size_t len = ((size_t)1 << 31) + 5;
	cr_assert_eq(mproc_conn_next_size(c, 60 * MPROC_SEC), (ssize_t)len);
	unsigned char *back = mmap(NULL, len, PROT_READ | PROT_WRITE,
				   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	cr_assert_neq(back, MAP_FAILED);
	back[0] = back[len / 2] = back[len - 1] = 1;
	ssize_t n = mproc_conn_recv_bytes_into(c, back, len);
	cr_assert_eq(n, (ssize_t)len, "%s", mproc_strerror((int)n));
	cr_assert(back[0] == 0 && back[len / 2] == 0 && back[len - 1] == 0);
	munmap(back, len);
	cr_assert_eq(mproc_conn_send_bytes(c, "done", 4), 4);
	cr_assert_eq(python_status(pid), 0);
	mproc_conn_free(c);
	mproc_listener_close(l);
}
