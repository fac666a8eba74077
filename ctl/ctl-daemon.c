/*
 * ctl-daemon.c - the daemon's own state: status (daemon.status), executors
 * (executor.list) and executors reload (executor.reload).
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "dagctl.h"

/* "accept", "database" and "executors" said in a line each: "ok", or what is
 * wrong. */
static json_object *health(const char *key, json_object *v) {
	char buf[512];

	if (strcmp(key, "executors") == 0) {
		int64_t loaded = json_object_get_int64(ctl_get(v, "loaded", json_type_int)),
			failed = json_object_get_int64(ctl_get(v, "failed", json_type_int));

		if (loaded == 0)
			snprintf(buf, sizeof buf, "NONE LOADED: no task can run (%" PRId64 " failed to load; "
				 "see 'dagctl executors')", failed);
		else
			snprintf(buf, sizeof buf, "%" PRId64 " loaded%s", loaded,
				 failed ? ", some failed to load (see 'dagctl executors')" : "");
		return json_object_new_string(buf);
	}
	if (strcmp(key, "database") == 0) {
		if (json_object_get_boolean(ctl_get(v, "writable", json_type_boolean)))
			return json_object_new_string("writable");
		snprintf(buf, sizeof buf, "NOT WRITABLE since %s: %s (%" PRId64 " turns refused; "
			 "reads still answered)", ctl_str(v, "failing_since"), ctl_str(v, "error"),
			 json_object_get_int64(ctl_get(v, "refused_turns", json_type_int)));
		return json_object_new_string(buf);
	}
	if (json_object_get_int64(ctl_get(v, "pauses", json_type_int)) == 0)
		return json_object_new_string("ok");
	snprintf(buf, sizeof buf, "%spaused %" PRId64 " times (last at %s: %s)",
		 json_object_get_boolean(ctl_get(v, "paused", json_type_boolean)) ? "PAUSED now; " : "",
		 json_object_get_int64(ctl_get(v, "pauses", json_type_int)),
		 ctl_str(v, "last_error_at"), ctl_str(v, "last_error"));
	return json_object_new_string(buf);
}

/* One executor's health: "ok, 2 active of 4", or why it is not loaded. */
static json_object *executor_health(json_object *e) {
	json_object *limit = ctl_get(e, "limit", json_type_int);
	int64_t active = json_object_get_int64(ctl_get(e, "active", json_type_int));
	char buf[512];

	if (!json_object_get_boolean(ctl_get(e, "loaded", json_type_boolean)))
		snprintf(buf, sizeof buf, "NOT LOADED: %s", ctl_str(e, "error"));
	else if (limit)
		snprintf(buf, sizeof buf, "ok, %" PRId64 " active of %" PRId64 "%s", active,
			 json_object_get_int64(limit), active >= json_object_get_int64(limit) ? " (full)" : "");
	else
		snprintf(buf, sizeof buf, "ok, %" PRId64 " active (no limit of its own)", active);
	return json_object_new_string(buf);
}

/* After the executors' count, a line for each: "executor local: ok, 0 active of 4". */
static void add_executors(json_object *o, json_object *each) {
	for (size_t i = 0; each && i < json_object_array_length(each); i++) {
		json_object *e = json_object_array_get_idx(each, i);
		char key[160];

		snprintf(key, sizeof key, "executor %s", ctl_str(e, "name"));
		json_object_object_add(o, key, executor_health(e));
	}
}

static int show_status(json_object *result) {
	_cleanup_(json_object_putp) json_object *o = json_object_new_object();
	char buf[64];

	if (!o)
		return -ENOMEM;
	json_object_object_foreach(result, k, v) {
		if (strcmp(k, "uptime") == 0 && (json_object_is_type(v, json_type_double) ||
						 json_object_is_type(v, json_type_int)))
			json_object_object_add(o, k, json_object_new_string(
				ctl_duration(json_object_get_double(v), buf)));
		else if ((strcmp(k, "database") == 0 || strcmp(k, "accept") == 0 ||
			  strcmp(k, "executors") == 0) && json_object_is_type(v, json_type_object))
			json_object_object_add(o, k, health(k, v));
		else
			json_object_object_add(o, k, json_object_get(v));
		if (strcmp(k, "executors") == 0)
			add_executors(o, ctl_get(v, "each", json_type_array));
	}
	ctl_print_kv(o);
	return 0;
}

static int show_executors(json_object *result) {
	json_object *es = ctl_expect(result, "executors", json_type_array);
	_cleanup_(table_freep) struct table *t = NULL;
	size_t loaded = 0;

	if (!es)
		return -EBADMSG;
	t = table_new(5, "NAME", "LIMIT", "ACTIVE", "STATE", "DESCRIPTION");
	for (size_t i = 0; i < json_object_array_length(es); i++) {
		json_object *e = json_object_array_get_idx(es, i),
			*error = ctl_get(e, "error", json_type_string),
			*status = ctl_get(e, "status", json_type_string);

		table_add(t, "%s", ctl_str(e, "name"));
		table_add(t, "%" PRId64, json_object_get_int64(ctl_get(e, "limit", json_type_int)));
		table_add(t, "%" PRId64, json_object_get_int64(ctl_get(e, "active", json_type_int)));
		if (error)
			table_add(t, "error: %s", json_object_get_string(error));
		else
			table_add(t, "loaded%s%s", status ? ": " : "", status ? json_object_get_string(status) : "");
		table_add(t, "%s", ctl_str(e, "description"));
		loaded += !error;
	}
	table_print(t);
	if (loaded == 0)
		fprintf(stderr, "dagctl: no executor is loaded: no task can run; see the errors above "
			"(and dagd --plugin-dir)\n");
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
