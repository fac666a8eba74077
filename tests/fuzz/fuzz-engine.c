/*
 * fuzz-engine.c - libFuzzer target for whole command sequences against a
 * live engine: each input is read as a program of operations (add a task
 * with dependencies, depend, undepend, claim, spawn, complete, fail,
 * cancel, retry (with or without what depends on it), start, switch a
 * project's mode, hold, release, edit, remove, clean a project, end a turn),
 * each applied to the engine and committed, and after each the engine's
 * invariants are checked:
 *
 *   - a project's counts match the statuses of its tasks, and its active
 *     count the tasks holding a slot;
 *   - a task's unmet count is the number of its dependencies not completed,
 *     its dependents list it among their dependencies and it theirs, and
 *     both are tasks that exist;
 *   - no task is ready, spawning or running with unmet dependencies, and no
 *     waiting or ready task has a failed dependency;
 *   - a project's queues hold exactly its dispatchable tasks (never a held
 *     one), each in the queue of its key, and give them in task_cmp()'s
 *     order, no queue empty;
 *   - the dependency graph has no cycle;
 *   - a pool's use is the weights of its active tasks, and an approval
 *     task awaits approval only with every dependency completed.
 *
 * Every input starts from an empty in-memory database and engine.
 *
 *   make fuzz && build/fuzz/fuzz-engine -dict=tests/fuzz/dagd.dict
 */
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dagd.h"

struct daemon D;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[] = "/tmp/dagd-fuzz-engine.XXXXXX";

static int rm(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(p);
}

static void cleanup(void)
{
	store_close();
	nftw(dir, rm, 16, FTW_DEPTH | FTW_PHYS);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	if (!mkdtemp(dir))
		abort();
	D.state_dir = dir;
	D.socket_path = (char *) "/nonexistent";
	D.global_limit = 3;
	if (sd_event_new(&D.event) < 0 || store_open(":memory:") < 0)
		abort();
	atexit(cleanup);
	return 0;
}

#define CHECK(x) do { if (!(x)) { fprintf(stderr, "invariant broken: %s\n", #x); abort(); } } while (0)

/* Does a path of dependencies lead from t back to itself? colour: 0 new,
 * 1 on the path, 2 done. */
static bool cycle_from(struct task *t, unsigned char *colour)
{
	colour[t->id] = 1;
	for (size_t i = 0; i < task_n_deps(t); i++) {
		struct task *d = task_deps(t)[i];

		if (colour[d->id] == 1 || (colour[d->id] == 0 && cycle_from(d, colour)))
			return true;
	}
	colour[t->id] = 2;
	return false;
}

/* What the engine's dispatchable() says, seen from outside. */
static bool should_be_queued(const struct task *t)
{
	if (task_sb(t) || ext_of(t)->backoff || t->held)
		return false;
	if (t->status == ST_PENDING_VALIDATION)
		return true;
	return t->status == ST_READY && (t->project->autonomous || t->released);
}

/* p's queues hold its queued tasks (queued of them), each where its key
 * says, and walk them best first. */
static void check_queues(const struct project *p, size_t queued)
{
	size_t walked = 0, held = 0;
	const struct task *prev = NULL;

	for (size_t i = 0; i < p->n_queues; i++) {
		const struct queue *q = &p->queues[i];

		CHECK(q->ids.count > 0);
		CHECK(q->first == idset_next(&q->ids, 0));
		held += q->ids.count;
		for (int64_t id = 0; (id = idset_next(&q->ids, id));) {
			CHECK(task_at(id) && task_at(id)->project == p && task_at(id)->queued);
			CHECK(task_at(id)->priority == q->priority && task_n_rdeps(task_at(id)) == q->n_rdeps);
		}
	}
	for (const struct task *t = queue_first(p); t; prev = t, t = queue_next(t)) {
		CHECK(!prev || task_cmp(prev, t) < 0);
		walked++;
	}
	CHECK(walked == held && held == queued);
}

static void check(void)
{
	unsigned char *colour = calloc(n_tasks + 1, 1);

	for (size_t i = 0; i < n_projects; i++) {
		struct project *p = projects[i];
		unsigned counts[_ST_MAX] = { 0 }, active = 0;

		if (!p)
			continue;
		size_t named = 0, queued = 0;

		for (size_t k = 0; k < n_tasks; k++)
			if (task_at(k) && task_at(k)->project == p) {
				counts[task_at(k)->status]++;
				active += status_is_active(task_at(k)->status);
				queued += task_at(k)->queued;
				/* the name index finds each named task, and only those */
				if (task_name(task_at(k))) {
					named++;
					CHECK(names_get(&p->names, task_name(task_at(k))) == task_at(k));
				}
			}
		CHECK(p->names.n == named);
		for (int s = 0; s < _ST_MAX; s++)
			CHECK(p->counts[s] == counts[s]);
		CHECK(p->active == active);
		check_queues(p, queued);
	}
	size_t in_a_backoff = 0;

	for (size_t i = 0; i < n_tasks; i++) {
		struct task *t = task_at(i);
		unsigned unmet = 0;

		if (!t)
			continue;
		for (size_t k = 0; k < task_n_deps(t); k++) {
			struct task *d = task_deps(t)[k];
			bool listed = false;

			CHECK(task_at(d->id) == d);
			unmet += d->status != ST_COMPLETED;
			for (size_t j = 0; j < task_n_rdeps(d); j++)
				listed |= task_rdeps(d)[j] == t;
			CHECK(listed);
			/* under the default rule; another rule waits for every dependency */
			if (!ext_of(t)->trigger && (t->status == ST_WAITING || t->status == ST_READY))
				CHECK(d->status != ST_FAILED && d->status != ST_UPSTREAM_FAILED &&
				      d->status != ST_CANCELLED && d->status != ST_SKIPPED);
			if (ext_of(t)->trigger && t->status == ST_READY)
				CHECK(status_is_finished(d->status));
		}
		for (size_t k = 0; k < task_n_rdeps(t); k++) {
			struct task *d = task_rdeps(t)[k];
			bool listed = false;

			CHECK(task_at(d->id) == d);
			for (size_t j = 0; j < task_n_deps(d); j++)
				listed |= task_deps(d)[j] == t;
			CHECK(listed);
		}
		CHECK(t->unmet == unmet);
		if (!ext_of(t)->trigger && (t->status == ST_READY || t->status == ST_SPAWNING || t->status == ST_RUNNING ||
				    t->status == ST_AWAITING_APPROVAL))
			CHECK(unmet == 0);
		CHECK(t->status != ST_AWAITING_APPROVAL || t->approval);
		/* a task of the graph's statuses is as its rule judges it (a final
		 * verdict stays: skipped under the default rule, then a failure) */
		if (t->status == ST_WAITING || t->status == ST_READY)
			CHECK(task_verdict(t) == t->status);
		if (t->status == ST_AWAITING_APPROVAL)
			CHECK(task_verdict(t) == ST_READY);
		if (t->status == ST_SKIPPED)
			CHECK(task_verdict(t) == ST_SKIPPED || (!ext_of(t)->trigger && task_verdict(t) == ST_UPSTREAM_FAILED));
		CHECK(t->queued == should_be_queued(t));
		/* what task.unblocked lists is queued or waits out a backoff */
		CHECK((idset_next(&in_backoff, t->id - 1) == t->id) == (ext_of(t)->backoff != NULL));
		in_a_backoff += ext_of(t)->backoff != NULL;
		CHECK(!(t->status == ST_READY && !t->held && t->project->autonomous) || t->queued ||
		      ext_of(t)->backoff);
		if (!colour[t->id])
			CHECK(!cycle_from(t, colour));
	}
	CHECK(in_backoff.count == in_a_backoff);      /* none of a task gone */
	free(colour);
	for (struct pool *pl = pools; pl; pl = pl->next) {
		unsigned used = 0;

		for (size_t i = 0; i < n_tasks; i++)
			for (size_t k = 0; task_at(i) && k < ext_of(task_at(i))->n_pools; k++)
				if (ext_of(task_at(i))->pools[k].pool == pl && status_is_active(task_at(i)->status))
					used += ext_of(task_at(i))->pools[k].weight;
		CHECK(pl->used == used);
	}
}

struct prog {
	const uint8_t *p, *end;
};

static unsigned next(struct prog *g)
{
	return g->p < g->end ? *g->p++ : 0;
}

/* A task, or NULL (none there, or one removed). */
static struct task *pick(struct prog *g)
{
	unsigned b = next(g);

	if (n_tasks <= 1)
		return NULL;
	return task_at(1 + b % (n_tasks - 1));
}

static struct project *pick_project(struct prog *g)
{
	unsigned b = next(g);

	if (n_projects <= 1)
		return NULL;
	return projects[1 + b % (n_projects - 1)];
}

static json_object *id_list(struct prog *g, unsigned n)
{
	json_object *a = json_object_new_array();
	char buf[24];

	for (unsigned i = 0; i < n; i++) {
		struct task *t = pick(g);

		if (t)
			json_object_array_add(a, json_object_new_string(task_id_string(t->id, buf)));
	}
	return a;
}

static void op_add(struct prog *g)
{
	struct project *p = pick_project(g);
	json_object *list = json_object_new_array(), *args = json_object_new_object();
	struct task **made = NULL;
	unsigned b = next(g);

	if (!p) {
		json_object_put(list);
		json_object_put(args);
		return;
	}
	json_object_object_add(args, "title", json_object_new_string("t"));
	if (b & 32)             /* an approval task: no command */
		json_object_object_add(args, "kind", json_object_new_string("approval"));
	else
		json_object_object_add(args, "command", json_object_new_string("true"));
	json_object_object_add(args, "max_retries", json_object_new_int((int) (b & 3)));
	json_object_object_add(args, "retry_backoff", json_object_new_int(0));
	if ((b & 4) && !(b & 32))
		json_object_object_add(args, "validation_command", json_object_new_string("true"));
	if ((b & 64) && !(b & 32)) {    /* in pool "f", size 2 */
		json_object *pl = json_object_new_object();

		json_object_object_add(pl, "f", json_object_new_int(1 + (int) (b >> 7)));
		json_object_object_add(args, "pools", pl);
	}
	json_object_object_add(args, "depends_on", id_list(g, (b >> 3) & 3));
	if (b & 0x60) {
		/* a trigger rule (an expression over its first dependency, if any) */
		static const char *const rules[] = { "all_done", "any_failed", "none_failed" };
		json_object *deps = json_object_object_get(args, "depends_on");
		char expr[64];

		if (json_object_array_length(deps) > 0 && (b & 0x80))
			snprintf(expr, sizeof(expr), "!%s.succeeded || %s.skipped",
				 json_object_get_string(json_object_array_get_idx(deps, 0)),
				 json_object_get_string(json_object_array_get_idx(deps, 0)));
		else
			snprintf(expr, sizeof(expr), "%s", rules[((b >> 5) & 3) - 1]);
		json_object_object_add(args, "trigger", json_object_new_string(expr));
	}
	json_object_array_add(list, args);
	(void) task_create_batch(p, list, false, &made);
	free(made);
	json_object_put(list);
}

static void op_depend(struct prog *g, bool add)
{
	struct task *t = pick(g);
	json_object *on = id_list(g, 1 + (next(g) & 1));

	if (t)
		(void) task_depend(t, on, add);
	json_object_put(on);
}

static void op_report(struct prog *g, bool success)
{
	struct task *t = pick(g);
	json_object *reply = NULL;
	char *text = NULL;

	if (t && t->approval) {         /* an operator decides */
		if (success && task_approve(t, NULL, 0, &reply) >= 0)
			json_object_put(reply);
		else if (!success)
			(void) task_reject(t, "no", 0);
		return;
	}
	if (t && task_report(t, success, NULL, success ? NULL : "failed", &text) >= 0)
		free(text);
}

static void op_project(struct prog *g)
{
	json_object *args = json_object_new_object();
	struct project *p;
	char name[16];

	snprintf(name, sizeof(name), "p%zu", n_projects);
	json_object_object_add(args, "name", json_object_new_string(name));
	json_object_object_add(args, "max_concurrency", json_object_new_int(1 + (int) (next(g) & 3)));
	(void) project_create(args, &p);
	json_object_put(args);
}

static void op_edit(struct prog *g)
{
	static const char *const prio[] = { "critical", "high", "medium", "low" };
	struct task *t = pick(g);
	json_object *args = json_object_new_object(), *changed = NULL;
	unsigned b = next(g);

	json_object_object_add(args, "priority", json_object_new_string(prio[b & 3]));
	json_object_object_add(args, "max_retries", json_object_new_int((int) ((b >> 2) & 3)));
	if (t && task_edit(t, args, b & 32, &changed) >= 0)
		json_object_put(changed);
	json_object_put(args);
}

static void op_rerun(struct prog *g)
{
	struct task *t = pick(g);
	json_object *ids = NULL;
	unsigned b = next(g);

	if (t && task_rerun(t, b & 1, b & 2, &ids) >= 0)
		json_object_put(ids);
}

static void op_clean(struct prog *g)
{
	struct project *p = pick_project(g);
	json_object *removed = NULL, *kept = NULL;

	if (p && project_clean(p, next(g) & 1, &removed, &kept) >= 0) {
		json_object_put(removed);
		json_object_put(kept);
	}
}

static void commit(void)
{
	if (store_commit() < 0)
		abort();
	engine_committed();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct prog g = { data, data + size };
	struct project *p;
	struct task *t;

	if (store_wipe() < 0)
		abort();
	engine_reset();
	op_project(&g);
	{
		json_object *pool = NULL;

		if (pool_set("f", 2, &pool) < 0)
			abort();
		json_object_put(pool);
	}
	commit();
	while (g.p < g.end) {
		switch (next(&g) % 20) {
		case 0:
		case 1:
			op_add(&g);
			break;
		case 2:
			op_depend(&g, true);
			break;
		case 3:
			op_depend(&g, false);
			break;
		case 4:                 /* claim, not spawned yet */
			engine_dispatch();
			break;
		case 5:                 /* spawn the claims: no executor here, so they fail */
			commit();
			(void) engine_spawn_pending();
			break;
		case 6:
			op_report(&g, true);
			break;
		case 7:
			op_report(&g, false);
			break;
		case 8:
			if ((t = pick(&g)))
				(void) task_cancel(t);
			break;
		case 9:
			if ((t = pick(&g)))
				(void) task_retry(t);
			break;
		case 10:
			if ((t = pick(&g)))
				(void) task_start(t);
			break;
		case 11:
			if ((p = pick_project(&g)))
				(void) project_set_autonomous(p, next(&g) & 1);
			break;
		case 12:
			op_project(&g);
			break;
		case 13:                /* a whole turn, as the server ends it */
			server_flush();
			break;
		case 14:
		case 15:
			if ((t = pick(&g)))
				(void) task_hold(t, next(&g) & 1);
			break;
		case 16:
			op_edit(&g);
			break;
		case 17:
			if ((t = pick(&g)))
				(void) task_remove(t);
			break;
		case 18:
			op_clean(&g);
			break;
		case 19:
			op_rerun(&g);
			break;
		}
		commit();
		check();
	}
	engine_free();
	return 0;
}
