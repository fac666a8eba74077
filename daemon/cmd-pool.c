/*
 * cmd-pool.c - pool.set, pool.list and pool.delete: named pools with a size
 * (engine-pools.c).  For operators, as every command on projects.
 */
#include "dagd.h"

static const char *const set_args[] = { "name", "size", NULL };
static const char *const list_args[] = { NULL };
static const char *const delete_args[] = { "name", NULL };

static int cmd_pool_set(struct req *r)
{
	json_object *o;
	const char *name;
	int64_t size;
	int k = arg_required(arg_string(r->args, "name", &name), "name");

	if (k >= 0)
		k = arg_required(arg_int(r->args, "size", 1, 1000000, &size), "size");
	if (k >= 0)
		k = pool_set(name, size, &o);
	return k < 0 ? reply_errno(r, k) : reply_ok(r, o);
}

static int cmd_pool_list(struct req *r)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "pools", pools_to_json());
	return reply_ok(r, o);
}

static int cmd_pool_delete(struct req *r)
{
	const char *name;
	int k = arg_required(arg_string(r->args, "name", &name), "name");

	if (k >= 0)
		k = pool_delete(name);
	return k < 0 ? reply_errno(r, k) : reply_ok(r, NULL);
}

const struct cmd_entry cmd_pool_set_entry = { "pool.set", cmd_pool_set, 0, set_args };
const struct cmd_entry cmd_pool_list_entry = { "pool.list", cmd_pool_list, 0, list_args };
const struct cmd_entry cmd_pool_delete_entry = { "pool.delete", cmd_pool_delete, 0, delete_args };
