/*
 * cmd-task-lifecycle.c - task.hold, task.release, task.pause, task.resume,
 * task.edit and task.remove: what an operator changes of a task besides
 * starting and stopping it.  A paused task stays paused, and shown so,
 * across a restart of dagd; executors that cannot pause refuse (the
 * executor's pause(), ABI version 3).  task.retry (and
 * its rerun of completed tasks) is in cmd-task.c, project.clean in
 * cmd-project.c.
 */
#include "dagd.h"

static const char *const task_id_args[] = { "task_id", NULL };
static const char *const edit_args[] = {
	"task_id", "title", "command", "priority", "timeout", "max_retries", "retry_backoff", "env",
	"cwd", "validation_command", "trigger", "dry_run", NULL
};

/* A flag of the task set or cleared by op; the task as it is now. */
static int flag(struct req *r, int (*op)(struct task *t, bool on), bool on)
{
	struct task *t;
	json_object *o;
	int k = req_task(r, &t);

	if (k >= 0)
		k = op(t, on);
	if (k < 0)
		return reply_errno(r, k);
	o = json_object_new_object();
	json_object_object_add(o, "task", task_to_json(t));
	return reply_ok(r, o);
}

static int cmd_task_hold(struct req *r)
{
	return flag(r, task_hold, true);
}

static int cmd_task_release(struct req *r)
{
	return flag(r, task_hold, false);
}

static int cmd_task_pause(struct req *r)
{
	return flag(r, task_pause, true);
}

static int cmd_task_resume(struct req *r)
{
	return flag(r, task_pause, false);
}

static int cmd_task_edit(struct req *r)
{
	struct task *t;
	json_object *changed = NULL, *o;
	bool dry_run = false;
	int k = req_task(r, &t);

	if (k >= 0 && (k = arg_bool(r->args, "dry_run", &dry_run)) == -ENOENT)
		k = 0;
	if (k >= 0)
		k = task_edit(t, r->args, dry_run, &changed);
	if (k < 0)
		return reply_errno(r, k);
	o = json_object_new_object();
	json_object_object_add(o, "task", task_to_json(t));
	json_object_object_add(o, "changed", changed);
	json_object_object_add(o, "dry_run", json_object_new_boolean(dry_run));
	return reply_ok(r, o);
}

static int cmd_task_remove(struct req *r)
{
	struct task *t;
	json_object *o;
	int k = req_task(r, &t);

	if (k < 0)
		return reply_errno(r, k);
	o = json_object_new_object();
	json_object_object_add(o, "task", task_to_json(t));
	k = task_remove(t);
	if (k < 0) {
		json_object_put(o);
		return reply_errno(r, k);
	}
	return reply_ok(r, o);
}

const struct cmd_entry cmd_task_hold_entry = { "task.hold", cmd_task_hold, 0, task_id_args };
const struct cmd_entry cmd_task_pause_entry = { "task.pause", cmd_task_pause, 0, task_id_args };
const struct cmd_entry cmd_task_resume_entry = { "task.resume", cmd_task_resume, 0, task_id_args };
const struct cmd_entry cmd_task_release_entry = { "task.release", cmd_task_release, 0, task_id_args };
const struct cmd_entry cmd_task_edit_entry = { "task.edit", cmd_task_edit, 0, edit_args };
const struct cmd_entry cmd_task_remove_entry = { "task.remove", cmd_task_remove, 0, task_id_args };
