/*
 * engine-trigger.c - when a task runs relative to its dependencies: its
 * trigger rule judged, the `skipped` status, how a dependency reaching or
 * leaving a final status re-judges its dependents, and `finally` tasks.
 *
 * A task in a status of its graph (waiting, ready, upstream_failed,
 * skipped) has one verdict, task_verdict(), from its rule and its
 * dependencies' statuses:
 *
 *   all_succeeded (the default): a failed, upstream_failed or cancelled
 *   dependency makes it upstream_failed, a skipped one skipped; else it
 *   waits until every one completed.
 *
 *   any other rule: it waits until every dependency finished, then runs
 *   if the rule holds and is skipped if not.
 *
 * When a dependency reaches a final status its waiting dependents are
 * judged again (propagate_failure); when it leaves one (task.retry), so are
 * those it had made final (propagate_recovery); each change goes on to the
 * dependents of the task that changed.  A `finally` task of a batch depends
 * on every other task of its batch with the rule all_done.
 */
#include <stdio.h>
#include <string.h>

#include "dagd.h"
#include "jw.h"
#include "trigger.h"

static unsigned dep_bits(const struct task *d)
{
	switch (d->status) {
	case ST_COMPLETED:
		return TS_SUCCEEDED | TS_DONE;
	case ST_FAILED:
	case ST_UPSTREAM_FAILED:
		return TS_FAILED | TS_DONE;
	case ST_SKIPPED:
		return TS_SKIPPED | TS_DONE;
	case ST_CANCELLED:
		return TS_CANCELLED | TS_DONE;
	default:
		return 0;
	}
}

/* The dependency of t that `name` (a name or an id) names, if any. */
static struct task *dep_named(const struct task *t, const char *name)
{
	char id[24];

	for (size_t i = 0; i < task_n_deps(t); i++) {
		struct task *d = task_deps(t)[i];

		if (task_has_name(d, name) || strcmp(task_id_string(d->id, id), name) == 0)
			return d;
	}
	return NULL;
}

static unsigned operand_state(size_t i, void *userdata)
{
	const struct task *t = userdata;
	const struct task *d = dep_named(t, ext_of(t)->trigger->names[i]);

	return d ? dep_bits(d) : 0;
}

/* The units a rule over groups counts: a mapped dependency's children
 * (one per item), any other dependency itself. */
struct units {
	unsigned n, done, succeeded, failed;
};

static void unit_count(struct units *u, const struct task *d)
{
	u->n++;
	u->done += status_is_finished(d->status);
	u->succeeded += d->status == ST_COMPLETED;
	u->failed += status_is_failure(d->status);
}

static struct units units_of(const struct task *t)
{
	struct units u = { 0 };

	for (size_t i = 0; i < task_n_deps(t); i++) {
		const struct task *d = task_deps(t)[i];

		if (!ext_of(d)->expanded) {
			unit_count(&u, d);
			continue;
		}
		for (size_t k = 0; k < task_n_deps(d); k++)
			if (ext_of(task_deps(d)[k])->map_parent == d->id)
				unit_count(&u, task_deps(d)[k]);
	}
	return u;
}

static bool over_groups(const struct task *t)
{
	return ext_of(t)->trigger->kind == TRIGGER_ANY_SUCCEEDED || ext_of(t)->trigger->kind == TRIGGER_ALL_FAILED;
}

/* Every dependency finished: does its rule hold? */
static bool rule_holds(const struct task *t)
{
	switch (ext_of(t)->trigger->kind) {
	case TRIGGER_ANY_SUCCEEDED:
		return units_of(t).succeeded > 0;
	case TRIGGER_ALL_FAILED: {
		struct units u = units_of(t);

		return u.failed == u.n;
	}
	case TRIGGER_ANY_FAILED:
		for (size_t i = 0; i < task_n_deps(t); i++)
			if (status_is_failure(task_deps(t)[i]->status))
				return true;
		return false;
	case TRIGGER_NONE_FAILED:
		for (size_t i = 0; i < task_n_deps(t); i++)
			if (status_is_failure(task_deps(t)[i]->status))
				return false;
		return true;
	case TRIGGER_EXPR:
		return trigger_eval(ext_of(t)->trigger, operand_state, (void *) t);
	default:
		return true;
	}
}

enum status task_verdict(const struct task *t)
{
	bool skipped = false;

	if (!ext_of(t)->trigger) {
		for (size_t i = 0; i < task_n_deps(t); i++) {
			if (status_is_failure(task_deps(t)[i]->status))
				return ST_UPSTREAM_FAILED;
			skipped |= task_deps(t)[i]->status == ST_SKIPPED;
		}
		return skipped ? ST_SKIPPED : t->unmet ? ST_WAITING : ST_READY;
	}
	for (size_t i = 0; i < task_n_deps(t); i++)
		if (!status_is_finished(task_deps(t)[i]->status))
			return ST_WAITING;
	/* a mapped task fails with its first failed item: a rule over its
	 * items waits for the others too */
	if (over_groups(t)) {
		struct units u = units_of(t);

		if (u.done < u.n)
			return ST_WAITING;
	}
	return rule_holds(t) ? ST_READY : ST_SKIPPED;
}

static const char *rule_text(const struct task *t)
{
	return ext_of(t)->trigger ? ext_of(t)->trigger->text : "all_succeeded";
}

static void skipped_event(struct task *t, const struct task *cause)
{
	json_object *o = task_payload(t);
	char id[24], *why;

	if (!ext_of(t)->trigger && (!cause || cause->status != ST_SKIPPED))
		for (size_t i = 0; i < task_n_deps(t); i++)
			if (task_deps(t)[i]->status == ST_SKIPPED)
				cause = task_deps(t)[i];
	if (!ext_of(t)->trigger)
		why = xasprintf("dependency %s was skipped", cause ? task_id_string(cause->id, id) : "?");
	else
		why = xasprintf("its trigger '%s' did not hold once its dependencies finished", rule_text(t));
	json_object_object_add(o, "trigger", json_object_new_string(rule_text(t)));
	json_object_object_add(o, "dependency",
			       cause ? json_object_new_string(task_id_string(cause->id, id)) : NULL);
	json_object_object_add(o, "reason", json_object_new_string(why));
	free(why);
	task_event(t, "TASK_SKIPPED", o);
}

/* t takes the status its verdict gives it (with TASK_SKIPPED if skipped);
 * cause: the dependency whose change asked for it, if one did. */
void task_settle(struct task *t, const struct task *cause)
{
	enum status v = task_verdict(t);

	if (v == t->status)
		return;
	if (status_is_finished(t->status) && !status_is_finished(v))
		task_set_time(t, AT_FINISHED, 0);
	set_status(t, v);
	if (v == ST_SKIPPED)
		skipped_event(t, cause);
}

/* A task just added, born final (upstream_failed or skipped): said, and
 * what of its batch it was born before is judged again. */
void task_born(struct task *t)
{
	if (t->status == ST_SKIPPED)
		skipped_event(t, NULL);
	if (status_is_finished(t->status))
		propagate_failure(t);
}

/* recovery: t left a final status, so its final dependents are judged too. */
static void rejudge(struct task *t, bool recovery)
{
	for (size_t i = 0; i < task_n_rdeps(t); i++) {
		struct task *d = task_rdeps(t)[i];
		enum status old = d->status;

		/* an item that ends after its mapped task failed: the rules over
		 * that group judge again */
		if (!recovery && ext_of(d)->expanded && ext_of(t)->map_parent == d->id && status_is_finished(old)) {
			rejudge(d, false);
			continue;
		}
		if (old != ST_WAITING && old != ST_READY && old != ST_AWAITING_APPROVAL &&
		    !(recovery && (old == ST_UPSTREAM_FAILED || old == ST_SKIPPED ||
				   (ext_of(d)->expanded && old == ST_FAILED))))
			continue;
		/* a mapped task fails with a child that failed (engine-map.c) */
		if (!recovery && map_child_failed(d, t)) {
			rejudge(d, false);
			continue;
		}
		task_settle(d, t);
		if (d->status == old)
			continue;
		if (status_is_finished(old))
			rejudge(d, true);
		else if (status_is_finished(d->status))
			rejudge(d, false);
	}
}

/* t reached a final status: its waiting dependents are judged again. */
void propagate_failure(struct task *t)
{
	rejudge(t, false);
}

/* t came back from a final status (or its dependencies changed): its
 * dependents, those it had made upstream_failed or skipped too. */
void propagate_recovery(struct task *t)
{
	rejudge(t, true);
}

/* t is to leave a final status, or run again: refused while a task that
 * ran after it by its trigger rule still runs, directly or through
 * dependents t had made upstream_failed or skipped (which leave theirs too). */
int trigger_check_rdeps_idle(const struct task *t)
{
	_cleanup_free_ unsigned char *seen = calloc(n_tasks ? n_tasks : 1, 1);
	_cleanup_free_ const struct task **stack = NULL;
	size_t n = 0;
	char id[24], did[24];

	if (!seen)
		abort();
	stack = xrealloc(stack, (n_tasks + 1) * sizeof(*stack));
	stack[n++] = t;
	while (n > 0) {
		const struct task *x = stack[--n];

		for (size_t i = 0; i < task_n_rdeps(x); i++) {
			const struct task *d = task_rdeps(x)[i];

			if (status_is_active(d->status) || d->status == ST_PENDING_VALIDATION || task_sb(d))
				return errorf(-EBUSY, "task %s cannot change while %s, which runs after it, is %s; "
					      "cancel it or wait for it", task_id_string(t->id, id),
					      task_id_string(d->id, did), status_to_string(d->status));
			if ((d->status == ST_UPSTREAM_FAILED || d->status == ST_SKIPPED) && !seen[d->id]) {
				seen[d->id] = 1;
				stack[n++] = d;
			}
		}
	}
	return 0;
}

/* --- arguments ------------------------------------------------------------ */

/* `trigger` and `finally` of task.add args, as types and as a rule. */
int check_trigger_arg(json_object *args)
{
	struct trigger *tr = NULL;
	const char *s = NULL;
	bool fin = false;
	int r;

	if ((r = arg_bool(args, "finally", &fin)) < 0 && r != -ENOENT)
		return r;
	r = arg_string(args, "trigger", &s);
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return r;
	if (fin)
		return errorf(-EINVAL, "a finally task takes no 'trigger': it runs once every other task of "
			      "its batch finished, whatever the outcome");
	r = trigger_parse(s, &tr);
	trigger_free(tr);
	return r;
}

/* The names a trigger expression tr uses must be among the task's
 * dependencies, as resolved by batch_check(): deps[k] >= 0 the index of a
 * task of the batch (batch_names[] its name, or NULL), < 0 an existing
 * task's id. */
int trigger_check_names(const struct trigger *tr, const int64_t *deps, size_t n_deps, const char *const *batch_names)
{
	char id[24];

	for (size_t i = 0; tr && tr->kind == TRIGGER_EXPR && i < tr->n_names; i++) {
		bool found = false;

		for (size_t k = 0; k < n_deps && !found; k++) {
			struct task *on = deps[k] < 0 ? task_at(-deps[k]) : NULL;

			if (on)
				found = task_has_name(on, tr->names[i]) ||
					strcmp(task_id_string(on->id, id), tr->names[i]) == 0;
			else
				found = batch_names[deps[k]] && strcmp(batch_names[deps[k]], tr->names[i]) == 0;
		}
		if (!found)
			return errorf(-EINVAL, "trigger: '%s' is not one of the task's dependencies (depends_on)",
				      tr->names[i]);
	}
	return 0;
}

/* Sets t's rule (NULL or all_succeeded: the default). */
int task_trigger_set(struct task *t, const char *text)
{
	struct trigger *tr = NULL;
	int r;

	if (text && (r = trigger_parse(text, &tr)) < 0)
		return r;
	if (tr && tr->kind == TRIGGER_ALL_SUCCEEDED) {
		trigger_free(tr);
		tr = NULL;
	}
	if (!tr && !task_ext_held(t))
		return 0;
	trigger_free(task_ext_held(t) ? task_ext(t)->trigger : NULL);
	task_ext(t)->trigger = tr;
	return 0;
}

/* Does t's expression name dep?  (It cannot then stop depending on it.) */
bool trigger_names(const struct task *t, const struct task *dep)
{
	char id[24];

	if (!ext_of(t)->trigger || ext_of(t)->trigger->kind != TRIGGER_EXPR)
		return false;
	for (size_t i = 0; i < ext_of(t)->trigger->n_names; i++)
		if (task_has_name(dep, ext_of(t)->trigger->names[i]) ||
		    strcmp(task_id_string(dep->id, id), ext_of(t)->trigger->names[i]) == 0)
			return true;
	return false;
}

/* task.edit's `trigger` (its type and syntax checked already). */
int trigger_check_edit(struct task *t, json_object *v)
{
	struct trigger *tr = NULL;
	char id[24];
	int r;

	if (strcmp(json_object_get_string(v), rule_text(t)) == 0)
		return 0;               /* unchanged: nothing to refuse */
	if (t->finally)
		return errorf(-EINVAL, "task %s is a finally task: its rule is all_done", task_id_string(t->id, id));
	if (t->status != ST_WAITING && t->status != ST_READY && t->status != ST_UPSTREAM_FAILED &&
	    t->status != ST_SKIPPED)
		return errorf(-EBUSY, "task %s is %s; its trigger can only change before it runs",
			      task_id_string(t->id, id), status_to_string(t->status));
	if ((t->status == ST_UPSTREAM_FAILED || t->status == ST_SKIPPED) && (r = trigger_check_rdeps_idle(t)) < 0)
		return r;
	if ((r = trigger_parse(json_object_get_string(v), &tr)) < 0)
		return r;
	for (size_t i = 0; tr->kind == TRIGGER_EXPR && i < tr->n_names; i++)
		if (!dep_named(t, tr->names[i])) {
			r = errorf(-EINVAL, "trigger: '%s' is not one of the task's dependencies (depends_on)",
				   tr->names[i]);
			break;
		}
	trigger_free(tr);
	return r;
}

/* Whether v differs from t's rule; if apply, t takes it, is judged again,
 * and so are its dependents. */
bool trigger_apply_edit(struct task *t, json_object *v, bool apply)
{
	const char *s = json_object_get_string(v);
	enum status old = t->status;

	if (strcmp(s, rule_text(t)) == 0)
		return false;
	if (!apply)
		return true;
	(void) task_trigger_set(t, s);
	(void) store_task_trigger(t);
	task_settle(t, NULL);
	if (t->status != old)
		propagate_recovery(t);
	return true;
}

void task_trigger_write_json(struct jw *w, const struct task *t)
{
	jw_key(w, "trigger");
	jw_str(w, rule_text(t));
	jw_key(w, "finally");
	jw_bool(w, t->finally);
}

/* --- finally ------------------------------------------------------------- */

/* A finally task's environment: how the rest of its batch (its
 * dependencies) ended.  At most 5 strings into envp; how many. */
size_t finally_env(const struct task *t, char **envp)
{
	unsigned completed = 0, failed = 0, skipped = 0, cancelled = 0;

	if (!t->finally)
		return 0;
	for (size_t i = 0; i < task_n_deps(t); i++)
		switch (task_deps(t)[i]->status) {
		case ST_COMPLETED:
			completed++;
			break;
		case ST_SKIPPED:
			skipped++;
			break;
		case ST_CANCELLED:
			cancelled++;
			break;
		default:
			failed++;       /* failed, upstream_failed (or, run by hand, not finished) */
			break;
		}
	envp[0] = xasprintf("DAGD_DAG_STATUS=%s", completed + skipped == task_n_deps(t) ? "succeeded" : "failed");
	envp[1] = xasprintf("DAGD_DAG_COMPLETED=%u", completed);
	envp[2] = xasprintf("DAGD_DAG_FAILED=%u", failed);
	envp[3] = xasprintf("DAGD_DAG_SKIPPED=%u", skipped);
	envp[4] = xasprintf("DAGD_DAG_CANCELLED=%u", cancelled);
	return 5;
}
