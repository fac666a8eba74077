/*
 * badabi.c - a broken plugin for the loader tests: built for an ABI version
 * (999) the host does not know.  It has no functions: a host must not look
 * past the version.
 */
#include "executor.h"

const struct dagd_executor dagd_executor = {
	.abi_version = 999,
	.size = sizeof(struct dagd_executor),
	.name = "badabi",
	.description = "a plugin built for ABI 999",
};
