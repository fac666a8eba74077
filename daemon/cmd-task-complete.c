/*
 * cmd-task-complete.c - task.complete: a sandbox, or an operator, reports how
 * a task ended.  A token is good for its own task's current attempt only;
 * without one, the peer must be an operator.
 */
#include <string.h>

#include "dagd.h"

static const char *const complete_args[] = {
	"task_id", "success", "result", "error_message", "token", NULL
};

static bool token_equal(const char *a, const char *b)
{
	size_t n = strlen(a);
	unsigned char d = 0;

	if (n != strlen(b))
		return false;
	for (size_t i = 0; i < n; i++)
		d |= (unsigned char) (a[i] ^ b[i]);
	return d == 0;
}

static int cmd_task_complete(struct req *r)
{
	struct task *t;
	json_object *result = NULL;
	_cleanup_free_ char *reply = NULL;
	const char *token = NULL, *error_message = NULL;
	bool success = true;
	int k;

	k = arg_string(r->args, "token", &token);
	if (k < 0 && k != -ENOENT)
		return reply_errno(r, k);
	if (!token && !r->operator)
		return reply_error(r, "permission_denied", "a sandbox must give its task's token; "
				   "only operators may complete tasks by hand");
	k = req_task(r, &t);
	/* to a peer that is not an operator, an unknown task and a wrong token
	 * look the same: task ids are not to be found out this way */
	if (token && (k >= 0 || (k == -ENOENT && !r->operator)) &&
	    (k < 0 || !task_def(t)->token || !token_equal(token, task_def(t)->token)))
		return reply_error(r, "permission_denied",
				   "this token is not the one of task %s's current attempt",
				   json_object_get_string(json_object_object_get(r->args, "task_id")));
	if (k < 0)
		return reply_errno(r, k);
	k = arg_bool(r->args, "success", &success);
	if (k < 0 && k != -ENOENT)
		return reply_errno(r, k);
	k = arg_string(r->args, "error_message", &error_message);
	if (k < 0 && k != -ENOENT)
		return reply_errno(r, k);
	if (json_object_object_get_ex(r->args, "result", &result) && result &&
	    strlen(json_text(result)) > 256 * 1024)
		return reply_error(r, "bad_request", "result is larger than 256 KiB");
	k = task_report(t, success, result, error_message, &reply);
	if (k < 0)
		return reply_errno(r, k);
	/* completed by hand: what still runs of it is stopped, as by a cancel,
	 * and never goes on outside every limit */
	if (!token)
		task_stop_sandbox(t);
	return reply_ok_text(r, reply);
}

const struct cmd_entry cmd_task_complete_entry = { "task.complete", cmd_task_complete, CMD_ANYONE, complete_args };
