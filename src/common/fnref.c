/*
 * Function identity across images.  A code address means nothing in a
 * freshly exec'd process: the main executable (PIE) and every shared
 * object load at a different base each time.  What stays the same is the
 * pair (which object, offset from its load base), so that is what crosses
 * to the child.
 *
 * Encoding walks the loaded objects (dl_iterate_phdr) for the one with an
 * executable PT_LOAD segment containing the address; the first object
 * reported is the main program.  An address in no such segment (heap,
 * stack, data, anonymous JIT code) cannot be named and is refused.  The
 * object's GNU build id and, when the address is exactly a dynamic symbol,
 * the symbol's name go along as checks.
 *
 * Decoding finds the object in the child (the main program directly; a
 * shared object with dlopen, which returns the already loaded copy or loads
 * it), adds the offset to its base, and checks again that the result is in
 * that object's code, that the build id matches and that the symbol, if
 * there was one, is the same.  No dlsym, no registration.
 */
#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <limits.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mproc/common.h"
#include "common/fnref.h"

struct scan {
	/* Query: an address, or a base to identify an object by. */
	uintptr_t addr;
	/* Result. */
	int index;
	bool found;
	bool is_main;
	uintptr_t base;
	char name[PATH_MAX];
	uint8_t build_id[64];
	uint32_t build_id_len;
};

static void read_build_id(const struct dl_phdr_info *info, struct scan *s)
{
	s->build_id_len = 0;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		if (ph->p_type != PT_NOTE)
			continue;
		size_t align = ph->p_align == 8 ? 8 : 4;
		const uint8_t *p = (const uint8_t *)(info->dlpi_addr + ph->p_vaddr);
		size_t left = ph->p_memsz;
		while (left >= sizeof(ElfW(Nhdr))) {
			const ElfW(Nhdr) *nh = (const ElfW(Nhdr) *)p;
			size_t namesz = (nh->n_namesz + align - 1) & ~(align - 1);
			size_t descsz = (nh->n_descsz + align - 1) & ~(align - 1);
			size_t need = sizeof(*nh) + namesz + descsz;
			if (need > left || namesz < nh->n_namesz ||
			    descsz < nh->n_descsz)
				break;
			const char *name = (const char *)(nh + 1);
			if (nh->n_type == NT_GNU_BUILD_ID && nh->n_namesz == 4 &&
			    !memcmp(name, "GNU", 4) &&
			    nh->n_descsz <= sizeof(s->build_id)) {
				memcpy(s->build_id, name + namesz, nh->n_descsz);
				s->build_id_len = nh->n_descsz;
				return;
			}
			p += need;
			left -= need;
		}
	}
}

static bool in_code(const struct dl_phdr_info *info, uintptr_t addr)
{
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X))
			continue;
		uintptr_t start = info->dlpi_addr + ph->p_vaddr;
		if (addr >= start && addr - start < ph->p_memsz)
			return true;
	}
	return false;
}

static int scan_cb(struct dl_phdr_info *info, size_t size, void *data)
{
	(void)size;
	struct scan *s = data;
	int index = s->index++;
	if (!in_code(info, s->addr))
		return 0;
	s->found = true;
	s->is_main = index == 0;
	s->base = info->dlpi_addr;
	snprintf(s->name, sizeof(s->name), "%s",
		 info->dlpi_name ? info->dlpi_name : "");
	read_build_id(info, s);
	return 1;
}

static void scan_addr(uintptr_t addr, struct scan *s)
{
	memset(s, 0, sizeof(*s));
	s->addr = addr;
	dl_iterate_phdr(scan_cb, s);
}

void mproc__fnref_clear(struct mproc__fnref *ref)
{
	if (!ref)
		return;
	free(ref->path);
	free(ref->symbol);
	memset(ref, 0, sizeof(*ref));
}

int mproc__fnref_encode(const void *fn, struct mproc__fnref *out)
{
	memset(out, 0, sizeof(*out));
	if (!fn)
		return -MPROC_ENOSYMBOL;
	struct scan *s = malloc(sizeof(*s));
	if (!s)
		return -ENOMEM;
	scan_addr((uintptr_t)fn, s);
	int rc = -MPROC_ENOSYMBOL;
	if (!s->found)
		goto out;
	if (!s->is_main) {
		/* A shared object must be loadable by path in the child.  The
		 * vDSO and other nameless objects are not files. */
		if (!strchr(s->name, '/'))
			goto out;
		out->path = s->name[0] == '/' ? strdup(s->name)
					      : realpath(s->name, NULL);
		if (!out->path) {
			rc = errno == ENOMEM ? -ENOMEM : -MPROC_ENOSYMBOL;
			goto out;
		}
	}
	out->is_main = s->is_main;
	out->offset = (uint64_t)((uintptr_t)fn - s->base);
	out->build_id_len = s->build_id_len;
	memcpy(out->build_id, s->build_id, s->build_id_len);
	Dl_info di;
	if (dladdr(fn, &di) && di.dli_saddr == fn && di.dli_sname &&
	    strlen(di.dli_sname) < 1024) {
		out->symbol = strdup(di.dli_sname);
		if (!out->symbol) {
			rc = -ENOMEM;
			goto out;
		}
	}
	rc = 0;
out:
	if (rc)
		mproc__fnref_clear(out);
	free(s);
	return rc;
}

/* Find the main program's load base. */
static int main_base_cb(struct dl_phdr_info *info, size_t size, void *data)
{
	(void)size;
	*(uintptr_t *)data = info->dlpi_addr;
	return 1;
}

int mproc__fnref_resolve(const struct mproc__fnref *ref, void **fn,
			      char *why, size_t why_len)
{
	uintptr_t base = 0;
	if (ref->is_main) {
		dl_iterate_phdr(main_base_cb, &base);
	} else {
		if (!ref->path || ref->path[0] != '/') {
			snprintf(why, why_len, "no object path");
			return -MPROC_ENOSYMBOL;
		}
		/* The handle is never closed: the code must stay loaded for
		 * as long as the child may call it. */
		void *h = dlopen(ref->path, RTLD_NOW | RTLD_NOLOAD);
		if (!h)
			h = dlopen(ref->path, RTLD_NOW);
		struct link_map *lm = NULL;
		if (!h || dlinfo(h, RTLD_DI_LINKMAP, &lm) != 0 || !lm) {
			const char *e = dlerror();
			snprintf(why, why_len, "cannot load %s: %s", ref->path,
				 e ? e : "unknown error");
			return -MPROC_ENOSYMBOL;
		}
		base = lm->l_addr;
	}
	if (ref->offset > UINTPTR_MAX - base) {
		snprintf(why, why_len, "offset out of range");
		return -MPROC_ENOSYMBOL;
	}
	uintptr_t addr = base + (uintptr_t)ref->offset;
	struct scan *s = malloc(sizeof(*s));
	if (!s)
		return -ENOMEM;
	scan_addr(addr, s);
	int rc = -MPROC_ENOSYMBOL;
	if (!s->found || s->base != base || s->is_main != ref->is_main) {
		snprintf(why, why_len, "offset %#llx is not code of %s",
			 (unsigned long long)ref->offset,
			 ref->is_main ? "the main program" : ref->path);
		goto out;
	}
	if (ref->build_id_len &&
	    (s->build_id_len != ref->build_id_len ||
	     memcmp(s->build_id, ref->build_id, ref->build_id_len))) {
		snprintf(why, why_len, "%s is not the same build as the parent's",
			 ref->is_main ? "the main program" : ref->path);
		goto out;
	}
	if (ref->symbol) {
		Dl_info di;
		if (!dladdr((void *)addr, &di) || !di.dli_sname ||
		    (uintptr_t)di.dli_saddr != addr ||
		    strcmp(di.dli_sname, ref->symbol)) {
			snprintf(why, why_len, "symbol %s not found at its offset",
				 ref->symbol);
			goto out;
		}
	}
	*fn = (void *)addr;
	rc = 0;
out:
	free(s);
	return rc;
}
