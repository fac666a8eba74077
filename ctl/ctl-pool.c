/*
 * ctl-pool.c - dagctl pool set, list and delete: named pools with a size
 * (pool.set, pool.list, pool.delete).  A task naming a pool with a weight
 * ("pools": {"gpu": 1}) runs only while the pool has room for it.
 */
#include <inttypes.h>
#include <stdlib.h>

#include "dagctl.h"

static int64_t num(json_object *o, const char *key) {
	return json_object_get_int64(ctl_get(o, key, json_type_int));
}

static int show_pool(json_object *result) {
	printf("%s: size %" PRId64 ", %" PRId64 " in use\n", ctl_str(result, "name"), num(result, "size"),
	       num(result, "used"));
	return 0;
}

static int show_pools(json_object *result) {
	json_object *list = ctl_expect(result, "pools", json_type_array);
	_cleanup_(table_freep) struct table *t = NULL;

	if (!list)
		return -EBADMSG;
	t = table_new(5, "NAME", "SIZE", "USED", "QUEUED", "TASKS");
	for (size_t i = 0; i < json_object_array_length(list); i++) {
		json_object *p = json_object_array_get_idx(list, i);

		table_add(t, "%s", ctl_str(p, "name"));
		table_add(t, "%" PRId64, num(p, "size"));
		table_add(t, "%" PRId64, num(p, "used"));
		table_add(t, "%" PRId64, num(p, "queued"));
		table_add(t, "%" PRId64, num(p, "tasks"));
	}
	table_print(t);
	return 0;
}

static int show_nothing(json_object *result) {
	return 0;
}

static int set_exec(struct ctl *c, const struct ctl_cmd *cmd, json_object *args, int argc, char **argv) {
	const char *s = ctl_str(args, "size");
	char *end;
	long long n = strtoll(s, &end, 10);

	if (!*s || *end || n < 1)
		return ctl_usage_error(cmd, "SIZE '%s' is not a whole number >= 1", s);
	json_object_object_add(args, "size", json_object_new_int64(n));
	return ctl_run(c, cmd->call, args, show_pool);
}

const struct ctl_cmd ctl_cmd_pool_set = {
	.name = "pool set",
	.usage = "NAME SIZE",
	.summary = "Make a pool, or give one a new size",
	.details = "A task naming the pool with a weight (\"pools\": {\"gpu\": 1} in task.add or an\n"
		   "apply file) is dispatched only while the weights of the pool's running tasks\n"
		   "leave room for it.  A size below what a task not yet finished needs is refused.\n",
	.example = "  dagctl pool set gpu 2\n",
	.min_args = 2, .max_args = 2, .keys = { "name", "size" },
	.call = "pool.set", .exec = set_exec,
};

const struct ctl_cmd ctl_cmd_pool_list = {
	.name = "pool list",
	.usage = "",
	.summary = "List the pools: size, use, tasks queued and naming them",
	.min_args = 0, .max_args = 0,
	.call = "pool.list", .show = show_pools,
};

const struct ctl_cmd ctl_cmd_pool_delete = {
	.name = "pool delete",
	.usage = "NAME",
	.summary = "Delete a pool that no task names",
	.details = "Refused while a task (finished or not) names it: remove those tasks first\n"
		   "(dagctl task remove, dagctl project clean).\n",
	.min_args = 1, .max_args = 1, .keys = { "name" },
	.call = "pool.delete", .show = show_nothing,
};
