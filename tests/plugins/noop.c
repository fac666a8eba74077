/*
 * noop.c - an executor that runs nothing: each sandbox starts at once and
 * exits 0 from a defer source.  Built from the public header only, like any
 * out-of-tree plugin, twice: noop.so, of this header's version, measures the
 * scheduler alone (tests/bench/engine); noop-v1.so (NOOP_V1) is a version-1
 * plugin (its struct ends with adopt()), so that the tests prove that
 * today's host still loads and drives one.
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "executor.h"

struct noop_sandbox {
	const struct dagd_host *host;
	struct dagd_sandbox *sb;
	sd_event_source *defer;
};

static const struct dagd_host *host;

static int noop_init(const struct dagd_host *h, const char *options_json, void **ret_state, char **ret_error) {
	host = h;
	*ret_state = NULL;
	return 0;
}

static void noop_shutdown(void *state) {
}

static int on_defer(sd_event_source *s, void *userdata) {
	struct noop_sandbox *x = userdata;
	struct dagd_exit e = { .code = 0 };
	struct dagd_sandbox *sb = x->sb;

	sd_event_source_disable_unref(x->defer);
	free(x);
	host->sandbox_exited(sb, &e);
	return 0;
}

static int noop_spawn(void *state, struct dagd_sandbox *sb, const struct dagd_spawn *spec, void **ret_data,
		      char **ret_error) {
	struct noop_sandbox *x = calloc(1, sizeof(*x));

	if (!x)
		return -ENOMEM;
	x->sb = sb;
	if (sd_event_add_defer(host->event, &x->defer, on_defer, x) < 0) {
		free(x);
		return -ENOMEM;
	}
	host->sandbox_started(sb, spec->sandbox_id);
	*ret_data = x;
	return 0;
}

static int noop_cancel(void *state, struct dagd_sandbox *sb, void *data, uint64_t grace_usec) {
	return 0;       /* it ends at once anyway */
}

static int noop_adopt(void *state, struct dagd_sandbox *sb, const struct dagd_spawn *spec, const char *handle,
		      void **ret_data, char **ret_error) {
	return noop_spawn(state, sb, spec, ret_data, ret_error);
}

/* what the two builds export alike */
#define NOOP_CALLS \
	.name = "noop", \
	.init = noop_init, \
	.shutdown = noop_shutdown, \
	.spawn = noop_spawn, \
	.cancel = noop_cancel, \
	.adopt = noop_adopt

#ifdef NOOP_V1
/* what a plugin built against the version-1 header exported */
struct dagd_executor_v1 {
	uint32_t abi_version, size;
	const char *name, *description;
	unsigned max_concurrency;
	int (*init)(const struct dagd_host *, const char *, void **, char **);
	void (*shutdown)(void *);
	int (*spawn)(void *, struct dagd_sandbox *, const struct dagd_spawn *, void **, char **);
	int (*cancel)(void *, struct dagd_sandbox *, void *, uint64_t);
	int (*adopt)(void *, struct dagd_sandbox *, const struct dagd_spawn *, const char *, void **, char **);
};

DAGD_EXECUTOR_EXPORT const struct dagd_executor_v1 dagd_executor = {
	.abi_version = 1,
	.size = sizeof(struct dagd_executor_v1),
	.description = "runs nothing: every sandbox exits 0 at once (version 1 of the ABI)",
	NOOP_CALLS,
};
#else
DAGD_EXECUTOR_EXPORT const struct dagd_executor dagd_executor = {
	.abi_version = DAGD_EXECUTOR_ABI_VERSION,
	.size = sizeof(struct dagd_executor),
	.description = "runs nothing: every sandbox exits 0 at once",
	NOOP_CALLS,
};
#endif
