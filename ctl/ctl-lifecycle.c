/*
 * ctl-lifecycle.c - what an operator changes of tasks besides starting and
 * stopping them: task hold, release, pause, resume, edit and remove
 * (task.hold, task.release, task.pause, task.resume, task.edit,
 * task.remove), and project clean (project.clean).  task retry, which also
 * reruns completed tasks, is in ctl-task.c.
 */
#include <string.h>

#include "dagctl.h"

/* "t-3: ready (held)" */
static int show_status(json_object *result) {
	json_object *t = ctl_expect(result, "task", json_type_object);
	char buf[64];

	if (!t)
		return -EBADMSG;
	printf("%s: %s\n", ctl_str(t, "id"), ctl_status_text(t, buf));
	return 0;
}

static int show_removed(json_object *result) {
	json_object *t = ctl_expect(result, "task", json_type_object);
	const char *name = ctl_str(t, "name");

	if (!t)
		return -EBADMSG;
	printf("removed %s%s%s%s\n", ctl_str(t, "id"), *name ? " (" : "", name, *name ? ")" : "");
	return 0;
}

/* Runs `call` for each task of args' task_id array, going on past a
 * refusal (the first error is the exit status); --json prints {"task"} for
 * one task, else {"tasks": [...]}. */
static int each_task(struct ctl *c, json_object *args, const char *call, int (*show)(json_object *result)) {
	_cleanup_(json_object_putp) json_object *all = json_object_new_array();
	json_object *ids = ctl_get(args, "task_id", json_type_array);
	size_t n = ids ? json_object_array_length(ids) : 0;
	int r, ret = 0;

	if (!all)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		_cleanup_(json_object_putp) json_object *a = json_object_new_object(), *result = NULL;

		if (!a)
			return -ENOMEM;
		json_object_object_add(a, "task_id", json_object_get(json_object_array_get_idx(ids, i)));
		r = ctl_call(c, call, a, &result);
		if (r < 0) {
			if (ctl_lost(r) || r == -EBADMSG)
				return r;
			ret = ret ?: r;
			continue;
		}
		if (!ctl_expect(result, "task", json_type_object))
			return -EBADMSG;
		if (!c->json && (r = show(result)) < 0)
			return r;
		json_object_array_add(all, json_object_get(ctl_get(result, "task", json_type_object)));
	}
	if (c->json && (json_object_array_length(all) > 0 || !ret)) {
		_cleanup_(json_object_putp) json_object *o = json_object_new_object();

		if (!o)
			return -ENOMEM;
		if (n == 1)
			json_object_object_add(o, "task", json_object_get(json_object_array_get_idx(all, 0)));
		else
			json_object_object_add(o, "tasks", json_object_get(all));
		ctl_print_json(o, CTL_JSON_PRETTY);
	}
	return ret;
}

static int each_exec(struct ctl *c, const struct ctl_cmd *cmd, json_object *args, int argc, char **argv) {
	return each_task(c, args, cmd->call, show_status);
}

static int remove_exec(struct ctl *c, const struct ctl_cmd *cmd, json_object *args, int argc, char **argv) {
	return each_task(c, args, cmd->call, show_removed);
}

static int show_edited(json_object *result) {
	json_object *t = ctl_expect(result, "task", json_type_object),
		*changed = ctl_expect(result, "changed", json_type_array);
	size_t n = changed ? json_object_array_length(changed) : 0;

	if (!t || !changed)
		return -EBADMSG;
	printf("%s: %s", ctl_str(t, "id"), n ? "changed" : "nothing changed");
	for (size_t i = 0; i < n; i++)
		printf("%s%s", i ? ", " : " ", json_object_get_string(json_object_array_get_idx(changed, i)) ?: "?");
	putchar('\n');
	return 0;
}

static int edit_exec(struct ctl *c, const struct ctl_cmd *cmd, json_object *args, int argc, char **argv) {
	if (json_object_object_length(args) < 2)
		return ctl_usage_error(cmd, "nothing to change");
	return ctl_run(c, cmd->call, args, show_edited);
}

static int show_cleaned(json_object *result) {
	json_object *removed = ctl_expect(result, "removed", json_type_array),
		*kept = ctl_expect(result, "kept", json_type_array);
	size_t n, k;

	if (!removed || !kept)
		return -EBADMSG;
	n = json_object_array_length(removed);
	k = json_object_array_length(kept);
	printf("removed %zu task%s", n, n == 1 ? "" : "s");
	for (size_t i = 0; i < n; i++)
		printf("%s%s", i ? " " : ": ", json_object_get_string(json_object_array_get_idx(removed, i)) ?: "?");
	putchar('\n');
	if (k > 0) {
		printf("kept %zu (tasks not finished depend on them, or they are still stopping):", k);
		for (size_t i = 0; i < k; i++)
			printf(" %s", json_object_get_string(json_object_array_get_idx(kept, i)) ?: "?");
		putchar('\n');
	}
	return 0;
}

static const struct ctl_opt task_opts[] = {
	CTL_OPT_PROJECT,
	{}
};

static const struct ctl_opt edit_opts[] = {
	{ "title", "TEXT", ARG_STRING, "title", 0, "what it does, for people" },
	{ "priority", "P", ARG_STRING, "priority", 0, "critical, high, medium or low" },
	{ "timeout", "SECONDS", ARG_SECONDS, "timeout", 0, "stop a run after this long (0: never)" },
	{ "retries", "N", ARG_INT, "max_retries", 0, "retry a failed run N times" },
	{ "backoff", "SECONDS", ARG_SECONDS, "retry_backoff", 0, "wait before the first retry" },
	{ "env", "KEY=VALUE", ARG_ENV, "env", 0, "its whole environment, one KEY=VALUE each; repeat for more" },
	{ "cwd", "DIR", ARG_STRING, "cwd", 0, "run it in DIR" },
	{ "validate", "COMMAND", ARG_STRING, "validation_command", 0,
	  "a shell command that must pass before it is completed" },
	{ "trigger", "RULE", ARG_STRING, "trigger", 0, "when it runs relative to its dependencies (before it runs)" },
	{ "shell", "STRING", ARG_STRING, "command", 0, "run STRING with /bin/sh -c, instead of -- COMMAND" },
	CTL_OPT_PROJECT,
	{}
};

static const struct ctl_opt clean_opts[] = {
	{ "failed", NULL, ARG_TRUE, "failed", 0, "also the failed, upstream_failed and cancelled tasks" },
	{}
};

#define TASKS_REF_DETAILS \
	"Each TASK is an id (t-7), PROJECT/NAME, or a NAME with --project PROJECT; each is\n" \
	"done even if another is refused, and the exit status is then 1.\n"

const struct ctl_cmd ctl_cmd_task_hold = {
	.name = "task hold",
	.usage = "TASK... [-p PROJECT]",
	.summary = "Keep tasks from being started until released",
	.details = "A held task keeps the status its dependencies give it (\"ready (held)\") but is\n"
		   "not started, in autonomous or manual mode ('dagctl start' passes it by); what\n"
		   "runs already goes on.  A task held again is left as it is.\n" TASKS_REF_DETAILS,
	.example = "  dagctl task hold build/deploy\n",
	.opts = task_opts,
	.min_args = 1, .max_args = -1, .keys = { "task_id" },
	.call = "task.hold", .exec = each_exec,
};

const struct ctl_cmd ctl_cmd_task_release = {
	.name = "task release",
	.usage = "TASK... [-p PROJECT]",
	.summary = "Let held tasks be started again",
	.details = "In an autonomous project a released ready task starts when a slot is free; in\n"
		   "a manual one it waits for 'dagctl start' or 'dagctl task start' as before.\n"
		   TASKS_REF_DETAILS,
	.example = "  dagctl task release build/deploy\n",
	.opts = task_opts,
	.min_args = 1, .max_args = -1, .keys = { "task_id" },
	.call = "task.release", .exec = each_exec,
};

const struct ctl_cmd ctl_cmd_task_pause = {
	.name = "task pause",
	.usage = "TASK... [-p PROJECT]",
	.summary = "Stop running tasks' processes, keeping their state",
	.details = "The local executor freezes the task's cgroup (or stops its process group\n"
		   "with SIGSTOP); executors that cannot pause refuse.  A paused task stays\n"
		   "paused across a restart of dagd; its timeout still counts, and a cancel\n"
		   "ends it as any other.  Pausing a paused task succeeds and changes nothing.\n"
		   TASKS_REF_DETAILS,
	.example = "  dagctl task pause build/compile\n"
		   "  dagctl task resume build/compile\n",
	.opts = task_opts,
	.min_args = 1, .max_args = -1, .keys = { "task_id" },
	.call = "task.pause", .exec = each_exec,
};

const struct ctl_cmd ctl_cmd_task_resume = {
	.name = "task resume",
	.usage = "TASK... [-p PROJECT]",
	.summary = "Let paused tasks' processes go on",
	.details = TASKS_REF_DETAILS,
	.example = "  dagctl task resume t-3\n",
	.opts = task_opts,
	.min_args = 1, .max_args = -1, .keys = { "task_id" },
	.call = "task.resume", .exec = each_exec,
};

const struct ctl_cmd ctl_cmd_task_edit = {
	.name = "task edit",
	.usage = "TASK [OPTION...] [-- COMMAND [ARG...] | --shell STRING]",
	.summary = "Change a task that has not started, or a failed one's next attempt",
	.details = "A waiting or ready task changes at once; a failed or cancelled one (or one\n"
		   "waiting out a retry) keeps its past attempts and runs its next one as edited.\n"
		   "A running or completed task is refused.  --env replaces the whole environment.\n"
		   "Prints what changed.\n"
		   "TASK is an id (t-7), PROJECT/NAME, or a NAME with --project PROJECT.\n",
	.example = "  dagctl task edit build/test --priority high --timeout 600\n"
		   "  dagctl task edit t-4 -- make -j8 check\n",
	.opts = edit_opts,
	.min_args = 1, .max_args = 1, .keys = { "task_id" },
	.dashdash = "command",
	.call = "task.edit", .exec = edit_exec,
};

const struct ctl_cmd ctl_cmd_task_remove = {
	.name = "task remove",
	.usage = "TASK... [-p PROJECT]",
	.summary = "Remove tasks that are not running and nothing waits on",
	.details = "Refused for a running task, and for one that a task not finished (or\n"
		   "upstream_failed) depends on: the message names them.  Finished dependents just\n"
		   "lose the dependency.\n" TASKS_REF_DETAILS,
	.example = "  dagctl task remove build/old-step t-9\n",
	.opts = task_opts,
	.min_args = 1, .max_args = -1, .keys = { "task_id" },
	.call = "task.remove", .exec = remove_exec,
};

const struct ctl_cmd ctl_cmd_project_clean = {
	.name = "project clean",
	.usage = "PROJECT [--failed]",
	.summary = "Remove a project's completed tasks (--failed: and its failed ones)",
	.details = "Tasks that a task not finished still depends on, directly or through other\n"
		   "such tasks, and those whose sandbox is still stopping, are kept and listed.\n"
		   "Prints how many were removed, and their ids.\n",
	.example = "  dagctl project clean build --failed\n",
	.opts = clean_opts,
	.min_args = 1, .max_args = 1, .keys = { "project" },
	.call = "project.clean", .show = show_cleaned,
};
