/*
 * ctl-task.c - the task commands: task add, list, show, cancel, retry (of
 * several tasks, or of every failed one; a completed one reruns, with what
 * depends on it if asked), start, depend and undepend; and
 * unblocked (task.unblocked).  task logs is
 * in ctl-logs.c.
 */
#include <inttypes.h>
#include <string.h>

#include "dagctl.h"

static int show_task(json_object *result) {
	json_object *t = ctl_expect(result, "task", json_type_object);

	if (!t)
		return -EBADMSG;
	ctl_print_kv(t);
	return 0;
}

static int show_task_id(json_object *result) {
	json_object *t = ctl_expect(result, "task", json_type_object);

	if (!t)
		return -EBADMSG;
	puts(ctl_str(t, "id"));
	return 0;
}

static int show_task_status(json_object *result) {
	json_object *t = ctl_expect(result, "task", json_type_object);
	char buf[64];

	if (!t)
		return -EBADMSG;
	printf("%s: %s%s\n", ctl_str(t, "id"), ctl_status_text(t, buf),
	       json_object_get_boolean(ctl_get(t, "released", json_type_boolean)) &&
	       strcmp(ctl_str(t, "status"), "ready") == 0 ? " (released)" : "");
	return 0;
}

static int show_deps(json_object *result) {
	json_object *t = ctl_expect(result, "task", json_type_object);
	char label[128];

	if (!t)
		return -EBADMSG;
	snprintf(label, sizeof label, "%s depends on", ctl_str(t, "id"));
	ctl_print_ids(label, ctl_get(t, "depends_on", json_type_array));
	return 0;
}

/* The first few ids of a list, "t-1,t-2,t-3,+4", or "-". */
static const char *short_list(json_object *ids, char *buf, size_t size) {
	size_t n = json_object_is_type(ids, json_type_array) ? json_object_array_length(ids) : 0, k = 0;

	if (n == 0)
		return "-";
	buf[0] = '\0';
	for (size_t i = 0; i < n && i < 3 && k < size; i++)
		k += snprintf(buf + k, size - k, "%s%s", i ? "," : "",
			      json_object_get_string(json_object_array_get_idx(ids, i)) ?: "?");
	if (n > 3 && k < size)
		snprintf(buf + k, size - k, ",+%zu", n - 3);
	return buf;
}

/* A table of tasks; a PROJECT column when they are of more than one. */
int ctl_show_tasks(json_object *result) {
	json_object *ts = ctl_expect(result, "tasks", json_type_array);
	_cleanup_(table_freep) struct table *t = NULL;
	bool projects = false;
	size_t n;

	if (!ts)
		return -EBADMSG;
	n = json_object_array_length(ts);
	for (size_t i = 1; i < n; i++)
		if (strcmp(ctl_str(json_object_array_get_idx(ts, i), "project_id"),
			   ctl_str(json_object_array_get_idx(ts, 0), "project_id")) != 0)
			projects = true;
	t = projects ? table_new(8, "PROJECT", "ID", "NAME", "STATUS", "ATTEMPT", "PRIO", "DEPS", "TITLE")
		     : table_new(7, "ID", "NAME", "STATUS", "ATTEMPT", "PRIO", "DEPS", "TITLE");
	for (size_t i = 0; i < n; i++) {
		json_object *k = json_object_array_get_idx(ts, i);
		char deps[128], status[64];

		if (projects)
			table_add(t, "%s", ctl_str(k, "project_id"));
		table_add(t, "%s", ctl_str(k, "id"));
		table_add(t, "%s", ctl_str(k, "name"));
		table_add(t, "%s", ctl_status_text(k, status));
		table_add(t, "%" PRId64, json_object_get_int64(ctl_get(k, "attempt", json_type_int)));
		table_add(t, "%s", ctl_str(k, "priority"));
		table_add(t, "%s", short_list(ctl_get(k, "depends_on", json_type_array), deps, sizeof deps));
		table_add(t, "%s", ctl_str(k, "title"));
	}
	table_print(t);
	return 0;
}

static const struct ctl_opt add_opts[] = {
	{ "title", "TEXT", ARG_STRING, "title", 0, "what it does, for people (required)" },
	{ "name", "NAME", ARG_STRING, "name", 0, "a name, unique in the project" },
	{ "after", "TASK", ARG_STRINGS, "depends_on", 0,
	  "run after TASK (an id, a NAME of this project, or PROJECT/NAME); repeat for more" },
	{ "priority", "P", ARG_STRING, "priority", 0, "critical, high, medium (default) or low" },
	{ "retries", "N", ARG_INT, "max_retries", 0, "retry a failed run N times (default 0)" },
	{ "backoff", "SECONDS", ARG_SECONDS, "retry_backoff", 0,
	  "wait before the first retry, doubled for each next (default 1)" },
	{ "timeout", "SECONDS", ARG_SECONDS, "timeout", 0, "stop a run after this long (default 0: never)" },
	{ "executor", "NAME", ARG_STRING, "executor", 0, "run it in this executor (default: the project's)" },
	{ "executor-options", "JSON", ARG_OBJECT, "executor_options", 0, "the executor's options, a JSON object" },
	{ "env", "KEY=VALUE", ARG_ENV, "env", 0, "set in its environment; repeat for more" },
	{ "cwd", "DIR", ARG_STRING, "cwd", 0, "run it in DIR" },
	{ "validate", "COMMAND", ARG_STRING, "validation_command", 0,
	  "a shell command that must pass before it is completed" },
	{ "trigger", "RULE", ARG_STRING, "trigger", 0,
	  "when it runs: all_succeeded (default), all_done, any_failed, none_failed, any_succeeded, "
	  "all_failed, or 'a.succeeded && !b.failed'" },
	{ "shell", "STRING", ARG_STRING, "command", 0, "run STRING with /bin/sh -c, instead of -- COMMAND" },
	{ "retry-on-exit", "JSON", ARG_JSON, "retry_on_exit", 0, "retry only these exit codes, e.g. '[75]'" },
	{ "no-retry-on-exit", "JSON", ARG_JSON, "no_retry_on_exit", 0, "never retry these exit codes" },
	{ "lost-retries", "N", ARG_INT, "max_lost_retries", 0,
	  "retry a sandbox the executor lost N times, apart from --retries (default 3)" },
	{ "retry-for", "SECONDS", ARG_SECONDS, "max_retry_duration", 0,
	  "no retry once this long has passed since the first attempt started" },
	{ "pools", "JSON", ARG_OBJECT, "pools", 0, "the pools it needs room in, e.g. '{\"gpu\": 1}'" },
	{ "map-over", "TASK", ARG_STRING, "map_over", 0,
	  "run once per item of the JSON array TASK (one of --after) reports: NAME[0], NAME[1], ..." },
	{ "map-concurrency", "N", ARG_INT, "map_concurrency", 0, "run at most N of those at a time" },
	{}
};

static const struct ctl_opt list_opts[] = {
	{ "project", "PROJECT", ARG_STRING, "project", 0, "only this project's tasks (as PROJECT does)" },
	{ "status", "STATUS", ARG_STRINGS, "status", 0, "only tasks in STATUS; repeat for more" },
	{}
};

static const struct ctl_opt on_opts[] = {
	{ "on", "TASK", ARG_STRINGS, "on", 0, "the task it depends on; repeat for more" },
	CTL_OPT_PROJECT,
	{}
};

/* The commands that take one TASK: an id, PROJECT/NAME, or NAME with -p. */
static const struct ctl_opt task_opts[] = {
	CTL_OPT_PROJECT,
	{}
};

#define TASK_REF_DETAILS \
	"TASK is an id (t-7), PROJECT/NAME, or a NAME with --project PROJECT.\n"

static const struct ctl_opt unblocked_opts[] = {
	{ "project", "PROJECT", ARG_STRING, "project", 0, "only this project's tasks" },
	{ "limit", "N", ARG_INT, "limit", 1, "at most N tasks (default 50)" },
	{ "after", "CURSOR", ARG_STRING, "after", 0, "the page after the one whose \"next\" (--json) was CURSOR" },
	{}
};

const struct ctl_cmd ctl_cmd_task_add = {
	.name = "task add",
	.usage = "PROJECT --title TEXT [OPTION...] (-- COMMAND [ARG...] | --shell STRING)",
	.summary = "Add a task to a project; prints its id",
	.details = "The words after '--' are run as they are (an argv); --shell runs a string\n"
		   "with /bin/sh -c.  The task waits for the tasks given with --after: ids, names\n"
		   "of tasks of PROJECT, or PROJECT/NAME.\n",
	.example = "  dagctl task add build --title Compile --name compile -- make -j4\n"
		   "  dagctl task add build --title Test --after compile --retries 2 --shell 'make check'\n",
	.opts = add_opts,
	.min_args = 1, .max_args = 1, .keys = { "project" },
	.dashdash = "command", .required = { "title", "command" },
	.call = "task.add", .show = show_task_id,
};

const struct ctl_cmd ctl_cmd_task_list = {
	.name = "task list",
	.usage = "[PROJECT | -p PROJECT] [--status STATUS]...",
	.summary = "List tasks, of one project or of all",
	.details = "Statuses: waiting ready awaiting_approval spawning running pending_validation\n"
		   "validating completed failed upstream_failed cancelled skipped.  A task waiting out the backoff\n"
		   "before a retry shows as \"ready (retry in 12s)\".\n",
	.example = "  dagctl task list build --status failed --status upstream_failed\n",
	.opts = list_opts,
	.min_args = 0, .max_args = 1, .keys = { "project" },
	.call = "task.list", .show = ctl_show_tasks,
};

const struct ctl_cmd ctl_cmd_task_show = {
	.name = "task show",
	.usage = "TASK [-p PROJECT]",
	.summary = "Show a task",
	.details = TASK_REF_DETAILS,
	.example = "  dagctl task show t-3\n"
		   "  dagctl task show build/compile\n",
	.opts = task_opts,
	.min_args = 1, .max_args = 1, .keys = { "task_id" },
	.call = "task.get", .show = show_task,
};

const struct ctl_cmd ctl_cmd_task_cancel = {
	.name = "task cancel",
	.usage = "TASK [-p PROJECT]",
	.summary = "Cancel a task, stopping its sandbox",
	.details = "The tasks that depend on it become upstream_failed.\n" TASK_REF_DETAILS,
	.example = "  dagctl task cancel t-3\n",
	.opts = task_opts,
	.min_args = 1, .max_args = 1, .keys = { "task_id" },
	.call = "task.cancel", .show = show_task_status,
};

/* The ids of a project's failed tasks, into ids. */
static int failed_tasks(struct ctl *c, const char *project, json_object *ids) {
	_cleanup_(json_object_putp) json_object *args = json_object_new_object(), *result = NULL;
	json_object *ts;
	int r;

	if (!args)
		return -ENOMEM;
	json_object_object_add(args, "project", json_object_new_string(project));
	json_object_object_add(args, "status", json_object_new_string("failed"));
	r = ctl_call(c, "task.list", args, &result);
	if (r < 0)
		return r;
	ts = ctl_expect(result, "tasks", json_type_array);
	if (!ts)
		return -EBADMSG;
	for (size_t i = 0; i < json_object_array_length(ts); i++)
		json_object_array_add(ids, json_object_new_string(ctl_str(json_object_array_get_idx(ts, i), "id")));
	return 0;
}

/* task retry of each task named (or of each failed task of the project),
 * going on past a refusal; the first error is the exit status. */
static int retry_exec(struct ctl *c, const struct ctl_cmd *cmd, json_object *args,
		      int argc, char **argv) {
	_cleanup_(json_object_putp) json_object *ids = json_object_new_array(),
		*all = json_object_new_array(), *rerun = json_object_new_array();
	json_object *given = ctl_get(args, "task_id", json_type_array);
	const char *project = json_object_get_string(ctl_get(args, "project", json_type_string));
	bool failed = json_object_get_boolean(ctl_get(args, "all_failed", json_type_boolean));
	bool downstream = json_object_get_boolean(ctl_get(args, "downstream", json_type_boolean));
	bool dry_run = json_object_get_boolean(ctl_get(args, "dry_run", json_type_boolean));
	int r, ret = 0;

	if (!ids || !all || !rerun)
		return -ENOMEM;
	if (failed == (given != NULL))
		return ctl_usage_error(cmd, "name the TASKs or give --all-failed, one of them");
	if (failed && !project)
		return ctl_usage_error(cmd, "--all-failed needs -p PROJECT");
	if (failed) {
		r = failed_tasks(c, project, ids);
		if (r < 0)
			return r;
		if (json_object_array_length(ids) == 0 && !c->json)
			fprintf(stderr, "dagctl: no failed task in %s\n", project);
	} else
		for (size_t i = 0; i < json_object_array_length(given); i++)
			json_object_array_add(ids, json_object_get(json_object_array_get_idx(given, i)));

	for (size_t i = 0; i < json_object_array_length(ids); i++) {
		_cleanup_(json_object_putp) json_object *a = json_object_new_object(), *result = NULL;

		if (!a)
			return -ENOMEM;
		json_object *more;

		json_object_object_add(a, "task_id", json_object_get(json_object_array_get_idx(ids, i)));
		if (downstream)
			json_object_object_add(a, "downstream", json_object_new_boolean(true));
		if (dry_run)
			json_object_object_add(a, "dry_run", json_object_new_boolean(true));
		r = ctl_call(c, "task.retry", a, &result);
		if (r < 0) {
			if (ctl_lost(r) || r == -EBADMSG)
				return r;
			ret = ret ?: r;
			continue;
		}
		if (!ctl_expect(result, "task", json_type_object) || !(more = ctl_expect(result, "rerun", json_type_array)))
			return -EBADMSG;
		for (size_t k = 0; k < json_object_array_length(more); k++)
			json_object_array_add(rerun, json_object_get(json_object_array_get_idx(more, k)));
		if (!c->json && dry_run)
			ctl_print_ids("would run again", more);
		else if (!c->json) {
			show_task_status(result);
			if (json_object_array_length(more) > 1) {
				json_object_array_del_idx(more, 0, 1);
				ctl_print_ids("  then after it", more);
			}
		}
		json_object_array_add(all, json_object_get(ctl_get(result, "task", json_type_object)));
	}
	if (c->json) {
		_cleanup_(json_object_putp) json_object *o = json_object_new_object();

		if (!o)
			return -ENOMEM;
		if (!failed && json_object_array_length(ids) == 1 && json_object_array_length(all) == 1)
			json_object_object_add(o, "task", json_object_get(json_object_array_get_idx(all, 0)));
		else
			json_object_object_add(o, "tasks", json_object_get(all));
		json_object_object_add(o, "rerun", json_object_get(rerun));
		json_object_object_add(o, "dry_run", json_object_new_boolean(dry_run));
		if (json_object_array_length(all) > 0 || !ret)
			ctl_print_json(o, CTL_JSON_PRETTY);
	}
	return ret;
}

static const struct ctl_opt retry_opts[] = {
	{ "all-failed", NULL, ARG_TRUE, "all_failed", 0, "every failed task of the project (-p)" },
	{ "downstream", NULL, ARG_TRUE, "downstream", 0,
	  "also run again what depends on it, transitively" },
	{ "dry-run", NULL, ARG_TRUE, "dry_run", 0, "only list what would run again; change nothing" },
	{ "project", "PROJECT", ARG_STRING, "project", 0, "look task names up in PROJECT" },
	{}
};

const struct ctl_cmd ctl_cmd_task_retry = {
	.name = "task retry",
	.usage = "TASK... [-p PROJECT] | --all-failed -p PROJECT [--downstream] [--dry-run]",
	.summary = "Run failed, cancelled or completed tasks again",
	.details = "Each runs as a new attempt; their upstream_failed dependents go back to waiting.\n"
		   "A completed task's dependents that had not started wait for it again; with\n"
		   "--downstream everything that depends on it, transitively, runs again after it\n"
		   "(refused while one of them runs).  --dry-run lists what would run again and\n"
		   "changes nothing.  Each task is retried even if another is refused; the exit\n"
		   "status is then 1.  --all-failed retries every failed task of PROJECT.\n"
		   TASK_REF_DETAILS,
	.example = "  dagctl task retry t-3 t-5\n"
		   "  dagctl task retry --all-failed -p build\n"
		   "  dagctl task retry build/compile --downstream --dry-run\n",
	.opts = retry_opts,
	.min_args = 0, .max_args = -1, .keys = { "task_id" },
	.exec = retry_exec,
};

const struct ctl_cmd ctl_cmd_task_start = {
	.name = "task start",
	.usage = "TASK [-p PROJECT]",
	.summary = "Release one ready task of a manual project",
	.details = TASK_REF_DETAILS,
	.example = "  dagctl task start t-3\n",
	.opts = task_opts,
	.min_args = 1, .max_args = 1, .keys = { "task_id" },
	.call = "task.start", .show = show_task_status,
};

const struct ctl_cmd ctl_cmd_task_depend = {
	.name = "task depend",
	.usage = "TASK --on TASK... [-p PROJECT]",
	.summary = "Make a task depend on more tasks",
	.details = "The tasks must be of its project, and may not make a cycle.\n" TASK_REF_DETAILS,
	.example = "  dagctl task depend t-5 --on t-3 t-4\n",
	.opts = on_opts,
	.min_args = 1, .max_args = -1, .keys = { "task_id", "on" }, .required = { "on" },
	.call = "task.depend", .show = show_deps,
};

const struct ctl_cmd ctl_cmd_task_undepend = {
	.name = "task undepend",
	.usage = "TASK --on TASK... [-p PROJECT]",
	.summary = "Remove some of a task's dependencies",
	.details = TASK_REF_DETAILS,
	.example = "  dagctl task undepend t-5 --on t-3\n",
	.opts = on_opts,
	.min_args = 1, .max_args = -1, .keys = { "task_id", "on" }, .required = { "on" },
	.call = "task.undepend", .show = show_deps,
};

const struct ctl_cmd ctl_cmd_unblocked = {
	.name = "unblocked",
	.usage = "[--project PROJECT] [--limit N] [--after CURSOR]",
	.summary = "List the ready tasks of autonomous projects, next to run first",
	.example = "  dagctl unblocked --limit 10\n",
	.opts = unblocked_opts,
	.call = "task.unblocked", .show = ctl_show_tasks,
};
