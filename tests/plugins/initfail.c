/*
 * initfail.c - a broken plugin for the loader tests: a valid ABI 1 plugin
 * whose init() fails with -EINVAL and the message "init failed on purpose".
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "executor.h"

static int initfail_init(const struct dagd_host *host, const char *options_json,
			 void **ret_state, char **ret_error) {
	if (ret_error)
		*ret_error = strdup("init failed on purpose");
	return -EINVAL;
}

static void initfail_shutdown(void *state) {
}

static int initfail_spawn(void *state, struct dagd_sandbox *sb, const struct dagd_spawn *spec,
			  void **ret_data, char **ret_error) {
	return -EOPNOTSUPP;
}

static int initfail_cancel(void *state, struct dagd_sandbox *sb, void *data, uint64_t grace_usec) {
	return -EOPNOTSUPP;
}

static int initfail_adopt(void *state, struct dagd_sandbox *sb, const struct dagd_spawn *spec,
			  const char *handle, void **ret_data, char **ret_error) {
	return -EOPNOTSUPP;
}

const struct dagd_executor dagd_executor = {
	.abi_version = DAGD_EXECUTOR_ABI_VERSION,
	.size = sizeof(struct dagd_executor),
	.name = "initfail",
	.description = "a plugin whose init() always fails",
	.init = initfail_init,
	.shutdown = initfail_shutdown,
	.spawn = initfail_spawn,
	.cancel = initfail_cancel,
	.adopt = initfail_adopt,
};
