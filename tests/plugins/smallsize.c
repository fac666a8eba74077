/*
 * smallsize.c - a broken plugin for the loader tests: the right ABI version,
 * but a size smaller than the version 1 struct (it ends before adopt()) and
 * no functions: a host must refuse it before calling anything.
 */
#include <stddef.h>

#include "executor.h"

const struct dagd_executor dagd_executor = {
	.abi_version = DAGD_EXECUTOR_ABI_VERSION,
	.size = offsetof(struct dagd_executor, adopt),
	.name = "smallsize",
	.description = "a plugin whose struct is too small for ABI 1",
};
