/*
 * ctl-complete.c - complete: report a task's end (task.complete), by hand or
 * from inside its sandbox, where the task, its token and the socket come
 * from DAGD_TASK_ID, DAGD_TASK_TOKEN and DAGD_SOCKET.  The report is retried
 * for a few seconds while the daemon is unavailable or unreachable: the same
 * report twice is answered the same, so a retry is always safe.
 */
#include <string.h>

#include "dagctl.h"

#define RETRY_MS_MAX 5000

static int show_complete(json_object *result) {
	json_object *ids = ctl_get(result, "unblocked_tasks", json_type_array);

	printf("%s: %s\n", ctl_str(result, "task_id"), ctl_str(result, "new_status"));
	if (ids && json_object_array_length(ids) > 0)
		ctl_print_ids("unblocked", ids);
	return 0;
}

static bool unavailable(json_object *reply) {
	return strcmp(ctl_str(ctl_get(reply, "error", json_type_object), "code"), "unavailable") == 0;
}

static int complete_exec(struct ctl *c, const struct ctl_cmd *cmd, json_object *args,
			 int argc, char **argv) {
	const char *env_id = getenv("DAGD_TASK_ID"), *token = getenv("DAGD_TASK_TOKEN"),
		*id = json_object_get_string(ctl_get(args, "task_id", json_type_string)) ?: env_id;
	_cleanup_(json_object_putp) json_object *reply = NULL, *result = NULL;
	unsigned waited = 0, delay = 100;
	int r;

	if (!id || !*id)
		return ctl_usage_error(cmd, "no TASK, and no DAGD_TASK_ID in the environment");
	if (!json_object_object_get_ex(args, "task_id", NULL))
		json_object_object_add(args, "task_id", json_object_new_string(id));
	/* the sandbox's token is good for its own task only */
	if (!json_object_object_get_ex(args, "token", NULL) && token && *token &&
	    env_id && strcmp(id, env_id) == 0)
		json_object_object_add(args, "token", json_object_new_string(token));
	if (json_object_object_get_ex(args, "error_message", NULL) &&
	    !json_object_object_get_ex(args, "success", NULL))
		json_object_object_add(args, "success", json_object_new_boolean(false));

	c->quiet = true;
	for (;;) {
		json_object_put(TAKE_PTR(reply));
		r = ctl_request(c, "task.complete", args, &reply);
		if (r == -EBADMSG || (r >= 0 && !unavailable(reply)) || waited >= RETRY_MS_MAX)
			break;
		ctl_disconnect(c);
		usleep(delay * 1000);
		waited += delay;
		delay = delay * 2 > 1000 ? 1000 : delay * 2;
	}
	c->quiet = false;
	if (r < 0) {
		fprintf(stderr, "dagctl: %s\n", c->err);
		return r;
	}
	r = ctl_reply_result(c, reply, &result);
	if (r < 0)
		return r;
	return c->json ? ctl_print_json(result, CTL_JSON_PRETTY) : show_complete(result);
}

static const struct ctl_opt complete_opts[] = {
	{ "failed", NULL, ARG_FALSE, "success", 0, "report a failure (default: success)" },
	{ "result", "JSON", ARG_JSON, "result", 0, "the task's result, any JSON" },
	{ "error", "MESSAGE", ARG_STRING, "error_message", 0, "why it failed (implies --failed)" },
	{ "token", "TOKEN", ARG_STRING, "token", 0, "the attempt's token (default $DAGD_TASK_TOKEN)" },
	CTL_OPT_PROJECT,
	{}
};

const struct ctl_cmd ctl_cmd_complete = {
	.name = "complete",
	.usage = "[TASK] [-p PROJECT] [--failed] [--result JSON] [--error MESSAGE] [--token TOKEN]",
	.summary = "Report that a task finished; prints its new status",
	.details = "Inside a sandbox, TASK, the token and the socket default to $DAGD_TASK_ID,\n"
		   "$DAGD_TASK_TOKEN and $DAGD_SOCKET.  Without a token, only an operator may\n"
		   "complete a task.  While the daemon is unavailable, the report is retried\n"
		   "for up to 5 seconds.  TASK is an id, PROJECT/NAME, or a NAME with --project.\n",
	.example = "  dagctl complete --result '{\"artifacts\": 3}'\n"
		   "  dagctl complete t-3 --error 'disk full'\n",
	.opts = complete_opts,
	.min_args = 0, .max_args = 1, .keys = { "task_id" },
	.exec = complete_exec,
};
