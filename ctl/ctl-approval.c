/*
 * ctl-approval.c - dagctl approve and reject: an operator decides an
 * approval task (task.approve, task.reject).  Run inside a task (with
 * DAGD_TASK_TOKEN set), the token goes along and the daemon refuses: a task
 * never approves anything.
 */
#include <stdlib.h>

#include "dagctl.h"

static int show_decided(json_object *result) {
	json_object *t = ctl_expect(result, "task", json_type_object), *u;
	char buf[64];

	if (!t)
		return -EBADMSG;
	printf("%s: %s\n", ctl_str(t, "id"), ctl_status_text(t, buf));
	u = ctl_get(result, "unblocked_tasks", json_type_array);
	if (u && json_object_array_length(u) > 0)
		ctl_print_ids("unblocked", u);
	return 0;
}

static int decide_exec(struct ctl *c, const struct ctl_cmd *cmd, json_object *args, int argc, char **argv) {
	const char *token = getenv("DAGD_TASK_TOKEN");

	if (token && *token)
		json_object_object_add(args, "token", json_object_new_string(token));
	return ctl_run(c, cmd->call, args, show_decided);
}

static const struct ctl_opt approve_opts[] = {
	{ "result", "JSON", ARG_JSON, "result", 0, "its result, which flows on to its dependents" },
	CTL_OPT_PROJECT,
	{}
};

static const struct ctl_opt reject_opts[] = {
	{ "message", "TEXT", ARG_STRING, "message", 0, "why (required)" },
	CTL_OPT_PROJECT,
	{}
};

const struct ctl_cmd ctl_cmd_approve = {
	.name = "approve",
	.usage = "TASK [--result JSON] [-p PROJECT]",
	.summary = "Approve a task awaiting approval: it completes",
	.details = "An approval task (kind approval) runs no command: once its dependencies\n"
		   "completed it is awaiting_approval until an operator decides.  Its dependents\n"
		   "then run as after any completed task, and receive its result.\n"
		   "TASK is an id (t-7), PROJECT/NAME, or a NAME with --project PROJECT.\n",
	.example = "  dagctl approve deploy/go-live --result '{\"ticket\": \"CHG-12\"}'\n",
	.opts = approve_opts,
	.min_args = 1, .max_args = 1, .keys = { "task_id" },
	.call = "task.approve", .exec = decide_exec,
};

const struct ctl_cmd ctl_cmd_reject = {
	.name = "reject",
	.usage = "TASK --message TEXT [-p PROJECT]",
	.summary = "Reject a task awaiting approval: it fails",
	.details = "Its dependents become upstream_failed, as after any failure.\n"
		   "TASK is an id (t-7), PROJECT/NAME, or a NAME with --project PROJECT.\n",
	.example = "  dagctl reject t-9 --message 'not during the freeze'\n",
	.opts = reject_opts,
	.min_args = 1, .max_args = 1, .keys = { "task_id" },
	.required = { "message" },
	.call = "task.reject", .exec = decide_exec,
};
