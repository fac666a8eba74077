/*
 * engine.c - the DAG engine: the model in memory, status changes, dispatch,
 * and the sandboxes' lives as the host sees them.
 *
 * Every task keeps a count of its dependencies not yet completed.  Completing
 * a task decrements the counts of its direct dependents and nothing else: no
 * scan, no polling.  Each project keeps a heap of its dispatchable tasks,
 * best first; dispatch takes the best top among the projects with a free
 * slot.  Every change is written through to the store within the current
 * batch, and announced as an event.
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
struct task **tasks;
size_t n_tasks;

static int64_t next_project_id = 1, next_task_id = 1;
static unsigned active_total;
static struct sandbox *sandboxes;       /* live ones */
static struct task **spawn_queue;
static size_t n_spawn, spawn_cap;
static bool dispatch_dirty = true;

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
	return s == ST_COMPLETED || s == ST_FAILED || s == ST_UPSTREAM_FAILED || s == ST_CANCELLED;
}

bool status_is_failure(enum status s)
{
	return s == ST_FAILED || s == ST_UPSTREAM_FAILED || s == ST_CANCELLED;
}

char *task_id_string(int64_t id, char buf[static 24])
{
	snprintf(buf, 24, "t-%lld", (long long) id);
	return buf;
}

static int64_t parse_id(const char *s, char prefix)
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

	return id > 0 && (size_t) id < n_tasks ? tasks[id] : NULL;
}

static struct executor *task_executor(const struct task *t)
{
	return executor_find(t->executor ? t->executor : t->project->executor);
}

/* --- events -------------------------------------------------------------- */

void event_emit(const char *type, const char *entity, const char *entity_id, int64_t project_id,
		json_object *payload)
{
	(void) store_event_append(type, entity, entity_id, project_id, payload, NULL);
	json_object_put(payload);
	server_kick();
}

json_object *ids_to_json(struct task **list, size_t n)
{
	json_object *a = json_object_new_array_ext((int) n);
	char buf[24];

	for (size_t i = 0; i < n; i++)
		json_object_array_add(a, json_object_new_string(task_id_string(list[i]->id, buf)));
	return a;
}

/* --- the dispatch heap --------------------------------------------------- */

/* < 0 when a goes first: priority, then more dependents, then older. */
static int task_cmp(const struct task *a, const struct task *b)
{
	if (a->priority != b->priority)
		return a->priority < b->priority ? -1 : 1;
	if (a->n_rdeps != b->n_rdeps)
		return a->n_rdeps > b->n_rdeps ? -1 : 1;
	return a->id < b->id ? -1 : a->id > b->id;
}

static void heap_swap(struct project *p, size_t i, size_t j)
{
	struct task *t = p->heap[i];

	p->heap[i] = p->heap[j];
	p->heap[j] = t;
	p->heap[i]->heap_idx = (ssize_t) i;
	p->heap[j]->heap_idx = (ssize_t) j;
}

static void heap_fix(struct project *p, size_t i)
{
	while (i > 0 && task_cmp(p->heap[i], p->heap[(i - 1) / 2]) < 0) {
		heap_swap(p, i, (i - 1) / 2);
		i = (i - 1) / 2;
	}
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;

		if (l < p->n_heap && task_cmp(p->heap[l], p->heap[m]) < 0)
			m = l;
		if (r < p->n_heap && task_cmp(p->heap[r], p->heap[m]) < 0)
			m = r;
		if (m == i)
			return;
		heap_swap(p, i, m);
		i = m;
	}
}

static void heap_remove(struct task *t)
{
	struct project *p = t->project;
	size_t i = (size_t) t->heap_idx;

	if (t->heap_idx < 0)
		return;
	t->heap_idx = -1;
	p->n_heap--;
	if (i == p->n_heap)
		return;
	p->heap[i] = p->heap[p->n_heap];
	p->heap[i]->heap_idx = (ssize_t) i;
	heap_fix(p, i);
}

static bool dispatchable(const struct task *t)
{
	if (t->sb || t->backoff || t->held)
		return false;
	if (t->status == ST_PENDING_VALIDATION)
		return true;
	return t->status == ST_READY && (t->project->autonomous || t->released);
}

/* Put the task in its project's heap, or take it out, as it now deserves. */
void heap_sync(struct task *t)
{
	struct project *p = t->project;
	bool want = dispatchable(t);

	if (want == (t->heap_idx >= 0))
		return;
	if (!want) {
		heap_remove(t);
		return;
	}
	if (p->n_heap == p->heap_cap) {
		p->heap_cap = p->heap_cap ? 2 * p->heap_cap : 16;
		p->heap = xrealloc(p->heap, p->heap_cap * sizeof(*p->heap));
	}
	p->heap[p->n_heap] = t;
	t->heap_idx = (ssize_t) p->n_heap++;
	heap_fix(p, (size_t) t->heap_idx);
	dispatch_dirty = true;
	server_kick();
}

/* --- status changes ------------------------------------------------------ */

static void count_active(struct task *t, int delta)
{
	struct executor *ex = executor_find(t->sandbox_executor);

	t->project->active += (unsigned) delta;
	active_total += (unsigned) delta;
	if (ex)
		ex->active += (unsigned) delta;
	if (delta < 0)
		dispatch_dirty = true;
}

static void save(struct task *t)
{
	t->updated_at = now_usec();
	(void) store_task_save(t);
	heap_sync(t);
}

void task_save(struct task *t)
{
	save(t);
}

/* Its place in its project's heap, after its priority changed. */
void task_reorder(struct task *t)
{
	if (t->heap_idx >= 0)
		heap_fix(t->project, (size_t) t->heap_idx);
	dispatch_dirty = true;
}

void set_status(struct task *t, enum status s)
{
	enum status old = t->status;
	json_object *o;
	char id[24];

	if (old == s)
		return;
	t->project->counts[old]--;
	t->project->counts[s]++;
	t->status = s;
	if (status_is_active(old) && !status_is_active(s))
		count_active(t, -1);
	else if (!status_is_active(old) && status_is_active(s))
		count_active(t, +1);
	t->status_changed_at = now_usec();
	if (s != ST_RUNNING)
		t->paused = false;
	if (status_is_finished(s))
		t->finished_at = t->status_changed_at;
	save(t);

	o = json_object_new_object();
	json_object_object_add(o, "task_id", json_object_new_string(task_id_string(t->id, id)));
	snprintf(id, sizeof(id), "p-%lld", (long long) t->project->id);
	json_object_object_add(o, "project_id", json_object_new_string(id));
	json_object_object_add(o, "old_status", json_object_new_string(status_to_string(old)));
	json_object_object_add(o, "new_status", json_object_new_string(status_to_string(s)));
	json_object_object_add(o, "attempt", json_object_new_int((int) t->attempt));
	event_emit("TASK_STATUS_CHANGED", "task", task_id_string(t->id, id), t->project->id, o);
}

json_object *task_payload(const struct task *t)
{
	json_object *o = json_object_new_object();
	char id[24];

	json_object_object_add(o, "task_id", json_object_new_string(task_id_string(t->id, id)));
	snprintf(id, sizeof(id), "p-%lld", (long long) t->project->id);
	json_object_object_add(o, "project_id", json_object_new_string(id));
	json_object_object_add(o, "attempt", json_object_new_int((int) t->attempt));
	return o;
}

void task_event(const struct task *t, const char *type, json_object *payload)
{
	char id[24];

	event_emit(type, "task", task_id_string(t->id, id), t->project->id, payload);
}

bool has_failed_dep(const struct task *t)
{
	for (size_t i = 0; i < t->n_deps; i++)
		if (status_is_failure(t->deps[i]->status))
			return true;
	return false;
}

/* Dependents that wait on t, transitively, can no longer run. */
void propagate_failure(struct task *t)
{
	for (size_t i = 0; i < t->n_rdeps; i++) {
		struct task *d = t->rdeps[i];

		if (d->status != ST_WAITING && d->status != ST_READY)
			continue;
		set_status(d, ST_UPSTREAM_FAILED);
		propagate_failure(d);
	}
}

/* After t came back from a failure: its dependents that failed only for
 * want of it wait again. */
void propagate_recovery(struct task *t)
{
	for (size_t i = 0; i < t->n_rdeps; i++) {
		struct task *d = t->rdeps[i];

		if (d->status != ST_UPSTREAM_FAILED || has_failed_dep(d))
			continue;
		set_status(d, d->unmet ? ST_WAITING : ST_READY);
		propagate_recovery(d);
	}
}

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

static int on_backoff(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct task *t = userdata;

	t->backoff = sd_event_source_unref(t->backoff);
	heap_sync(t);
	return 0;
}

static void arm_backoff(struct task *t)
{
	int64_t delay = t->not_before - now_usec();

	t->backoff = sd_event_source_unref(t->backoff);
	if (delay <= 0)
		return;
	if (sd_event_add_time_relative(D.event, &t->backoff, CLOCK_MONOTONIC, (uint64_t) delay,
				       10 * USEC_PER_MSEC, on_backoff, t) < 0)
		t->backoff = NULL;
}

/* The task's work succeeded (exit 0 or a report).  Returns the ids of the
 * tasks it unblocked. */
static json_object *task_succeeded(struct task *t, const char *sandbox_id)
{
	struct task **unblocked = NULL;
	size_t n = 0;
	json_object *ids, *o;

	if (t->validation_command && t->status != ST_VALIDATING) {
		set_status(t, ST_PENDING_VALIDATION);
		return json_object_new_array();
	}
	set_status(t, ST_COMPLETED);
	o = task_payload(t);
	json_object_object_add(o, "result", json_parse(t->result));
	task_event(t, "TASK_COMPLETED", o);

	for (size_t i = 0; i < t->n_rdeps; i++) {
		struct task *d = t->rdeps[i];

		if (d->unmet > 0)
			d->unmet--;
		if (d->unmet == 0 && d->status == ST_WAITING) {
			set_status(d, ST_READY);
			unblocked = xrealloc(unblocked, (n + 1) * sizeof(*unblocked));
			unblocked[n++] = d;
		}
	}
	ids = ids_to_json(unblocked, n);
	if (n > 0) {
		char pid[24];

		o = json_object_new_object();
		json_object_object_add(o, "completed_task_id",
				       json_object_new_string(task_id_string(t->id, pid)));
		snprintf(pid, sizeof(pid), "p-%lld", (long long) t->project->id);
		json_object_object_add(o, "project_id", json_object_new_string(pid));
		json_object_object_add(o, "unblocked_task_ids", json_object_get(ids));
		json_object_object_add(o, "sandbox_id",
				       sandbox_id ? json_object_new_string(sandbox_id) : NULL);
		task_event(t, "TASKS_UNBLOCKED", o);
	}
	free(unblocked);
	return ids;
}

/* An attempt failed: retry after a backoff if the task has retries left. */
static void task_failed(struct task *t, const char *message)
{
	bool retry = t->tries <= t->max_retries;
	json_object *o;

	set_str(&t->error_message, message);
	if (retry) {
		double base = (double) t->backoff_usec * ldexp(1.0, (int) (t->tries > 20 ? 20 : t->tries) - 1);
		uint32_t rnd = 0;
		double jitter;

		(void) !getrandom(&rnd, sizeof(rnd), GRND_NONBLOCK);
		jitter = 0.5 + (double) rnd / 4294967296.0;    /* 0.5 .. 1.5 */
		base *= jitter;
		if (base > 3600.0 * USEC_PER_SEC)
			base = 3600.0 * USEC_PER_SEC;
		t->not_before = now_usec() + (int64_t) base;
		arm_backoff(t);
		set_status(t, ST_READY);
	} else
		set_status(t, ST_FAILED);

	o = task_payload(t);
	json_object_object_add(o, "error_message", json_object_new_string(message));
	json_object_object_add(o, "will_retry", json_object_new_boolean(retry));
	json_object_object_add(o, "retry_at", retry ? json_time(t->not_before) : NULL);
	task_event(t, "TASK_FAILED", o);
	if (!retry)
		propagate_failure(t);
}

/* --- projects -------------------------------------------------------------- */

static bool valid_name(const char *s, size_t max)
{
	size_t n = strlen(s);

	if (n == 0 || n > max)
		return false;
	return strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") == n;
}

json_object *project_to_json(const struct project *p)
{
	json_object *o = json_object_new_object(), *c = json_object_new_object();
	char buf[24];

	snprintf(buf, sizeof(buf), "p-%lld", (long long) p->id);
	json_object_object_add(o, "id", json_object_new_string(buf));
	json_object_object_add(o, "name", json_object_new_string(p->name));
	json_object_object_add(o, "autonomous_execution_enabled", json_object_new_boolean(p->autonomous));
	json_object_object_add(o, "max_concurrency", json_object_new_int((int) p->max_concurrency));
	json_object_object_add(o, "executor", json_object_new_string(p->executor));
	json_object_object_add(o, "executor_options", json_parse(p->executor_options));
	json_object_object_add(o, "created_at", json_time(p->created_at));
	json_object_object_add(o, "updated_at", json_time(p->updated_at));
	for (int s = 0; s < _ST_MAX; s++)
		json_object_object_add(c, status_names[s], json_object_new_int((int) p->counts[s]));
	json_object_object_add(o, "counts", c);
	json_object_object_add(o, "active", json_object_new_int((int) p->active));
	return o;
}

static void project_event(const struct project *p, const char *type, json_object *payload)
{
	char id[24];

	snprintf(id, sizeof(id), "p-%lld", (long long) p->id);
	event_emit(type, "project", id, p->id, payload);
}

static int check_executor(const char *name)
{
	struct executor *ex = executor_find(name);

	if (!ex || !ex->vt)
		return errorf(-EINVAL, "no executor '%s' is loaded (see 'dagctl executors')", name);
	return 0;
}

/* Asks the executor whether it takes these options: `base` (JSON text, the
 * project's, or NULL) overlaid by `over` (the task's, or NULL). */
static int check_options(const char *executor, const char *base, json_object *over)
{
	struct executor *ex = executor_find(executor);
	json_object *o = base ? json_parse(base) : NULL;
	char *err = NULL;
	int r;

	if (!ex || !ex->vt)
		return 0;
	if (!json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		o = json_object_new_object();
	}
	json_object_object_foreach(over, k, v)
		json_object_object_add(o, k, json_object_get(v));
	r = executor_check_options(ex, json_text(o), &err);
	json_object_put(o);
	if (r < 0) {
		r = errorf(-EINVAL, "executor '%s' refuses the options: %s", executor,
			   err ? err : strerror(-r));
		free(err);
	}
	return r;
}

/* Validates the arguments of project.create or project.update (p != NULL). */
static int project_args(const struct project *p, json_object *args)
{
	const char *name, *executor;
	json_object *opts;
	int64_t mc;
	bool b;
	int r;

	r = arg_string(args, "name", &name);
	if (r == -ENOENT && !p)
		return arg_required(r, "name");
	if (r == 0) {
		struct project *other = project_find(name);

		if (!valid_name(name, 64))
			return errorf(-EINVAL, "project name '%s' must be 1-64 of A-Z a-z 0-9 . _ -", name);
		if (parse_id(name, 'p') > 0)
			return errorf(-EINVAL, "project name '%s' looks like a project id", name);
		if (other && other != p)
			return errorf(-EEXIST, "a project named '%s' exists already (%s)", name, name);
	} else if (r != -ENOENT)
		return r;
	r = arg_bool(args, "autonomous", &b);
	if (r < 0 && r != -ENOENT)
		return r;
	r = arg_int(args, "max_concurrency", 1, 100000, &mc);
	if (r < 0 && r != -ENOENT)
		return r;
	r = arg_string(args, "executor", &executor);
	if (r == 0 && (r = check_executor(executor)) < 0)
		return r;
	if (r < 0 && r != -ENOENT)
		return r;
	if (r == -ENOENT)
		executor = p ? p->executor : "local";
	r = arg_object(args, "executor_options", &opts);
	if (r < 0 && r != -ENOENT)
		return r;
	if (r == 0 || (p && strcmp(executor, p->executor) != 0))
		return check_options(executor, r == 0 ? NULL : p->executor_options, r == 0 ? opts : NULL);
	return 0;
}

/* Applies validated arguments. */
static void project_apply(struct project *p, json_object *args)
{
	const char *s;
	json_object *opts;
	int64_t mc;

	if (arg_string(args, "name", &s) == 0)
		set_str(&p->name, s);
	if (arg_int(args, "max_concurrency", 1, 100000, &mc) == 0) {
		p->max_concurrency = (unsigned) mc;
		dispatch_dirty = true;
	}
	if (arg_string(args, "executor", &s) == 0)
		set_str(&p->executor, s);
	if (arg_object(args, "executor_options", &opts) == 0)
		set_str(&p->executor_options, json_text(opts));
	p->updated_at = now_usec();
}

int project_create(json_object *args, struct project **ret)
{
	struct project *p;
	bool autonomous = false;
	int r;

	r = project_args(NULL, args);
	if (r < 0)
		return r;
	(void) arg_bool(args, "autonomous", &autonomous);
	p = calloc(1, sizeof(*p));
	if (!p)
		abort();
	p->id = next_project_id++;
	p->max_concurrency = 5;
	p->executor = xstrdup("local");
	p->executor_options = xstrdup("{}");
	p->autonomous = autonomous;
	p->created_at = now_usec();
	project_apply(p, args);
	if ((size_t) p->id >= n_projects) {
		size_t n = 2 * n_projects > (size_t) p->id + 1 ? 2 * n_projects : (size_t) p->id + 1;
		projects = xrealloc(projects, n * sizeof(*projects));
		memset(projects + n_projects, 0, (n - n_projects) * sizeof(*projects));
		n_projects = n;
	}
	projects[p->id] = p;
	(void) store_project_save(p, true);
	json_object *o = json_object_new_object();
	json_object_object_add(o, "project", project_to_json(p));
	project_event(p, "PROJECT_CREATED", o);
	*ret = p;
	return 0;
}

int project_update(struct project *p, json_object *args)
{
	bool autonomous;
	int r;

	r = project_args(p, args);
	if (r < 0)
		return r;
	project_apply(p, args);
	(void) store_project_save(p, false);
	json_object *o = json_object_new_object();
	json_object_object_add(o, "project", project_to_json(p));
	project_event(p, "PROJECT_UPDATED", o);
	if (arg_bool(args, "autonomous", &autonomous) == 0)
		(void) project_set_autonomous(p, autonomous);
	return 0;
}

int project_set_autonomous(struct project *p, bool on)
{
	json_object *o;
	char id[24];

	if (p->autonomous == on)
		return 0;
	p->autonomous = on;
	p->updated_at = now_usec();
	(void) store_project_save(p, false);
	for (size_t i = 0; i < n_tasks; i++)
		if (tasks[i] && tasks[i]->project == p && tasks[i]->status == ST_READY)
			heap_sync(tasks[i]);
	o = json_object_new_object();
	snprintf(id, sizeof(id), "p-%lld", (long long) p->id);
	json_object_object_add(o, "project_id", json_object_new_string(id));
	json_object_object_add(o, "enabled", json_object_new_boolean(on));
	project_event(p, "AUTONOMOUS_MODE_CHANGED", o);
	dispatch_dirty = true;
	return 0;
}

static void task_free(struct task *t)
{
	if (!t)
		return;
	sd_event_source_unref(t->backoff);
	free(t->name);
	free(t->title);
	free(t->command);
	free(t->env);
	free(t->cwd);
	free(t->executor);
	free(t->executor_options);
	free(t->validation_command);
	free(t->result);
	free(t->error_message);
	free(t->sandbox_id);
	free(t->sandbox_executor);
	free(t->sandbox_handle);
	free(t->token);
	free(t->report);
	free(t->deps);
	free(t->rdeps);
	free(t);
}

static void project_free(struct project *p)
{
	if (!p)
		return;
	free(p->name);
	free(p->executor);
	free(p->executor_options);
	free(p->heap);
	names_free(&p->names);
	free(p);
}

int project_delete(struct project *p)
{
	json_object *o;
	char id[24];

	if (p->active > 0)
		return errorf(-EBUSY, "project '%s' has %u task(s) running; cancel them first", p->name,
			    p->active);
	/* (a claim cancelled in this turn is still queued: forget it first) */
	for (size_t i = 0; i < n_spawn; i++)
		if (spawn_queue[i] && spawn_queue[i]->project == p)
			spawn_queue[i] = NULL;
	for (size_t i = 0; i < n_tasks; i++)
		if (tasks[i] && tasks[i]->project == p) {
			tasks[i]->project->counts[tasks[i]->status]--;
			task_free(tasks[i]);
			tasks[i] = NULL;
		}
	(void) store_project_delete(p->id);
	o = json_object_new_object();
	snprintf(id, sizeof(id), "p-%lld", (long long) p->id);
	json_object_object_add(o, "project_id", json_object_new_string(id));
	json_object_object_add(o, "name", json_object_new_string(p->name));
	project_event(p, "PROJECT_DELETED", o);
	projects[p->id] = NULL;
	project_free(p);
	return 0;
}

/* Takes a task out of the graph, the store and memory: the caller made sure
 * nothing runs for it and nothing unfinished waits on it.  Dependents left
 * keep exact unmet counts; the TASK_REMOVED event says what it was. */
void task_unlink(struct task *t)
{
	json_object *o = task_payload(t);

	json_object_object_add(o, "name", t->name ? json_object_new_string(t->name) : NULL);
	json_object_object_add(o, "status", json_object_new_string(status_to_string(t->status)));
	while (t->n_deps > 0)
		remove_edge(t, t->deps[t->n_deps - 1]);
	while (t->n_rdeps > 0)
		remove_edge(t->rdeps[t->n_rdeps - 1], t);
	heap_remove(t);
	for (size_t i = 0; i < n_spawn; i++)
		if (spawn_queue[i] == t)
			spawn_queue[i] = NULL;
	t->project->counts[t->status]--;
	if (status_is_active(t->status))
		count_active(t, -1);
	(void) store_task_delete(t->id);
	names_del(&t->project->names, t);
	task_event(t, "TASK_REMOVED", o);
	tasks[t->id] = NULL;
	task_free(t);
}

/* Releases the project's ready tasks; *ret_held (if asked for): the ready
 * ones it leaves because an operator holds them. */
int project_start(struct project *p, json_object **ret_released, json_object **ret_held)
{
	json_object *a = json_object_new_array(), *h = json_object_new_array();
	char id[24];

	for (size_t i = 0; i < n_tasks; i++) {
		struct task *t = tasks[i];

		if (!t || t->project != p || t->status != ST_READY || t->released)
			continue;
		if (t->held) {
			json_object_array_add(h, json_object_new_string(task_id_string(t->id, id)));
			continue;
		}
		t->released = true;
		save(t);
		json_object_array_add(a, json_object_new_string(task_id_string(t->id, id)));
	}
	*ret_released = a;
	if (ret_held)
		*ret_held = h;
	else
		json_object_put(h);
	return 0;
}

/* --- tasks ----------------------------------------------------------------- */

json_object *task_to_json(const struct task *t)
{
	json_object *o = json_object_new_object(), *deps;
	char buf[24];

	json_object_object_add(o, "id", json_object_new_string(task_id_string(t->id, buf)));
	snprintf(buf, sizeof(buf), "p-%lld", (long long) t->project->id);
	json_object_object_add(o, "project_id", json_object_new_string(buf));
	json_object_object_add(o, "name", t->name ? json_object_new_string(t->name) : NULL);
	json_object_object_add(o, "title", json_object_new_string(t->title));
	json_object_object_add(o, "command", json_parse(t->command));
	json_object_object_add(o, "env", json_parse(t->env));
	json_object_object_add(o, "cwd", t->cwd ? json_object_new_string(t->cwd) : NULL);
	json_object_object_add(o, "executor", t->executor ? json_object_new_string(t->executor) : NULL);
	json_object_object_add(o, "executor_options", json_parse(t->executor_options));
	json_object_object_add(o, "priority", json_object_new_string(priority_to_string(t->priority)));
	json_object_object_add(o, "timeout", json_object_new_double((double) t->timeout_usec / 1e6));
	json_object_object_add(o, "max_retries", json_object_new_int((int) t->max_retries));
	json_object_object_add(o, "retry_backoff", json_object_new_double((double) t->backoff_usec / 1e6));
	json_object_object_add(o, "validation_command",
			       t->validation_command ? json_object_new_string(t->validation_command) : NULL);
	json_object_object_add(o, "status", json_object_new_string(status_to_string(t->status)));
	json_object_object_add(o, "released", json_object_new_boolean(t->released));
	json_object_object_add(o, "paused", json_object_new_boolean(t->paused));
	json_object_object_add(o, "held", json_object_new_boolean(t->held));
	json_object_object_add(o, "attempt", json_object_new_int((int) t->attempt));
	json_object_object_add(o, "not_before",
			       t->backoff && t->status == ST_READY ? json_time(t->not_before) : NULL);
	deps = ids_to_json(t->deps, t->n_deps);
	json_object_object_add(o, "depends_on", deps);
	json_object_object_add(o, "dependents", ids_to_json(t->rdeps, t->n_rdeps));
	json_object_object_add(o, "unmet", json_object_new_int((int) t->unmet));
	json_object_object_add(o, "result", json_parse(t->result));
	json_object_object_add(o, "error_message",
			       t->error_message ? json_object_new_string(t->error_message) : NULL);
	json_object_object_add(o, "sandbox_id", t->sandbox_id ? json_object_new_string(t->sandbox_id) : NULL);
	json_object_object_add(o, "created_at", json_time(t->created_at));
	json_object_object_add(o, "updated_at", json_time(t->updated_at));
	json_object_object_add(o, "started_at", json_time(t->started_at));
	json_object_object_add(o, "finished_at", json_time(t->finished_at));
	json_object_object_add(o, "status_changed_at", json_time(t->status_changed_at));
	return o;
}

/* Is `target` reachable from `from` by following dependencies? */
static bool reaches(struct task *from, struct task *target, uint64_t mark)
{
	static uint64_t *seen;
	static size_t n_seen;
	struct task **stack = NULL;
	size_t n = 0, cap = 0;
	bool found = false;

	if (n_seen < n_tasks) {
		seen = xrealloc(seen, n_tasks * sizeof(*seen));
		memset(seen + n_seen, 0, (n_tasks - n_seen) * sizeof(*seen));
		n_seen = n_tasks;
	}
	stack = xrealloc(stack, (cap = 64) * sizeof(*stack));
	stack[n++] = from;
	while (n > 0 && !found) {
		struct task *t = stack[--n];

		if (t == target) {
			found = true;
			break;
		}
		if (seen[t->id] == mark)
			continue;
		seen[t->id] = mark;
		for (size_t i = 0; i < t->n_deps; i++) {
			if (n == cap)
				stack = xrealloc(stack, (cap *= 2) * sizeof(*stack));
			stack[n++] = t->deps[i];
		}
	}
	free(stack);
	return found;
}

static void add_edge(struct task *t, struct task *on)
{
	t->deps = xrealloc(t->deps, (t->n_deps + 1) * sizeof(*t->deps));
	t->deps[t->n_deps++] = on;
	on->rdeps = xrealloc(on->rdeps, (on->n_rdeps + 1) * sizeof(*on->rdeps));
	on->rdeps[on->n_rdeps++] = t;
	if (on->status != ST_COMPLETED)
		t->unmet++;
	if (on->heap_idx >= 0)
		heap_fix(on->project, (size_t) on->heap_idx);
	(void) store_dep_insert(t->id, on->id);
}

static void remove_from(struct task **list, size_t *n, struct task *x)
{
	for (size_t i = 0; i < *n; i++)
		if (list[i] == x) {
			memmove(list + i, list + i + 1, (*n - i - 1) * sizeof(*list));
			(*n)--;
			return;
		}
}

void remove_edge(struct task *t, struct task *on)
{
	remove_from(t->deps, &t->n_deps, on);
	remove_from(on->rdeps, &on->n_rdeps, t);
	if (on->status != ST_COMPLETED && t->unmet > 0)
		t->unmet--;
	if (on->heap_idx >= 0)
		heap_fix(on->project, (size_t) on->heap_idx);
	(void) store_dep_delete(t->id, on->id);
}

static bool depends_on(const struct task *t, const struct task *on)
{
	for (size_t i = 0; i < t->n_deps; i++)
		if (t->deps[i] == on)
			return true;
	return false;
}

/* The batch's own names, sorted, each with its index in the batch. */
struct bname {
	const char *name;
	size_t idx;
};

static int bname_cmp(const void *a, const void *b)
{
	return strcmp(((const struct bname *) a)->name, ((const struct bname *) b)->name);
}

/* One task of a batch, validated. */
struct newtask {
	json_object *args;
	const char *name;
	int *deps;              /* >= 0: index into the batch; < 0: -(existing task id) */
	size_t n_deps;
	unsigned indegree;
};

static int check_command(json_object *args, const char *key, bool required)
{
	json_object *v;

	if (!json_object_object_get_ex(args, key, &v) || !v)
		return required ? errorf(-EINVAL, "missing argument '%s'", key) : 0;
	if (json_object_is_type(v, json_type_string)) {
		if (!*json_object_get_string(v))
			return errorf(-EINVAL, "argument '%s' must not be empty", key);
		return 0;
	}
	if (!json_object_is_type(v, json_type_array) || json_object_array_length(v) == 0)
		return errorf(-EINVAL, "argument '%s' must be a string or a non-empty array of strings", key);
	for (size_t i = 0; i < json_object_array_length(v); i++)
		if (!json_object_is_type(json_object_array_get_idx(v, i), json_type_string))
			return errorf(-EINVAL, "argument '%s' must be an array of strings", key);
	if (!*json_object_get_string(json_object_array_get_idx(v, 0)))
		return errorf(-EINVAL, "argument '%s' must not start with an empty string", key);
	return 0;
}

/* A cwd the local executor is to use must be a directory on this host now;
 * that of another executor (a container's, a remote sandbox's) cannot be
 * known before it runs.  executor: the project's, NULL if not known yet. */
int task_check_cwd(json_object *args, const char *executor)
{
	const char *cwd, *ex = NULL;
	struct stat st;

	if (arg_string(args, "cwd", &cwd) < 0)
		return 0;
	if (!*cwd)
		return errorf(-EINVAL, "argument 'cwd' must not be empty");
	(void) arg_string(args, "executor", &ex);
	if (!ex)
		ex = executor;
	if (!ex || strcmp(ex, "local") != 0)
		return 0;
	if (stat(cwd, &st) < 0)
		return errorf(-EINVAL, "cwd '%s': %s", cwd, strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return errorf(-EINVAL, "cwd '%s' is not a directory", cwd);
	return 0;
}

int check_task_args(const struct project *p, json_object *args, bool need_name)
{
	const char *s, *executor;
	json_object *o;
	uint64_t u;
	int64_t i;
	int r;

	if (!json_object_is_type(args, json_type_object))
		return errorf(-EINVAL, "each task must be an object");
	r = arg_required(arg_string(args, "title", &s), "title");
	if (r < 0)
		return r;
	if (!*s || strlen(s) > 1024)
		return errorf(-EINVAL, "argument 'title' must be 1-1024 characters");
	r = check_command(args, "command", true);
	if (r < 0)
		return r;
	r = arg_string(args, "name", &s);
	if (r == -ENOENT && need_name)
		return errorf(-EINVAL, "each task of a batch needs a 'name'");
	if (r == 0 && (!valid_name(s, 128) || parse_id(s, 't') > 0))
		return errorf(-EINVAL, "task name '%s' must be 1-128 of A-Z a-z 0-9 . _ - and not look like a task id", s);
	if (r < 0 && r != -ENOENT)
		return r;
	r = arg_object(args, "env", &o);
	if (r == 0) {
		json_object_object_foreach(o, k, v) {
			if (!json_object_is_type(v, json_type_string))
				return errorf(-EINVAL, "env '%s' must be a string", k);
			if (!*k || strchr(k, '='))
				return errorf(-EINVAL, "env name '%s' is not valid", k);
			if (strncmp(k, "DAGD_", 5) == 0)
				return errorf(-EINVAL, "env name '%s': DAGD_* variables are set by dagd, not by a task", k);
		}
	} else if (r != -ENOENT)
		return r;
	if ((r = arg_string(args, "cwd", &s)) < 0 && r != -ENOENT)
		return r;
	r = arg_string(args, "executor", &executor);
	if (r == 0 && (r = check_executor(executor)) < 0)
		return r;
	if (r < 0 && r != -ENOENT)
		return r;
	if (r == -ENOENT)
		executor = p ? p->executor : NULL;
	if ((r = arg_object(args, "executor_options", &o)) < 0 && r != -ENOENT)
		return r;
	/* a batch's project that does not exist yet: checked once it does */
	if (p && (r == 0 || strcmp(executor, p->executor) != 0) &&
	    (r = check_options(executor, strcmp(executor, p->executor) == 0 ? p->executor_options : NULL,
			       r == 0 ? o : NULL)) < 0)
		return r;
	r = arg_string(args, "priority", &s);
	if (r == 0 && priority_from_string(s) < 0)
		return errorf(-EINVAL, "priority '%s' must be critical, high, medium or low", s);
	if (r < 0 && r != -ENOENT)
		return r;
	if ((r = arg_seconds(args, "timeout", &u)) < 0 && r != -ENOENT)
		return r;
	if ((r = arg_seconds(args, "retry_backoff", &u)) < 0 && r != -ENOENT)
		return r;
	if ((r = arg_int(args, "max_retries", 0, 1000, &i)) < 0 && r != -ENOENT)
		return r;
	if ((r = arg_string(args, "validation_command", &s)) < 0 && r != -ENOENT)
		return r;
	if ((r = arg_array(args, "depends_on", &o)) < 0 && r != -ENOENT)
		return r;
	return 0;
}

static struct task *task_new(struct project *p, json_object *args)
{
	struct task *t = calloc(1, sizeof(*t));
	const char *s;
	json_object *o;
	uint64_t u;
	int64_t i;

	if (!t)
		abort();
	t->id = next_task_id++;
	t->project = p;
	t->heap_idx = -1;
	t->priority = PRIO_MEDIUM;
	t->backoff_usec = USEC_PER_SEC;
	if (arg_string(args, "name", &s) == 0)
		t->name = xstrdup(s);
	(void) arg_string(args, "title", &s);
	t->title = xstrdup(s);
	json_object_object_get_ex(args, "command", &o);
	t->command = xstrdup(json_text(o));
	t->env = xstrdup(arg_object(args, "env", &o) == 0 ? json_text(o) : "{}");
	if (arg_string(args, "cwd", &s) == 0)
		t->cwd = xstrdup(s);
	if (arg_string(args, "executor", &s) == 0)
		t->executor = xstrdup(s);
	t->executor_options = xstrdup(arg_object(args, "executor_options", &o) == 0 ? json_text(o) : "{}");
	if (arg_string(args, "priority", &s) == 0)
		t->priority = priority_from_string(s);
	if (arg_seconds(args, "timeout", &u) == 0)
		t->timeout_usec = u;
	if (arg_seconds(args, "retry_backoff", &u) == 0)
		t->backoff_usec = u;
	if (arg_int(args, "max_retries", 0, 1000, &i) == 0)
		t->max_retries = (unsigned) i;
	if (arg_string(args, "validation_command", &s) == 0)
		t->validation_command = xstrdup(s);
	t->created_at = t->updated_at = t->status_changed_at = now_usec();
	t->status = ST_WAITING;
	return t;
}

/* r, its message saying which task of a batch it is about: "tasks[2]
 * ('b'): ...", as args_check() names them. */
int batch_error(json_object *list, size_t i, int r)
{
	_cleanup_free_ char *msg = xstrdup(last_error());
	const char *name = NULL;

	(void) arg_string(json_object_array_get_idx(list, i), "name", &name);
	if (name)
		return errorf(r, "tasks[%zu] ('%.*s'): %s", i, utf8_prefix(name, 64), name, msg);
	return errorf(r, "tasks[%zu]: %s", i, msg);
}

static void newtasks_free(struct newtask *nt, size_t n)
{
	for (size_t i = 0; nt && i < n; i++)
		free(nt[i].deps);
	free(nt);
}

/* Validates a list of task.add arguments for project p (NULL: a project
 * about to be created) and, unless p is NULL, adds them all.  In a batch,
 * depends_on may name tasks of the batch; a cycle is refused. */
int task_create_batch(struct project *p, json_object *list, bool batch, json_object **ret)
{
	size_t n = json_object_array_length(list), done = 0, n_bn = 0;
	struct newtask *nt = calloc(n ? n : 1, sizeof(*nt));
	struct bname *bn = calloc(n ? n : 1, sizeof(*bn));
	struct task **made;
	size_t *queue, at = SIZE_MAX;   /* the task an error is about */
	json_object *out;
	int r;

	if (!nt || !bn)
		abort();
	if (n == 0) {
		free(nt);
		free(bn);
		return errorf(-EINVAL, "no tasks given");
	}
	for (size_t i = 0; i < n; i++) {
		json_object *args = json_object_array_get_idx(list, i), *deps = NULL;

		nt[i].args = args;
		at = i;
		r = check_task_args(p, args, batch);
		if (r >= 0)
			r = task_check_cwd(args, p ? p->executor : NULL);
		if (r < 0)
			goto fail;
		(void) arg_string(args, "name", &nt[i].name);
		if (nt[i].name) {
			if ((p ? names_get(&p->names, nt[i].name) : NULL)) {
				r = errorf(-EEXIST, "a task named '%s' exists already in this project", nt[i].name);
				goto fail;
			}
			bn[n_bn++] = (struct bname) { nt[i].name, i };
		}
		(void) arg_array(args, "depends_on", &deps);
		nt[i].n_deps = deps ? json_object_array_length(deps) : 0;
		nt[i].deps = calloc(nt[i].n_deps ? nt[i].n_deps : 1, sizeof(int));
		if (!nt[i].deps)
			abort();
	}
	at = SIZE_MAX;
	if (n_bn > 1)
		qsort(bn, n_bn, sizeof(*bn), bname_cmp);
	for (size_t i = 1; i < n_bn; i++)
		if (strcmp(bn[i - 1].name, bn[i].name) == 0) {
			r = errorf(-EINVAL, "two tasks of the batch are named '%s'", bn[i].name);
			goto fail;
		}
	/* resolve dependencies, now that every name of the batch is known */
	for (size_t i = 0; i < n; i++) {
		json_object *deps = NULL;

		(void) arg_array(nt[i].args, "depends_on", &deps);
		at = i;
		for (size_t k = 0; k < nt[i].n_deps; k++) {
			json_object *v = json_object_array_get_idx(deps, k);
			const char *s = json_object_get_string(v);
			struct bname key = { s, 0 }, *hit;
			struct task *on;

			if (!json_object_is_type(v, json_type_string)) {
				r = errorf(-EINVAL, "'depends_on' must be an array of task ids%s",
					 batch ? " or names" : "");
				goto fail;
			}
			hit = batch && n_bn ? bsearch(&key, bn, n_bn, sizeof(*bn), bname_cmp) : NULL;
			if (hit) {
				if (hit->idx == i) {
					r = errorf(-EINVAL, "task '%s' cannot depend on itself", s);
					goto fail;
				}
				nt[i].deps[k] = (int) hit->idx;
				nt[hit->idx].indegree++;
				continue;
			}
			on = task_find(s);
			if (!on && batch)
				on = (p ? names_get(&p->names, s) : NULL);
			if (!on) {
				r = errorf(-ENOENT, "no task '%s'%s", s, batch ? " in this project or batch" : "");
				goto fail;
			}
			if (on->project != p) {
				r = errorf(-EINVAL, "task %s is in another project; dependencies stay within one project", s);
				goto fail;
			}
			nt[i].deps[k] = (int) -on->id;
		}
	}
	at = SIZE_MAX;
	/* Kahn: a batch only adds edges among its own tasks and towards
	 * existing ones, so a cycle can only be within the batch. */
	queue = calloc(n, sizeof(*queue));
	if (!queue)
		abort();
	{
		size_t head = 0, tail = 0;
		unsigned *indeg = calloc(n, sizeof(*indeg));

		if (!indeg)
			abort();
		for (size_t i = 0; i < n; i++)
			if ((indeg[i] = nt[i].indegree) == 0)
				queue[tail++] = i;
		while (head < tail) {
			size_t i = queue[head++];

			done++;
			for (size_t k = 0; k < nt[i].n_deps; k++)
				if (nt[i].deps[k] >= 0 && --indeg[nt[i].deps[k]] == 0)
					queue[tail++] = (size_t) nt[i].deps[k];
		}
		free(indeg);
	}
	free(queue);
	if (done != n) {
		r = errorf(-EINVAL, "the dependencies of the batch form a cycle");
		goto fail;
	}
	free(bn);
	bn = NULL;
	if (!p) {
		newtasks_free(nt, n);
		return 0;
	}

	made = calloc(n, sizeof(*made));
	if (!made)
		abort();
	if ((size_t) next_task_id + n >= n_tasks) {
		size_t m = 2 * n_tasks > (size_t) next_task_id + n + 1 ? 2 * n_tasks : (size_t) next_task_id + n + 1;
		tasks = xrealloc(tasks, m * sizeof(*tasks));
		memset(tasks + n_tasks, 0, (m - n_tasks) * sizeof(*tasks));
		n_tasks = m;
	}
	for (size_t i = 0; i < n; i++) {
		made[i] = task_new(p, nt[i].args);
		tasks[made[i]->id] = made[i];
		names_add(&p->names, made[i]);
		p->counts[ST_WAITING]++;
		(void) store_task_insert(made[i]);
	}
	out = json_object_new_array();
	for (size_t i = 0; i < n; i++) {
		struct task *t = made[i];

		for (size_t k = 0; k < nt[i].n_deps; k++) {
			struct task *on = nt[i].deps[k] >= 0 ? made[nt[i].deps[k]] : tasks[-nt[i].deps[k]];

			if (!depends_on(t, on))
				add_edge(t, on);
		}
	}
	/* a task is born in its status once every edge is in (a task of the
	 * batch may depend on one later in the list): no change to announce */
	for (size_t i = 0; i < n; i++) {
		struct task *t = made[i];
		json_object *o = json_object_new_object();

		p->counts[ST_WAITING]--;
		t->status = has_failed_dep(t) ? ST_UPSTREAM_FAILED : t->unmet ? ST_WAITING : ST_READY;
		p->counts[t->status]++;
		save(t);
		json_object_object_add(o, "task", task_to_json(t));
		task_event(t, "TASK_CREATED", o);
	}
	for (size_t i = 0; i < n; i++)
		json_object_array_add(out, task_to_json(made[i]));
	free(made);
	newtasks_free(nt, n);
	*ret = out;
	return 0;
fail:
	if (batch && at != SIZE_MAX)
		r = batch_error(list, at, r);
	newtasks_free(nt, n);
	free(bn);
	return r;
}

int task_depend(struct task *t, json_object *on, bool add)
{
	size_t n = json_object_array_length(on);
	struct task **list = calloc(n ? n : 1, sizeof(*list));
	json_object *o, *added = json_object_new_array(), *removed = json_object_new_array();
	static uint64_t mark;
	char id[24];
	int r;

	if (!list)
		abort();
	if (add && t->status != ST_WAITING && t->status != ST_READY && t->status != ST_UPSTREAM_FAILED) {
		r = errorf(-EBUSY, "task %s is %s; dependencies can only be added before it runs",
			 task_id_string(t->id, id), status_to_string(t->status));
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		json_object *v = json_object_array_get_idx(on, i);

		if (!json_object_is_type(v, json_type_string)) {
			r = errorf(-EINVAL, "argument 'on' must be a task id or an array of task ids");
			goto out;
		}
		list[i] = task_find(json_object_get_string(v));
		if (!list[i]) {
			r = errorf(-ENOENT, "no task '%s'", json_object_get_string(v));
			goto out;
		}
		if (list[i]->project != t->project) {
			r = errorf(-EINVAL, "task %s is in another project; dependencies stay within one project",
				 json_object_get_string(v));
			goto out;
		}
		if (list[i] == t) {
			r = errorf(-EINVAL, "task %s cannot depend on itself", json_object_get_string(v));
			goto out;
		}
		if (add && reaches(list[i], t, ++mark)) {
			r = errorf(-EINVAL, "%s depending on %s would make a cycle", task_id_string(t->id, id),
				 json_object_get_string(v));
			goto out;
		}
	}
	for (size_t i = 0; i < n; i++) {
		if (add == depends_on(t, list[i]))
			continue;
		json_object_array_add(add ? added : removed,
				      json_object_new_string(task_id_string(list[i]->id, id)));
		if (add)
			add_edge(t, list[i]);
		else
			remove_edge(t, list[i]);
	}
	if (json_object_array_length(added) || json_object_array_length(removed)) {
		if (t->status == ST_WAITING || t->status == ST_READY || t->status == ST_UPSTREAM_FAILED)
			set_status(t, has_failed_dep(t) ? ST_UPSTREAM_FAILED :
					      t->unmet ? ST_WAITING : ST_READY);
		save(t);
		o = task_payload(t);
		json_object_object_add(o, "depends_on", ids_to_json(t->deps, t->n_deps));
		json_object_object_add(o, "added", json_object_get(added));
		json_object_object_add(o, "removed", json_object_get(removed));
		task_event(t, "TASK_DEPENDENCY_UPDATED", o);
		if (t->status == ST_UPSTREAM_FAILED)
			propagate_failure(t);
		else
			propagate_recovery(t);
	}
	r = 0;
out:
	json_object_put(added);
	json_object_put(removed);
	free(list);
	return r;
}

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
		save(t);
	}
	return 0;
}

static void sandbox_cancel(struct sandbox *sb)
{
	if (!sb || sb->exited || !sb->ex || !sb->ex->vt)
		return;
	sb->ex->vt->cancel(sb->ex->state, (struct dagd_sandbox *) sb, sb->data, D.kill_grace_usec);
}

/* Stops what still runs of the task's current attempt (its status stays as
 * it is): SIGTERM, then SIGKILL after the grace. */
void task_stop_sandbox(struct task *t)
{
	if (t->sb && !t->sb->exited)
		sandbox_cancel(t->sb);
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
	if (t->sb) {
		t->sb->cancelled = true;
		sandbox_cancel(t->sb);
	}
	set_str(&t->error_message, "cancelled by an operator");
	set_status(t, ST_CANCELLED);
	propagate_failure(t);
	return 0;
}

/* Stops (or lets go on) the processes of a running task's sandbox.  Asked
 * for what already is: nothing changes, no event.  The timeout still counts
 * while it is paused; a cancel or a timeout ends a paused task as any other. */
int task_pause(struct task *t, bool paused)
{
	json_object *o;
	char id[24];
	int r;

	if (t->paused == paused && (t->status == ST_RUNNING || !paused))
		return 0;
	if (t->status != ST_RUNNING || !t->sb || !t->sb->started || t->sb->exited)
		return errorf(-EBUSY, "task %s is %s; only a running task can be paused", task_id_string(t->id, id),
			    status_to_string(t->status));
	r = executor_pause(t->sb->ex, (struct dagd_sandbox *) t->sb, t->sb->data, paused);
	if (r == -EOPNOTSUPP)
		return errorf(r, "task %s: executor '%s' cannot pause its sandboxes", task_id_string(t->id, id),
			    t->sandbox_executor);
	if (r < 0)
		return errorf(r, "task %s: cannot %s its sandbox: %s", task_id_string(t->id, id),
			    paused ? "pause" : "resume", strerror(-r));
	t->paused = paused;
	save(t);
	o = json_object_new_object();
	json_object_object_add(o, "task_id", json_object_new_string(task_id_string(t->id, id)));
	json_object_object_add(o, "sandbox_id", json_object_new_string(t->sb->id));
	event_emit(paused ? "TASK_PAUSED" : "TASK_RESUMED", "task", id, t->project->id, o);
	return 0;
}

int task_report(struct task *t, bool success, json_object *result, const char *error_message,
		json_object **ret_reply)
{
	json_object *reply, *report, *unblocked;
	char id[24];

	if (t->report) {
		json_object *old = json_parse(t->report), *v;
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
		*ret_reply = json_object_get(v);
		json_object_put(old);
		return 0;
	}
	if (status_is_finished(t->status))
		return errorf(-EEXIST, "task %s is %s already", task_id_string(t->id, id), status_to_string(t->status));
	if (t->status != ST_SPAWNING && t->status != ST_RUNNING)
		return errorf(-EBUSY, "task %s is %s, not running", task_id_string(t->id, id),
			    status_to_string(t->status));

	if (success) {
		set_str(&t->result, result ? json_text(result) : NULL);
		unblocked = task_succeeded(t, t->sandbox_id);
	} else {
		task_failed(t, error_message ? error_message : "the sandbox reported failure");
		unblocked = json_object_new_array();
	}
	reply = json_object_new_object();
	json_object_object_add(reply, "status", json_object_new_string("accepted"));
	json_object_object_add(reply, "task_id", json_object_new_string(task_id_string(t->id, id)));
	json_object_object_add(reply, "new_status", json_object_new_string(status_to_string(t->status)));
	json_object_object_add(reply, "unblocked_tasks", unblocked);

	report = json_object_new_object();
	json_object_object_add(report, "success", json_object_new_boolean(success));
	json_object_object_add(report, "result", json_object_get(result));
	json_object_object_add(report, "error_message",
			       error_message ? json_object_new_string(error_message) : NULL);
	json_object_object_add(report, "reply", json_object_get(reply));
	set_str(&t->report, json_text(report));
	json_object_put(report);
	save(t);
	*ret_reply = reply;
	return 0;
}

static int task_pcmp(const void *a, const void *b)
{
	return task_cmp(*(struct task *const *) a, *(struct task *const *) b);
}

json_object *tasks_unblocked(struct project *p, size_t limit)
{
	struct task **list = NULL;
	size_t n = 0;
	json_object *a = json_object_new_array();

	for (size_t i = 0; i < n_tasks; i++) {
		struct task *t = tasks[i];

		if (!t || t->status != ST_READY || !t->project->autonomous || t->held || (p && t->project != p))
			continue;
		list = xrealloc(list, (n + 1) * sizeof(*list));
		list[n++] = t;
	}
	if (n > 1)
		qsort(list, n, sizeof(*list), task_pcmp);
	for (size_t i = 0; i < n && i < limit; i++)
		json_object_array_add(a, task_to_json(list[i]));
	free(list);
	return a;
}

/* --- dispatch -------------------------------------------------------------- */

static void claim(struct task *t)
{
	bool validator = t->status == ST_PENDING_VALIDATION;
	char token[65];

	heap_remove(t);
	if (!validator) {
		t->attempt++;
		t->tries++;
		t->started_at = now_usec();
		t->finished_at = 0;
		clear_str(&t->result);
		clear_str(&t->error_message);
		clear_str(&t->report);
		if (random_hex(token, 32) < 0)
			abort();
		set_str(&t->token, token);
	}
	free(t->sandbox_id);
	t->sandbox_id = xasprintf("t-%lld.%u%s", (long long) t->id, t->attempt, validator ? ".v" : "");
	set_str(&t->sandbox_executor, t->executor ? t->executor : t->project->executor);
	clear_str(&t->sandbox_handle);
	set_status(t, validator ? ST_VALIDATING : ST_SPAWNING);
	if (n_spawn == spawn_cap) {
		spawn_cap = spawn_cap ? 2 * spawn_cap : 16;
		spawn_queue = xrealloc(spawn_queue, spawn_cap * sizeof(*spawn_queue));
	}
	spawn_queue[n_spawn++] = t;
}

/* Claims the best dispatchable tasks while every limit has room.  The claims
 * are spawned only once they are committed (engine_spawn_pending). */
void engine_dispatch(void)
{
	struct task **stash = NULL;
	size_t n_stash = 0;

	if (!dispatch_dirty)
		return;
	dispatch_dirty = false;
	while (active_total < D.global_limit) {
		struct task *best = NULL;

		for (size_t i = 0; i < n_projects; i++) {
			struct project *p = projects[i];

			if (!p || p->n_heap == 0 || p->active >= p->max_concurrency)
				continue;
			while (p->n_heap > 0) {
				struct task *t = p->heap[0];
				struct executor *ex = task_executor(t);

				if (!ex || !executor_full(ex))
					break;
				/* its executor is full: set it aside for this round */
				heap_remove(t);
				stash = xrealloc(stash, (n_stash + 1) * sizeof(*stash));
				stash[n_stash++] = t;
			}
			if (p->n_heap > 0 && (!best || task_cmp(p->heap[0], best) < 0))
				best = p->heap[0];
		}
		if (!best)
			break;
		claim(best);
	}
	for (size_t i = 0; i < n_stash; i++)
		heap_sync(stash[i]);
	free(stash);
}

static void spec_free(struct dagd_spawn *spec, char **argv, char **envp, char *opts)
{
	for (size_t i = 0; argv && argv[i]; i++)
		free(argv[i]);
	for (size_t i = 0; envp && envp[i]; i++)
		free(envp[i]);
	free(argv);
	free(envp);
	free(opts);
}

/* What a sandbox of t runs: argv, the environment, the merged options. */
static void spec_build(struct task *t, struct sandbox *sb, struct dagd_spawn *spec,
		       char ***ret_argv, char ***ret_envp, char **ret_opts)
{
	json_object *cmd = sb->validator ? json_object_new_string(t->validation_command) : json_parse(t->command);
	json_object *env = json_parse(t->env), *opts = json_parse(t->project->executor_options);
	json_object *topts = json_parse(t->executor_options);
	char **argv, **envp, idbuf[24], pid[24], att[16];
	size_t n = 0;
	const char *path = getenv("PATH"), *home = getenv("HOME");

	if (json_object_is_type(cmd, json_type_array)) {
		size_t len = json_object_array_length(cmd);

		argv = calloc(len + 1, sizeof(*argv));
		if (!argv)
			abort();
		for (size_t i = 0; i < len; i++)
			argv[i] = xstrdup(json_object_get_string(json_object_array_get_idx(cmd, i)));
	} else {
		argv = calloc(4, sizeof(*argv));
		if (!argv)
			abort();
		argv[0] = xstrdup("/bin/sh");
		argv[1] = xstrdup("-c");
		argv[2] = xstrdup(json_object_get_string(cmd));
	}
	envp = calloc((size_t) json_object_object_length(env) + 10, sizeof(*envp));
	if (!envp)
		abort();
	if (!json_object_object_get_ex(env, "PATH", NULL))
		envp[n++] = xasprintf("PATH=%s", path ? path : "/usr/local/bin:/usr/bin:/bin");
	if (home && !json_object_object_get_ex(env, "HOME", NULL))
		envp[n++] = xasprintf("HOME=%s", home);
	json_object_object_foreach(env, k, v)
		envp[n++] = xasprintf("%s=%s", k, json_object_get_string(v));
	snprintf(pid, sizeof(pid), "p-%lld", (long long) t->project->id);
	snprintf(att, sizeof(att), "%u", t->attempt);
	envp[n++] = xasprintf("DAGD_TASK_ID=%s", task_id_string(t->id, idbuf));
	envp[n++] = xasprintf("DAGD_PROJECT_ID=%s", pid);
	envp[n++] = xasprintf("DAGD_SANDBOX_ID=%s", sb->id);
	envp[n++] = xasprintf("DAGD_ATTEMPT=%s", att);
	envp[n++] = xasprintf("DAGD_SOCKET=%s", D.socket_path);
	envp[n++] = xasprintf("DAGD_TASK_TOKEN=%s", t->token ? t->token : "");

	if (!json_object_is_type(opts, json_type_object)) {
		json_object_put(opts);
		opts = json_object_new_object();
	}
	json_object_object_foreach(topts, k2, v2)
		json_object_object_add(opts, k2, json_object_get(v2));
	*ret_opts = xstrdup(json_text(opts));

	memset(spec, 0, sizeof(*spec));
	spec->sandbox_id = sb->id;
	spec->attempt = t->attempt;
	spec->argv = (const char *const *) argv;
	spec->envp = (const char *const *) envp;
	spec->cwd = t->cwd;
	spec->log_path = sb->log_path;
	spec->options_json = *ret_opts;
	spec->timeout_usec = t->timeout_usec;
	*ret_argv = argv;
	*ret_envp = envp;
	json_object_put(cmd);
	json_object_put(env);
	json_object_put(opts);
	json_object_put(topts);
}

static struct sandbox *sandbox_new(struct task *t, struct executor *ex)
{
	struct sandbox *sb = calloc(1, sizeof(*sb));

	if (!sb)
		abort();
	sb->id = xstrdup(t->sandbox_id);
	sb->task_id = t->id;
	sb->attempt = t->attempt;
	sb->validator = t->status == ST_VALIDATING;
	sb->ex = ex;
	sb->executor = xstrdup(t->sandbox_executor);
	sb->log_fd = -EBADF;
	sb->log_path = xasprintf("%s/logs/t-%lld/%u%s.log", D.state_dir, (long long) t->id, t->attempt,
				 sb->validator ? ".validate" : "");
	sb->next = sandboxes;
	sandboxes = sb;
	t->sb = sb;
	return sb;
}

static void sandbox_unlink(struct sandbox *sb)
{
	for (struct sandbox **p = &sandboxes; *p; p = &(*p)->next)
		if (*p == sb) {
			*p = sb->next;
			break;
		}
	sb->next = NULL;
}

static void sandbox_free(struct sandbox *sb)
{
	if (!sb)
		return;
	sd_event_source_unref(sb->timer);
	closep(&sb->log_fd);
	free(sb->id);
	free(sb->handle);
	free(sb->executor);
	free(sb->log_path);
	free(sb);
}

/* Start a sandbox, or find one again (adopt).  On failure the attempt fails. */
static void sandbox_launch(struct task *t, struct sandbox *sb, bool adopt)
{
	struct dagd_spawn spec;
	char **argv, **envp, *opts, *err = NULL, idbuf[24], pid[24], *msg;
	int r;

	spec_build(t, sb, &spec, &argv, &envp, &opts);
	spec.task_id = task_id_string(t->id, idbuf);
	snprintf(pid, sizeof(pid), "p-%lld", (long long) t->project->id);
	spec.project_id = pid;
	sb->data = NULL;
	if (!sb->ex || !sb->ex->vt)
		r = errorf(-ENOENT, "executor '%s' is not loaded", t->sandbox_executor);
	else if (adopt)
		r = sb->ex->vt->adopt(sb->ex->state, (struct dagd_sandbox *) sb, &spec, sb->handle,
				      &sb->data, &err);
	else
		r = sb->ex->vt->spawn(sb->ex->state, (struct dagd_sandbox *) sb, &spec, &sb->data, &err);
	if (r < 0 && !err)
		err = xstrdup(sb->ex ? strerror(-r) : last_error());
	spec_free(&spec, argv, envp, opts);
	if (r >= 0) {
		if (!adopt)
			crash_point("spawned");
		return;
	}

	if (t->sb == sb)
		t->sb = NULL;
	sandbox_unlink(sb);
	msg = adopt ? xasprintf("sandbox %s was lost while dagd was down: %s", sb->id, err)
		    : xasprintf("cannot start sandbox %s: %s", sb->id, err);
	log_warning("task t-%lld: %s", (long long) t->id, msg);
	if (status_is_active(t->status))
		task_failed(t, msg);
	free(msg);
	free(err);
	sandbox_free(sb);
}

bool engine_spawn_pending(void)
{
	size_t n = n_spawn;
	struct task **q = TAKE_PTR(spawn_queue);

	n_spawn = spawn_cap = 0;
	for (size_t i = 0; i < n; i++) {
		struct task *t = q[i];

		if (!t || (t->status != ST_SPAWNING && t->status != ST_VALIDATING) || t->sb)
			continue;
		sandbox_launch(t, sandbox_new(t, task_executor(t)), false);
	}
	free(q);
	return n > 0;
}

/* --- sandboxes, as the plugins report them --------------------------------- */

static struct task *sandbox_task(const struct sandbox *sb)
{
	struct task *t = (size_t) sb->task_id < n_tasks ? tasks[sb->task_id] : NULL;

	return t && t->sb == sb ? t : NULL;
}

static int on_timeout(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct sandbox *sb = userdata;

	sb->timer = sd_event_source_unref(sb->timer);
	if (sb->exited)
		return 0;
	log_info("sandbox %s timed out; stopping it", sb->id);
	sb->timed_out = true;
	sandbox_cancel(sb);
	return 0;
}

void sandbox_started(struct sandbox *sb, const char *handle)
{
	struct task *t = sandbox_task(sb);
	json_object *o;
	char id[24];

	if (sb->started || sb->exited)
		return;
	sb->started = true;
	set_str(&sb->handle, handle);
	if (!t)
		return;
	set_str(&t->sandbox_handle, handle);
	if (t->timeout_usec > 0 && !sb->timer)
		(void) sd_event_add_time_relative(D.event, &sb->timer, CLOCK_MONOTONIC, t->timeout_usec,
						  10 * USEC_PER_MSEC, on_timeout, sb);
	if (t->status == ST_SPAWNING)
		set_status(t, ST_RUNNING);
	else
		save(t);
	o = json_object_new_object();
	json_object_object_add(o, "sandbox_id", json_object_new_string(sb->id));
	json_object_object_add(o, "task_id", json_object_new_string(task_id_string(t->id, id)));
	snprintf(id, sizeof(id), "p-%lld", (long long) t->project->id);
	json_object_object_add(o, "project_id", json_object_new_string(id));
	json_object_object_add(o, "executor", json_object_new_string(t->sandbox_executor));
	json_object_object_add(o, "attempt", json_object_new_int((int) sb->attempt));
	event_emit("SANDBOX_SPAWNED", "sandbox", sb->id, t->project->id, o);
}

void sandbox_output(struct sandbox *sb, const void *data, size_t size)
{
	if (sb->log_fd < 0)
		sb->log_fd = log_open(sb->log_path, O_WRONLY | O_APPEND);
	if (sb->log_fd >= 0)
		(void) !write(sb->log_fd, data, size);
}

/* A plugin whose sandboxes cannot reach the socket leaves an attempt's
 * result beside its log, as "<attempt>.result.json" (see executor.h): on a
 * clean exit it becomes the task's result, unless one was reported. */
static void result_from_file(struct task *t, const struct sandbox *sb)
{
	_cleanup_free_ char *path = NULL, *buf = NULL;
	_cleanup_close_ int fd = -EBADF;
	json_object *v;
	ssize_t n;

	if (t->result || sb->validator)
		return;
	path = xasprintf("%.*s.result.json", (int) (strlen(sb->log_path) - strlen(".log")), sb->log_path);
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return;
	buf = xrealloc(NULL, 256 * 1024 + 1);
	n = read(fd, buf, 256 * 1024 + 1);
	if (n < 0 || n > 256 * 1024) {
		log_warning("task t-%lld: ignoring %s: unreadable or over 256 KiB", (long long) t->id, path);
		return;
	}
	buf[n] = 0;
	v = json_tokener_parse(buf);
	if (!v && strcmp(buf, "null") != 0) {
		log_warning("task t-%lld: ignoring %s: not JSON", (long long) t->id, path);
		return;
	}
	set_str(&t->result, json_text(v));
	json_object_put(v);
}

struct exit_info {
	int code, signal;
	char *reason, *message;
	bool result_left;
};

/* Judge a task by how its sandbox ended.  Kept apart from sandbox_exited()
 * so that a batch that could not be committed can be judged again. */
static void sandbox_judge(struct sandbox *sb, const struct exit_info *e)
{
	struct task *t = sandbox_task(sb);
	json_object *o;
	char *msg;

	o = json_object_new_object();
	json_object_object_add(o, "sandbox_id", json_object_new_string(sb->id));
	json_object_object_add(o, "exit_code", e->code >= 0 ? json_object_new_int(e->code) : NULL);
	json_object_object_add(o, "signal", e->signal ? json_object_new_int(e->signal) : NULL);
	json_object_object_add(o, "reason", json_object_new_string(sb->timed_out ? "timeout" :
						sb->cancelled ? "cancelled" :
						e->reason ? e->reason :
						e->code == 0 ? "exited" : "failed"));
	{
		char id[24], *dot;
		snprintf(id, sizeof(id), "%s", sb->id);
		if ((dot = strchr(id, '.')))
			*dot = 0;
		json_object_object_add(o, "task_id", json_object_new_string(id));
	}
	if (t) {
		char pid[24];
		snprintf(pid, sizeof(pid), "p-%lld", (long long) t->project->id);
		json_object_object_add(o, "project_id", json_object_new_string(pid));
	}
	event_emit("SANDBOX_EXITED", "sandbox", sb->id, t ? t->project->id : 0, o);
	if (!t)
		return;
	t->sb = NULL;
	if (!status_is_active(t->status)) {
		heap_sync(t);
		return;
	}
	if (sb->timed_out)
		msg = xasprintf("timed out after %.3g s", (double) t->timeout_usec / 1e6);
	else if (e->code == 0) {
		if (e->result_left)
			result_from_file(t, sb);
		json_object_put(task_succeeded(t, sb->id));
		return;
	} else if (e->signal)
		msg = xasprintf("%s%s killed by signal %d (%s)%s%s", sb->validator ? "validation: " : "",
				e->reason && !strcmp(e->reason, "oom") ? "out of memory:" : "",
				e->signal, strsignal(e->signal), e->message ? ": " : "",
				e->message ? e->message : "");
	else if (e->code > 0)
		msg = xasprintf("%sexited with code %d%s%s", sb->validator ? "validation failed: " : "",
				e->code, e->message ? ": " : "", e->message ? e->message : "");
	else
		msg = xasprintf("sandbox failed%s%s", e->message ? ": " : "", e->message ? e->message : "");
	task_failed(t, msg);
	free(msg);
}

struct reaped {
	struct sandbox *sb;
	struct exit_info e;
};
static struct reaped *reaped_list;
static size_t n_reaped;

void sandbox_exited(struct sandbox *sb, const struct dagd_exit *e)
{
	struct reaped *r;

	if (sb->exited)
		return;
	sb->exited = true;
	sb->timer = sd_event_source_unref(sb->timer);
	closep(&sb->log_fd);
	sandbox_unlink(sb);
	reaped_list = xrealloc(reaped_list, (n_reaped + 1) * sizeof(*reaped_list));
	r = &reaped_list[n_reaped++];
	r->sb = sb;
	r->e.code = e->code;
	r->e.signal = e->signal;
	r->e.reason = xstrdup(e->reason);
	r->e.message = xstrdup(e->message);
	r->e.result_left = e->result_left;
	log_debug("sandbox %s exited: code %d signal %d", sb->id, e->code, e->signal);
	sandbox_judge(sb, &r->e);
	crash_point("exited");
	server_log_ended(sb->task_id, sb->attempt, sb->validator);
	server_kick();
}

struct sandbox *sandbox_list(void)
{
	return sandboxes;
}

/* The batch is on disk: what exited in it is done with, and its executor may
 * forget it. */
void engine_committed(void)
{
	if (n_reaped > 0)
		crash_point("committed");
	for (size_t i = 0; i < n_reaped; i++) {
		struct sandbox *sb = reaped_list[i].sb;

		executor_forget(executor_find(sb->executor), sb->id, sb->handle);
		free(reaped_list[i].e.reason);
		free(reaped_list[i].e.message);
		sandbox_free(reaped_list[i].sb);
	}
	free(reaped_list);
	reaped_list = NULL;
	n_reaped = 0;
}

/* --- loading, counting, adopting ------------------------------------------- */

void engine_free(void)
{
	for (size_t i = 0; i < n_tasks; i++)
		task_free(tasks[i]);
	for (size_t i = 0; i < n_projects; i++)
		project_free(projects[i]);
	free(tasks);
	free(projects);
	free(spawn_queue);
	tasks = NULL;
	projects = NULL;
	spawn_queue = NULL;
	n_tasks = n_projects = n_spawn = spawn_cap = 0;
	active_total = 0;
	for (struct executor *ex = executors; ex; ex = ex->next)
		ex->active = 0;
}

/* An empty engine, as on an empty database (store_wipe()), without reading it. */
void engine_reset(void)
{
	engine_free();
	next_project_id = next_task_id = 1;
	dispatch_dirty = true;
}

int engine_load(void)
{
	int r;

	engine_free();
	r = store_load();
	if (r < 0)
		return r;
	next_project_id = store_next_id("projects");
	next_task_id = store_next_id("tasks");
	for (size_t i = 0; i < n_tasks; i++) {
		struct task *t = tasks[i];

		if (!t)
			continue;
		for (size_t k = 0; k < t->n_deps; k++)
			if (t->deps[k]->status != ST_COMPLETED)
				t->unmet++;
		t->project->counts[t->status]++;
		if (status_is_active(t->status))
			count_active(t, +1);
		for (struct sandbox *sb = sandboxes; sb; sb = sb->next)
			if (sb->task_id == t->id && t->sandbox_id && strcmp(sb->id, t->sandbox_id) == 0)
				t->sb = sb;
		if (t->status == ST_READY && t->not_before > now_usec())
			arm_backoff(t);
		heap_sync(t);
	}
	/* exits not yet committed when a batch failed: judge them again */
	for (size_t i = 0; i < n_reaped; i++) {
		struct task *t = (size_t) reaped_list[i].sb->task_id < n_tasks ? tasks[reaped_list[i].sb->task_id] : NULL;

		if (t && t->sandbox_id && strcmp(t->sandbox_id, reaped_list[i].sb->id) == 0 &&
		    status_is_active(t->status)) {
			t->sb = reaped_list[i].sb;
			sandbox_judge(reaped_list[i].sb, &reaped_list[i].e);
		}
	}
	dispatch_dirty = true;
	return 0;
}

/* What the executors say they have, by sandbox id. */
static struct listed *listed_all(void)
{
	struct listed *all = NULL, *l;

	for (struct executor *ex = executors; ex; ex = ex->next) {
		ex->list_failed = false;
		if (!executor_can_list(ex))
			continue;
		if (executor_list(ex, &l) < 0) {
			ex->list_failed = true;
			continue;
		}
		while (l) {
			struct listed *next = l->next;
			l->next = all;
			all = l;
			l = next;
		}
	}
	return all;
}

static struct listed *listed_find(struct listed *all, const char *executor, const char *sandbox_id)
{
	for (struct listed *l = all; executor && sandbox_id && l; l = l->next)
		if (!l->owned && strcmp(l->ex->name, executor) == 0 && strcmp(l->sandbox_id, sandbox_id) == 0)
			return l;
	return NULL;
}

/* A listed sandbox that no attempt owns (started just before a crash, or
 * whose exit is on disk but was not yet forgotten): its executor stops it
 * and lets it go. */
static void listed_forget_unowned(struct listed *all)
{
	for (struct listed *l = all; l; l = l->next)
		if (!l->owned) {
			log_info("executor '%s' has sandbox %s, which no attempt owns; stopping and forgetting it",
				 l->ex->name, l->sandbox_id);
			executor_forget(l->ex, l->sandbox_id, l->handle);
		}
}

/* record_start: its start was never committed (the executor listed it): it
 * is recorded now, with its SANDBOX_SPAWNED event. */
static void adopt_one(struct task *t, struct sandbox *sb, bool record_start)
{
	sb->validator = t->status == ST_VALIDATING;
	sb->started = !record_start;
	if (!sb->handle)
		sb->handle = xstrdup(t->sandbox_handle);
	if (t->timeout_usec > 0 && !sb->timer) {
		int64_t left = t->started_at + (int64_t) t->timeout_usec - now_usec();
		(void) sd_event_add_time_relative(D.event, &sb->timer, CLOCK_MONOTONIC,
						  left > 0 ? (uint64_t) left : 1, 10 * USEC_PER_MSEC,
						  on_timeout, sb);
	}
	log_info("adopting sandbox %s of task t-%lld", sb->id, (long long) t->id);
	sandbox_launch(t, sb, true);
	if (record_start && t->sb == sb && !sb->exited) {
		_cleanup_free_ char *handle = xstrdup(sb->handle);

		free(sb->handle);
		sb->handle = NULL;
		sandbox_started(sb, handle);
	}
}

/* At start-up: find again the sandboxes of the tasks that were running.  An
 * executor that can list its sandboxes decides: a claimed attempt whose
 * sandbox it has is adopted (whether or not its handle was committed), one it
 * does not have and that has no handle never ran and is dispatched again
 * without using up a retry.  Without a list, the stored handle decides. */
int engine_adopt_all(void)
{
	struct listed *all = listed_all();

	for (size_t i = 0; i < n_tasks; i++) {
		struct task *t = tasks[i];
		struct executor *ex;
		struct listed *l;
		bool record_start;

		if (!t || !status_is_active(t->status) || t->sb)
			continue;
		ex = executor_find(t->sandbox_executor);
		l = listed_find(all, t->sandbox_executor, t->sandbox_id);
		record_start = false;
		if (l) {
			l->owned = true;
			record_start = !t->sandbox_handle;
			if (!t->sandbox_handle || strcmp(t->sandbox_handle, l->handle) != 0) {
				set_str(&t->sandbox_handle, l->handle);
				save(t);
			}
		} else if (!t->sandbox_handle) {
			if (ex && ex->list_failed) {
				/* it lists, but could not now: it may have started it */
				task_failed(t, "cannot tell whether its sandbox started: the executor cannot list its sandboxes");
				continue;
			}
			log_info("task t-%lld had no sandbox yet; dispatching it again", (long long) t->id);
			if (t->status == ST_SPAWNING && t->tries > 0)
				t->tries--;
			set_status(t, t->status == ST_VALIDATING ? ST_PENDING_VALIDATION : ST_READY);
			continue;
		}
		adopt_one(t, sandbox_new(t, ex), record_start);
	}
	listed_forget_unowned(all);
	listed_free(all);
	return 0;
}

/* After the plugins were reloaded: hand every live sandbox to its new
 * instance, exactly as after a restart.  A sandbox whose start was not yet
 * reported is found by the executor's list; a cancel in progress is finished
 * at once (the old instance's grace timer is gone). */
void engine_readopt(void)
{
	struct listed *all = listed_all();
	struct sandbox *next;

	for (struct executor *ex = executors; ex; ex = ex->next)
		ex->active = 0;
	for (size_t i = 0; i < n_tasks; i++)
		if (tasks[i] && status_is_active(tasks[i]->status)) {
			struct executor *ex = executor_find(tasks[i]->sandbox_executor);
			if (ex)
				ex->active++;
		}
	for (struct sandbox *sb = sandboxes; sb; sb = next) {
		struct task *t = sandbox_task(sb);
		struct listed *l = listed_find(all, sb->executor, sb->id);

		next = sb->next;
		sb->ex = executor_find(sb->executor);
		if (l) {
			l->owned = true;
			if (!sb->handle)
				sb->handle = xstrdup(l->handle);
		}
		if (!t || !sb->handle) {
			sandbox_unlink(sb);
			if (t) {
				t->sb = NULL;
				if (status_is_active(t->status))
					task_failed(t, "sandbox lost while the plugins were reloaded");
			}
			if (sb->handle)
				executor_forget(sb->ex, sb->id, sb->handle);
			sandbox_free(sb);
			continue;
		}
		if (t->sandbox_handle == NULL)
			set_str(&t->sandbox_handle, sb->handle);
		sandbox_launch(t, sb, true);
		if (sb->cancelled && !sb->exited && sb->ex && sb->ex->vt && t->sb == sb)
			(void) sb->ex->vt->cancel(sb->ex->state, (struct dagd_sandbox *) sb, sb->data, 0);
	}
	listed_forget_unowned(all);
	listed_free(all);
	dispatch_dirty = true;
}

/* Nothing runs and nothing is due: no sandbox, no task waiting out a backoff,
 * no task that could be dispatched now. */
bool engine_idle(void)
{
	if (active_total > 0 || sandboxes || n_spawn > 0)
		return false;
	for (size_t i = 0; i < n_tasks; i++)
		if (tasks[i] && (tasks[i]->backoff || tasks[i]->heap_idx >= 0))
			return false;
	return true;
}

void engine_counts(unsigned counts[static _ST_MAX], unsigned *ret_active)
{
	memset(counts, 0, _ST_MAX * sizeof(unsigned));
	for (size_t i = 0; i < n_projects; i++)
		if (projects[i])
			for (int s = 0; s < _ST_MAX; s++)
				counts[s] += projects[i]->counts[s];
	*ret_active = active_total;
}
