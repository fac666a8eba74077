/*
 * engine-project.c - projects: names, creation and updates, the autonomous
 * toggle, deletion and "start processing" (project.start).
 */
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/random.h>
#include <unistd.h>

#include "dagd.h"
#include "trigger.h"

bool valid_name(const char *s, size_t max)
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
		json_object_object_add(c, status_to_string(s), json_object_new_int((int) p->counts[s]));
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

int check_executor(const char *name)
{
	struct executor *ex = executor_find(name);

	if (!ex || !ex->vt)
		return errorf(-EINVAL, "no executor '%s' is loaded (see 'dagctl executors')", name);
	return 0;
}

/* Asks the executor whether it takes these options: `base` (JSON text, the
 * project's, or NULL) overlaid by `over` (the task's, or NULL). */
int check_options(const char *executor, const char *base, json_object *over)
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
	for (struct task *t = task_next_in(p, ST_READY, 0); t; t = task_next_in(p, ST_READY, t->id))
		queue_sync(t);
	o = json_object_new_object();
	snprintf(id, sizeof(id), "p-%lld", (long long) p->id);
	json_object_object_add(o, "project_id", json_object_new_string(id));
	json_object_object_add(o, "enabled", json_object_new_boolean(on));
	project_event(p, "AUTONOMOUS_MODE_CHANGED", o);
	dispatch_dirty = true;
	return 0;
}

/* A new task's name, in its definition; the task keeps its hash. */
void task_name_set(struct task *t, const char *name)
{
	task_def_own(task_def(t));
	set_str(&task_def(t)->name, name);
	t->name_hash = name ? names_hash(name) : 0;
}

void task_free(struct task *t)
{
	if (!t)
		return;
	task_unsave(t);
	engine_reservations_forget(t);
	task_def_drop(t);
	task_ext_free(t);
	task_sb_set(t, NULL);           /* the sandbox knows the task by id */
	edges_free(t);
	task_release(t);
}

void project_free(struct project *p)
{
	if (!p)
		return;
	free(p->name);
	free(p->executor);
	free(p->executor_options);
	queues_free(p);
	names_free(&p->names);
	for (int s = 0; s < _ST_MAX; s++)
		idset_free(&p->members[s]);
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
	for (int s = 0; s < _ST_MAX; s++)
		for (struct task *t; (t = task_next_in(p, s, 0));) {
			member_del(t);
			task_free(t);
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

	json_object_object_add(o, "name", task_name(t) ? json_object_new_string(task_name(t)) : NULL);
	json_object_object_add(o, "status", json_object_new_string(status_to_string(t->status)));
	while (task_n_deps(t) > 0)
		remove_edge(t, task_deps(t)[task_n_deps(t) - 1]);
	while (task_n_rdeps(t) > 0)
		remove_edge(task_rdeps(t)[task_n_rdeps(t) - 1], t);
	queue_remove(t);
	for (size_t i = 0; i < n_spawn; i++)
		if (spawn_queue[i] == t)
			spawn_queue[i] = NULL;
	member_del(t);
	if (status_is_active(t->status))
		count_active(t, -1);
	(void) store_task_delete(t->id);
	names_del(&t->project->names, t);
	task_event(t, "TASK_REMOVED", o);
	task_free(t);
}

/* Releases the project's ready tasks; *ret_held (if asked for): the ready
 * ones it leaves because an operator holds them. */
int project_start(struct project *p, json_object **ret_released, json_object **ret_held)
{
	json_object *a = json_object_new_array(), *h = json_object_new_array();
	char id[24];

	for (struct task *t = task_next_in(p, ST_READY, 0); t; t = task_next_in(p, ST_READY, t->id)) {
		if (t->released)
			continue;
		if (t->held) {
			json_object_array_add(h, json_object_new_string(task_id_string(t->id, id)));
			continue;
		}
		t->released = true;
		task_save(t);
		json_object_array_add(a, json_object_new_string(task_id_string(t->id, id)));
	}
	*ret_released = a;
	if (ret_held)
		*ret_held = h;
	else
		json_object_put(h);
	return 0;
}
