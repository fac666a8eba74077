/*
 * engine-lifecycle.c - what an operator does to tasks besides adding and
 * running them: hold and release, edit, remove, clean a project of its
 * finished tasks, and run a task again (with what depends on it).
 *
 * Each keeps the graph's counts exact as engine.c does: a task's unmet count
 * is the number of its dependencies not completed, so a task that leaves
 * `completed` adds one to each of its dependents', and one that is removed
 * takes its edges with it.  Every change is written through and announced.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "dagd.h"

/* A dependent in this status still counts on its dependencies: it has not
 * run, runs, or waits for a failure to be fixed (or was skipped for it). */
static bool still_waits(const struct task *d)
{
	return !status_is_finished(d->status) || d->status == ST_UPSTREAM_FAILED || d->status == ST_SKIPPED;
}

static void updated_event(struct task *t, json_object *changed)
{
	json_object *o = task_payload(t);

	json_object_object_add(o, "changed", changed);
	json_object_object_add(o, "task", task_to_json(t));
	task_event(t, "TASK_UPDATED", o);
}

/* --- hold and release ------------------------------------------------------- */

/* A held task keeps the status its graph gives it but is never dispatched,
 * whatever the project's mode.  Asked twice: nothing changes, no event. */
int task_hold(struct task *t, bool hold)
{
	json_object *changed;

	if (t->held == hold)
		return 0;
	t->held = hold;
	task_save(t);
	changed = json_object_new_array();
	json_object_array_add(changed, json_object_new_string("held"));
	updated_event(t, changed);
	return 0;
}

/* --- edit ------------------------------------------------------------------- */

static bool editable(const struct task *t)
{
	switch (t->status) {
	case ST_WAITING:
	case ST_READY:
	case ST_UPSTREAM_FAILED:
	case ST_SKIPPED:
	case ST_FAILED:
	case ST_CANCELLED:
		return true;
	default:
		return false;
	}
}

/* The task's definition as task.add args, for check_task_args(). */
static json_object *definition(const struct task *t)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "title", json_object_new_string(task_def(t)->title));
	if (t->approval)        /* no command, no sandbox (engine-approval.c) */
		json_object_object_add(o, "kind", json_object_new_string("approval"));
	else {
		json_object_object_add(o, "command", json_parse(task_def(t)->command));
		json_object_object_add(o, "env", json_parse(task_def(t)->env));
	}
	if (task_def(t)->cwd)
		json_object_object_add(o, "cwd", json_object_new_string(task_def(t)->cwd));
	json_object_object_add(o, "priority", json_object_new_string(priority_to_string(t->priority)));
	json_object_object_add(o, "timeout", json_object_new_double((double) ext_of(t)->timeout_usec / 1e6));
	json_object_object_add(o, "max_retries", json_object_new_int((int) ext_of(t)->max_retries));
	json_object_object_add(o, "retry_backoff", json_object_new_double((double) ext_of(t)->backoff_usec / 1e6));
	if (ext_of(t)->validation_command)
		json_object_object_add(o, "validation_command", json_object_new_string(ext_of(t)->validation_command));
	if (ext_of(t)->map_over || ext_of(t)->map_parent)       /* {{item}} is allowed: say it maps */
		json_object_object_add(o, "map_over", json_object_new_string("-"));
	return o;
}

static bool same_str(const char *a, const char *b)
{
	return a == b || (a && b && strcmp(a, b) == 0);
}

/* Sets *p to v (NULL clears it) if apply; whether that changes it. */
static bool change_str(char **p, const char *v, bool apply)
{
	if (same_str(*p, v))
		return false;
	if (!apply)
		return true;
	if (v)
		set_str(p, v);
	else
		clear_str(p);
	return true;
}

/* task.edit: the given fields of a task's definition (the keys of `edit`
 * below), for a task that has not started, or for the next attempt of a
 * failed or cancelled one.  *ret_changed: the fields that changed; none
 * changed is no write and no event.  dry_run: checked, and *ret_changed
 * what would change, but nothing changes. */
int task_edit(struct task *t, json_object *args, bool dry_run, json_object **ret_changed)
{
	static const char *const nullable[] = { "cwd", "validation_command", NULL };
	static const char *const keys[] = {
		"title", "command", "priority", "timeout", "max_retries", "retry_backoff", "env", "cwd",
		"validation_command", "trigger", NULL
	};
	json_object *merged, *changed, *v;
	const char *s = NULL;
	bool any = false;
	uint64_t u;
	int64_t i;
	char id[24];
	int r;

	if (!editable(t))
		return errorf(-EBUSY, "task %s is %s; only a task that has not started, or a failed or "
			      "cancelled one (for its next attempt), can be edited",
			      task_id_string(t->id, id), status_to_string(t->status));
	merged = definition(t);
	for (const char *const *k = keys; *k; k++) {
		if (!json_object_object_get_ex(args, *k, &v))
			continue;
		any = true;
		if (!v) {
			bool ok = false;

			for (const char *const *n = nullable; *n; n++)
				ok |= strcmp(*n, *k) == 0;
			if (!ok) {
				json_object_put(merged);
				return errorf(-EINVAL, "argument '%s' cannot be null", *k);
			}
			json_object_object_del(merged, *k);
			continue;
		}
		json_object_object_add(merged, *k, json_object_get(v));
	}
	if (!any) {
		json_object_put(merged);
		return errorf(-EINVAL, "nothing to change: give one of title, command, priority, timeout, "
			      "max_retries, retry_backoff, env, cwd, validation_command, trigger");
	}
	r = check_task_args(t->project, merged, false);
	if (r >= 0 && json_object_object_get_ex(args, "cwd", &v) && v)
		r = task_check_cwd(merged, ext_of(t)->executor ? ext_of(t)->executor : t->project->executor);
	if (r >= 0 && json_object_object_get_ex(args, "trigger", &v))
		r = trigger_check_edit(t, v);
	if (r < 0) {
		json_object_put(merged);
		return r;
	}

	/* valid: apply what differs (unless only asked what would) */
	changed = json_object_new_array();
	task_def_own(task_def(t));
#define GIVEN(k) json_object_object_get_ex(args, k, NULL)
#define CHANGED(k) json_object_array_add(changed, json_object_new_string(k))
	if (GIVEN("title") && arg_string(merged, "title", &s) == 0 && change_str(&task_def(t)->title, s, !dry_run))
		CHANGED("title");
	if (GIVEN("command") && json_object_object_get_ex(merged, "command", &v) &&
	    change_str(&task_def(t)->command, json_text(v), !dry_run))
		CHANGED("command");
	if (GIVEN("env") && json_object_object_get_ex(merged, "env", &v) && change_str(&task_def(t)->env, json_text(v), !dry_run))
		CHANGED("env");
	for (const char *const *n = nullable; *n; n++) {
		bool cwd = strcmp(*n, "cwd") == 0;

		s = NULL;
		if (!GIVEN(*n))
			continue;
		(void) arg_string(merged, *n, &s);
		if (!cwd && same_str(ext_of(t)->validation_command, s))
			continue;
		if (change_str(cwd ? &task_def(t)->cwd : &task_ext(t)->validation_command, s, !dry_run))
			CHANGED(*n);
	}
	if (GIVEN("priority") && arg_string(merged, "priority", &s) == 0 && priority_from_string(s) != t->priority) {
		if (!dry_run) {
			enum priority was = t->priority;

			t->priority = priority_from_string(s);
			queue_rekey(t, was, task_n_rdeps(t));
		}
		CHANGED("priority");
	}
	if (GIVEN("timeout") && arg_seconds(merged, "timeout", &u) == 0 && u != ext_of(t)->timeout_usec) {
		if (!dry_run)
			task_ext(t)->timeout_usec = u;
		CHANGED("timeout");
	}
	if (GIVEN("retry_backoff") && arg_seconds(merged, "retry_backoff", &u) == 0 && u != ext_of(t)->backoff_usec) {
		if (!dry_run)
			task_ext(t)->backoff_usec = u;
		CHANGED("retry_backoff");
	}
	if (GIVEN("max_retries") && arg_int(merged, "max_retries", 0, 1000, &i) == 0 &&
	    (unsigned) i != ext_of(t)->max_retries) {
		if (!dry_run)
			task_ext(t)->max_retries = (unsigned) i;
		CHANGED("max_retries");
	}
	if (GIVEN("trigger") && json_object_object_get_ex(merged, "trigger", &v) && trigger_apply_edit(t, v, !dry_run))
		CHANGED("trigger");
#undef CHANGED
#undef GIVEN
	json_object_put(merged);
	if (!dry_run && json_object_array_length(changed) > 0) {
		(void) store_task_define(t);
		task_save(t);
		updated_event(t, json_object_get(changed));
	}
	*ret_changed = changed;
	return 0;
}

/* --- remove and clean ------------------------------------------------------- */

/* "t-4 (waiting), t-5 (running)": the dependents of t that still count on it. */
static char *waiting_dependents(const struct task *t)
{
	char *list = NULL, id[24];
	size_t n = 0;

	for (size_t i = 0; i < task_n_rdeps(t); i++) {
		const struct task *d = task_rdeps(t)[i];
		char *more;

		if (!still_waits(d))
			continue;
		if (n++ == 5) {
			more = xasprintf("%s, ...", list);
			free(list);
			list = more;
			break;
		}
		more = xasprintf("%s%s%s (%s)", list ? list : "", list ? ", " : "",
				 task_id_string(d->id, id), status_to_string(d->status));
		free(list);
		list = more;
	}
	return list;
}

/* A task that nothing runs for and nothing unfinished depends on leaves the
 * project; its finished dependents lose that edge. */
int task_remove(struct task *t)
{
	_cleanup_free_ char *deps = NULL;
	char id[24];

	if (status_is_active(t->status) || t->status == ST_PENDING_VALIDATION)
		return errorf(-EBUSY, "task %s is %s; cancel it first", task_id_string(t->id, id),
			      status_to_string(t->status));
	if (task_sb(t))
		return errorf(-EBUSY, "task %s: its sandbox is still stopping; try again in a moment",
			      task_id_string(t->id, id));
	deps = waiting_dependents(t);
	if (deps)
		return errorf(-EBUSY, "task %s cannot be removed: %s depend%s on it", task_id_string(t->id, id),
			      deps, strchr(deps, ',') ? "" : "s");
	task_unlink(t);
	return 0;
}

static int id_cmp(const void *a, const void *b)
{
	int64_t x = (*(struct task *const *) a)->id, y = (*(struct task *const *) b)->id;

	return (x > y) - (x < y);
}

/* project.clean: removes the project's completed tasks (with `failed`, also
 * the failed, upstream_failed and cancelled ones), but for those a task that
 * stays and still waits depends on, and those whose sandbox is still
 * stopping: those are *ret_kept.  It walks the project's tasks of those
 * statuses only, not every task. */
int project_clean(struct project *p, bool failed, json_object **ret_removed, json_object **ret_kept)
{
	_cleanup_free_ unsigned char *mark = calloc(n_tasks ? n_tasks : 1, 1);   /* 1 goes, 2 kept */
	_cleanup_free_ struct task **c = NULL;
	json_object *removed = json_object_new_array(), *kept = json_object_new_array();
	size_t n = 0, cap = 0;
	bool again = true;
	char id[24];

	if (!mark)
		abort();
	for (int s = 0; s < _ST_MAX; s++) {
		if (s != ST_COMPLETED && s != ST_SKIPPED && !(failed && status_is_failure(s)))
			continue;
		for (struct task *t = task_next_in(p, s, 0); t; t = task_next_in(p, s, t->id)) {
			if (n == cap) {
				cap = cap ? 2 * cap : 64;
				c = xrealloc(c, cap * sizeof(*c));
			}
			c[n++] = t;
			mark[t->id] = task_sb(t) ? 2 : 1;     /* its sandbox still stopping: kept */
		}
	}
	if (n > 1)
		qsort(c, n, sizeof(*c), id_cmp);
	/* a task kept keeps what it depends on: until nothing more changes */
	while (again) {
		again = false;
		for (size_t i = 0; i < n; i++) {
			struct task *t = c[i];

			if (mark[t->id] != 1)
				continue;
			for (size_t k = 0; k < task_n_rdeps(t); k++) {
				struct task *d = task_rdeps(t)[k];

				if (mark[d->id] == 1 || !(still_waits(d) || mark[d->id] == 2))
					continue;
				mark[t->id] = 2;
				again = true;
				break;
			}
		}
	}
	for (size_t i = 0; i < n; i++) {
		struct task *t = c[i];

		if (mark[t->id] == 2)
			json_object_array_add(kept, json_object_new_string(task_id_string(t->id, id)));
		if (mark[t->id] != 1)
			continue;
		json_object_array_add(removed, json_object_new_string(task_id_string(t->id, id)));
		task_unlink(t);
	}
	*ret_removed = removed;
	*ret_kept = kept;
	return 0;
}

/* --- run again ------------------------------------------------------------ */

/* Its dependents, transitively, in an order where each comes after what it
 * depends on; *ret_n of them, t not among them. */
static struct task **downstream_of(struct task *t, size_t *ret_n)
{
	_cleanup_free_ unsigned *indeg = calloc(n_tasks ? n_tasks : 1, sizeof(unsigned));
	_cleanup_free_ unsigned char *in = calloc(n_tasks ? n_tasks : 1, 1);
	struct task **list = NULL, **order;
	size_t n = 0, head = 0, tail = 0;

	if (!indeg || !in)
		abort();
	/* who: every task reached from t by following dependents */
	list = xrealloc(list, sizeof(*list));
	list[n++] = t;
	in[t->id] = 1;
	for (size_t i = 0; i < n; i++)
		for (size_t k = 0; k < task_n_rdeps(list[i]); k++) {
			struct task *d = task_rdeps(list[i])[k];

			if (in[d->id])
				continue;
			in[d->id] = 1;
			list = xrealloc(list, (n + 1) * sizeof(*list));
			list[n++] = d;
		}
	/* in what order: Kahn, within them */
	for (size_t i = 0; i < n; i++)
		for (size_t k = 0; k < task_n_deps(list[i]); k++)
			indeg[list[i]->id] += in[task_deps(list[i])[k]->id];
	order = xrealloc(NULL, n * sizeof(*order));
	order[tail++] = t;
	while (head < tail) {
		struct task *x = order[head++];

		for (size_t k = 0; k < task_n_rdeps(x); k++) {
			struct task *d = task_rdeps(x)[k];

			if (in[d->id] && --indeg[d->id] == 0)
				order[tail++] = d;
		}
	}
	free(list);
	memmove(order, order + 1, (tail - 1) * sizeof(*order));
	*ret_n = tail - 1;
	return order;
}

/* Is d in no state to have what it depends on run again? */
static int busy_dependent(const struct task *t, const struct task *d)
{
	char id[24], did[24];

	if (!status_is_active(d->status) && d->status != ST_PENDING_VALIDATION && !task_sb(d))
		return 0;
	return errorf(-EBUSY, "task %s cannot run again while %s, which depends on it, is %s; "
		      "cancel it or wait for it", task_id_string(t->id, id), task_id_string(d->id, did),
		      status_to_string(d->status));
}

/* Back to what its graph says, as if it had never run: a finished task
 * forgets how it ended; one that left `completed` is again unmet for its
 * dependents. */
static void reset(struct task *t)
{
	if (t->status == ST_COMPLETED)
		for (size_t k = 0; k < task_n_rdeps(t); k++)
			task_rdeps(t)[k]->unmet++;
	if (status_is_finished(t->status)) {
		t->tries = 0;
		attempts_reset(t);
		t->released = false;
		task_set_time(t, AT_FINISHED, 0);
		clear_str(&task_def(t)->error_message);
		clear_str(&task_def(t)->result);
		clear_str(&task_def(t)->report);
	}
}

static void settle(struct task *t)
{
	task_settle(t, NULL);
	task_save(t);
}

/* task.retry: a failed or cancelled task, or a completed one, runs again as
 * a new attempt; with downstream, so does everything that depends on it,
 * transitively (each waits for it again).  *ret_ids: the tasks that run
 * again, t first; with dry_run nothing changes (a refusal is the same). */
int task_rerun(struct task *t, bool downstream, bool dry_run, json_object **ret_ids)
{
	_cleanup_free_ struct task **down = NULL;
	size_t n = 0;
	char id[24];
	int r;

	if (t->status == ST_UPSTREAM_FAILED)
		return errorf(-EBUSY, "task %s waits on a failed dependency; retry that one", task_id_string(t->id, id));
	if (t->status == ST_SKIPPED)
		return errorf(-EBUSY, "task %s was skipped by its trigger rule; retry the dependency that decided it, "
			      "or change its trigger (task.edit)", task_id_string(t->id, id));
	if (t->status != ST_FAILED && t->status != ST_CANCELLED && t->status != ST_COMPLETED)
		return errorf(-EBUSY, "task %s is %s; only a failed, cancelled or completed task can run again",
			      task_id_string(t->id, id), status_to_string(t->status));
	if (task_sb(t))
		return errorf(-EBUSY, "task %s: its sandbox is still stopping; try again in a moment",
			      task_id_string(t->id, id));
	if (downstream) {
		down = downstream_of(t, &n);
		for (size_t i = 0; i < n; i++)
			if ((r = busy_dependent(t, down[i])) < 0)
				return r;
	} else {
		for (size_t i = 0; i < task_n_rdeps(t); i++)
			if ((r = busy_dependent(t, task_rdeps(t)[i])) < 0)
				return r;
		/* a dependent runs after a failure too, by its trigger rule */
		if ((r = trigger_check_rdeps_idle(t)) < 0)
			return r;
	}
	if (ret_ids) {
		json_object *ids = json_object_new_array();

		json_object_array_add(ids, json_object_new_string(task_id_string(t->id, id)));
		for (size_t i = 0; i < n; i++)
			json_object_array_add(ids, json_object_new_string(task_id_string(down[i]->id, id)));
		*ret_ids = ids;
	}
	if (dry_run)
		return 0;

	reset(t);
	for (size_t i = 0; i < n; i++)
		reset(down[i]);
	settle(t);
	for (size_t i = 0; i < n; i++)
		settle(down[i]);
	/* what waited on t and was ready is not any more */
	for (size_t i = 0; i < task_n_rdeps(t); i++)
		if ((task_rdeps(t)[i]->status == ST_READY || task_rdeps(t)[i]->status == ST_AWAITING_APPROVAL) &&
		    task_rdeps(t)[i]->unmet > 0)
			set_status(task_rdeps(t)[i], ST_WAITING);
	propagate_recovery(t);
	return 0;
}

int task_retry(struct task *t)
{
	return task_rerun(t, false, false, NULL);
}
