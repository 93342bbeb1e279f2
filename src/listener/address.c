/*
 * Listener and Client addresses: a Unix socket path, a Linux abstract
 * name ("@name"), or a TCP "host:port" (mproc/listener.h), to a sockaddr
 * and back.
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "listener/internal.h"
#include "common/parse.h"

static int parse_unix(const char *path, bool abstract, struct lst_addr *a)
{
	struct sockaddr_un *un = (struct sockaddr_un *)&a->sa;
	size_t n = strlen(path);
	/* A file path needs its NUL inside sun_path; an abstract name is
	 * the bytes after the leading NUL, without one of its own. */
	if (n == 0 || n + 1 > sizeof(un->sun_path))
		return -EINVAL;
	memset(un, 0, sizeof(*un));
	un->sun_family = AF_UNIX;
	a->family = AF_UNIX;
	a->abstract = abstract;
	if (abstract) {
		memcpy(un->sun_path + 1, path, n);
		a->len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n);
		a->path[0] = '\0';
	} else {
		memcpy(un->sun_path, path, n + 1);
		a->len = (socklen_t)sizeof(*un);
		memcpy(a->path, path, n + 1);
	}
	return 0;
}

static int parse_tcp(const char *hp, bool passive, struct lst_addr *a)
{
	char host[256];
	const char *colon;
	if (hp[0] == '[') {
		const char *end = strchr(hp, ']');
		if (!end || end[1] != ':' || (size_t)(end - hp - 1) >= sizeof(host))
			return -EINVAL;
		memcpy(host, hp + 1, (size_t)(end - hp - 1));
		host[end - hp - 1] = '\0';
		colon = end + 1;
	} else {
		colon = strrchr(hp, ':');
		if (!colon || (size_t)(colon - hp) >= sizeof(host))
			return -EINVAL;
		memcpy(host, hp, (size_t)(colon - hp));
		host[colon - hp] = '\0';
	}
	const char *ps = colon + 1;
	uint64_t port;
	if (!host[0] || mproc__parse_u64(&ps, 65535, &port) || *ps)
		return -EINVAL;
	char service[8];
	snprintf(service, sizeof(service), "%u", (unsigned)port);
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_NUMERICSERV |
					      (passive ? AI_PASSIVE : 0) };
	struct addrinfo *res;
	int rc = getaddrinfo(host, service, &hints, &res);
	if (rc)
		return rc == EAI_MEMORY ? -ENOMEM : -ENOENT;
	int out = -ENOENT;
	for (struct addrinfo *r = res; r; r = r->ai_next) {
		if ((r->ai_family == AF_INET || r->ai_family == AF_INET6) &&
		    r->ai_addrlen <= sizeof(a->sa)) {
			memcpy(&a->sa, r->ai_addr, r->ai_addrlen);
			a->len = r->ai_addrlen;
			a->family = r->ai_family;
			a->abstract = false;
			a->path[0] = '\0';
			out = 0;
			break;
		}
	}
	freeaddrinfo(res);
	return out;
}

int mproc__lst_parse(const char *address, bool passive, struct lst_addr *a)
{
	if (!address || !*address)
		return -EINVAL;
	memset(a, 0, sizeof(*a));
	if (strncmp(address, "unix:", 5) == 0)
		return parse_unix(address + 5, false, a);
	if (address[0] == '/' || address[0] == '.')
		return parse_unix(address, false, a);
	if (address[0] == '@')
		return parse_unix(address + 1, true, a);
	if (strncmp(address, "tcp:", 4) == 0)
		address += 4;
	return parse_tcp(address, passive, a);
}

int mproc__lst_format(const struct sockaddr_storage *sa, socklen_t len,
		      char *buf, size_t cap)
{
	int n;
	if (sa->ss_family == AF_UNIX) {
		const struct sockaddr_un *un = (const struct sockaddr_un *)sa;
		size_t off = offsetof(struct sockaddr_un, sun_path);
		if (len <= off + 1 && (len <= off || un->sun_path[0] == '\0'))
			return -EINVAL; /* unnamed */
		if (un->sun_path[0] == '\0')
			n = snprintf(buf, cap, "@%.*s", (int)(len - off - 1),
				     un->sun_path + 1);
		else
			n = snprintf(buf, cap, "%.*s", (int)(len - off),
				     un->sun_path);
	} else if (sa->ss_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
		char host[INET_ADDRSTRLEN];
		inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
		n = snprintf(buf, cap, "%s:%u", host, ntohs(in->sin_port));
	} else if (sa->ss_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
		char host[INET6_ADDRSTRLEN];
		inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
		n = snprintf(buf, cap, "[%s]:%u", host, ntohs(in6->sin6_port));
	} else {
		return -EINVAL;
	}
	if (n < 0 || (size_t)n >= cap)
		return -ENOSPC;
	return n;
}
