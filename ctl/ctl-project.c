/*
 * ctl-project.c - the project commands: project create, list, show, set and
 * delete; autonomous (project.set_autonomous) and start (project.start).
 */
#include <inttypes.h>
#include <string.h>

#include "dagctl.h"

static int show_project(json_object *result) {
	json_object *p = ctl_expect(result, "project", json_type_object);

	if (!p)
		return -EBADMSG;
	ctl_print_kv(p);
	return 0;
}

static int show_project_id(json_object *result) {
	json_object *p = ctl_expect(result, "project", json_type_object);

	if (!p)
		return -EBADMSG;
	puts(ctl_str(p, "id"));
	return 0;
}

static int64_t count(json_object *counts, const char *const *statuses) {
	int64_t n = 0;

	for (; *statuses; statuses++)
		n += json_object_get_int64(ctl_get(counts, *statuses, json_type_int));
	return n;
}

static int show_projects(json_object *result) {
	static const char *const waiting[] = { "waiting", NULL }, *const ready[] = { "ready", "awaiting_approval", NULL },
		*const running[] = { "spawning", "running", "pending_validation", "validating", NULL },
		*const done[] = { "completed", "skipped", NULL },
		*const failed[] = { "failed", "upstream_failed", NULL },
		*const cancelled[] = { "cancelled", NULL };
	json_object *ps = ctl_expect(result, "projects", json_type_array);
	_cleanup_(table_freep) struct table *t = NULL;

	if (!ps)
		return -EBADMSG;
	t = table_new(11, "ID", "NAME", "MODE", "MAXCONC", "ACTIVE",
		      "WAIT", "READY", "RUN", "DONE", "FAIL", "CANCEL");
	for (size_t i = 0; i < json_object_array_length(ps); i++) {
		json_object *p = json_object_array_get_idx(ps, i),
			*counts = ctl_get(p, "counts", json_type_object);

		table_add(t, "%s", ctl_str(p, "id"));
		table_add(t, "%s", ctl_str(p, "name"));
		table_add(t, "%s", json_object_get_boolean(ctl_get(p, "autonomous_execution_enabled",
								   json_type_boolean)) ? "auto" : "manual");
		table_add(t, "%" PRId64, json_object_get_int64(ctl_get(p, "max_concurrency", json_type_int)));
		table_add(t, "%" PRId64, json_object_get_int64(ctl_get(p, "active", json_type_int)));
		table_add(t, "%" PRId64, count(counts, waiting));
		table_add(t, "%" PRId64, count(counts, ready));
		table_add(t, "%" PRId64, count(counts, running));
		table_add(t, "%" PRId64, count(counts, done));
		table_add(t, "%" PRId64, count(counts, failed));
		table_add(t, "%" PRId64, count(counts, cancelled));
	}
	table_print(t);
	return 0;
}

static int show_deleted(json_object *result) {
	json_object *p = ctl_expect(result, "project", json_type_object);

	if (!p)
		return -EBADMSG;
	printf("deleted %s (%s)\n", ctl_str(p, "id"), ctl_str(p, "name"));
	return 0;
}

static int show_mode(json_object *result) {
	json_object *p = ctl_expect(result, "project", json_type_object);

	if (!p)
		return -EBADMSG;
	printf("%s %s: autonomous %s\n", ctl_str(p, "id"), ctl_str(p, "name"),
	       json_object_get_boolean(ctl_get(p, "autonomous_execution_enabled", json_type_boolean))
	       ? "on" : "off");
	return 0;
}

static int show_released(json_object *result) {
	json_object *ids = ctl_expect(result, "released", json_type_array), *held;

	if (!ids)
		return -EBADMSG;
	for (size_t i = 0; i < json_object_array_length(ids); i++) {
		ctl_put_value(stdout, json_object_array_get_idx(ids, i));
		putchar('\n');
	}
	if (json_object_array_length(ids) == 0)
		fputs("dagctl: no ready task to release\n", stderr);
	held = ctl_get(result, "held", json_type_array);
	if (held && json_object_array_length(held) > 0) {
		fputs("dagctl: held, so not released:", stderr);
		for (size_t i = 0; i < json_object_array_length(held); i++)
			fprintf(stderr, " %s", json_object_get_string(json_object_array_get_idx(held, i)) ?: "?");
		fputc('\n', stderr);
	}
	return 0;
}

static int set_exec(struct ctl *c, const struct ctl_cmd *cmd, json_object *args,
		    int argc, char **argv) {
	if (json_object_object_length(args) < 2)
		return ctl_usage_error(cmd, "nothing to change");
	return ctl_run(c, cmd->call, args, show_project);
}

static int autonomous_exec(struct ctl *c, const struct ctl_cmd *cmd, json_object *args,
			   int argc, char **argv) {
	bool on = strcmp(argv[1], "on") == 0 || strcmp(argv[1], "true") == 0;

	if (!on && strcmp(argv[1], "off") != 0 && strcmp(argv[1], "false") != 0)
		return ctl_usage_error(cmd, "'%s' is neither on nor off", argv[1]);
	json_object_object_add(args, "enabled", json_object_new_boolean(on));
	return ctl_run(c, cmd->call, args, show_mode);
}

#define PROJECT_SETTINGS \
	{ "max-concurrency", "N", ARG_INT, "max_concurrency", 1, \
	  "run at most N of its tasks at once (default 5)" }, \
	{ "executor", "NAME", ARG_STRING, "executor", 0, \
	  "the executor its tasks run in (default local)" }, \
	{ "executor-options", "JSON", ARG_OBJECT, "executor_options", 0, \
	  "the executor's options, a JSON object" }

static const struct ctl_opt create_opts[] = {
	{ "autonomous", NULL, ARG_TRUE, "autonomous", 0,
	  "start ready tasks on its own (default: wait for 'dagctl start')" },
	PROJECT_SETTINGS,
	{}
};

static const struct ctl_opt set_opts[] = {
	{ "name", "NAME", ARG_STRING, "name", 0, "rename it" },
	PROJECT_SETTINGS,
	{}
};

const struct ctl_cmd ctl_cmd_project_create = {
	.name = "project create",
	.usage = "NAME [OPTION...]",
	.summary = "Create a project; prints its id",
	.details = "NAME is 1 to 64 of [A-Za-z0-9._-], not of the form p-N.\n",
	.example = "  dagctl project create build --max-concurrency 2\n",
	.opts = create_opts,
	.min_args = 1, .max_args = 1, .keys = { "name" },
	.call = "project.create", .show = show_project_id,
};

const struct ctl_cmd ctl_cmd_project_list = {
	.name = "project list",
	.usage = "",
	.summary = "List the projects with their task counts",
	.details = "READY counts ready tasks and those awaiting approval; RUN spawning, running\n"
		   "and validating tasks; FAIL failed and upstream_failed ones; ACTIVE the tasks\n"
		   "holding a slot.\n",
	.example = "  dagctl project list\n",
	.call = "project.list", .show = show_projects,
};

const struct ctl_cmd ctl_cmd_project_show = {
	.name = "project show",
	.usage = "PROJECT",
	.summary = "Show a project (by id or name)",
	.example = "  dagctl project show build\n",
	.min_args = 1, .max_args = 1, .keys = { "project" },
	.call = "project.get", .show = show_project,
};

const struct ctl_cmd ctl_cmd_project_set = {
	.name = "project set",
	.usage = "PROJECT OPTION...",
	.summary = "Change a project's settings",
	.example = "  dagctl project set build --max-concurrency 8 --name build-main\n",
	.opts = set_opts,
	.min_args = 1, .max_args = 1, .keys = { "project" },
	.call = "project.update", .exec = set_exec,
};

const struct ctl_cmd ctl_cmd_project_delete = {
	.name = "project delete",
	.usage = "PROJECT",
	.summary = "Delete a project and its tasks",
	.details = "Refused (invalid_state) while one of its tasks holds a slot.\n",
	.example = "  dagctl project delete build\n",
	.min_args = 1, .max_args = 1, .keys = { "project" },
	.call = "project.delete", .show = show_deleted,
};

const struct ctl_cmd ctl_cmd_autonomous = {
	.name = "autonomous",
	.usage = "PROJECT on|off",
	.summary = "Turn a project's autonomous mode on or off",
	.details = "On, its ready tasks start as soon as slots allow, now and whenever tasks\n"
		   "become unblocked.  Off, nothing new starts and nothing running stops.\n",
	.example = "  dagctl autonomous build on\n",
	.min_args = 2, .max_args = 2, .keys = { "project" },
	.call = "project.set_autonomous", .exec = autonomous_exec,
};

const struct ctl_cmd ctl_cmd_start = {
	.name = "start",
	.usage = "PROJECT",
	.summary = "Release a manual project's ready tasks; prints their ids",
	.details = "Only the tasks ready at this moment are released; tasks unblocked later\n"
		   "wait for another start (or autonomous mode).  Held tasks are passed by, and\n"
		   "said so on stderr.\n",
	.example = "  dagctl start build\n",
	.min_args = 1, .max_args = 1, .keys = { "project" },
	.call = "project.start", .show = show_released,
};
