/*
 * engine-batch.c - a batch of tasks (task.add, task.add_batch) created all
 * or nothing: each task's arguments checked, the batch's names and
 * dependencies resolved, cycles within it refused, then every task made in
 * its status with its rows and events.
 */
#include <stdio.h>
#include <string.h>

#include "dagd.h"

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
	size_t map_dep;         /* map_over: which of deps */
	bool mapped;
	unsigned indegree;
	bool finally;           /* depends on every other task of the batch but the finally ones */
};

static struct task *task_new(struct project *p, json_object *args)
{
	struct task *t = calloc(1, sizeof(*t));
	const char *s;
	json_object *o;
	uint64_t u;
	int64_t i;

	if (!t)
		abort();
	task_def_new(t);
	t->id = next_task_id++;
	t->project = p;
	t->heap_idx = -1;
	t->priority = PRIO_MEDIUM;
	t->backoff_usec = USEC_PER_SEC;
	if (arg_string(args, "name", &s) == 0)
		t->name = xstrdup(s);
	(void) arg_string(args, "title", &s);
	task_def(t)->title = xstrdup(s);
	json_object_object_get_ex(args, "command", &o);
	task_def(t)->command = xstrdup(json_text(o));
	task_def(t)->env = xstrdup(arg_object(args, "env", &o) == 0 ? json_text(o) : "{}");
	if (arg_string(args, "cwd", &s) == 0)
		task_def(t)->cwd = xstrdup(s);
	if (arg_string(args, "executor", &s) == 0)
		t->executor = xstrdup(s);
	task_def(t)->executor_options = xstrdup(arg_object(args, "executor_options", &o) == 0 ? json_text(o) : "{}");
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
	attempts_from_args(t, args);
	(void) arg_bool(args, "finally", &t->finally);
	(void) task_trigger_set(t, t->finally ? "all_done" : arg_string(args, "trigger", &s) == 0 ? s : NULL);
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
 * about to be created) and, unless p is NULL, adds them all: *ret_made, the
 * tasks in the list's order (the caller frees the array).  In a batch,
 * depends_on may name tasks of the batch; a cycle is refused. */
int task_create_batch(struct project *p, json_object *list, bool batch, struct task ***ret_made)
{
	size_t n = json_object_array_length(list), done = 0, n_bn = 0;
	struct newtask *nt = calloc(n ? n : 1, sizeof(*nt));
	struct bname *bn = calloc(n ? n : 1, sizeof(*bn));
	struct task **made;
	size_t *queue, at = SIZE_MAX;   /* the task an error is about */
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
		(void) arg_bool(args, "finally", &nt[i].finally);
		if (nt[i].finally && !batch) {
			r = errorf(-EINVAL, "'finally' is for a task of a batch (task.add_batch, dagctl apply): "
				   "it runs once every other task of the batch finished");
			goto fail;
		}
		(void) arg_array(args, "depends_on", &deps);
		nt[i].n_deps = deps ? json_object_array_length(deps) : 0;
		nt[i].deps = calloc(nt[i].n_deps + (nt[i].finally ? n : 0) + 1, sizeof(int));
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
		_cleanup_free_ const char **names = NULL;
		_cleanup_free_ int64_t *ids = NULL;

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
				if (nt[hit->idx].finally) {
					r = errorf(-EINVAL, "task '%s' is a finally task: no task of its batch can depend on it", s);
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
		/* a finally task: after every other task of the batch, whatever happened */
		for (size_t j = 0; nt[i].finally && j < n; j++)
			if (j != i && !nt[j].finally) {
				nt[i].deps[nt[i].n_deps++] = (int) j;
				nt[j].indegree++;
			}
		if ((r = trigger_check_names(nt[i].args, nt[i].deps, nt[i].n_deps, list)) < 0)
			goto fail;
		/* (what map_over may name: the dependencies, finally's too) */
		names = xrealloc(NULL, (nt[i].n_deps + 1) * sizeof(*names));
		ids = xrealloc(NULL, (nt[i].n_deps + 1) * sizeof(*ids));
		for (size_t k = 0; k < nt[i].n_deps; k++) {
			int dk = nt[i].deps[k];

			names[k] = dk >= 0 ? nt[dk].name : tasks[-dk]->name;
			ids[k] = dk >= 0 ? 0 : tasks[-dk]->id;
		}
		if ((r = map_find_dep(nt[i].args, names, ids, &nt[i].map_dep)) < 0 && r != -ENOENT)
			goto fail;
		nt[i].mapped = r >= 0;
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
	tasks_reserve(n);
	for (size_t i = 0; i < n; i++) {
		made[i] = task_new(p, nt[i].args);
		tasks[made[i]->id] = made[i];
		names_add(&p->names, made[i]);
		member_add(made[i]);
	}
	for (size_t i = 0; i < n; i++) {
		struct task *t = made[i];

		for (size_t k = 0; k < nt[i].n_deps; k++) {
			struct task *on = nt[i].deps[k] >= 0 ? made[nt[i].deps[k]] : tasks[-nt[i].deps[k]];

			if (!task_depends_on(t, on))
				add_edge(t, on, false);
			if (nt[i].mapped && k == nt[i].map_dep) {
				int64_t mc;

				t->map_over = on->id;
				if (arg_int(nt[i].args, "map_concurrency", 1, 1000000, &mc) == 0)
					t->map_concurrency = (unsigned) mc;
			}
		}
	}
	/* a task is born in its status once every edge is in (a task of the
	 * batch may depend on one later in the list): no change to announce */
	for (size_t i = 0; i < n; i++) {
		struct task *t = made[i];

		member_del(t);
		t->status = task_verdict(t);
		if (t->status == ST_READY && t->approval)
			t->status = ST_AWAITING_APPROVAL;
		member_add(t);
		if (t->status == ST_SKIPPED)
			t->finished_at = t->created_at;
		(void) store_task_insert(t);    /* one row, in its status: no update after */
		if (t->trigger || t->finally)
			(void) store_task_trigger(t);
		if (attempts_row_wanted(t))
			(void) store_attempts_save(t);
		heap_sync(t);
		task_created_event(t);
		if (t->status == ST_AWAITING_APPROVAL)
			approval_enter(t);
	}
	for (size_t i = 0; i < n; i++)
		for (size_t k = 0; k < made[i]->n_deps; k++)
			(void) store_dep_insert(made[i]->id, made[i]->deps[k]->id);
	for (size_t i = 0; i < n; i++)
		task_born(made[i]);
	for (size_t i = 0; i < n; i++)
		map_created(made[i]);
	newtasks_free(nt, n);
	*ret_made = made;
	return 0;
fail:
	if (batch && at != SIZE_MAX)
		r = batch_error(list, at, r);
	newtasks_free(nt, n);
	free(bn);
	return r;
}

