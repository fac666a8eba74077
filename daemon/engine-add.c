/*
 * engine-add.c - adding tasks and edges: a task's arguments checked, edges
 * made and taken away, cycles refused (task.add, task.depend,
 * task.undepend).  A batch of tasks created all or nothing is in
 * engine-batch.c.
 */
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/random.h>
#include <unistd.h>

#include "dagd.h"

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
		for (size_t i = 0; i < task_n_deps(t); i++) {
			if (n == cap)
				stack = xrealloc(stack, (cap *= 2) * sizeof(*stack));
			stack[n++] = task_deps(t)[i];
		}
	}
	free(stack);
	return found;
}

/* The edge sets, by place: a free place is NULL, and listed in free_places. */
struct edges **edge_sets;
static uint32_t n_edge_sets, edge_sets_cap;
static uint32_t *free_places;
static uint32_t n_free_places, free_places_cap;

/* A place for e; its number + 1. */
uint32_t edges_place(struct edges *e)
{
	uint32_t i;

	if (n_free_places > 0)
		i = free_places[--n_free_places];
	else {
		if (n_edge_sets == edge_sets_cap) {
			edge_sets_cap = edge_sets_cap ? 2 * edge_sets_cap : 64;
			edge_sets = xrealloc(edge_sets, edge_sets_cap * sizeof(*edge_sets));
		}
		i = n_edge_sets++;
	}
	edge_sets[i] = e;
	return i + 1;
}

/* t's edges gone, memory and place. */
void edges_free(struct task *t)
{
	if (!t->edges)
		return;
	free(edge_sets[t->edges - 1]);
	edge_sets[t->edges - 1] = NULL;
	if (n_free_places == free_places_cap) {
		free_places_cap = free_places_cap ? 2 * free_places_cap : 64;
		free_places = xrealloc(free_places, free_places_cap * sizeof(*free_places));
	}
	free_places[n_free_places++] = t->edges - 1;
	t->edges = 0;
}

/* The places, once every task's edges are gone (engine_free()). */
void edge_sets_free(void)
{
	free(edge_sets);
	free(free_places);
	edge_sets = NULL;
	free_places = NULL;
	n_edge_sets = edge_sets_cap = n_free_places = free_places_cap = 0;
}

/* Room in t's edges for one more. */
static struct edges *edges_room(struct task *t)
{
	struct edges *e = task_edges(t);
	uint32_t n = e ? e->n_deps + e->n_rdeps : 0;

	if (!e || n == e->cap) {
		uint32_t cap = e ? 2 * e->cap : 2;

		e = xrealloc(e, sizeof(*e) + cap * sizeof(e->e[0]));
		e->cap = cap;
		if (!t->edges) {
			e->n_deps = e->n_rdeps = 0;
			t->edges = edges_place(e);
		} else
			edge_sets[t->edges - 1] = e;
	}
	return e;
}

/* The edge t -> on in memory: on among t's dependencies (before its
 * dependents, which move up one), t among on's dependents. */
void edge_link(struct task *t, struct task *on)
{
	struct edges *e = edges_room(t);

	memmove(e->e + e->n_deps + 1, e->e + e->n_deps, e->n_rdeps * sizeof(e->e[0]));
	e->e[e->n_deps++] = on;
	e = edges_room(on);
	e->e[e->n_deps + e->n_rdeps++] = t;
}

/* x out of t's dependencies, or its dependents; the block goes with the last. */
static void edge_unlink(struct task *t, bool dependents, struct task *x)
{
	struct edges *e = task_edges(t);
	uint32_t from = dependents ? e->n_deps : 0, n = dependents ? e->n_rdeps : e->n_deps;

	for (uint32_t i = from; i < from + n; i++)
		if (e->e[i] == x) {
			memmove(e->e + i, e->e + i + 1, (e->n_deps + e->n_rdeps - i - 1) * sizeof(e->e[0]));
			if (dependents)
				e->n_rdeps--;
			else
				e->n_deps--;
			break;
		}
	if (e->n_deps + e->n_rdeps == 0)
		edges_free(t);
}

/* The edge t -> on, in memory, and in the store unless the caller stores
 * it (a batch stores its edges once their tasks' rows are in). */
void add_edge(struct task *t, struct task *on, bool store)
{
	edge_link(t, on);
	if (on->status != ST_COMPLETED)
		t->unmet++;
	queue_rekey(on, on->priority, task_n_rdeps(on) - 1);
	if (store)
		(void) store_dep_insert(t->id, on->id);
}

void remove_edge(struct task *t, struct task *on)
{
	edge_unlink(t, false, on);
	edge_unlink(on, true, t);
	if (on->status != ST_COMPLETED && t->unmet > 0)
		t->unmet--;
	queue_rekey(on, on->priority, task_n_rdeps(on) + 1);
	(void) store_dep_delete(t->id, on->id);
}

bool task_depends_on(const struct task *t, const struct task *on)
{
	for (size_t i = 0; i < task_n_deps(t); i++)
		if (task_deps(t)[i] == on)
			return true;
	return false;
}

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

/* The options of the executor that is to run the task, given its
 * project's: checked by the executor if the task has its own. */
int task_check_options(const struct project *p, json_object *args)
{
	const char *executor;
	json_object *o = NULL;
	int r;

	if (arg_string(args, "executor", &executor) < 0)
		executor = p->executor;
	r = arg_object(args, "executor_options", &o);
	if (r < 0 && r != -ENOENT)
		return r;
	if (r < 0 && strcmp(executor, p->executor) == 0)
		return 0;
	return check_options(executor, strcmp(executor, p->executor) == 0 ? p->executor_options : NULL,
			     r == 0 ? o : NULL);
}

/* Does the task give nothing but a name, title, command and dependencies
 * (as most of a big batch does)?  Then the twenty other arguments are not
 * each looked up to be found absent. */
bool task_args_plain(json_object *args)
{
	json_object_object_foreach(args, k, v) {
		(void) v;
		if (strcmp(k, "name") != 0 && strcmp(k, "title") != 0 && strcmp(k, "command") != 0 &&
		    strcmp(k, "depends_on") != 0)
			return false;
	}
	return true;
}

int check_task_args(const struct project *p, json_object *args, bool need_name)
{
	const char *s, *executor;
	json_object *o;
	uint64_t u;
	int64_t i;
	bool plain;
	int r;

	if (!json_object_is_type(args, json_type_object))
		return errorf(-EINVAL, "each task must be an object");
	plain = task_args_plain(args);
	r = arg_required(arg_string(args, "title", &s), "title");
	if (r < 0)
		return r;
	if (!*s || strlen(s) > 1024)
		return errorf(-EINVAL, "argument 'title' must be 1-1024 characters");
	r = plain ? 0 : attempts_check_args(args);      /* kind, retry rules, pools */
	if (r < 0)
		return r;
	r = check_command(args, "command", plain || !attempts_is_approval(args));
	if (r < 0)
		return r;
	r = arg_string(args, "name", &s);
	if (r == -ENOENT && need_name)
		return errorf(-EINVAL, "each task of a batch needs a 'name'");
	if (r == 0 && (!valid_name(s, 128) || parse_id(s, 't') > 0))
		return errorf(-EINVAL, "task name '%s' must be 1-128 of A-Z a-z 0-9 . _ - and not look like a task id", s);
	if (r < 0 && r != -ENOENT)
		return r;
	if (plain) {
		if ((r = arg_array(args, "depends_on", &o)) < 0 && r != -ENOENT)
			return r;
		return map_check_args(args);    /* the command's templates */
	}
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
	if ((r = arg_object(args, "executor_options", &o)) < 0 && r != -ENOENT)
		return r;
	/* a batch's project that does not exist yet: checked once it does */
	if (p && (r = task_check_options(p, args)) < 0)
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
	if ((r = check_trigger_arg(args)) < 0)
		return r;
	return map_check_args(args);
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
	if (add && t->status != ST_WAITING && t->status != ST_READY && t->status != ST_UPSTREAM_FAILED &&
	    t->status != ST_SKIPPED) {
		r = errorf(-EBUSY, "task %s is %s; dependencies can only be added before it runs",
			 task_id_string(t->id, id), status_to_string(t->status));
		goto out;
	}
	if (!add && ext_of(t)->trigger && t->status != ST_WAITING && t->status != ST_READY && t->status != ST_SKIPPED) {
		r = errorf(-EBUSY, "task %s is %s; the dependencies its trigger rule judged stay", task_id_string(t->id, id),
			   status_to_string(t->status));
		goto out;
	}
	if ((t->status == ST_UPSTREAM_FAILED || t->status == ST_SKIPPED) && (r = trigger_check_rdeps_idle(t)) < 0)
		goto out;
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
		if (!add && trigger_names(t, list[i])) {
			r = errorf(-EINVAL, "the trigger of %s names %s; change the trigger first (task.edit)",
				   task_id_string(t->id, id), json_object_get_string(v));
			goto out;
		}
		if (add && reaches(list[i], t, ++mark)) {
			r = errorf(-EINVAL, "%s depending on %s would make a cycle", task_id_string(t->id, id),
				 json_object_get_string(v));
			goto out;
		}
	}
	for (size_t i = 0; i < n; i++) {
		if (add == task_depends_on(t, list[i]))
			continue;
		json_object_array_add(add ? added : removed,
				      json_object_new_string(task_id_string(list[i]->id, id)));
		if (add)
			add_edge(t, list[i], true);
		else
			remove_edge(t, list[i]);
	}
	if (json_object_array_length(added) || json_object_array_length(removed)) {
		if (t->status == ST_WAITING || t->status == ST_READY || t->status == ST_UPSTREAM_FAILED ||
		    t->status == ST_SKIPPED)
			task_settle(t, NULL);
		task_save(t);
		o = task_payload(t);
		json_object_object_add(o, "depends_on", ids_to_json(task_deps(t), task_n_deps(t)));
		json_object_object_add(o, "added", json_object_get(added));
		json_object_object_add(o, "removed", json_object_get(removed));
		task_event(t, "TASK_DEPENDENCY_UPDATED", o);
		if (status_is_finished(t->status))
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
