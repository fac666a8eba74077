/*
 * engine.c - the DAG engine's model in memory: statuses and priorities, the
 * events, and status changes with what they propagate through the graph.
 * The engine's other rooms: engine-project.c, engine-task.c, engine-add.c,
 * engine-batch.c, engine-queue.c (each project's dispatchable tasks, best
 * first), engine-dispatch.c, engine-spec.c, engine-sandbox.c, engine-load.c,
 * engine-lifecycle.c and engine-trigger.c (trigger rules: what propagates
 * when a task reaches or leaves a final status).
 *
 * Every task keeps a count of its dependencies not yet completed.  Completing
 * a task decrements the counts of its direct dependents and nothing else: no
 * scan, no polling.  Each project keeps its dispatchable tasks in queues,
 * best first; dispatch takes the best of the projects' best, among those
 * with a free slot.  Every change is written through to the store within
 * the current batch, and announced as an event.
 */
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/random.h>
#include <unistd.h>

#include "dagd.h"

struct project **projects;
size_t n_projects;
struct idset members[_ST_MAX];
struct idset in_backoff;

int64_t next_project_id = 1, next_task_id = 1;
unsigned active_total;
struct sandbox *sandboxes;              /* live ones */
struct task **spawn_queue;
size_t n_spawn, spawn_cap;
bool dispatch_dirty = true;

static const char *const status_names[_ST_MAX] = {
	[ST_WAITING] = "waiting",
	[ST_READY] = "ready",
	[ST_SPAWNING] = "spawning",
	[ST_RUNNING] = "running",
	[ST_PENDING_VALIDATION] = "pending_validation",
	[ST_VALIDATING] = "validating",
	[ST_COMPLETED] = "completed",
	[ST_FAILED] = "failed",
	[ST_UPSTREAM_FAILED] = "upstream_failed",
	[ST_CANCELLED] = "cancelled",
	[ST_SKIPPED] = "skipped",
	[ST_AWAITING_APPROVAL] = "awaiting_approval",
};

static const char *const priority_names[_PRIO_MAX] = { "critical", "high", "medium", "low" };

const char *status_to_string(enum status s)
{
	return s >= 0 && s < _ST_MAX ? status_names[s] : NULL;
}

enum status status_from_string(const char *s)
{
	for (int i = 0; s && i < _ST_MAX; i++)
		if (strcmp(s, status_names[i]) == 0)
			return i;
	return _ST_INVALID;
}

const char *priority_to_string(enum priority p)
{
	return p >= 0 && p < _PRIO_MAX ? priority_names[p] : NULL;
}

enum priority priority_from_string(const char *s)
{
	for (int i = 0; s && i < _PRIO_MAX; i++)
		if (strcmp(s, priority_names[i]) == 0)
			return i;
	return _PRIO_INVALID;
}

bool status_is_active(enum status s)
{
	return s == ST_SPAWNING || s == ST_RUNNING || s == ST_VALIDATING;
}

bool status_is_finished(enum status s)
{
	return s == ST_COMPLETED || s == ST_FAILED || s == ST_UPSTREAM_FAILED || s == ST_CANCELLED ||
	       s == ST_SKIPPED;
}

bool status_is_failure(enum status s)
{
	return s == ST_FAILED || s == ST_UPSTREAM_FAILED || s == ST_CANCELLED;
}

char *task_id_string(int64_t id, char buf[static 24])
{
	format_id(buf, "t-", id);
	return buf;
}

int64_t parse_id(const char *s, char prefix)
{
	char *end;
	long long v;

	if (!s || s[0] != prefix || s[1] != '-' || s[2] < '1' || s[2] > '9')
		return -1;
	errno = 0;
	v = strtoll(s + 2, &end, 10);
	if (errno || *end)
		return -1;
	return v;
}

struct project *project_find(const char *s)
{
	int64_t id = parse_id(s, 'p');

	if (id > 0)
		return (size_t) id < n_projects ? projects[id] : NULL;
	for (size_t i = 0; s && i < n_projects; i++)
		if (projects[i] && strcmp(projects[i]->name, s) == 0)
			return projects[i];
	return NULL;
}

struct task *task_find(const char *s)
{
	int64_t id = parse_id(s, 't');

	return task_at(id);
}

struct executor *task_executor(const struct task *t)
{
	return executor_find(ext_of(t)->executor ? ext_of(t)->executor : t->project->executor);
}

json_object *ids_to_json(struct task **list, size_t n)
{
	json_object *a = json_object_new_array_ext((int) n);
	char buf[24];

	for (size_t i = 0; i < n; i++)
		json_object_array_add(a, json_object_new_string(task_id_string(list[i]->id, buf)));
	return a;
}

/* --- status changes ------------------------------------------------------ */

bool status_changed_since_commit;      /* but a spawn's start (engine_exits_pending()) */

void count_active(struct task *t, int delta)
{
	struct executor *ex = executor_find(task_def(t)->sandbox_executor);

	t->project->active += (unsigned) delta;
	active_total += (unsigned) delta;
	if (ex)
		ex->active += (unsigned) delta;
	pools_count(t, delta);
	if (ext_of(t)->map_parent)
		map_count_active(t, delta);
	if (delta < 0)
		dispatch_dirty = true;
}

/* n more ids from next_task_id on can be given; -EOVERFLOW past the last
 * id a task can have (struct task holds 32 bits). */
int tasks_reserve(size_t n)
{
	if ((uint64_t) next_task_id + n - 1 > TASK_ID_MAX)
		return errorf(-EOVERFLOW, "cannot make %zu more tasks: task ids end at %u and the next is %lld", n,
			      TASK_ID_MAX, (long long) next_task_id);
	return 0;
}

void member_add(struct task *t)
{
	t->project->counts[t->status]++;
	idset_add(&t->project->members[t->status], t->id);
	idset_add(&members[t->status], t->id);
}

void member_del(struct task *t)
{
	t->project->counts[t->status]--;
	idset_del(&t->project->members[t->status], t->id);
	idset_del(&members[t->status], t->id);
}

struct task *task_next(const struct project *p, const bool want[static _ST_MAX], int64_t after)
{
	int64_t best = 0;

	for (int s = 0; s < _ST_MAX; s++)
		if (want[s]) {
			int64_t id = idset_next(p ? &p->members[s] : &members[s], after);

			if (id && (!best || id < best))
				best = id;
		}
	return best ? task_at(best) : NULL;
}

struct task *task_next_in(const struct project *p, enum status s, int64_t after)
{
	int64_t id = idset_next(p ? &p->members[s] : &members[s], after);

	return id ? task_at(id) : NULL;
}

void set_status(struct task *t, enum status s)
{
	enum status old = t->status;
	int64_t now;

	if (s == ST_READY && t->approval)
		s = ST_AWAITING_APPROVAL;       /* an operator decides, not a sandbox */
	if (old == s)
		return;
	member_del(t);
	t->status = s;
	member_add(t);
	if (old != ST_SPAWNING || s != ST_RUNNING)
		status_changed_since_commit = true;
	if (status_is_active(old) && !status_is_active(s))
		count_active(t, -1);
	else if (!status_is_active(old) && status_is_active(s))
		count_active(t, +1);
	now = now_usec();
	task_set_time(t, AT_STATUS_CHANGED, now);
	if (s != ST_RUNNING)
		t->paused = false;
	if (status_is_finished(s))
		task_set_time(t, AT_FINISHED, now);
	task_save(t);
	event_status_changed(t, old, now);
	if (t->approval)
		attempts_status_changed(t, old);
}

bool has_failed_dep(const struct task *t)
{
	for (size_t i = 0; i < task_n_deps(t); i++)
		if (status_is_failure(task_deps(t)[i]->status))
			return true;
	return false;
}

/* propagate_failure() and propagate_recovery(): engine-trigger.c */

void clear_str(char **p)
{
	free(*p);
	*p = NULL;
}

void set_str(char **p, const char *s)
{
	char *n = xstrdup(s);

	free(*p);
	*p = n;
}

/* Its backoff timer goes, if it has one. */
void backoff_stop(struct task *t)
{
	if (!ext_of(t)->backoff)
		return;
	task_ext(t)->backoff = sd_event_source_unref(task_ext(t)->backoff);
	idset_del(&in_backoff, t->id);
}

static int on_backoff(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct task *t = userdata;

	backoff_stop(t);
	queue_sync(t);
	return 0;
}

void arm_backoff(struct task *t)
{
	int64_t delay = ext_of(t)->not_before - now_usec();
	struct task_ext *x;

	backoff_stop(t);
	if (delay <= 0)
		return;
	x = task_ext(t);
	if (sd_event_add_time_relative(D.event, &x->backoff, CLOCK_MONOTONIC, (uint64_t) delay,
				       10 * USEC_PER_MSEC, on_backoff, t) < 0)
		x->backoff = NULL;
	else
		idset_add(&in_backoff, t->id);
}

/* The task's work succeeded (exit 0 or a report); the ids of the tasks it
 * unblocked in *ret_ids if it is given (an array to put). */
void task_succeeded(struct task *t, const char *sandbox_id, json_object **ret_ids)
{
	struct task **unblocked = NULL;
	size_t n = 0;

	if (ext_of(t)->validation_command && t->status != ST_VALIDATING && !ext_of(t)->expanded) {
		set_status(t, ST_PENDING_VALIDATION);
		if (ret_ids)
			*ret_ids = json_object_new_array();
		return;
	}
	set_status(t, ST_COMPLETED);
	event_completed(t);

	for (size_t i = 0; i < task_n_rdeps(t); i++) {
		struct task *d = task_rdeps(t)[i];

		if (d->unmet > 0)
			d->unmet--;
		if (map_dep_completed(d)) {     /* expanded now, or gathered its children */
			if (status_is_finished(d->status) && ext_of(t)->map_parent == d->id)
				propagate_failure(d);   /* a late item: rules over its group */
			continue;
		}
		if (ext_of(d)->trigger && d->status == ST_WAITING) {
			/* a rule of its own: judged once every dependency finished */
			task_settle(d, t);
			if (d->status == ST_SKIPPED)
				propagate_failure(d);
			if (d->status != ST_READY && d->status != ST_AWAITING_APPROVAL)
				continue;
		} else if (d->unmet == 0 && d->status == ST_WAITING)
			set_status(d, ST_READY);
		else
			continue;
		unblocked = xrealloc(unblocked, (n + 1) * sizeof(*unblocked));
		unblocked[n++] = d;
	}
	if (ret_ids)
		*ret_ids = ids_to_json(unblocked, n);
	if (n > 0)
		event_unblocked(t, unblocked, n, sandbox_id);
	free(unblocked);
}

/* An attempt failed: retry after a backoff if its rules allow it
 * (engine-attempts.c); how: how it ended, NULL for a failure with no exit code. */
void task_failed(struct task *t, const char *message)
{
	task_failed_how(t, message, NULL);
}

void task_failed_how(struct task *t, const char *message, const struct fail_how *how)
{
	const char *rule;
	bool retry = retry_decide(t, how, &rule);
	json_object *o;

	set_str(&task_def(t)->error_message, message);
	if (retry) {
		double base = (double) ext_of(t)->backoff_usec * ldexp(1.0, (int) (t->tries > 20 ? 20 : t->tries) - 1);
		uint32_t rnd = 0;
		double jitter;

		(void) !getrandom(&rnd, sizeof(rnd), GRND_NONBLOCK);
		jitter = 0.5 + (double) rnd / 4294967296.0;    /* 0.5 .. 1.5 */
		base *= jitter;
		if (base > 3600.0 * USEC_PER_SEC)
			base = 3600.0 * USEC_PER_SEC;
		task_ext(t)->not_before = now_usec() + (int64_t) base;
		arm_backoff(t);
		set_status(t, ST_READY);
	} else
		set_status(t, ST_FAILED);

	o = task_payload(t);
	json_object_object_add(o, "error_message", json_object_new_string(message));
	json_object_object_add(o, "will_retry", json_object_new_boolean(retry));
	json_object_object_add(o, "retry_at", retry ? json_time(ext_of(t)->not_before) : NULL);
	json_object_object_add(o, "rule", json_object_new_string(rule));
	json_object_object_add(o, "lost_retries", json_object_new_int((int) ext_of(t)->lost_tries));
	task_event(t, "TASK_FAILED", o);
	if (!retry)
		propagate_failure(t);
}
