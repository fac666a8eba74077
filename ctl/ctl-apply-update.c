/*
 * ctl-apply-update.c - apply to a project that exists: the file's tasks are
 * matched with the project's by name.  Those it lacks are added (one
 * task.add_batch); those that differ are said, field by field, and changed
 * only with --update (task.edit), and only if none of them has started:
 * all is checked before anything changes.  The same file twice is
 * "0 added, N unchanged".
 */
#include <math.h>
#include <string.h>

#include "../daemon/closest.h"
#include "dagctl.h"

/* What a task of the file may say: task.add's arguments, but "project". */
const char *const apply_task_keys[] = {
	"title", "command", "name", "depends_on", "env", "cwd", "executor", "executor_options",
	"priority", "timeout", "max_retries", "retry_backoff", "validation_command",
	"kind", "retry_on_exit", "no_retry_on_exit", "max_lost_retries", "max_retry_duration", "pools",
	"on_timeout", "trigger", "finally", "map_over", "map_concurrency", NULL
};

/* The fields task.edit changes, and each one's value when the file says none. */
static const struct field {
	const char *key;
	const char *absent;     /* JSON text */
	bool number;
} editable[] = {
	{ "title", "null", false },
	{ "command", "null", false },
	{ "priority", "\"medium\"", false },
	{ "timeout", "0", true },
	{ "max_retries", "0", true },
	{ "retry_backoff", "1", true },
	{ "env", "{}", false },
	{ "cwd", "null", false },
	{ "validation_command", "null", false },
	{ "trigger", "\"all_succeeded\"", false },
};

/* "tasks[2] ('b')" */
static const char *task_label(json_object *tasks, size_t i, char buf[static 96]) {
	json_object *name = ctl_get(json_object_array_get_idx(tasks, i), "name", json_type_string);

	if (name)
		snprintf(buf, 96, "tasks[%zu] ('%.40s')", i, json_object_get_string(name));
	else
		snprintf(buf, 96, "tasks[%zu]", i);
	return buf;
}

/* Each task of the file an object with a name and no key a task does not take. */
int apply_check_tasks(const char *path, json_object *tasks) {
	for (size_t i = 0; i < json_object_array_length(tasks); i++) {
		json_object *t = json_object_array_get_idx(tasks, i);
		char label[96];

		if (!json_object_is_type(t, json_type_object)) {
			fprintf(stderr, "dagctl: %s: %s is not an object\n", path, task_label(tasks, i, label));
			return -EINVAL;
		}
		json_object_object_foreach(t, k, v) {
			const char *const *s = apply_task_keys, *like;

			(void) v;
			while (*s && strcmp(*s, k) != 0)
				s++;
			if (*s)
				continue;
			like = closest_name(k, apply_task_keys);
			fprintf(stderr, "dagctl: %s: %s: unknown argument '%s'%s%s%s\n", path,
				task_label(tasks, i, label), k, like ? "; did you mean '" : "", like ?: "",
				like ? "'?" : "");
			return -EINVAL;
		}
		if (!ctl_get(t, "name", json_type_string)) {
			fprintf(stderr, "dagctl: %s: %s needs a \"name\", a string (apply matches tasks by name)\n",
				path, task_label(tasks, i, label));
			return -EINVAL;
		}
		for (const char *const *need = (const char *const[]) { "title", "command", NULL }; *need; need++)
			if (!json_object_object_get_ex(t, *need, NULL) &&
			    /* an approval task runs no command */
			    !(strcmp(*need, "command") == 0 && strcmp(ctl_str(t, "kind"), "approval") == 0)) {
				fprintf(stderr, "dagctl: %s: %s needs a \"%s\"\n", path, task_label(tasks, i, label),
					*need);
				return -EINVAL;
			}
	}
	return 0;
}

/* ctl_call(), but a refusal is said naming the file's task it is about:
 * index >= 0, that task; else a "tasks[K]" of the message is the K-th of
 * which (the file's indexes of a batch of some of its tasks). */
static int call_about(struct ctl *c, const char *cmd, json_object *args, json_object **ret,
		      const char *path, json_object *tasks, ssize_t index, json_object *which) {
	_cleanup_(json_object_putp) json_object *reply = NULL;
	_cleanup_(freep) char *msg = NULL;
	json_object *e, *ok;
	const char *m, *rest;
	char label[96];
	size_t k;
	int r;

	r = ctl_request(c, cmd, args, &reply);
	if (r < 0)
		return r;
	ok = ctl_get(reply, "ok", json_type_boolean);
	e = ctl_get(reply, "error", json_type_object);
	if (!ok || json_object_get_boolean(ok) || !e)
		return ctl_reply_result(c, reply, ret);
	m = ctl_str(e, "message");
	if (index >= 0)
		r = asprintf(&msg, "%s: %s: %s", path, task_label(tasks, (size_t) index, label), m);
	else if (which && sscanf(m, "tasks[%zu]", &k) == 1 && k < json_object_array_length(which) &&
		 (rest = strchr(m, ':')))
		r = asprintf(&msg, "%s: %s%s", path, task_label(tasks,
			     (size_t) json_object_get_int64(json_object_array_get_idx(which, k)), label), rest);
	else
		r = asprintf(&msg, "%s: %s", path, m);
	if (r < 0)
		return -ENOMEM;
	snprintf(c->code, sizeof c->code, "%s", ctl_str(e, "code"));
	ctl_error(c, c->code, "%s", msg);
	return -EREMOTEIO;
}

static bool same_value(json_object *a, json_object *b, bool number) {
	if (number && (json_object_is_type(a, json_type_int) || json_object_is_type(a, json_type_double)) &&
	    (json_object_is_type(b, json_type_int) || json_object_is_type(b, json_type_double)))
		return fabs(json_object_get_double(a) - json_object_get_double(b)) < 1e-6;
	if (!a || !b)
		return !a && !b;
	return json_object_equal(a, b);
}

static const char *text(json_object *v) {
	return v ? json_object_to_json_string_ext(v, CTL_JSON_LINE) : "null";
}

/* A task's depends_on as ids: the file's names of existing tasks
 * become their ids; a name of a task still to add stays "NAME (new)". */
static json_object *dep_ids(json_object *deps, json_object *by_name) {
	json_object *out = json_object_new_array();

	for (size_t i = 0; deps && i < json_object_array_length(deps); i++) {
		const char *s = json_object_get_string(json_object_array_get_idx(deps, i)) ?: "";
		json_object *t = ctl_get(by_name, s, json_type_object);
		char buf[160];

		if (t)
			s = ctl_str(t, "id");
		else if (!ctl_is_task_id(s)) {
			snprintf(buf, sizeof buf, "%.140s (new)", s);
			s = buf;
		}
		json_object_array_add(out, json_object_new_string(s));
	}
	return out;
}

/* The project's task t's depends_on less its own children (a mapped task,
 * once expanded, depends on them too; the file does not say so). */
static json_object *own_deps(json_object *t, json_object *by_name) {
	json_object *deps = ctl_get(t, "depends_on", json_type_array), *out = json_object_new_array();
	const char *id = ctl_str(t, "id");

	for (size_t i = 0; deps && i < json_object_array_length(deps); i++) {
		json_object *d = json_object_array_get_idx(deps, i);
		bool child = false;

		json_object_object_foreach(by_name, k, x) {
			json_object *parent = ctl_get(x, "map_parent", json_type_string);

			(void) k;
			if (parent && id && strcmp(json_object_get_string(parent), id) == 0 &&
			    strcmp(ctl_str(x, "id"), json_object_get_string(d)) == 0) {
				child = true;
				break;
			}
		}
		if (!child)
			json_object_array_add(out, json_object_get(d));
	}
	return out;
}

static int cmp_strings(const void *a, const void *b) {
	return strcmp(json_object_get_string(*(json_object *const *) a),
		      json_object_get_string(*(json_object *const *) b));
}

/* Adds to diffs {"field", "old", "new", "editable"} for each field of the
 * file's task f that differs from the project's task t. */
static void diff_task(json_object *f, json_object *t, json_object *by_name, json_object *diffs) {
	static const struct field fixed[] = {
		{ "executor", "null", false },
		{ "executor_options", "{}", false },
		/* retry rules, pools, kind: set when a task is added */
		{ "kind", "\"command\"", false },
		{ "retry_on_exit", "null", false },
		{ "no_retry_on_exit", "null", false },
		{ "max_lost_retries", "3", true },
		{ "max_retry_duration", "null", true },
		{ "pools", "{}", false },
	};
	_cleanup_(json_object_putp) json_object *want = NULL, *have = NULL;

	for (size_t i = 0; i < ELEMENTSOF(editable) + ELEMENTSOF(fixed); i++) {
		const struct field *x = i < ELEMENTSOF(editable) ? &editable[i] : &fixed[i - ELEMENTSOF(editable)];
		_cleanup_(json_object_putp) json_object *absent = json_tokener_parse(x->absent);
		json_object *a = NULL, *b = NULL, *d;

		if (!json_object_object_get_ex(f, x->key, &a))
			a = absent;
		(void) json_object_object_get_ex(t, x->key, &b);
		if (same_value(a, b, x->number))
			continue;
		d = json_object_new_object();
		json_object_object_add(d, "field", json_object_new_string(x->key));
		json_object_object_add(d, "old", json_object_get(b));
		json_object_object_add(d, "new", json_object_get(a));
		json_object_object_add(d, "editable", json_object_new_boolean(i < ELEMENTSOF(editable)));
		json_object_array_add(diffs, d);
	}
	want = dep_ids(ctl_get(f, "depends_on", json_type_array), by_name);
	have = ctl_get(t, "map_over", json_type_string) ? own_deps(t, by_name) :
		json_object_get(ctl_get(t, "depends_on", json_type_array)) ?: json_object_new_array();
	json_object_array_sort(want, cmp_strings);
	json_object_array_sort(have, cmp_strings);
	if (!json_object_equal(want, have)) {
		json_object *d = json_object_new_object();

		json_object_object_add(d, "field", json_object_new_string("depends_on"));
		json_object_object_add(d, "old", json_object_get(have));
		json_object_object_add(d, "new", json_object_get(want));
		json_object_object_add(d, "editable", json_object_new_boolean(false));
		json_object_array_add(diffs, d);
	}
}

/* The project's settings the file gives that differ: {"field", "old", "new"}. */
void apply_diff_project(json_object *spec, json_object *p, json_object *diffs) {
	static const char *const keys[][2] = {
		{ "autonomous", "autonomous_execution_enabled" }, { "max_concurrency", "max_concurrency" },
		{ "executor", "executor" }, { "executor_options", "executor_options" },
	};

	for (size_t i = 0; i < ELEMENTSOF(keys); i++) {
		json_object *a, *b = NULL, *d;

		if (!json_object_object_get_ex(spec, keys[i][0], &a))
			continue;
		(void) json_object_object_get_ex(p, keys[i][1], &b);
		if (same_value(a, b, false))
			continue;
		d = json_object_new_object();
		json_object_object_add(d, "field", json_object_new_string(keys[i][0]));
		json_object_object_add(d, "old", json_object_get(b));
		json_object_object_add(d, "new", json_object_get(a));
		json_object_array_add(diffs, d);
	}
}

/* The project named by the file, from project.list: NULL if there is none. */
int apply_find_project(struct ctl *c, const char *name, json_object **ret) {
	_cleanup_(json_object_putp) json_object *result = NULL;
	json_object *ps;
	int r;

	r = ctl_call(c, "project.list", NULL, &result);
	if (r < 0)
		return r;
	ps = ctl_expect(result, "projects", json_type_array);
	if (!ps)
		return -EBADMSG;
	*ret = NULL;
	for (size_t i = 0; i < json_object_array_length(ps); i++) {
		json_object *p = json_object_array_get_idx(ps, i);

		if (strcmp(ctl_str(p, "name"), name) == 0 || strcmp(ctl_str(p, "id"), name) == 0)
			*ret = json_object_get(p);
	}
	return 0;
}

/* What differs, on stderr: "dagctl: FILE: tasks[1] ('b') (t-4, waiting): title: "B" -> "C"". */
static void say_diffs(const char *path, json_object *tasks, json_object *changes, json_object *pdiffs) {
	for (size_t i = 0; i < json_object_array_length(pdiffs); i++) {
		json_object *d = json_object_array_get_idx(pdiffs, i);

		fprintf(stderr, "dagctl: %s: project %s: %s", path, ctl_str(d, "field"),
			text(json_object_object_get(d, "old")));
		fprintf(stderr, " -> %s\n", text(json_object_object_get(d, "new")));
	}
	for (size_t i = 0; i < json_object_array_length(changes); i++) {
		json_object *ch = json_object_array_get_idx(changes, i), *diffs = ctl_get(ch, "diffs", json_type_array),
			*t = ctl_get(ch, "task", json_type_object);
		char label[96];

		for (size_t k = 0; k < json_object_array_length(diffs); k++) {
			json_object *d = json_object_array_get_idx(diffs, k);

			fprintf(stderr, "dagctl: %s: %s (%s, %s): %s: %s", path,
				task_label(tasks, (size_t) json_object_get_int64(ctl_get(ch, "index", json_type_int)), label),
				ctl_str(t, "id"), ctl_str(t, "status"), ctl_str(d, "field"),
				text(json_object_object_get(d, "old")));
			fprintf(stderr, " -> %s\n", text(json_object_object_get(d, "new")));
		}
	}
}

/* With --update: everything that differs can be changed, or nothing is. */
static int check_update(const char *path, json_object *tasks, json_object *changes) {
	for (size_t i = 0; i < json_object_array_length(changes); i++) {
		json_object *ch = json_object_array_get_idx(changes, i), *diffs = ctl_get(ch, "diffs", json_type_array),
			*t = ctl_get(ch, "task", json_type_object);
		const char *status = ctl_str(t, "status");
		size_t at = (size_t) json_object_get_int64(ctl_get(ch, "index", json_type_int));
		char label[96];

		if (strcmp(status, "waiting") != 0 && strcmp(status, "ready") != 0) {
			fprintf(stderr, "dagctl: %s: %s (%s) is %s; apply --update changes only tasks not started yet\n",
				path, task_label(tasks, at, label), ctl_str(t, "id"), status);
			return -ECANCELED;
		}
		for (size_t k = 0; k < json_object_array_length(diffs); k++) {
			json_object *d = json_object_array_get_idx(diffs, k);

			if (json_object_get_boolean(ctl_get(d, "editable", json_type_boolean)))
				continue;
			fprintf(stderr, "dagctl: %s: %s (%s): its %s differs; apply --update cannot change that%s\n",
				path, task_label(tasks, at, label), ctl_str(t, "id"), ctl_str(d, "field"),
				strcmp(ctl_str(d, "field"), "depends_on") == 0 ?
				" (dagctl task depend and undepend can)" : "");
			return -ECANCELED;
		}
	}
	return 0;
}

/* task.edit of each task that differs (dry_run: only checked). */
static int do_update(struct ctl *c, json_object *changes, bool dry_run, const char *path, json_object *tasks) {
	for (size_t i = 0; i < json_object_array_length(changes); i++) {
		json_object *ch = json_object_array_get_idx(changes, i), *diffs = ctl_get(ch, "diffs", json_type_array),
			*t = ctl_get(ch, "task", json_type_object);
		_cleanup_(json_object_putp) json_object *a = json_object_new_object(), *result = NULL;
		int r;

		if (!a)
			return -ENOMEM;
		json_object_object_add(a, "task_id", json_object_new_string(ctl_str(t, "id")));
		for (size_t k = 0; k < json_object_array_length(diffs); k++) {
			json_object *d = json_object_array_get_idx(diffs, k);

			json_object_object_add(a, ctl_str(d, "field"), json_object_get(json_object_object_get(d, "new")));
		}
		if (dry_run)
			json_object_object_add(a, "dry_run", json_object_new_boolean(true));
		r = call_about(c, "task.edit", a, &result, path, tasks,
			       (ssize_t) json_object_get_int64(ctl_get(ch, "index", json_type_int)), NULL);
		if (r < 0)
			return r;
		if (!c->json && !dry_run) {
			printf("updated %s (%s):", ctl_str(t, "name"), ctl_str(t, "id"));
			for (size_t k = 0; k < json_object_array_length(diffs); k++)
				printf("%s%s", k ? ", " : " ", ctl_str(json_object_array_get_idx(diffs, k), "field"));
			putchar('\n');
		}
	}
	return 0;
}

static void add_name(json_object *names, json_object *v)
{
	if (json_object_is_type(v, json_type_string) && !ctl_is_task_id(json_object_get_string(v)))
		json_object_array_add(names, json_object_get(v));
}

/* The project's tasks the file's tasks name (as themselves, as
 * dependencies, as what they map over): what the file is compared with,
 * read at the cost of the file, not of a project of a million tasks.  A
 * mapped task's children are not named by the file: if the project has
 * a mapped task among them, all its tasks are read. */
static int list_named(struct ctl *c, const char *project, json_object *tasks, json_object **ret)
{
	_cleanup_(json_object_putp) json_object *args = json_object_new_object(), *names = json_object_new_array();
	json_object *have;
	int r;

	for (size_t i = 0; i < json_object_array_length(tasks); i++) {
		json_object *f = json_object_array_get_idx(tasks, i), *v, *deps;

		if (json_object_object_get_ex(f, "name", &v))
			add_name(names, v);
		if (json_object_object_get_ex(f, "map_over", &v))
			add_name(names, v);
		deps = ctl_get(f, "depends_on", json_type_array);
		for (size_t k = 0; deps && k < json_object_array_length(deps); k++)
			add_name(names, json_object_array_get_idx(deps, k));
	}
	json_object_object_add(args, "project", json_object_new_string(project));
	json_object_object_add(args, "names", json_object_get(names));
	r = ctl_call(c, "task.list", args, ret);
	if (r < 0)
		return r;
	have = ctl_expect(*ret, "tasks", json_type_array);
	for (size_t i = 0; have && i < json_object_array_length(have); i++)
		if (ctl_get(json_object_array_get_idx(have, i), "map_over", json_type_string)) {
			json_object_put(*ret);
			*ret = NULL;
			json_object_object_del(args, "names");
			return ctl_call(c, "task.list", args, ret);
		}
	return 0;
}

/* apply to the project the file names, if it exists: 0 if it does not (the
 * caller creates it), 1 once done, or a negative errno. */
int apply_existing(struct ctl *c, const char *path, json_object *spec, bool update) {
	_cleanup_(json_object_putp) json_object *p = NULL, *result = NULL, *by_name = json_object_new_object(),
		*add = json_object_new_array(), *changes = json_object_new_array(),
		*pdiffs = json_object_new_array(), *args = NULL, *added = NULL,
		*which = json_object_new_array();
	json_object *tasks = ctl_get(spec, "tasks", json_type_array), *have, *settings;
	size_t unchanged = 0;
	int r;

	if (!by_name || !add || !changes || !pdiffs || !which)
		return -ENOMEM;
	r = apply_find_project(c, json_object_get_string(ctl_get(spec, "project", json_type_string)), &p);
	if (r < 0 || !p)
		return r;
	r = list_named(c, ctl_str(p, "id"), tasks, &result);
	if (r < 0)
		return r;
	have = ctl_expect(result, "tasks", json_type_array);
	if (!have)
		return -EBADMSG;
	for (size_t i = 0; i < json_object_array_length(have); i++) {
		json_object *t = json_object_array_get_idx(have, i);

		if (ctl_get(t, "name", json_type_string))
			json_object_object_add(by_name, ctl_str(t, "name"), json_object_get(t));
	}

	for (size_t i = 0; i < json_object_array_length(tasks); i++) {
		json_object *f = json_object_array_get_idx(tasks, i), *diffs, *ch,
			*t = ctl_get(by_name, ctl_str(f, "name"), json_type_object);

		if (!t) {
			json_object_array_add(add, json_object_get(f));
			json_object_array_add(which, json_object_new_int64((int64_t) i));
			continue;
		}
		diffs = json_object_new_array();
		diff_task(f, t, by_name, diffs);
		if (json_object_array_length(diffs) == 0) {
			json_object_put(diffs);
			unchanged++;
			continue;
		}
		ch = json_object_new_object();
		json_object_object_add(ch, "index", json_object_new_int64((int64_t) i));
		json_object_object_add(ch, "task", json_object_get(t));
		json_object_object_add(ch, "diffs", diffs);
		json_object_array_add(changes, ch);
	}
	apply_diff_project(spec, p, pdiffs);

	if (!update && (json_object_array_length(changes) > 0 || json_object_array_length(pdiffs) > 0)) {
		say_diffs(path, tasks, changes, pdiffs);
		fprintf(stderr, "dagctl: %s differs from project %s in %zu task%s%s; nothing was changed "
			"(apply --update changes the tasks not started yet)\n", path, ctl_str(p, "name"),
			json_object_array_length(changes), json_object_array_length(changes) == 1 ? "" : "s",
			json_object_array_length(pdiffs) ? " and its settings" : "");
		return -ECANCELED;
	}
	r = check_update(path, tasks, changes);
	if (r < 0)
		return r;

	/* each edit checked by the daemon, then the batch (all or nothing),
	 * then the edits and the settings */
	r = do_update(c, changes, true, path, tasks);
	if (r < 0)
		return r;
	if (json_object_array_length(add) > 0) {
		json_object *made;

		json_object_put(args);
		args = json_object_new_object();
		json_object_object_add(args, "project", json_object_new_string(ctl_str(p, "id")));
		json_object_object_add(args, "tasks", json_object_get(add));
		r = call_about(c, "task.add_batch", args, &added, path, tasks, -1, which);
		if (r < 0)
			return r;
		made = ctl_expect(added, "tasks", json_type_array);
		if (!made)
			return -EBADMSG;
		if (!c->json) {
			_cleanup_(table_freep) struct table *tb = table_new(3, "NAME", "ID", "STATUS");

			for (size_t i = 0; i < json_object_array_length(made); i++) {
				json_object *k = json_object_array_get_idx(made, i);

				table_add(tb, "%s", ctl_str(k, "name"));
				table_add(tb, "%s", ctl_str(k, "id"));
				table_add(tb, "%s", ctl_str(k, "status"));
			}
			table_print(tb);
		}
	}
	r = do_update(c, changes, false, path, tasks);
	if (r < 0)
		return r;
	if (json_object_array_length(pdiffs) > 0) {
		_cleanup_(json_object_putp) json_object *pa = json_object_new_object(), *pr = NULL;

		json_object_object_add(pa, "project", json_object_new_string(ctl_str(p, "id")));
		for (size_t i = 0; i < json_object_array_length(pdiffs); i++) {
			json_object *d = json_object_array_get_idx(pdiffs, i);

			json_object_object_add(pa, ctl_str(d, "field"), json_object_get(json_object_object_get(d, "new")));
		}
		r = call_about(c, "project.update", pa, &pr, path, tasks, -1, NULL);
		if (r < 0)
			return r;
		if (!c->json)
			printf("updated project %s\n", ctl_str(p, "name"));
	}
	settings = json_object_new_object();
	json_object_object_add(settings, "added", json_object_new_int64((int64_t) json_object_array_length(add)));
	json_object_object_add(settings, "updated", json_object_new_int64((int64_t) json_object_array_length(changes)));
	json_object_object_add(settings, "unchanged", json_object_new_int64((int64_t) unchanged));
	if (c->json) {
		json_object_object_add(settings, "tasks",
				       json_object_get(added ? ctl_get(added, "tasks", json_type_array) : NULL) ?:
				       json_object_new_array());
		ctl_print_json(settings, CTL_JSON_PRETTY);
	} else if (json_object_array_length(changes) > 0)
		printf("%zu added, %zu updated, %zu unchanged\n", json_object_array_length(add),
		       json_object_array_length(changes), unchanged);
	else
		printf("%zu added, %zu unchanged\n", json_object_array_length(add), unchanged);
	json_object_put(settings);
	return 1;
}
