/*
 * engine-map.c - fan-out and fan-in.  A task with map_over names one of its
 * dependencies, whose result is a JSON array.  When that dependency
 * completes, the mapped task is expanded, in the same batch (so in the same
 * commit) as that completion: one child per item, named "NAME[i]", with the
 * mapped task's definition, its dependencies, and its item (DAGD_ITEM,
 * {{item}}).  The mapped task then depends on its children: it stays
 * `waiting` and runs no sandbox; once every child completed it completes at
 * once, its result the array of their results in item order.  A child that
 * fails for good fails it.  map_concurrency bounds how many of its children
 * hold a slot at a time (dispatch sets the others aside).
 */
#include <stdio.h>
#include <string.h>

#include "dagd.h"
#include "jw.h"
#include "template.h"

#define RESULT_MAX (256 * 1024)

static struct task *map_parent_of(const struct task *t)
{
	return task_at(ext_of(t)->map_parent);
}

static int check_templates(json_object *args, bool item_allowed)
{
	json_object *v;
	int r;

	if (json_object_object_get_ex(args, "command", &v)) {
		if (json_object_is_type(v, json_type_string)) {
			if ((r = template_check(json_object_get_string(v), item_allowed)) < 0)
				return errorf(r, "argument 'command': %s", last_error());
		} else if (json_object_is_type(v, json_type_array))
			for (size_t i = 0; i < json_object_array_length(v); i++)
				if ((r = template_check(json_object_get_string(json_object_array_get_idx(v, i)),
							item_allowed)) < 0)
					return errorf(r, "argument 'command'[%zu]: %s", i, last_error());
	}
	if (json_object_object_get_ex(args, "env", &v) && json_object_is_type(v, json_type_object)) {
		json_object_object_foreach(v, k, val)
			if ((r = template_check(json_object_get_string(val), item_allowed)) < 0)
				return errorf(r, "env '%s': %s", k, last_error());
	}
	return 0;
}

/* task.add's map_over and map_concurrency, and the templates of the
 * command and env; map_find_dep() checks map_over against depends_on. */
int map_check_args(json_object *args)
{
	const char *s = NULL;
	int64_t n;
	int r;

	r = arg_string(args, "map_over", &s);
	if (r < 0 && r != -ENOENT)
		return errorf(r, "argument 'map_over' must be the name or id of one of the task's dependencies");
	if (r == 0 && !*s)
		return errorf(-EINVAL, "argument 'map_over' must not be empty");
	r = arg_int(args, "map_concurrency", 1, 1000000, &n);
	if (r < 0 && r != -ENOENT)
		return errorf(r, "argument 'map_concurrency' must be an integer from 1 to 1000000");
	if (r == 0 && !s)
		return errorf(-EINVAL, "argument 'map_concurrency' is only for a task with 'map_over'");
	return check_templates(args, s != NULL);
}

/* The index in depends_on (given[], n of them) of what map_over names, as
 * depends_on names it or by the dependency's name or id (names[i], ids[i]:
 * 0 for a task of the batch); -ENOENT without map_over. */
int map_find_dep(const char *map_over, const char *const *given, size_t n, const char *const *names,
		 const int64_t *ids, size_t *ret_idx)
{
	char id[24];

	if (!map_over)
		return -ENOENT;
	for (size_t i = 0; i < n; i++)
		if (strcmp(given[i], map_over) == 0 || (names[i] && strcmp(names[i], map_over) == 0) ||
		    (ids[i] && strcmp(task_id_string(ids[i], id), map_over) == 0)) {
			*ret_idx = i;
			return 0;
		}
	return errorf(-EINVAL, "argument 'map_over': '%s' is not one of the task's dependencies (depends_on)", map_over);
}

static struct task *child_new(struct task *t, size_t i, json_object *item, int64_t now)
{
	struct task *c = task_alloc((uint32_t) next_task_id++);
	struct task_ext *x;
	char id[24];

	task_def_new(c);
	c->project = t->project;
	{
		_cleanup_free_ char *name = xasprintf("%s[%zu]", task_name(t) ? task_name(t) : task_id_string(t->id, id), i);

		task_name_set(c, name);
	}
	task_def(c)->title = xasprintf("%s [%zu]", task_def(t)->title, i);
	task_def(c)->command = xstrdup(task_def(t)->command);
	task_def(c)->env = xstrdup(task_def(t)->env);
	task_def(c)->cwd = task_def(t)->cwd ? xstrdup(task_def(t)->cwd) : NULL;
	task_def(c)->executor_options = xstrdup(task_def(t)->executor_options);
	c->priority = t->priority;
	/* a child has an extension: its map_parent; the rest of it is the
	 * defaults (as a restart loads it: no task_attempts row) but for the
	 * options it shares with its mapped task */
	x = task_ext(c);
	x->executor = xstrdup(ext_of(t)->executor);
	x->timeout_usec = ext_of(t)->timeout_usec;
	x->max_retries = ext_of(t)->max_retries;
	x->backoff_usec = ext_of(t)->backoff_usec;
	x->validation_command = xstrdup(ext_of(t)->validation_command);
	x->map_parent = t->id;
	x->map_index = (unsigned) i;
	c->released = t->released;
	task_def(c)->item = xstrdup(json_object_to_json_string_ext(item, JSON_C_TO_STRING_PLAIN |
								JSON_C_TO_STRING_NOSLASHESCAPE));
	c->status = ST_WAITING;
	task_def(c)->at[AT_CREATED] = task_def_held(c)->at[AT_UPDATED] = task_def_held(c)->at[AT_STATUS_CHANGED] = now;
	return c;
}

static void map_fanin(struct task *t);

/* t's map_over dependency completed: its children, or its failure. */
static void map_expand(struct task *t)
{
	struct task *dep = task_at(ext_of(t)->map_over);
	struct project *p = t->project;
	json_object *list = dep ? json_parse(task_def(dep)->result) : NULL, *o;
	size_t n, n_orig = task_n_deps(t);
	struct task **made;
	int64_t now = now_usec();
	char id[24];

	if (!json_object_is_type(list, json_type_array)) {
		_cleanup_free_ char *msg = xasprintf("map_over: the result of %s%s%s (%s) is %s, not a JSON array",
						     dep && task_name(dep) ? "'" : "", dep && task_name(dep) ? task_name(dep) : "",
						     dep && task_name(dep) ? "'" : "", task_id_string(ext_of(t)->map_over, id),
						     list ? json_type_to_name(json_object_get_type(list)) : "null");
		json_object_put(list);
		task_fail_final(t, "error", msg);
		return;
	}
	n = json_object_array_length(list);
	if (tasks_reserve(n) < 0) {
		_cleanup_free_ char *msg = xasprintf("map_over: %s", last_error());

		json_object_put(list);
		task_fail_final(t, "error", msg);
		return;
	}
	made = calloc(n ? n : 1, sizeof(*made));
	if (!made)
		abort();
	for (size_t i = 0; i < n; i++) {
		struct task *c = made[i] = child_new(t, i, json_object_array_get_idx(list, i), now);

		names_add(&p->names, c);
		member_add(c);
		(void) store_task_insert(c);
		for (size_t k = 0; k < n_orig; k++)
			add_edge(c, task_deps(t)[k], true);
	}
	for (size_t i = 0; i < n; i++)
		add_edge(t, made[i], true);
	task_ext(t)->expanded = true;
	task_ext(t)->map_count = (unsigned) n;
	(void) store_task_map(t);
	for (size_t i = 0; i < n; i++) {
		struct task *c = made[i];

		member_del(c);
		c->status = has_failed_dep(c) ? ST_UPSTREAM_FAILED : c->unmet ? ST_WAITING : ST_READY;
		member_add(c);
		task_save(c);
		(void) store_task_map(c);
		task_created_event(c);
	}
	o = task_payload(t);
	json_object_object_add(o, "count", json_object_new_int((int) n));
	json_object_object_add(o, "children", ids_to_json(made, n));
	task_event(t, "TASK_EXPANDED", o);
	crash_point("expanded");
	free(made);
	json_object_put(list);
	if (t->unmet == 0)
		map_fanin(t);
	else if (t->status != ST_WAITING)
		set_status(t, ST_WAITING);
	else
		task_save(t);
}

/* Every child of t completed: t completes with their results, in order. */
static void map_fanin(struct task *t)
{
	json_object *a = json_object_new_array_ext((int) ext_of(t)->map_count);
	const char *text;

	for (size_t i = 0; i < ext_of(t)->map_count; i++)
		json_object_array_add(a, NULL);
	for (size_t i = 0; i < task_n_deps(t); i++) {
		struct task *c = task_deps(t)[i];

		if (ext_of(c)->map_parent == t->id && ext_of(c)->map_index < ext_of(t)->map_count)
			json_object_array_put_idx(a, ext_of(c)->map_index, json_parse(task_def(c)->result));
	}
	text = json_object_to_json_string_ext(a, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	if (strlen(text) > RESULT_MAX) {
		_cleanup_free_ char *msg = xasprintf("the results of its %u children come to %zu bytes, over the %d KiB a result may have",
						     ext_of(t)->map_count, strlen(text), RESULT_MAX / 1024);
		json_object_put(a);
		task_fail_final(t, "error", msg);
		return;
	}
	set_str(&task_def(t)->result, text);
	json_object_put(a);
	task_succeeded(t, NULL, NULL);
}

/* At load: a task's fan-out, as the store read it. */
int map_loaded(const struct map_row *r)
{
	struct task *t = task_at(r->task_id);
	struct task_ext *x;

	if (!t)
		return 0;
	x = task_ext(t);
	x->map_over = r->map_over;
	x->map_concurrency = r->map_concurrency;
	x->expanded = r->expanded;
	x->map_count = r->map_count;
	x->map_parent = r->map_parent;
	x->map_index = r->map_index;
	return 0;
}

/* A task that was just added: if what it maps over completed already, it
 * is expanded now. */
void map_created(struct task *t)
{
	struct task *dep;

	if (!ext_of(t)->map_over)
		return;
	(void) store_task_map(t);
	dep = task_at(ext_of(t)->map_over);
	if (dep && dep->status == ST_COMPLETED && (t->status == ST_WAITING || t->status == ST_READY))
		map_expand(t);
}

/* One of d's dependencies completed (its unmet count taken down): true when
 * d is a mapped task and the fan-out saw to it (expanded it, completed it
 * with its children's results, or failed it), so it is not to be made ready. */
bool map_dep_completed(struct task *d)
{
	struct task *dep;

	if (!ext_of(d)->map_over)
		return false;
	if (d->status != ST_WAITING)
		return ext_of(d)->expanded;
	if (!ext_of(d)->expanded) {
		dep = task_at(ext_of(d)->map_over);
		if (!dep || dep->status != ST_COMPLETED)
			return false;
		map_expand(d);
		return true;
	}
	if (d->unmet == 0)
		map_fanin(d);
	return true;
}

/* A mapped task claimed for a sandbox (made ready by task.retry): it
 * expands now, completes with its children's results, or waits for them;
 * true if t is a mapped task, which then runs nothing. */
bool map_launch(struct task *t)
{
	struct task *dep;

	if (!ext_of(t)->map_over || !status_is_active(t->status))
		return false;
	if (ext_of(t)->expanded) {
		if (t->unmet == 0)
			map_fanin(t);
		else
			set_status(t, ST_WAITING);
		return true;
	}
	dep = task_at(ext_of(t)->map_over);
	if (dep && dep->status == ST_COMPLETED)
		map_expand(t);
	else
		task_fail_final(t, "error", "map_over: the dependency it maps over has not completed");
	return true;
}

/* child of d failed for good, or was cancelled: d fails with it (its
 * dependents then fail upstream, as the caller sees to). */
bool map_child_failed(struct task *d, struct task *child)
{
	_cleanup_free_ char *msg = NULL;
	json_object *o;

	if (!ext_of(d)->expanded || ext_of(child)->map_parent != d->id ||
	    (child->status != ST_FAILED && child->status != ST_CANCELLED))
		return false;
	msg = xasprintf("item %u (%s) %s: %s", ext_of(child)->map_index, task_name(child),
			child->status == ST_CANCELLED ? "was cancelled" : "failed",
			task_def(child)->error_message ? task_def(child)->error_message : status_to_string(child->status));
	set_str(&task_def(d)->error_message, msg);
	set_status(d, ST_FAILED);
	o = task_payload(d);
	json_object_object_add(o, "error_message", json_object_new_string(msg));
	json_object_object_add(o, "will_retry", json_object_new_boolean(false));
	json_object_object_add(o, "retry_at", NULL);
	json_object_object_add(o, "reason", json_object_new_string("map"));
	task_event(d, "TASK_FAILED", o);
	return true;
}

void map_count_active(struct task *t, int delta)
{
	struct task *p = map_parent_of(t);

	if (p)
		task_ext(p)->map_active += (unsigned) delta;
}

/* A child whose mapped task has as many children holding a slot as its
 * map_concurrency allows. */
bool map_full(const struct task *t)
{
	const struct task *p;

	if (!ext_of(t)->map_parent)
		return false;
	p = map_parent_of(t);
	return p && ext_of(p)->map_concurrency > 0 && ext_of(p)->map_active >= ext_of(p)->map_concurrency;
}

void map_write_json(struct jw *w, const struct task *t)
{
	char id[24];

	if (ext_of(t)->map_over) {
		jw_key(w, "map_over");
		jw_str(w, task_id_string(ext_of(t)->map_over, id));
		jw_key(w, "map_concurrency");
		if (ext_of(t)->map_concurrency)
			jw_int(w, ext_of(t)->map_concurrency);
		else
			jw_raw(w, NULL);
		jw_key(w, "expanded");
		jw_bool(w, ext_of(t)->expanded);
		jw_key(w, "map_count");
		if (ext_of(t)->expanded)
			jw_int(w, ext_of(t)->map_count);
		else
			jw_raw(w, NULL);
	}
	if (ext_of(t)->map_parent) {
		jw_key(w, "map_parent");
		jw_str(w, task_id_string(ext_of(t)->map_parent, id));
		jw_key(w, "map_index");
		jw_int(w, ext_of(t)->map_index);
		jw_key(w, "item");
		jw_raw(w, task_def(t)->item);
	}
}
