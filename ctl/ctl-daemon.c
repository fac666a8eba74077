/*
 * ctl-daemon.c - the daemon's own state: status (daemon.status), executors
 * (executor.list) and executors reload (executor.reload).
 */
#include <inttypes.h>

#include "dagctl.h"

static int show_status(json_object *result) {
	ctl_print_kv(result);
	return 0;
}

static int show_executors(json_object *result) {
	json_object *es = ctl_expect(result, "executors", json_type_array);
	_cleanup_(table_freep) struct table *t = NULL;

	if (!es)
		return -EBADMSG;
	t = table_new(5, "NAME", "LIMIT", "ACTIVE", "STATE", "DESCRIPTION");
	for (size_t i = 0; i < json_object_array_length(es); i++) {
		json_object *e = json_object_array_get_idx(es, i),
			*error = ctl_get(e, "error", json_type_string);

		table_add(t, "%s", ctl_str(e, "name"));
		table_add(t, "%" PRId64, json_object_get_int64(ctl_get(e, "limit", json_type_int)));
		table_add(t, "%" PRId64, json_object_get_int64(ctl_get(e, "active", json_type_int)));
		table_add(t, "%s%s", error ? "error: " : "loaded", error ? json_object_get_string(error) : "");
		table_add(t, "%s", ctl_str(e, "description"));
	}
	table_print(t);
	return 0;
}

const struct ctl_cmd ctl_cmd_status = {
	.name = "status",
	.usage = "",
	.summary = "Show the daemon's version, uptime, limits and task counts",
	.example = "  dagctl status\n",
	.call = "daemon.status", .show = show_status,
};

const struct ctl_cmd ctl_cmd_executors = {
	.name = "executors",
	.usage = "",
	.summary = "List the executor plugins, their limits and health",
	.details = "LIMIT 0 means the executor has no limit of its own.\n",
	.example = "  dagctl executors\n",
	.call = "executor.list", .show = show_executors,
};

const struct ctl_cmd ctl_cmd_executors_reload = {
	.name = "executors reload",
	.usage = "",
	.summary = "Load the plugin directory again; lists the executors",
	.example = "  dagctl executors reload\n",
	.call = "executor.reload", .show = show_executors,
};
