/*
 * engine-mem.c - a task's memory: the extension that holds what few tasks
 * set (struct task_ext), made on the first write of one of its fields and
 * kept until the task goes.
 */
#include <stdlib.h>

#include "dagd.h"
#include "trigger.h"

const struct task_ext task_ext_default = {
	.backoff_usec = USEC_PER_SEC,
	.max_lost_retries = 3,
};

/* For writing: the task's extension, made with the defaults if it has none. */
struct task_ext *task_ext(struct task *t)
{
	if (!t->ext) {
		t->ext = malloc(sizeof(*t->ext));
		if (!t->ext)
			abort();
		*t->ext = task_ext_default;
	}
	return t->ext;
}

void task_ext_free(struct task *t)
{
	struct task_ext *x = TAKE_PTR(t->ext);

	if (!x)
		return;
	sd_event_source_unref(x->backoff);
	sd_event_source_unref(x->approval_timer);
	free(x->pools);
	free(x->executor);
	free(x->validation_command);
	trigger_free(x->trigger);
	free(x);
}
