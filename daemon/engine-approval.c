/*
 * engine-approval.c - approval gates.  A task of kind "approval" runs no
 * sandbox: when its dependencies allow it to run, instead of ready it enters
 * awaiting_approval (set_status() sends it there) and waits for an operator:
 * task.approve completes it with an optional result, which flows on like any
 * other task's; task.reject fails it, and its dependents become
 * upstream_failed.  With a timeout, on_timeout ("approve" or, by default,
 * "reject") decides once it passes; the deadline is stored, so a restart
 * arms the timer again.  It never holds a slot, and autonomous mode never
 * approves anything.
 */
#include <stdio.h>
#include <string.h>

#include "dagd.h"

static void decided(struct task *t, const char *type, uid_t uid, bool automatic, json_object *extra)
{
	json_object *o = task_payload(t);

	if (automatic)
		json_object_object_add(o, "by", json_object_new_string("timeout"));
	else
		json_object_object_add(o, "by_uid", json_object_new_int64((int64_t) uid));
	json_object_object_add(o, "automatic", json_object_new_boolean(automatic));
	json_object_object_foreach(extra, k, v)
		json_object_object_add(o, k, json_object_get(v));
	json_object_put(extra);
	task_event(t, type, o);
}

static int check_awaiting(const struct task *t)
{
	char id[24];

	if (!t->approval)
		return errorf(-EINVAL, "task %s is not an approval task (kind approval)", task_id_string(t->id, id));
	if (status_is_finished(t->status))
		return errorf(-EEXIST, "task %s is %s already", task_id_string(t->id, id), status_to_string(t->status));
	if (t->status != ST_AWAITING_APPROVAL)
		return errorf(-EBUSY, "task %s is %s, not awaiting_approval", task_id_string(t->id, id),
			      status_to_string(t->status));
	return 0;
}

static int approve(struct task *t, json_object *result, uid_t uid, bool automatic, json_object **ret_unblocked)
{
	json_object *extra = json_object_new_object();
	int r = check_awaiting(t);

	if (r < 0) {
		json_object_put(extra);
		return r;
	}
	set_str(&task_def(t)->result, result ? json_text(result) : NULL);
	json_object_object_add(extra, "result", json_object_get(result));
	decided(t, "TASK_APPROVED", uid, automatic, extra);
	task_succeeded(t, NULL, ret_unblocked);
	return 0;
}

static int reject(struct task *t, const char *message, uid_t uid, bool automatic)
{
	json_object *extra = json_object_new_object(), *o;
	_cleanup_free_ char *msg = NULL;
	int r = check_awaiting(t);

	if (r < 0) {
		json_object_put(extra);
		return r;
	}
	msg = xasprintf("rejected: %s", message);
	set_str(&task_def(t)->error_message, msg);
	json_object_object_add(extra, "message", json_object_new_string(message));
	decided(t, "TASK_REJECTED", uid, automatic, extra);
	set_status(t, ST_FAILED);
	o = task_payload(t);
	json_object_object_add(o, "error_message", json_object_new_string(msg));
	json_object_object_add(o, "will_retry", json_object_new_boolean(false));
	json_object_object_add(o, "retry_at", NULL);
	json_object_object_add(o, "rule", json_object_new_string(automatic ? "approval_timeout" : "rejected"));
	task_event(t, "TASK_FAILED", o);
	propagate_failure(t);
	return 0;
}

int task_approve(struct task *t, json_object *result, uid_t uid, json_object **ret_unblocked)
{
	return approve(t, result, uid, false, ret_unblocked);
}

int task_reject(struct task *t, const char *message, uid_t uid)
{
	return reject(t, message, uid, false);
}

static int on_approval_timeout(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct task *t = userdata;
	char buf[64];

	task_ext(t)->approval_timer = sd_event_source_unref(task_ext(t)->approval_timer);        /* its timer: it has one */
	if (t->status != ST_AWAITING_APPROVAL)
		return 0;
	log_task(6, t->id, NULL, "task t-%lld: no decision within its timeout; %s", (long long) t->id,
		 ext_of(t)->approve_on_timeout ? "approving" : "rejecting");
	if (ext_of(t)->approve_on_timeout)
		(void) approve(t, NULL, 0, true, NULL);
	else {
		snprintf(buf, sizeof(buf), "no decision within its timeout (%.3g s)", (double) ext_of(t)->timeout_usec / 1e6);
		(void) reject(t, buf, 0, true);
	}
	return 0;
}

void approval_arm(struct task *t)
{
	int64_t left;

	if (task_ext_held(t))
		task_ext(t)->approval_timer = sd_event_source_unref(task_ext(t)->approval_timer);
	if (!ext_of(t)->approval_deadline)
		return;
	left = task_ext(t)->approval_deadline - now_usec();
	if (sd_event_add_time_relative(D.event, &task_ext(t)->approval_timer, CLOCK_MONOTONIC, left > 0 ? (uint64_t) left : 1,
				       10 * USEC_PER_MSEC, on_approval_timeout, t) < 0)
		task_ext(t)->approval_timer = NULL;
}

/* It entered awaiting_approval: its deadline, if it has a timeout, and the
 * event that asks for a decision. */
void approval_enter(struct task *t)
{
	int64_t deadline = ext_of(t)->timeout_usec > 0 ? now_usec() + (int64_t) ext_of(t)->timeout_usec : 0;
	json_object *o = task_payload(t);

	if (deadline || task_ext_held(t))
		task_ext(t)->approval_deadline = deadline;
	(void) store_attempts_save(t);
	json_object_object_add(o, "deadline", ext_of(t)->approval_deadline ? json_time(ext_of(t)->approval_deadline) : NULL);
	json_object_object_add(o, "on_timeout", json_object_new_string(ext_of(t)->approve_on_timeout ? "approve" : "reject"));
	json_object_object_add(o, "title", json_object_new_string(task_def(t)->title));
	task_event(t, "TASK_AWAITING_APPROVAL", o);
	approval_arm(t);
}
