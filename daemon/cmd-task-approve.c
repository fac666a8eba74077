/*
 * cmd-task-approve.c - task.approve and task.reject: an operator decides an
 * approval task (engine-approval.c).  Operators only: a peer that is not one
 * is refused by the command table, and a task's token, which only a sandbox
 * has, is refused here: a task never approves anything.
 */
#include <string.h>

#include "dagd.h"

static const char *const approve_args[] = { "task_id", "result", "token", NULL };
static const char *const reject_args[] = { "task_id", "message", "token", NULL };

static int refuse_token(struct req *r)
{
	if (json_object_object_get_ex(r->args, "token", NULL))
		return reply_error(r, "permission_denied", "a task's token cannot decide an approval; "
				   "only an operator may");
	return 0;
}

static int cmd_task_approve(struct req *r)
{
	json_object *result = NULL, *o, *unblocked;
	struct task *t;
	int k;

	if (json_object_object_get_ex(r->args, "token", NULL))
		return refuse_token(r);
	k = req_task(r, &t);
	if (k < 0)
		return reply_errno(r, k);
	if (json_object_object_get_ex(r->args, "result", &result) && result &&
	    strlen(json_text(result)) > 256 * 1024)
		return reply_error(r, "bad_request", "result is larger than 256 KiB");
	k = task_approve(t, result, r->client ? r->client->uid : 0, &unblocked);
	if (k < 0)
		return reply_errno(r, k);
	o = json_object_new_object();
	json_object_object_add(o, "task", task_to_json(t));
	json_object_object_add(o, "unblocked_tasks", unblocked);
	return reply_ok(r, o);
}

static int cmd_task_reject(struct req *r)
{
	const char *message;
	json_object *o;
	struct task *t;
	int k;

	if (json_object_object_get_ex(r->args, "token", NULL))
		return refuse_token(r);
	k = req_task(r, &t);
	if (k >= 0)
		k = arg_required(arg_string(r->args, "message", &message), "message");
	if (k >= 0 && (!*message || strlen(message) > 4096))
		k = errorf(-EINVAL, "argument 'message' must be 1-4096 characters");
	if (k >= 0)
		k = task_reject(t, message, r->client ? r->client->uid : 0);
	if (k < 0)
		return reply_errno(r, k);
	o = json_object_new_object();
	json_object_object_add(o, "task", task_to_json(t));
	return reply_ok(r, o);
}

const struct cmd_entry cmd_task_approve_entry = { "task.approve", cmd_task_approve, 0, approve_args };
const struct cmd_entry cmd_task_reject_entry = { "task.reject", cmd_task_reject, 0, reject_args };
