/*
 * engine-batch.c - a batch of tasks (task.add, task.add_batch) created all
 * or nothing: each task's arguments checked, the batch's names and
 * dependencies resolved, cycles within it refused, then every task made in
 * its status with its rows and events.
 */
#include <assert.h>
#include <stdio.h>
#include <string.h>

#include "dagd.h"

/* The batch's own names, each with its index in the batch: open
 * addressing, at most half full. */
struct bname {
	const char *name;       /* NULL: a free slot */
	size_t idx;
};

static uint64_t bname_hash(const char *s)
{
	uint64_t h = 14695981039346656037ULL;          /* FNV-1a */

	for (; *s; s++)
		h = (h ^ (unsigned char) *s) * 1099511628211ULL;
	return h;
}

/* The slot of name in bn (cap slots): its own, or the free one it would take. */
static struct bname *bname_slot(struct bname *bn, size_t cap, const char *name)
{
	size_t j = bname_hash(name) & (cap - 1);

	while (bn[j].name && strcmp(bn[j].name, name) != 0)
		j = (j + 1) & (cap - 1);
	return &bn[j];
}

/* A task of the batch, made at the place of the id it will have but not
 * yet in the engine: its project comes when the batch is created (until
 * then task_at() does not find it); name is its (taken). */
static struct task *task_new(uint32_t id, json_object *args, const char *name, bool plain)
{
	struct task *t = task_alloc(id);
	const char *s;
	json_object *o;
	bool finally;
	uint64_t u;
	int64_t i;

	task_def_new(t);
	t->priority = PRIO_MEDIUM;
	task_name_set(t, name);
	(void) arg_string(args, "title", &s);
	task_def(t)->title = xstrdup(s);
	json_object_object_get_ex(args, "command", &o);
	task_def(t)->command = xstrdup(json_text(o));
	task_def(t)->at[AT_CREATED] = task_def_held(t)->at[AT_UPDATED] = task_def_held(t)->at[AT_STATUS_CHANGED] = now_usec();
	t->status = ST_WAITING;
	if (plain) {
		task_def(t)->env = xstrdup("{}");
		task_def(t)->executor_options = xstrdup("{}");
		return t;
	}
	task_def(t)->env = xstrdup(arg_object(args, "env", &o) == 0 ? json_text(o) : "{}");
	if (arg_string(args, "cwd", &s) == 0)
		task_def(t)->cwd = xstrdup(s);
	if (arg_string(args, "executor", &s) == 0)
		task_ext(t)->executor = xstrdup(s);
	task_def(t)->executor_options = xstrdup(arg_object(args, "executor_options", &o) == 0 ? json_text(o) : "{}");
	if (arg_string(args, "priority", &s) == 0)
		t->priority = priority_from_string(s);
	/* an option given as its default makes no extension */
	if (arg_seconds(args, "timeout", &u) == 0 && u != ext_of(t)->timeout_usec)
		task_ext(t)->timeout_usec = u;
	if (arg_seconds(args, "retry_backoff", &u) == 0 && u != ext_of(t)->backoff_usec)
		task_ext(t)->backoff_usec = u;
	if (arg_int(args, "max_retries", 0, 1000, &i) == 0 && (unsigned) i != ext_of(t)->max_retries)
		task_ext(t)->max_retries = (unsigned) i;
	if (arg_string(args, "validation_command", &s) == 0)
		task_ext(t)->validation_command = xstrdup(s);
	attempts_from_args(t, args);
	if (arg_bool(args, "finally", &finally) == 0)
		t->finally = finally;
	(void) task_trigger_set(t, t->finally ? "all_done" : arg_string(args, "trigger", &s) == 0 ? s : NULL);
	return t;
}

/* One task of a batch, validated. */
struct newtask {
	struct task *t;         /* made, not yet in the engine */
	bool options;           /* its executor or options: checked once its project exists */
	size_t given_at;        /* its depends_on, as given: n_given strings in the batch's text */
	size_t n_given;
	char *map_over;         /* as given, or NULL */
	int64_t *deps;          /* >= 0: index into the batch; < 0: -(existing task id) */
	size_t n_deps;
	size_t map_dep;         /* map_over: which of deps */
	bool mapped;
	unsigned indegree;
	bool finally;           /* depends on every other task of the batch but the finally ones */
};

/* A batch checked, to be created. */
struct batch {
	const struct batch_src *src;
	bool batch;             /* task.add_batch, not task.add */
	bool checked_alone;     /* checked without its project (about to be created) */
	size_t n;
	int64_t first_id;       /* the id its first task will have */
	struct newtask *nt;
	const char **names;     /* each task's name, or NULL: what trigger rules may name */
	char *text;             /* the depends_on strings, each ending in '\0' */
	size_t text_len, text_cap;
};

int batch_get(const struct batch_src *src, size_t i, json_object **ret)
{
	if (src->list) {
		*ret = json_object_get(json_object_array_get_idx(src->list, i));
		return 0;
	}
	/* checked with the line, but for a key twice in it (a short line's
	 * refusal, said when the task is read) */
	return json_parse_strict(src->text + src->spans[i].off, src->spans[i].len, ret);
}

size_t batch_size(const struct batch_src *src)
{
	return src->list ? json_object_array_length(src->list) : src->n;
}

/* r, its message saying which task of a batch it is about: "tasks[2]
 * ('b'): ...", as args_check() names them. */
static int batch_error(const struct batch *b, size_t i, const char *name, int r)
{
	_cleanup_free_ char *msg = xstrdup(last_error());

	if (!b->batch)
		return r;
	if (name)
		return errorf(r, "tasks[%zu] ('%.*s'): %s", i, utf8_prefix(name, 64), name, msg);
	return errorf(r, "tasks[%zu]: %s", i, msg);
}

void batch_free(struct batch *b)
{
	if (!b)
		return;
	for (size_t i = 0; i < b->n; i++) {
		free(b->nt[i].deps);
		free(b->nt[i].map_over);
		task_free(b->nt[i].t);
	}
	free(b->nt);
	free(b->names);
	free(b->text);
	free(b);
}

static void keep_text(struct batch *b, const char *s)
{
	size_t n = strlen(s) + 1;

	if (b->text_len + n > b->text_cap) {
		b->text_cap = b->text_cap ? 2 * b->text_cap : 4096;
		while (b->text_len + n > b->text_cap)
			b->text_cap *= 2;
		b->text = xrealloc(b->text, b->text_cap);
	}
	memcpy(b->text + b->text_len, s, n);
	b->text_len += n;
}

/* Task i checked, what its dependencies are to be resolved with kept, and
 * the task made (not yet in the engine); known: the arguments a task may
 * have (NULL: checked already). */
static int check_one(struct batch *b, size_t i, json_object *args, struct project *p, const char *executor,
		     const char *const *known, struct bname *bn, size_t cap)
{
	struct newtask *nt = &b->nt[i];
	json_object *deps = NULL;
	const char *name = NULL, *s;
	bool plain = json_object_is_type(args, json_type_object) && task_args_plain(args);
	int64_t mc;
	int r;

	(void) arg_string(args, "name", &name);
	if (known && json_object_is_type(args, json_type_object) && args_check(args, known, "") < 0) {
		char what[96];

		/* again, to say which task (the message only: a task is checked
		 * by the thousand, refused rarely) */
		if (name)
			snprintf(what, sizeof(what), "tasks[%zu] ('%.*s')", i, utf8_prefix(name, 64), name);
		else
			snprintf(what, sizeof(what), "tasks[%zu]", i);
		return args_check(args, known, what);   /* (named already) */
	}
	r = check_task_args(p, args, b->batch);
	if (r >= 0 && !plain)
		r = task_check_cwd(args, p ? p->executor : executor);
	if (r >= 0 && name && (p ? names_get(&p->names, name) : NULL))
		r = errorf(-EEXIST, "a task named '%s' exists already in this project", name);
	if (r < 0)
		return batch_error(b, i, name, r);
	if (name && bname_slot(bn, cap, name)->name)
		return errorf(-EINVAL, "two tasks of the batch are named '%s'", name);
	if (!plain)
		(void) arg_bool(args, "finally", &nt->finally);
	if (nt->finally && !b->batch)
		return errorf(-EINVAL, "'finally' is for a task of a batch (task.add_batch, dagctl apply): "
			      "it runs once every other task of the batch finished");
	(void) arg_array(args, "depends_on", &deps);
	nt->given_at = b->text_len;
	nt->n_given = deps ? json_object_array_length(deps) : 0;
	for (size_t k = 0; k < nt->n_given; k++) {
		json_object *v = json_object_array_get_idx(deps, k);

		if (!json_object_is_type(v, json_type_string))
			return batch_error(b, i, name, errorf(-EINVAL, "'depends_on' must be an array of task ids%s",
							       b->batch ? " or names" : ""));
		keep_text(b, json_object_get_string(v));
	}
	nt->deps = calloc(nt->n_given + (nt->finally ? b->n : 0) + 1, sizeof(int64_t));
	if (!nt->deps)
		abort();
	nt->options = !plain && !p && (json_object_object_get_ex(args, "executor", NULL) ||
				       json_object_object_get_ex(args, "executor_options", NULL));
	if (!plain && arg_string(args, "map_over", &s) == 0)
		nt->map_over = xstrdup(s);
	nt->t = task_new((uint32_t) (b->first_id + (int64_t) i), args, name, plain);
	if (!plain && arg_int(args, "map_concurrency", 1, 1000000, &mc) == 0)
		task_ext(nt->t)->map_concurrency = (unsigned) mc;
	if (name) {
		b->names[i] = task_name(nt->t);
		*bname_slot(bn, cap, name) = (struct bname) { task_name(nt->t), i };
	}
	return 0;
}

/* Task i's dependencies resolved, now that every name of the batch is known. */
static int resolve(struct batch *b, size_t i, struct project *p, struct bname *bn, size_t cap)
{
	struct newtask *nt = b->nt;
	_cleanup_free_ const char **given = NULL, **names = NULL;
	_cleanup_free_ int64_t *ids = NULL;
	const char *s = nt[i].n_given ? b->text + nt[i].given_at : NULL;
	int r;

	given = xrealloc(NULL, (nt[i].n_given + 1) * sizeof(*given));
	for (size_t k = 0; k < nt[i].n_given; k++, s += strlen(s) + 1) {
		struct bname *hit = b->batch ? bname_slot(bn, cap, s) : NULL;
		struct task *on;

		given[k] = s;
		if (hit && hit->name) {
			if (hit->idx == i)
				return errorf(-EINVAL, "task '%s' cannot depend on itself", s);
			if (nt[hit->idx].finally)
				return errorf(-EINVAL, "task '%s' is a finally task: no task of its batch can depend on it", s);
			nt[i].deps[k] = (int64_t) hit->idx;
			nt[hit->idx].indegree++;
			continue;
		}
		on = task_find(s);
		if (!on && b->batch)
			on = (p ? names_get(&p->names, s) : NULL);
		if (!on)
			return errorf(-ENOENT, "no task '%s'%s", s, b->batch ? " in this project or batch" : "");
		if (on->project != p)
			return errorf(-EINVAL, "task %s is in another project; dependencies stay within one project", s);
		nt[i].deps[k] = -(int64_t) on->id;
	}
	nt[i].n_deps = nt[i].n_given;
	/* a finally task: after every other task of the batch, whatever happened */
	for (size_t j = 0; nt[i].finally && j < b->n; j++)
		if (j != i && !nt[j].finally) {
			nt[i].deps[nt[i].n_deps++] = (int64_t) j;
			nt[j].indegree++;
		}
	if ((r = trigger_check_names(ext_of(nt[i].t)->trigger, nt[i].deps, nt[i].n_deps, b->names)) < 0)
		return r;
	if (!nt[i].map_over)
		return 0;
	/* (what map_over may name: the dependencies, finally's too; an
	 * existing one's name is read from its definition) */
	names = xrealloc(NULL, (nt[i].n_deps + 1) * sizeof(*names));
	ids = xrealloc(NULL, (nt[i].n_deps + 1) * sizeof(*ids));
	for (size_t k = 0; k < nt[i].n_deps; k++) {
		int64_t dk = nt[i].deps[k];

		names[k] = dk >= 0 ? b->names[dk] : task_name(task_at(-dk));
		ids[k] = dk >= 0 ? 0 : task_at(-dk)->id;
	}
	if ((r = map_find_dep(nt[i].map_over, given, nt[i].n_given, names, ids, &nt[i].map_dep)) < 0)
		return r;
	nt[i].mapped = true;
	return 0;
}

/* Kahn: a batch only adds edges among its own tasks and towards existing
 * ones, so a cycle can only be within the batch. */
static bool acyclic(const struct batch *b)
{
	size_t *queue = calloc(b->n, sizeof(*queue)), head = 0, tail = 0;
	unsigned *indeg = calloc(b->n, sizeof(*indeg));

	if (!queue || !indeg)
		abort();
	for (size_t i = 0; i < b->n; i++)
		if ((indeg[i] = b->nt[i].indegree) == 0)
			queue[tail++] = i;
	while (head < tail) {
		size_t i = queue[head++];

		for (size_t k = 0; k < b->nt[i].n_deps; k++)
			if (b->nt[i].deps[k] >= 0 && --indeg[b->nt[i].deps[k]] == 0)
				queue[tail++] = (size_t) b->nt[i].deps[k];
	}
	free(indeg);
	free(queue);
	return head == b->n;
}

/* Each task's arguments are read once, one task at a time: checked, the
 * task made, what its dependencies say kept to be resolved once every name
 * of the batch is known. */
int batch_check(struct project *p, const char *executor, const struct batch_src *src, bool batch,
		const char *const *known, struct batch **ret)
{
	size_t n = batch_size(src), cap = 16;
	struct batch *b;
	struct bname *bn;
	int r = 0;

	if (n == 0)
		return errorf(-EINVAL, "no tasks given");
	if ((r = tasks_reserve(n)) < 0)
		return r;
	while (cap < 2 * n)
		cap *= 2;
	b = calloc(1, sizeof(*b));
	bn = calloc(cap, sizeof(*bn));
	if (!b || !bn)
		abort();
	*b = (struct batch) { .src = src, .batch = batch, .checked_alone = !p, .n = n, .first_id = next_task_id,
			      .nt = calloc(n, sizeof(*b->nt)), .names = calloc(n, sizeof(*b->names)) };
	if (!b->nt || !b->names)
		abort();
	for (size_t i = 0; r >= 0 && i < n; i++) {
		_cleanup_json_ json_object *args = NULL;

		r = batch_get(src, i, &args);
		if (r >= 0)
			r = check_one(b, i, args, p, executor, known, bn, cap);
	}
	for (size_t i = 0; r >= 0 && i < n; i++)
		if ((r = resolve(b, i, p, bn, cap)) < 0)
			r = batch_error(b, i, b->names[i], r);
	if (r >= 0 && !acyclic(b))
		r = errorf(-EINVAL, "the dependencies of the batch form a cycle");
	free(bn);
	if (r < 0) {
		batch_free(b);
		return r;
	}
	*ret = b;
	return 0;
}

int batch_create(struct batch *b, struct project *p, struct task ***ret_made)
{
	struct newtask *nt = b->nt;
	size_t n = b->n;
	struct task **made;
	int r;

	/* what needs the project: checked once it exists */
	for (size_t i = 0; b->checked_alone && i < n; i++)
		if (nt[i].options) {
			_cleanup_json_ json_object *args = NULL;

			if ((r = batch_get(b->src, i, &args)) < 0)
				return r;
			if ((r = task_check_options(p, args)) < 0)
				return batch_error(b, i, b->names[i], r);
		}
	assert(next_task_id == b->first_id);    /* no task was made since the check */
	made = calloc(n, sizeof(*made));
	if (!made)
		abort();
	for (size_t i = 0; i < n; i++) {
		struct task *t = made[i] = TAKE_PTR(nt[i].t);

		next_task_id++;
		t->project = p;
		names_add(&p->names, t);
		member_add(t);
	}
	for (size_t i = 0; i < n; i++) {
		struct task *t = made[i];

		for (size_t k = 0; k < nt[i].n_deps; k++) {
			struct task *on = nt[i].deps[k] >= 0 ? made[nt[i].deps[k]] : task_at(-nt[i].deps[k]);

			if (!task_depends_on(t, on))
				add_edge(t, on, false);
			if (nt[i].mapped && k == nt[i].map_dep)
				task_ext(t)->map_over = on->id;
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
			task_def_held(t)->at[AT_FINISHED] = task_def_held(t)->at[AT_CREATED];      /* new: its definition is in memory */
	}
	(void) store_tasks_insert(made, n);     /* one row each, in its status: no update after */
	for (size_t i = 0; i < n; i++) {
		struct task *t = made[i];

		if (ext_of(t)->trigger || t->finally)
			(void) store_task_trigger(t);
		if (attempts_row_wanted(t))
			(void) store_attempts_save(t);
		queue_sync(t);
		task_created_event(t);
		if (t->status == ST_AWAITING_APPROVAL)
			approval_enter(t);
	}
	for (size_t i = 0; i < n; i++)
		for (size_t k = 0; k < task_n_deps(made[i]); k++)
			(void) store_dep_insert(made[i]->id, task_deps(made[i])[k]->id);
	for (size_t i = 0; i < n; i++)
		task_born(made[i]);
	for (size_t i = 0; i < n; i++)
		map_created(made[i]);
	*ret_made = made;
	return 0;
}

int task_create_batch(struct project *p, json_object *list, bool batch, struct task ***ret_made)
{
	struct batch_src src = { .list = list };
	struct batch *b = NULL;
	int r;

	r = batch_check(p, NULL, &src, batch, NULL, &b);
	if (r >= 0 && p)
		r = batch_create(b, p, ret_made);
	batch_free(b);
	return r;
}
