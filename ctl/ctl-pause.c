/*
 * ctl-pause.c - dagctl task pause|resume: stop a running task's processes
 * and let them go on (task.pause, task.resume).
 */
#include <stdio.h>
#include <string.h>

#include "dagctl.h"

static const struct ctl_opt pause_opts[] = {
	CTL_OPT_PROJECT,
	{}
};

static int show_paused(json_object *result) {
	json_object *t = ctl_expect(result, "task", json_type_object);
	char buf[64];

	if (!t)
		return -EBADMSG;
	printf("%s: %s\n", ctl_str(t, "id"), ctl_status_text(t, buf));
	return 0;
}

const struct ctl_cmd ctl_cmd_task_pause = {
	.name = "task pause",
	.usage = "TASK [-p PROJECT]",
	.summary = "Stop a running task's processes, keeping their state",
	.details = "The local executor freezes the task's cgroup (or stops its process group\n"
		   "with SIGSTOP); executors that cannot pause refuse.  A paused task stays\n"
		   "paused across a restart of dagd; its timeout still counts, and a cancel\n"
		   "ends it as any other.  Pausing a paused task succeeds and changes nothing.\n"
		   "TASK is an id (t-7), PROJECT/NAME, or a NAME with --project PROJECT.\n",
	.example = "  dagctl task pause build/compile\n"
		   "  dagctl task resume build/compile\n",
	.opts = pause_opts,
	.min_args = 1, .max_args = 1, .keys = { "task_id" },
	.call = "task.pause", .show = show_paused,
};

const struct ctl_cmd ctl_cmd_task_resume = {
	.name = "task resume",
	.usage = "TASK [-p PROJECT]",
	.summary = "Let a paused task's processes go on",
	.details = "TASK is an id (t-7), PROJECT/NAME, or a NAME with --project PROJECT.\n",
	.example = "  dagctl task resume t-3\n",
	.opts = pause_opts,
	.min_args = 1, .max_args = 1, .keys = { "task_id" },
	.call = "task.resume", .show = show_paused,
};
