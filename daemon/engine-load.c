/*
 * engine-load.c - loading the model, counting, and adopting at start-up and
 * after a reload the sandboxes that ran on.  The store reads its rows and
 * hands them over one by one (store_load()); the objects, the arrays and the
 * edges are built here.
 */
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/random.h>
#include <unistd.h>

#include "dagd.h"

void engine_free(void)
{
	engine_lists_free();
	engine_reservations_forget(NULL);
	for (size_t i = 0; i < n_tasks; i++)
		task_free(task_at(i));
	for (size_t i = 0; i < n_projects; i++)
		project_free(projects[i]);
	for (int s = 0; s < _ST_MAX; s++)
		idset_free(&members[s]);
	task_pages_free();
	edge_sets_free();
	free(projects);
	free(spawn_queue);
	pools_free();
	projects = NULL;
	spawn_queue = NULL;
	n_projects = n_spawn = spawn_cap = 0;
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

/* --- the rows the store hands over --------------------------------------- */

static struct task *task_by_id(int64_t id)
{
	return task_at(id);
}

static int project_loaded(const struct project_row *r)
{
	struct project *p = calloc(1, sizeof(*p));

	if (!p)
		abort();
	p->id = r->id;
	p->name = xstrdup(r->name);
	p->autonomous = r->autonomous;
	p->max_concurrency = r->max_concurrency;
	p->executor = xstrdup(r->executor);
	p->executor_options = xstrdup(r->executor_options);
	p->created_at = r->created_at;
	p->updated_at = r->updated_at;
	if (r->id < 0) {
		project_free(p);
		return errorf(-EBADMSG, "database: project %lld is malformed", (long long) r->id);
	}
	if ((size_t) r->id >= n_projects) {
		projects = xrealloc(projects, (size_t) (r->id + 1) * sizeof(*projects));
		memset(projects + n_projects, 0, ((size_t) r->id + 1 - n_projects) * sizeof(*projects));
		n_projects = (size_t) r->id + 1;
	}
	projects[r->id] = p;
	return 0;
}

static int task_loaded(const struct task_row *r)
{
	struct task *t;

	if (r->id <= 0 || r->id > TASK_ID_MAX || task_at(r->id))
		return errorf(-EBADMSG, "database: task %lld is malformed", (long long) r->id);
	t = task_alloc((uint32_t) r->id);
	t->project = r->project_id >= 0 && (size_t) r->project_id < n_projects ? projects[r->project_id] : NULL;
	t->name_hash = r->name ? names_hash(r->name) : 0;      /* the name stays in the row */
	t->priority = r->priority;
	if (r->executor || r->validation_command || r->timeout_usec != task_ext_default.timeout_usec ||
	    r->max_retries != task_ext_default.max_retries || r->backoff_usec != task_ext_default.backoff_usec) {
		struct task_ext *x = task_ext(t);

		x->executor = xstrdup(r->executor);
		x->timeout_usec = r->timeout_usec;
		x->max_retries = r->max_retries;
		x->backoff_usec = r->backoff_usec;
		x->validation_command = xstrdup(r->validation_command);
	}
	t->status = status_from_string(r->status);
	t->released = r->released;
	t->attempt = r->attempt;
	t->tries = r->tries < TRIES_MAX ? r->tries : TRIES_MAX;
	if (r->not_before && t->status == ST_READY)
		task_ext(t)->not_before = r->not_before;
	t->held = r->held;
	t->paused = r->paused && t->status == ST_RUNNING;
	t->stated = r->stated;
	if ((t->status == ST_READY || t->status == ST_WAITING) && r->reserved > t->attempt) {
		t->attempt = r->reserved - 1;   /* reserved as attempt + 1: always so */
		t->reserved = t->reserve_ready = true;
	}
	if (!t->project || t->status == _ST_INVALID || t->priority < 0 || t->priority >= _PRIO_MAX) {
		task_free(t);
		return errorf(-EBADMSG, "database: task %lld is malformed", (long long) r->id);
	}
	names_add(&t->project->names, t);
	return 0;
}

static int trigger_loaded(int64_t id, const char *rule, bool finally)
{
	struct task *t = task_by_id(id);

	if (!t)
		return 0;
	t->finally = finally;
	if (task_trigger_set(t, rule) < 0)
		return errorf(-EBADMSG, "database: task %lld has a malformed trigger", (long long) id);
	return 0;
}

static int dep_loaded(int64_t a, int64_t b)
{
	struct task *t = task_by_id(a), *on = task_by_id(b);

	if (!t || !on)
		return 0;
	edge_link(t, on);
	return 0;
}

static const struct store_loader loader = {
	.project = project_loaded,
	.task = task_loaded,
	.pool = pool_loaded,
	.attempts = attempts_row_loaded,
	.trigger = trigger_loaded,
	.dep = dep_loaded,
	.map = map_loaded,
};

int engine_load(void)
{
	int r;

	engine_free();
	r = store_load(&loader);
	if (r < 0)
		return r;
	next_project_id = store_next_id("projects");
	next_task_id = store_next_id("tasks");
	for (size_t i = 0; i < n_tasks; i++) {
		struct task *t = task_at(i);

		if (!t)
			continue;
		for (size_t k = 0; k < task_n_deps(t); k++)
			if (task_deps(t)[k]->status != ST_COMPLETED)
				t->unmet++;
		member_add(t);
		if (status_is_active(t->status))
			count_active(t, +1);
		for (struct sandbox *sb = sandboxes; sb; sb = sb->next)
			if (sb->task_id == t->id && task_def(t)->sandbox_id && strcmp(sb->id, task_def_held(t)->sandbox_id) == 0)
				task_sb_set(t, sb);
		if (t->status == ST_READY && ext_of(t)->not_before > now_usec())
			arm_backoff(t);
		attempts_loaded(t);
		queue_sync(t);
	}
	/* a sandbox started for a reserved attempt in the turn whose commit
	 * failed: that claim is taken up again (engine-dispatch.c) */
	for (struct sandbox *sb = sandboxes; sb; sb = sb->next) {
		struct task *t = task_at(sb->task_id);

		if (t && !task_sb(t) && !sb->validator && task_reserved(t) == sb->attempt &&
		    (t->status == ST_READY || t->status == ST_WAITING)) {
			reserve_found(t, sb->executor);
			task_sb_set(t, sb);
		}
	}
	/* exits not yet committed when a batch failed: judge them again */
	sandbox_rejudge();
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
		sb->handle = xstrdup(task_def(t)->sandbox_handle);
	if (ext_of(t)->timeout_usec > 0 && !sb->timer) {
		int64_t left = task_time(t, AT_STARTED) + (int64_t) ext_of(t)->timeout_usec - now_usec();
		(void) sd_event_add_time_relative(D.event, &sb->timer, CLOCK_MONOTONIC,
						  left > 0 ? (uint64_t) left : 1, 10 * USEC_PER_MSEC,
						  on_timeout, sb);
	}
	log_info("adopting sandbox %s of task t-%lld", sb->id, (long long) t->id);
	sandbox_launch(t, sb, true);
	if (record_start && task_sb(t) == sb && !sb->exited) {
		_cleanup_free_ char *handle = xstrdup(sb->handle);

		free(sb->handle);
		sb->handle = NULL;
		sandbox_started(sb, handle);
	}
}

/* A ready (or waiting) task whose reserved attempt's sandbox an executor
 * has: it was started in the turn the daemon died in, before that turn's
 * commit (a waiting one: the exit that made it ready was not committed
 * either; the executor delivers that exit again). */
static void reserved_listed(struct listed *all, struct task *t)
{
	char id[48];

	snprintf(id, sizeof(id), "t-%lld.%u", (long long) t->id, task_reserved(t));
	for (struct listed *l = all; l; l = l->next)
		if (strcmp(l->sandbox_id, id) == 0) {
			log_info("task t-%lld: the sandbox of its reserved attempt %s runs; adopting it",
				 (long long) t->id, id);
			reserve_found(t, l->ex->name);
			return;
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
		struct task *t = task_at(i);
		struct executor *ex;
		struct listed *l;
		bool record_start;

		if (t && (t->status == ST_READY || t->status == ST_WAITING) && t->reserved && !task_sb(t))
			reserved_listed(all, t);
		if (!t || !status_is_active(t->status) || task_sb(t))
			continue;
		ex = executor_find(task_def(t)->sandbox_executor);
		l = listed_find(all, task_def(t)->sandbox_executor, task_def(t)->sandbox_id);
		record_start = false;
		if (l) {
			l->owned = true;
			record_start = !task_def(t)->sandbox_handle;
			if (!task_def(t)->sandbox_handle || strcmp(task_def(t)->sandbox_handle, l->handle) != 0) {
				set_str(&task_def(t)->sandbox_handle, l->handle);
				task_save(t);
			}
		} else if (!task_def(t)->sandbox_handle) {
			if (ex && ex->list_failed) {
				/* it lists, but could not now: it may have started it */
				task_failed_how(t, "cannot tell whether its sandbox started: the executor cannot list its sandboxes",
						&(struct fail_how) { .exit_code = -1, .lost = true });
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
		if (task_at(i) && status_is_active(task_at(i)->status)) {
			struct executor *ex = executor_find(task_def(task_at(i))->sandbox_executor);
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
				task_sb_set(t, NULL);
				if (status_is_active(t->status))
					task_failed_how(t, "sandbox lost while the plugins were reloaded",
							&(struct fail_how) { .exit_code = -1, .lost = true });
			}
			if (sb->handle)
				executor_forget(sb->ex, sb->id, sb->handle);
			sandbox_free(sb);
			continue;
		}
		if (task_def(t)->sandbox_handle == NULL)
			set_str(&task_def(t)->sandbox_handle, sb->handle);
		sandbox_launch(t, sb, true);
		if (sb->cancelled && !sb->exited && sb->ex && sb->ex->vt && task_sb(t) == sb)
			(void) sb->ex->vt->cancel(sb->ex->state, (struct dagd_sandbox *) sb, sb->data, 0);
	}
	listed_forget_unowned(all);
	listed_free(all);
	dispatch_dirty = true;
}

/* Nothing runs and nothing is due: no sandbox, no task waiting out a backoff
 * or an approval's timeout, no task that could be dispatched now.  What it
 * looks at: the projects' queues and the tasks of those sets, not every
 * task. */
bool engine_idle(void)
{
	if (active_total > 0 || sandboxes || n_spawn > 0 || idset_next(&in_backoff, 0) > 0)
		return false;
	for (size_t i = 0; i < n_projects; i++)
		if (projects[i] && queue_first(projects[i]))
			return false;
	for (struct task *t = task_next_in(NULL, ST_AWAITING_APPROVAL, 0); t;
	     t = task_next_in(NULL, ST_AWAITING_APPROVAL, t->id))
		if (ext_of(t)->approval_timer)
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
