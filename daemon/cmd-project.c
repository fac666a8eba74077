/*
 * cmd-project.c - project.create, list, get, update, delete, set_autonomous,
 * start and clean.
 */
#include <stdio.h>

#include "dagd.h"

const char *const project_create_args[] = {
	"name", "autonomous", "max_concurrency", "executor", "executor_options", NULL
};
static const char *const project_args[] = { "project", NULL };
static const char *const project_update_args[] = {
	"project", "name", "autonomous", "max_concurrency", "executor", "executor_options", NULL
};
static const char *const project_set_autonomous_args[] = { "project", "enabled", NULL };
static const char *const project_clean_args[] = { "project", "failed", NULL };

static int project_reply(struct req *r, struct project *p)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "project", project_to_json(p));
	return reply_ok(r, o);
}

static int cmd_project_create(struct req *r)
{
	struct project *p;
	int k = project_create(r->args, &p);

	return k < 0 ? reply_errno(r, k) : project_reply(r, p);
}

static int cmd_project_list(struct req *r)
{
	json_object *o, *a;
	int64_t after, last = 0;
	size_t limit, n = 0;
	int k = arg_page(r->args, 'p', &after, &limit);

	if (k < 0)
		return reply_errno(r, k);
	o = json_object_new_object();
	a = json_object_new_array();
	for (size_t i = (size_t) after + 1; i < n_projects; i++)
		if (projects[i]) {
			if (limit && n == limit) {
				char id[24];

				snprintf(id, sizeof(id), "p-%lld", (long long) last);
				json_object_object_add(o, "next", json_object_new_string(id));
				break;
			}
			json_object_array_add(a, project_to_json(projects[i]));
			last = projects[i]->id;
			n++;
		}
	json_object_object_add(o, "projects", a);
	return reply_ok(r, o);
}

static int cmd_project_get(struct req *r)
{
	struct project *p;
	int k = req_project(r, "project", &p);

	return k < 0 ? reply_errno(r, k) : project_reply(r, p);
}

static int cmd_project_update(struct req *r)
{
	struct project *p;
	int k = req_project(r, "project", &p);

	if (k >= 0)
		k = project_update(p, r->args);
	return k < 0 ? reply_errno(r, k) : project_reply(r, p);
}

static int cmd_project_delete(struct req *r)
{
	struct project *p;
	json_object *o;
	int k = req_project(r, "project", &p);

	if (k < 0)
		return reply_errno(r, k);
	o = json_object_new_object();
	json_object_object_add(o, "project", project_to_json(p));
	k = project_delete(p);
	if (k < 0) {
		json_object_put(o);
		return reply_errno(r, k);
	}
	return reply_ok(r, o);
}

static int cmd_project_set_autonomous(struct req *r)
{
	struct project *p;
	bool on;
	int k = req_project(r, "project", &p);

	if (k >= 0)
		k = arg_required(arg_bool(r->args, "enabled", &on), "enabled");
	if (k >= 0)
		k = project_set_autonomous(p, on);
	return k < 0 ? reply_errno(r, k) : project_reply(r, p);
}

static int cmd_project_start(struct req *r)
{
	struct project *p;
	json_object *released, *held, *o;
	int k = req_project(r, "project", &p);

	if (k >= 0)
		k = project_start(p, &released, &held);
	if (k < 0)
		return reply_errno(r, k);
	o = json_object_new_object();
	json_object_object_add(o, "released", released);
	json_object_object_add(o, "held", held);
	return reply_ok(r, o);
}

static int cmd_project_clean(struct req *r)
{
	struct project *p;
	json_object *removed, *kept, *o;
	bool failed = false;
	int k = req_project(r, "project", &p);

	if (k >= 0 && (k = arg_bool(r->args, "failed", &failed)) == -ENOENT)
		k = 0;
	if (k >= 0)
		k = project_clean(p, failed, &removed, &kept);
	if (k < 0)
		return reply_errno(r, k);
	o = json_object_new_object();
	json_object_object_add(o, "removed", removed);
	json_object_object_add(o, "kept", kept);
	return reply_ok(r, o);
}

const struct cmd_entry cmd_project_create_entry = { "project.create", cmd_project_create, 0, project_create_args };
static const char *const page_args[] = { "after", "limit", NULL };
const struct cmd_entry cmd_project_list_entry = { "project.list", cmd_project_list, 0, page_args };
const struct cmd_entry cmd_project_get_entry = { "project.get", cmd_project_get, 0, project_args };
const struct cmd_entry cmd_project_update_entry = { "project.update", cmd_project_update, 0, project_update_args };
const struct cmd_entry cmd_project_delete_entry = { "project.delete", cmd_project_delete, 0, project_args };
const struct cmd_entry cmd_project_set_autonomous_entry = { "project.set_autonomous", cmd_project_set_autonomous, 0, project_set_autonomous_args };
const struct cmd_entry cmd_project_start_entry = { "project.start", cmd_project_start, 0, project_args };
const struct cmd_entry cmd_project_clean_entry = { "project.clean", cmd_project_clean, 0, project_clean_args };
