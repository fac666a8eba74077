/*
 * cmd-task-pause.c - task.pause and task.resume: an operator stops a running
 * task's processes (its executor's pause(); refused by executors that cannot)
 * and lets them go on later.  The flag is stored, so a paused task stays
 * paused, and shown so, across a restart of dagd.
 */
#include "dagd.h"

static const char *const pause_args[] = { "task_id", NULL };

static int pause_reply(struct req *r, bool paused)
{
	struct task *t;
	json_object *o;
	int k = req_task(r, &t);

	if (k >= 0)
		k = task_pause(t, paused);
	if (k < 0)
		return reply_errno(r, k);
	o = json_object_new_object();
	json_object_object_add(o, "task", task_to_json(t));
	return reply_ok(r, o);
}

static int cmd_task_pause(struct req *r)
{
	return pause_reply(r, true);
}

static int cmd_task_resume(struct req *r)
{
	return pause_reply(r, false);
}

const struct cmd_entry cmd_task_pause_entry = { "task.pause", cmd_task_pause, 0, pause_args };
const struct cmd_entry cmd_task_resume_entry = { "task.resume", cmd_task_resume, 0, pause_args };
