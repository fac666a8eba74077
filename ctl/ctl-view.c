/*
 * ctl-view.c - one project's state, as board, wait and graph see it: taken
 * once (project.get, task.list), then, for those that follow it, kept up to
 * date by the project's events.  A view opens its subscription before it
 * takes the state, so no change falls between the two; events that the state
 * already holds are applied again, which changes nothing in the end.  After a
 * reconnection the subscription resumes after the last event seen.
 */
#include <string.h>

#include "dagctl.h"

static const char *const view_types[] = {
	"TASK_CREATED", "TASK_STATUS_CHANGED", "TASK_FAILED", "TASK_UPDATED", "TASK_REMOVED",
	"TASK_PAUSED", "TASK_RESUMED", "PROJECT_UPDATED", "PROJECT_DELETED", "AUTONOMOUS_MODE_CHANGED", NULL
};

bool status_finished(const char *status) {
	static const char *const finished[] = { "completed", "failed", "upstream_failed", "cancelled", "skipped", NULL };

	for (const char *const *s = finished; *s; s++)
		if (strcmp(status, *s) == 0)
			return true;
	return false;
}

/* N of a task's id "t-N", for ordering; 0 if it has no such id. */
int64_t task_number(json_object *task) {
	const char *id = ctl_str(task, "id");

	return strncmp(id, "t-", 2) == 0 ? strtoll(id + 2, NULL, 10) : 0;
}

static int by_number(const void *a, const void *b) {
	int64_t x = task_number(*(json_object *const *) a), y = task_number(*(json_object *const *) b);

	return (x > y) - (x < y);
}

/* The tasks in the order of their ids, in an array to free (the tasks are
 * borrowed); NULL if there are none or no memory. */
json_object **view_sorted(struct view *v, size_t *ret_n) {
	size_t n = 0;
	json_object **ts;

	*ret_n = 0;
	if (!v->tasks || json_object_object_length(v->tasks) == 0)
		return NULL;
	ts = calloc(json_object_object_length(v->tasks), sizeof *ts);
	if (!ts)
		return NULL;
	json_object_object_foreach(v->tasks, id, t) {
		(void) id;
		ts[n++] = t;
	}
	qsort(ts, n, sizeof *ts, by_number);
	*ret_n = n;
	return ts;
}

/* Takes the project and its tasks as they are now. */
int view_load(struct ctl *c, struct view *v) {
	_cleanup_(json_object_putp) json_object *args = json_object_new_object(), *pr = NULL,
		*tr = NULL, *tasks = json_object_new_object();
	json_object *p, *list;
	int r;

	if (!args || !tasks)
		return -ENOMEM;
	json_object_object_add(args, "project", json_object_new_string(v->project));
	r = ctl_call(c, "project.get", args, &pr);
	if (r < 0)
		return r;
	p = ctl_expect(pr, "project", json_type_object);
	if (!p || !ctl_expect(p, "id", json_type_string))
		return -EBADMSG;
	/* the id names it even if it is renamed */
	json_object_object_add(args, "project", json_object_new_string(ctl_str(p, "id")));
	r = ctl_call(c, "task.list", args, &tr);
	if (r < 0)
		return r;
	list = ctl_expect(tr, "tasks", json_type_array);
	if (!list)
		return -EBADMSG;
	for (size_t i = 0; i < json_object_array_length(list); i++) {
		json_object *t = json_object_array_get_idx(list, i);

		if (!ctl_get(t, "id", json_type_string) || !ctl_get(t, "status", json_type_string))
			return ctl_bad_reply("a task without an id or a status");
		json_object_object_add(tasks, ctl_str(t, "id"), json_object_get(t));
	}
	free(v->project);
	v->project = strdup(ctl_str(p, "id"));
	if (!v->project)
		return -ENOMEM;
	json_object_put(v->p);
	v->p = json_object_get(p);
	json_object_put(v->tasks);
	v->tasks = TAKE_PTR(tasks);
	v->deleted = false;
	return 0;
}

/* Subscribes to the project's events (after the last one seen, if any), then
 * takes its state: the open() of ctl_follow() for a struct view. */
int view_open(struct ctl *c, void *view) {
	struct view *v = view;
	_cleanup_(json_object_putp) json_object *args = json_object_new_object(), *result = NULL,
		*types = json_object_new_array();
	json_object *last;
	int r;

	if (!args || !types)
		return -ENOMEM;
	for (const char *const *t = view_types; *t; t++)
		json_object_array_add(types, json_object_new_string(*t));
	json_object_object_add(args, "project", json_object_new_string(v->project));
	json_object_object_add(args, "types", TAKE_PTR(types));
	json_object_object_add(args, "follow", json_object_new_boolean(true));
	if (v->seq >= 0)
		json_object_object_add(args, "since", json_object_new_int64(v->seq));
	r = ctl_call(c, "events.subscribe", args, &result);
	if (r < 0)
		return r;
	last = ctl_expect(result, "last_seq", json_type_int);
	if (!last)
		return -EBADMSG;
	if (v->seq < 0)
		v->seq = json_object_get_int64(last);
	return view_load(c, v);
}

/* Takes id out of a task's list of ids (NULL: none). */
static void forget_id(json_object *ids, const char *id) {
	for (size_t i = ids ? json_object_array_length(ids) : 0; i > 0; i--)
		if (strcmp(json_object_get_string(json_object_array_get_idx(ids, i - 1)) ?: "", id) == 0)
			json_object_array_del_idx(ids, i - 1, 1);
}

/* Applies a line of the subscription; true if it changed the view. */
bool view_apply(struct view *v, json_object *line) {
	json_object *ev = ctl_get(line, "event", json_type_object),
		*seq = ctl_get(ev, "seq", json_type_int),
		*payload = ctl_get(ev, "payload", json_type_object), *t, *o;
	const char *type = ctl_str(ev, "type");

	if (!seq || !payload || json_object_get_int64(seq) <= v->seq)
		return false;
	v->seq = json_object_get_int64(seq);
	if (!v->tasks)
		return false;
	if (strcmp(type, "TASK_CREATED") == 0) {
		t = ctl_get(payload, "task", json_type_object);
		if (!t || !ctl_get(t, "id", json_type_string) || !ctl_get(t, "status", json_type_string) ||
		    json_object_object_get_ex(v->tasks, ctl_str(t, "id"), NULL))
			return false;
		json_object_object_add(v->tasks, ctl_str(t, "id"), json_object_get(t));
	} else if (strcmp(type, "TASK_STATUS_CHANGED") == 0) {
		t = ctl_get(v->tasks, ctl_str(payload, "task_id"), json_type_object);
		o = ctl_get(payload, "new_status", json_type_string);
		if (!t || !o)
			return false;
		json_object_object_add(t, "status", json_object_get(o));
		json_object_object_del(t, "not_before");        /* a retry's, if any, comes next */
		if ((o = ctl_get(payload, "attempt", json_type_int)))
			json_object_object_add(t, "attempt", json_object_get(o));
		if ((o = ctl_get(ev, "time", json_type_string)))
			json_object_object_add(t, "status_changed_at", json_object_get(o));
	} else if (strcmp(type, "TASK_FAILED") == 0) {
		/* a retry to come after a backoff: when */
		t = ctl_get(v->tasks, ctl_str(payload, "task_id"), json_type_object);
		o = ctl_get(payload, "retry_at", json_type_string);
		if (!t || !o)
			return false;
		json_object_object_add(t, "not_before", json_object_get(o));
	} else if (strcmp(type, "TASK_PAUSED") == 0 || strcmp(type, "TASK_RESUMED") == 0) {
		t = ctl_get(v->tasks, ctl_str(payload, "task_id"), json_type_object);
		if (!t)
			return false;
		json_object_object_add(t, "paused", json_object_new_boolean(strcmp(type, "TASK_PAUSED") == 0));
	} else if (strcmp(type, "TASK_UPDATED") == 0) {
		/* held, released or edited: the task as it is now */
		t = ctl_get(payload, "task", json_type_object);
		if (!t || !ctl_get(t, "status", json_type_string) ||
		    !json_object_object_get_ex(v->tasks, ctl_str(payload, "task_id"), NULL))
			return false;
		json_object_object_add(v->tasks, ctl_str(payload, "task_id"), json_object_get(t));
	} else if (strcmp(type, "TASK_REMOVED") == 0) {
		const char *id = ctl_str(payload, "task_id");

		if (!json_object_object_get_ex(v->tasks, id, NULL))
			return false;
		json_object_object_foreach(v->tasks, k, other) {
			(void) k;
			forget_id(ctl_get(other, "depends_on", json_type_array), id);
			forget_id(ctl_get(other, "dependents", json_type_array), id);
		}
		json_object_object_del(v->tasks, id);
	} else if (strcmp(type, "PROJECT_UPDATED") == 0) {
		o = ctl_get(payload, "project", json_type_object);
		if (!o)
			return false;
		json_object_put(v->p);
		v->p = json_object_get(o);
	} else if (strcmp(type, "AUTONOMOUS_MODE_CHANGED") == 0) {
		o = ctl_get(payload, "enabled", json_type_boolean);
		if (!o || !v->p)
			return false;
		json_object_object_add(v->p, "autonomous_execution_enabled", json_object_get(o));
	} else if (strcmp(type, "PROJECT_DELETED") == 0)
		v->deleted = true;
	else
		return false;
	return true;
}

void view_done(struct view *v) {
	free(TAKE_PTR(v->project));
	json_object_put(TAKE_PTR(v->p));
	json_object_put(TAKE_PTR(v->tasks));
}
