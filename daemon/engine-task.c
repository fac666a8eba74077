/*
 * engine-task.c - a task as JSON, and what an operator or a sandbox does to
 * one task: start, cancel, pause, report, and the list of unblocked tasks.
 */
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/random.h>
#include <unistd.h>

#include "dagd.h"
#include "jw.h"

static void ids_write(struct jw *w, struct task **list, size_t n)
{
	char buf[24];

	jw_open(w, '[');
	for (size_t i = 0; i < n; i++)
		jw_str(w, task_id_string(list[i]->id, buf));
	jw_close(w, ']');
}

/* The task as JSON, written as text: a page of a thousand costs what
 * printing them does, not a tree of json-c objects each. */
/* What a task's object and its summary open with: '{', id, project, name,
 * title. */
static void write_head(struct jw *w, const struct task *t)
{
	char buf[24];

	jw_open(w, '{');
	jw_key(w, "id");
	jw_str(w, task_id_string(t->id, buf));
	format_id(buf, "p-", t->project->id);
	jw_key(w, "project_id");
	jw_str(w, buf);
	jw_key(w, "name");
	jw_str(w, task_name(t));
	jw_key(w, "title");
	jw_str(w, task_def(t)->title);
}

void task_write_json(struct jw *w, const struct task *t)
{
	write_head(w, t);
	jw_key(w, "command");
	jw_raw(w, task_def(t)->command);
	jw_key(w, "env");
	jw_raw(w, task_def(t)->env);
	jw_key(w, "cwd");
	jw_str(w, task_def(t)->cwd);
	jw_key(w, "executor");
	jw_str(w, ext_of(t)->executor);
	jw_key(w, "executor_options");
	jw_raw(w, task_def(t)->executor_options);
	jw_key(w, "priority");
	jw_str(w, priority_to_string(t->priority));
	jw_key(w, "timeout");
	jw_double(w, (double) ext_of(t)->timeout_usec / 1e6);
	jw_key(w, "max_retries");
	jw_int(w, ext_of(t)->max_retries);
	jw_key(w, "retry_backoff");
	jw_double(w, (double) ext_of(t)->backoff_usec / 1e6);
	jw_key(w, "validation_command");
	jw_str(w, ext_of(t)->validation_command);
	task_trigger_write_json(w, t);
	jw_key(w, "status");
	jw_str(w, status_to_string(t->status));
	jw_key(w, "released");
	jw_bool(w, t->released);
	jw_key(w, "paused");
	jw_bool(w, t->paused);
	jw_key(w, "held");
	jw_bool(w, t->held);
	jw_key(w, "attempt");
	jw_int(w, t->attempt);
	jw_key(w, "not_before");
	jw_time(w, ext_of(t)->backoff && t->status == ST_READY ? ext_of(t)->not_before : 0);
	jw_key(w, "depends_on");
	ids_write(w, task_deps(t), task_n_deps(t));
	jw_key(w, "dependents");
	ids_write(w, task_rdeps(t), task_n_rdeps(t));
	jw_key(w, "unmet");
	jw_int(w, t->unmet);
	jw_key(w, "result");
	jw_raw(w, task_def(t)->result);
	jw_key(w, "error_message");
	jw_str(w, task_def(t)->error_message);
	jw_key(w, "sandbox_id");
	jw_str(w, task_def(t)->sandbox_id);
	jw_key(w, "created_at");
	jw_time(w, task_time(t, AT_CREATED));
	jw_key(w, "updated_at");
	jw_time(w, task_time(t, AT_UPDATED));
	jw_key(w, "started_at");
	jw_time(w, task_time(t, AT_STARTED));
	jw_key(w, "finished_at");
	jw_time(w, task_time(t, AT_FINISHED));
	jw_key(w, "status_changed_at");
	jw_time(w, task_time(t, AT_STATUS_CHANGED));
	attempts_write_json(w, t);
	map_write_json(w, t);
	jw_close(w, '}');
}

/* The same, as a value for a reply or an event: it prints as that text
 * (nothing reads its fields back). */
json_object *task_to_json(const struct task *t)
{
	struct jw w = { 0 };

	task_write_json(&w, t);
	return jw_value(&w);
}

/* Is `target` reachable from `from` by following dependencies? */

int task_start(struct task *t)
{
	char id[24];

	if (t->status != ST_READY)
		return errorf(-EBUSY, "task %s is %s, not ready", task_id_string(t->id, id),
			    status_to_string(t->status));
	if (t->held)
		return errorf(-EBUSY, "task %s is held; release it first (task.release)",
			    task_id_string(t->id, id));
	if (!t->released) {
		t->released = true;
		task_save(t);
	}
	return 0;
}

void sandbox_cancel(struct sandbox *sb)
{
	if (!sb || sb->exited || !sb->ex || !sb->ex->vt)
		return;
	sb->ex->vt->cancel(sb->ex->state, (struct dagd_sandbox *) sb, sb->data, D.kill_grace_usec);
}

/* Stops what still runs of the task's current attempt (its status stays as
 * it is): SIGTERM, then SIGKILL after the grace. */
void task_stop_sandbox(struct task *t)
{
	if (task_sb(t) && !task_sb(t)->exited)
		sandbox_cancel(task_sb(t));
}

int task_cancel(struct task *t)
{
	char id[24];

	/* asked twice: it is what was asked for; nothing changes, no event */
	if (t->status == ST_CANCELLED)
		return 0;
	if (status_is_finished(t->status))
		return errorf(-EBUSY, "task %s is %s already", task_id_string(t->id, id),
			    status_to_string(t->status));
	if (task_sb(t)) {
		task_sb(t)->cancelled = true;
		sandbox_cancel(task_sb(t));
	}
	set_str(&task_def(t)->error_message, "cancelled by an operator");
	set_status(t, ST_CANCELLED);
	propagate_failure(t);
	return 0;
}

/* Stops (or lets go on) the processes of a running task's sandbox.  The
 * executor acts first, then the flag is committed: a crash between the two
 * leaves a task stopped but not marked so, and asking again for what the
 * flag already says tells the executor once more (nothing else changes, no
 * event), so a resume always lets it go on.  The timeout still counts while
 * it is paused; a cancel or a timeout ends a paused task as any other. */
int task_pause(struct task *t, bool paused)
{
	json_object *o;
	char id[24];
	int r;

	if (t->status != ST_RUNNING || !task_sb(t) || !task_sb(t)->started || task_sb(t)->exited) {
		if (!paused)
			return 0;       /* nothing runs: nothing to let go on */
		return errorf(-EBUSY, "task %s is %s; only a running task can be paused", task_id_string(t->id, id),
			    status_to_string(t->status));
	}
	r = executor_pause(task_sb(t)->ex, (struct dagd_sandbox *) task_sb(t), task_sb(t)->data, paused);
	if (r == -EOPNOTSUPP)
		return errorf(r, "task %s: executor '%s' cannot pause its sandboxes", task_id_string(t->id, id),
			    task_def(t)->sandbox_executor);
	if (r < 0)
		return errorf(r, "task %s: cannot %s its sandbox: %s", task_id_string(t->id, id),
			    paused ? "pause" : "resume", strerror(-r));
	crash_point("paused");
	if (t->paused == paused)
		return 0;
	t->paused = paused;
	task_save(t);
	o = json_object_new_object();
	json_object_object_add(o, "task_id", json_object_new_string(task_id_string(t->id, id)));
	json_object_object_add(o, "sandbox_id", json_object_new_string(task_sb(t)->id));
	event_emit(paused ? "TASK_PAUSED" : "TASK_RESUMED", "task", id, t->project->id, o);
	return 0;
}

/* A task's report (task.complete): *ret_reply is the reply's result, JSON
 * text to free.  The same report again gets the same reply. */
int task_report(struct task *t, bool success, json_object *result, const char *error_message,
		char **ret_reply)
{
	json_object *unblocked;
	struct jw reply = { 0 }, report = { 0 };
	char id[24];

	if (task_def(t)->report) {
		json_object *old = json_parse(task_def(t)->report), *v;
		bool same;

		same = json_object_object_get_ex(old, "success", &v) && json_object_get_boolean(v) == success;
		same = same && json_object_object_get_ex(old, "result", &v) && json_object_equal(v, result);
		same = same && json_object_object_get_ex(old, "error_message", &v) &&
		       (v ? error_message && strcmp(json_object_get_string(v), error_message) == 0 : !error_message);
		if (!same) {
			json_object_put(old);
			return errorf(-EEXIST, "task %s was already reported %s; a different report is refused",
				    task_id_string(t->id, id), status_to_string(t->status));
		}
		json_object_object_get_ex(old, "reply", &v);
		*ret_reply = xstrdup(json_text(v));
		json_object_put(old);
		return 0;
	}
	if (status_is_finished(t->status))
		return errorf(-EEXIST, "task %s is %s already", task_id_string(t->id, id), status_to_string(t->status));
	if (t->status != ST_SPAWNING && t->status != ST_RUNNING)
		return errorf(-EBUSY, "task %s is %s, not running", task_id_string(t->id, id),
			    status_to_string(t->status));

	if (success) {
		set_str(&task_def(t)->result, result ? json_text(result) : NULL);
		task_succeeded(t, task_def(t)->sandbox_id, &unblocked);
	} else {
		task_failed(t, error_message ? error_message : "the sandbox reported failure");
		unblocked = NULL;
	}
	jw_open(&reply, '{');
	jw_key(&reply, "status");
	jw_str(&reply, "accepted");
	jw_key(&reply, "task_id");
	jw_str(&reply, task_id_string(t->id, id));
	jw_key(&reply, "new_status");
	jw_str(&reply, status_to_string(t->status));
	jw_key(&reply, "unblocked_tasks");
	jw_raw(&reply, unblocked ? json_text(unblocked) : "[]");
	jw_close(&reply, '}');
	json_object_put(unblocked);

	/* what a repeated report is compared with, and answered from */
	jw_open(&report, '{');
	jw_key(&report, "success");
	jw_bool(&report, success);
	jw_key(&report, "result");
	jw_raw(&report, result ? json_text(result) : NULL);
	jw_key(&report, "error_message");
	jw_str(&report, error_message);
	jw_key(&report, "reply");
	jw_raw(&report, reply.buf);
	jw_close(&report, '}');
	free(task_def(t)->report);
	task_def(t)->report = jw_take(&report);
	task_save(t);
	*ret_reply = jw_take(&reply);
	return 0;
}

static int task_pcmp(const void *a, const void *b)
{
	return task_cmp(*(struct task *const *) a, *(struct task *const *) b);
}

/* The best `limit` ready tasks of autonomous projects, in dispatch order.
 * Such a task is queued (a queue walks in that order) or waits out a
 * backoff (in_backoff, a few): the first `limit` of each project's queues
 * and the tasks in a backoff are kept in a heap whose root is the worst of
 * them, so that a page costs its size, not a pass over the ready tasks. */
static void worst_up(struct task **h, size_t i)
{
	while (i > 0 && task_cmp(h[i], h[(i - 1) / 2]) > 0) {
		struct task *x = h[i];

		h[i] = h[(i - 1) / 2];
		h[(i - 1) / 2] = x;
		i = (i - 1) / 2;
	}
}

static void worst_down(struct task **h, size_t n, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		struct task *x;

		if (l < n && task_cmp(h[l], h[m]) > 0)
			m = l;
		if (r < n && task_cmp(h[r], h[m]) > 0)
			m = r;
		if (m == i)
			return;
		x = h[i];
		h[i] = h[m];
		h[m] = x;
		i = m;
	}
}

/* t, one of the candidates: kept if it is among the best `keep` so far. */
static void consider(struct task **best, size_t *n, size_t keep, struct task *t)
{
	if (*n < keep) {
		best[(*n)++] = t;
		worst_up(best, *n - 1);
	} else if (task_cmp(t, best[0]) < 0) {
		best[0] = t;
		worst_down(best, *n, 0);
	}
}

static bool listed(const struct task *t, const struct project *p, const struct unblocked_cursor *after)
{
	return t->status == ST_READY && !t->held && t->project->autonomous && (!p || t->project == p) &&
	       (!after || task_key_cmp(t, after->priority, after->n_rdeps, after->id) > 0);
}

/* A page of them: those after *after (if given), at most limit; *ret_next
 * says where the next page starts when there is one (the place of this
 * page's last task, as a key: the task may have run by then). */
json_object *tasks_unblocked(struct project *p, size_t limit, const struct unblocked_cursor *after,
			     struct unblocked_cursor *ret_next, bool *ret_more)
{
	size_t keep = limit + 1;        /* one more: is there a next page? */
	struct task **best = xrealloc(NULL, keep * sizeof(*best));
	size_t n = 0;
	json_object *a = json_object_new_array();

	for (size_t i = 0; i < n_projects; i++) {
		struct project *q = projects[i];
		size_t taken = 0;

		if (!q || (p && q != p) || !q->autonomous)
			continue;
		/* queued: in order, so the first `keep` ready ones will do */
		for (struct task *t = after ? queue_after(q, after->priority, after->n_rdeps, after->id) : queue_first(q);
		     t && taken < keep; t = queue_next(t))
			if (listed(t, p, after)) {
				consider(best, &n, keep, t);
				taken++;
			}
	}
	for (int64_t id = 0; (id = idset_next(&in_backoff, id)) > 0;) {
		struct task *t = task_at(id);

		if (t && listed(t, p, after))
			consider(best, &n, keep, t);
	}
	if (n > 1)
		qsort(best, n, sizeof(*best), task_pcmp);
	*ret_more = n > limit;
	if (n > limit)
		n = limit;
	for (size_t i = 0; i < n; i++)
		json_object_array_add(a, task_to_json(best[i]));
	if (n > 0)
		*ret_next = (struct unblocked_cursor) {
			.priority = best[n - 1]->priority, .n_rdeps = task_n_rdeps(best[n - 1]), .id = best[n - 1]->id,
		};
	free(best);
	return a;
}
