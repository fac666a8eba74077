/*
 * engine-dispatch.c - dispatch: the best ready task of each project with a
 * free slot is claimed, its sandbox started after the claim is committed.
 */
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/random.h>
#include <unistd.h>

#include "dagd.h"

/* Launched in the turn of their claim, before its commit: claims of
 * attempts reserved in an earlier commit (reserve_ahead()). */
static struct task **fast_queue;
static size_t n_fast, fast_cap;
/* Reservations not yet committed; engine_reservations_committed() */
static struct task **reserving;
static size_t n_reserving, reserving_cap;

static void push(struct task ***q, size_t *n, size_t *cap, struct task *t)
{
	if (*n == *cap) {
		*cap = *cap ? 2 * *cap : 16;
		*q = xrealloc(*q, *cap * sizeof(**q));
	}
	(*q)[(*n)++] = t;
}

static void new_token(struct task *t)
{
	char token[65];

	if (random_hex(token, 32) < 0)
		abort();
	set_str(&task_def(t)->token, token);
}

/* "t-ID.ATTEMPT", ".v" after a validator's (without printf: one a task) */
static char *sandbox_id_of(int64_t id, unsigned attempt, bool validator)
{
	char buf[64];
	size_t n = format_id(buf, "t-", id);

	n += format_id(buf + n, ".", attempt);
	if (validator)
		memcpy(buf + n, ".v", 3);
	return xstrdup(buf);
}

/* Its attempt begins: what a claim writes, and what a reserved attempt
 * found running after a crash takes on. */
static void attempt_begin(struct task *t, const char *executor, bool validator)
{
	struct task_def *d = task_def(t);

	queue_remove(t);
	if (!validator) {
		if (t->tries < TRIES_MAX)
			t->tries++;
		task_set_time(t, AT_STARTED, now_usec());
		task_set_time(t, AT_FINISHED, 0);
		clear_str(&d->result);
		clear_str(&d->error_message);
		clear_str(&d->report);
		attempts_claimed(t);
	}
	free(d->sandbox_id);
	d->sandbox_id = sandbox_id_of(t->id, t->attempt, validator);
	set_str(&d->sandbox_executor, executor);
	clear_str(&d->sandbox_handle);
	set_status(t, validator ? ST_VALIDATING : ST_SPAWNING);
}

static void reserve_dependents(struct task *t);

static void claim(struct task *t)
{
	bool validator = t->status == ST_PENDING_VALIDATION, fast = false;
	struct executor *ex = task_executor(t);

	if (!validator && t->reserved) {
		/* its sandbox id and token were committed with the reservation:
		 * a restart finds the sandbox by that id, so it may start now */
		fast = t->reserve_ready && ex && executor_can_list(ex);
		t->attempt++;
		t->reserved = false;
	} else if (!validator) {
		t->attempt++;
		new_token(t);
	}
	attempt_begin(t, ext_of(t)->executor ? ext_of(t)->executor : t->project->executor, validator);
	reserve_dependents(t);
	if (fast)
		push(&fast_queue, &n_fast, &fast_cap, t);
	else
		push(&spawn_queue, &n_spawn, &spawn_cap, t);
}

/* A slot's next task should not wait for a commit when its sandbox could
 * start at once: the best few ready tasks of each project get their next
 * attempt (sandbox id t-ID.N and token) reserved and committed ahead, so
 * that when a slot frees up, the claim of a reserved one starts its sandbox
 * in the same turn, its commit going on while the sandbox runs.  Only where
 * the executor lists its sandboxes: a restart (or a failed commit's reload)
 * that finds a sandbox of a reserved id adopts it (reserve_found()); one
 * that does not keeps the reservation for the claim to come.  The best
 * RESERVE_AHEAD of a project: more slots than that rarely free in one turn. */
#define RESERVE_AHEAD 3

static void reserve(struct task *t)
{
	struct executor *ex;

	if (t->reserved || ext_of(t)->map_over || t->approval)
		return;
	ex = task_executor(t);
	if (!ex || !executor_can_list(ex))
		return;
	new_token(t);
	t->reserved = true;
	t->reserve_ready = false;
	task_save(t);
	push(&reserving, &n_reserving, &reserving_cap, t);
}

static void reserve_ahead(void)
{
	for (size_t i = 0; i < n_projects; i++) {
		struct task *t = projects[i] ? queue_first(projects[i]) : NULL;

		/* reserve() leaves t in its place: the walk goes on from it */
		for (size_t k = 0; t && k < RESERVE_AHEAD; k++, t = queue_next(t))
			if (t->status == ST_READY)
				reserve(t);
	}
}

/* The dependents that wait for t alone are reserved as t starts: when t
 * succeeds, the first of them starts in the turn of t's exit, before it is
 * committed.  A restart in between finds t's exit again (its executor
 * keeps it until told it is committed) and the dependent's sandbox by its
 * reserved id. */
#define RESERVE_DEPENDENTS 8

static void reserve_dependents(struct task *t)
{
	for (size_t i = 0, n = 0; i < task_n_rdeps(t) && n < RESERVE_AHEAD && i < RESERVE_DEPENDENTS; i++) {
		struct task *r = task_rdeps(t)[i];

		if (r->status == ST_WAITING && r->unmet == 1 && !r->held) {
			reserve(r);
			n++;
		}
	}
}

void engine_reservations_committed(void)
{
	for (size_t i = 0; i < n_reserving; i++)
		if (reserving[i])
			reserving[i]->reserve_ready = reserving[i]->reserved;
	n_reserving = 0;
}

/* It is gone, or all were reloaded: no reservation of it waits. */
void engine_reservations_forget(struct task *t)
{
	for (size_t i = 0; i < n_reserving; i++)
		if (!t || reserving[i] == t)
			reserving[i] = NULL;
	if (!t)
		n_reserving = 0;
}

/* A ready task's reserved attempt turned out to have its sandbox (found by
 * an executor's list after a restart, or alive in memory after a commit
 * failed): the claim it was is taken up, never started again. */
void reserve_found(struct task *t, const char *executor)
{
	t->attempt++;
	t->reserved = false;
	attempt_begin(t, executor, false);
}

static void spawn_fast(void);

/* The definitions this round's claims will read (attempt_begin()), in one
 * pass over their rows when they lie close together (task_defs_prefetch()):
 * the first tasks of each queue, as many as its project has free slots. */
#define DEFS_AHEAD 256

static void defs_ahead(void)
{
	struct task *list[DEFS_AHEAD];
	size_t n = 0, room = active_total < D.global_limit ? D.global_limit - active_total : 0;

	for (size_t i = 0; i < n_projects && n < DEFS_AHEAD && n < room; i++) {
		struct project *p = projects[i];
		unsigned free_slots = p && p->active < p->max_concurrency ? p->max_concurrency - p->active : 0;

		for (struct task *t = free_slots ? queue_first(p) : NULL; t && free_slots > 0 && n < DEFS_AHEAD && n < room;
		     t = queue_next(t), free_slots--)
			list[n++] = t;
	}
	task_defs_prefetch(list, n);
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
	pools_round();
	defs_ahead();
	while (active_total < D.global_limit) {
		struct task *best = NULL;

		for (size_t i = 0; i < n_projects; i++) {
			struct project *p = projects[i];
			struct task *t;

			if (!p || p->active >= p->max_concurrency)
				continue;
			while ((t = queue_first(p))) {
				struct executor *ex = task_executor(t);

				if ((!ex || !executor_full(ex)) && !map_full(t))
					break;
				/* its executor (or its map_concurrency) is full: set it aside for this round */
				queue_remove(t);
				stash = xrealloc(stash, (n_stash + 1) * sizeof(*stash));
				stash[n_stash++] = t;
			}
			if (t && (!best || task_cmp(t, best) < 0))
				best = t;
		}
		if (!best)
			break;
		if (ext_of(best)->n_pools > 0 && !pools_fit(best)) {
			/* a pool has no room: kept for it (engine-pools.c) */
			pools_reserve(best);
			queue_remove(best);
			stash = xrealloc(stash, (n_stash + 1) * sizeof(*stash));
			stash[n_stash++] = best;
			continue;
		}
		claim(best);
	}
	reserve_ahead();
	{
		/* what was set aside is back where it was: nothing new to dispatch */
		bool dirty = dispatch_dirty;

		for (size_t i = 0; i < n_stash; i++)
			queue_sync(stash[i]);
		dispatch_dirty = dirty;
	}
	free(stash);
	spawn_fast();
}

/* A string copied to *at, which moves past it; NULL stays NULL. */
static char *put_str(char **at, const char *s)
{
	size_t n = s ? strlen(s) + 1 : 0;
	char *p = s ? memcpy(*at, s, n) : NULL;

	*at += n;
	return p;
}

/* Its strings (id, executor, log path) in the same allocation, after it. */
struct sandbox *sandbox_new(struct task *t, struct executor *ex)
{
	const struct task_def *d = task_def(t);
	size_t room = (d->sandbox_id ? strlen(d->sandbox_id) + 1 : 0) +
		      (d->sandbox_executor ? strlen(d->sandbox_executor) + 1 : 0) + LOG_PATH_MAX();
	struct sandbox *sb = calloc(1, sizeof(*sb) + room);
	char *at;

	if (!sb)
		abort();
	at = (char *) (sb + 1);
	sb->id = put_str(&at, d->sandbox_id);
	sb->executor = put_str(&at, d->sandbox_executor);
	sb->log_path = at;
	sb->task_id = t->id;
	sb->attempt = t->attempt;
	sb->validator = t->status == ST_VALIDATING;
	sb->ex = ex;
	sb->log_fd = -EBADF;
	log_path_put(sb->log_path, t->id, t->attempt, sb->validator);
	sb->next = sandboxes;
	sandboxes = sb;
	task_sb_set(t, sb);
	return sb;
}

void sandbox_unlink(struct sandbox *sb)
{
	for (struct sandbox **p = &sandboxes; *p; p = &(*p)->next)
		if (*p == sb) {
			*p = sb->next;
			break;
		}
	sb->next = NULL;
}

void sandbox_free(struct sandbox *sb)
{
	if (!sb)
		return;
	sd_event_source_unref(sb->timer);
	closep(&sb->log_fd);
	free(sb->handle);
	free(sb);
}

/* Start a sandbox, or find one again (adopt).  On failure the attempt fails. */
void sandbox_launch(struct task *t, struct sandbox *sb, bool adopt)
{
	struct dagd_spawn spec;
	char **argv, **envp, *opts, *err = NULL, idbuf[24], pid[24], *msg;
	_cleanup_free_ char *inputs = NULL;
	int r;

	/* a mapped task runs no sandbox of its own (task.retry may have made
	 * it ready): it expands, or gathers its children, now */
	if (!adopt && map_launch(t)) {
		if (task_sb(t) == sb)
			task_sb_set(t, NULL);
		sandbox_unlink(sb);
		sandbox_free(sb);
		return;
	}

	/* a new sandbox gets its inputs now, and a template that names what is
	 * not there fails the attempt for good before anything starts; one
	 * found again keeps its inputs file, and its templates come out as
	 * they did (its plugin may yet have to send the command) */
	r = inputs_prepare(t, sb, !adopt, &inputs);
	if (r >= 0)
		r = spec_build(t, sb, &spec, inputs, true, &argv, &envp, &opts);
	else
		(void) spec_build(t, sb, &spec, NULL, false, &argv, &envp, &opts);
	if (r < 0 && !adopt) {
		msg = xstrdup(last_error());
		spec_free(argv, envp, opts);
		if (task_sb(t) == sb)
			task_sb_set(t, NULL);
		sandbox_unlink(sb);
		log_warning("task t-%lld: %s", (long long) t->id, msg);
		if (status_is_active(t->status))
			task_fail_final(t, "error", msg);
		free(msg);
		sandbox_free(sb);
		return;
	}
	spec.task_id = task_id_string(t->id, idbuf);
	format_id(pid, "p-", t->project->id);
	spec.project_id = pid;
	sb->data = NULL;
	if (!sb->ex || !sb->ex->vt)
		r = errorf(-ENOENT, "executor '%s' is not loaded", task_def(t)->sandbox_executor);
	else if (adopt)
		r = sb->ex->vt->adopt(sb->ex->state, (struct dagd_sandbox *) sb, &spec, sb->handle,
				      &sb->data, &err);
	else
		r = sb->ex->vt->spawn(sb->ex->state, (struct dagd_sandbox *) sb, &spec, &sb->data, &err);
	if (r < 0 && !err)
		err = xstrdup(sb->ex ? strerror(-r) : last_error());
	spec_free(argv, envp, opts);
	if (r >= 0) {
		if (!adopt)
			crash_point("spawned");
		return;
	}

	if (task_sb(t) == sb)
		task_sb_set(t, NULL);
	sandbox_unlink(sb);
	msg = adopt ? xasprintf("sandbox %s was lost while dagd was down: %s", sb->id, err)
		    : xasprintf("cannot start sandbox %s: %s", sb->id, err);
	log_warning("task t-%lld: %s", (long long) t->id, msg);
	/* lost while dagd was down: the executor's doing; a start refused at
	 * once (a command not found, an executor not loaded) is the task's */
	if (status_is_active(t->status))
		task_failed_how(t, msg, &(struct fail_how) { .exit_code = -1, .lost = adopt });
	free(msg);
	free(err);
	sandbox_free(sb);
}

/* The claims of committed reservations: started now, in their turn. */
static void spawn_fast(void)
{
	size_t n = n_fast;
	struct task **q = TAKE_PTR(fast_queue);

	n_fast = fast_cap = 0;
	for (size_t i = 0; i < n; i++) {
		struct task *t = q[i];

		if (t->status == ST_SPAWNING && !task_sb(t))
			sandbox_launch(t, sandbox_new(t, task_executor(t)), false);
	}
	free(q);
}

bool engine_spawn_pending(void)
{
	size_t n = n_spawn;
	struct task **q = TAKE_PTR(spawn_queue);

	n_spawn = spawn_cap = 0;
	for (size_t i = 0; i < n; i++) {
		struct task *t = q[i];

		if (!t || (t->status != ST_SPAWNING && t->status != ST_VALIDATING) || task_sb(t))
			continue;
		sandbox_launch(t, sandbox_new(t, task_executor(t)), false);
	}
	free(q);
	return n > 0;
}
