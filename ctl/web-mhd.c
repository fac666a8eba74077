/*
 * web-mhd.c - libmicrohttpd, loaded with dlopen() when `dagctl web` starts
 * rather than linked: every other command of dagctl then runs on machines
 * (and in containers) that do not have it.  web.h sends the MHD_* calls of
 * the other web files through the table filled here.
 */
#include <dlfcn.h>
#include <string.h>

#include "web.h"

#define MHD_SONAME "libmicrohttpd.so.12"

struct web_mhd web_mhd;

int web_mhd_load(char *err, size_t err_size) {
	static const struct { const char *name; size_t offset; } syms[] = {
#define SYM(f) { "MHD_" #f, offsetof(struct web_mhd, f) }
		SYM(start_daemon), SYM(stop_daemon), SYM(lookup_connection_value),
		SYM(create_response_from_buffer), SYM(create_response_from_callback),
		SYM(add_response_header), SYM(queue_response), SYM(destroy_response),
#undef SYM
	};
	void *h;

	if (web_mhd.start_daemon)
		return 0;
	h = dlopen(MHD_SONAME, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		snprintf(err, err_size, "cannot load %s (Debian: apt-get install libmicrohttpd12): %s",
			 MHD_SONAME, dlerror());
		return -ENOENT;
	}
	for (size_t i = 0; i < ELEMENTSOF(syms); i++) {
		void *f = dlsym(h, syms[i].name);

		if (!f) {
			snprintf(err, err_size, "%s has no %s: %s", MHD_SONAME, syms[i].name, dlerror());
			dlclose(h);
			memset(&web_mhd, 0, sizeof web_mhd);
			return -ENOENT;
		}
		memcpy((char *) &web_mhd + syms[i].offset, &f, sizeof f);
	}
	return 0;
}
