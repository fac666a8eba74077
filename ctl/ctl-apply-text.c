/*
 * ctl-apply-text.c - apply of a file done in the file's text: to a project
 * that does not exist yet, or to one that has none of the file's tasks yet
 * (a DAG applied in parts).  What ctl-apply.c checks of it is checked here
 * without a json-c tree (ctl-scan.c), the tasks array is sent as the file
 * has it, and the reply's table is printed from the reply's text.  A
 * hundred thousand tasks are a few megabytes of text, where their trees,
 * the file's and the reply's, were hundreds.
 *
 * Whatever is not plain (see ctl-scan.c) or not right, a mistake to be
 * said, a task of the project to compare with the file's, a setting that
 * differs, --json's summary, is left to ctl-apply.c and ctl-apply-update.c,
 * which read the file with json-c as before and say what they say.
 */
#include <inttypes.h>
#include <string.h>

#include "dagctl.h"

/* What apply_exec() checks of a file, as found in its text. */
struct file {
	const char *project;            /* the name (no escapes), without its quotes */
	size_t project_len;
	const char *tasks;              /* the array's text */
	size_t tasks_len, n_tasks;
	struct { const char *text; size_t len; } settings[4];   /* "key": value */
	size_t n_settings;
	/* the names its tasks give, as themselves, as dependencies and as
	 * what they map over (each plain, or odd_names) */
	struct span { const char *s; size_t n; } *names;
	size_t n_names, cap_names;
	bool odd_names;
};

static void file_free(struct file *f) {
	free(f->names);
}

/* A string value at s: a name the file gives, which ctl-apply-update.c's
 * list_named() would ask for (a task's id is not a name); anything else,
 * skipped. */
static int scan_name(struct jscan *s, struct file *f) {
	const char *v;
	size_t n;
	bool plain;

	if (s->p >= s->end || *s->p != '"')
		return jscan_value(s);
	if (jscan_string(s, &v, &n, &plain) < 0)
		return -EINVAL;
	if (!plain)
		f->odd_names = true;
	else if (!ctl_is_task_id_n(v, n)) {
		if (f->n_names == f->cap_names) {
			size_t cap = f->cap_names ? 2 * f->cap_names : 1024;
			struct span *a = reallocarray(f->names, cap, sizeof(*a));

			if (!a)
				return -ENOMEM;
			f->names = a;
			f->cap_names = cap;
		}
		f->names[f->n_names++] = (struct span) { v, n };
	}
	return 0;
}

static int key_index(const char *const *keys, const char *k, size_t n) {
	for (int i = 0; keys[i]; i++)
		if (strlen(keys[i]) == n && memcmp(keys[i], k, n) == 0)
			return i;
	return -1;
}

/* A task as apply_check_tasks() wants it: an object of the keys a task
 * takes, each once, with a name (a string), a title and a command (unless
 * its kind is "approval"). */
static int scan_task(struct jscan *s, struct file *f) {
	static int name = -1, title, command, kind, depends_on, map_over;
	uint32_t seen = 0;
	bool first = true, approval = false;
	const char *k;
	size_t n;
	int r;

	if (name < 0) {
		name = key_index(apply_task_keys, "name", 4);
		title = key_index(apply_task_keys, "title", 5);
		command = key_index(apply_task_keys, "command", 7);
		kind = key_index(apply_task_keys, "kind", 4);
		depends_on = key_index(apply_task_keys, "depends_on", 10);
		map_over = key_index(apply_task_keys, "map_over", 8);
	}
	if (jscan_open(s, '{') < 0)
		return -EINVAL;
	while ((r = jscan_next(s, '}', &first, &k, &n)) > 0) {
		int i = key_index(apply_task_keys, k, n);
		const char *v;
		size_t vn;
		bool plain;

		if (i < 0 || i >= 32 || (seen & (1u << i)))
			return -EINVAL;
		seen |= 1u << i;
		if (i == kind) {
			if (jscan_string(s, &v, &vn, &plain) < 0)
				return -EINVAL;
			approval = plain && vn == 8 && memcmp(v, "approval", 8) == 0;
		} else if (i == name || i == map_over) {
			if ((i == name && (s->p >= s->end || *s->p != '"')) || scan_name(s, f) < 0)
				return -EINVAL;
		} else if (i == depends_on && s->p < s->end && *s->p == '[') {
			bool first_dep = true;

			s->p++;
			while ((r = jscan_next(s, ']', &first_dep, NULL, NULL)) > 0)
				if (scan_name(s, f) < 0)
					return -EINVAL;
			if (r < 0)
				return -EINVAL;
		} else if (jscan_value(s) < 0)
			return -EINVAL;
	}
	if (r < 0 || !(seen & (1u << name)) || !(seen & (1u << title)) ||
	    (!(seen & (1u << command)) && !approval))
		return -EINVAL;
	return 0;
}

static int scan_file(const char *text, size_t len, struct file *f) {
	static const char *const keys[] = {
		"project", "tasks", "autonomous", "max_concurrency", "executor", "executor_options", NULL
	};
	struct jscan s = { text, text + len, 0 };
	unsigned seen = 0;
	bool first = true, plain;
	const char *k;
	size_t n;
	int r;

	if (jscan_open(&s, '{') < 0)
		return -EINVAL;
	while ((r = jscan_next(&s, '}', &first, &k, &n)) > 0) {
		int i = key_index(keys, k, n);
		const char *at = s.p;

		if (i < 0 || (seen & (1u << i)))
			return -EINVAL;
		seen |= 1u << i;
		if (i == 0) {
			if (jscan_string(&s, &f->project, &f->project_len, &plain) < 0 || !plain)
				return -EINVAL;
		} else if (i == 1) {
			bool first_task = true;

			if (jscan_open(&s, '[') < 0)
				return -EINVAL;
			while ((r = jscan_next(&s, ']', &first_task, NULL, NULL)) > 0) {
				if (scan_task(&s, f) < 0)
					return -EINVAL;
				f->n_tasks++;
			}
			if (r < 0)
				return -EINVAL;
			f->tasks = at;
			f->tasks_len = (size_t) (s.p - at);
		} else {
			if (jscan_value(&s) < 0)
				return -EINVAL;
			/* "key": value, from the key's opening quote */
			f->settings[f->n_settings].text = k - 1;
			f->settings[f->n_settings++].len = (size_t) (s.p - (k - 1));
		}
	}
	if (r < 0 || jscan_end(&s) < 0 || !f->project || !f->tasks)
		return -EINVAL;
	return 0;
}

/* Appends n bytes of s at *at; flat: JSON text, put on one line (outside
 * strings, where alone a plain text has a newline, white space is white
 * space). */
static void put(char **at, const char *s, size_t n, bool flat) {
	char *o = *at, *e = o + n;

	memcpy(o, s, n);
	*at = e;
	for (char *q = o; flat && (q = memchr(q, '\n', (size_t) (e - q))); q++)
		*q = ' ';
	for (char *q = o; flat && (q = memchr(q, '\r', (size_t) (e - q))); q++)
		*q = ' ';
}

static void put_str(char **at, const char *s) {
	put(at, s, strlen(s), false);
}

/* The reply's tasks, each {"id", "name", "status"}: pass 0 measures (and
 * checks), pass 1 prints rows of the widths measured. */
static int walk_rows(const char *text, size_t len, int pass, size_t w[3], size_t *ret_n) {
	static const char *const cols[] = { "name", "id", "status", NULL };
	struct jscan s = { text, text + len, 0 };
	bool first = true;
	size_t n = 0;
	int r;

	if (jscan_open(&s, '[') < 0)
		return -EINVAL;
	while ((r = jscan_next(&s, ']', &first, NULL, NULL)) > 0) {
		const char *cell[3] = { "-", NULL, NULL }, *k;
		size_t cn[3] = { 1, 0, 0 }, kn;
		bool first_key = true, plain;
		unsigned seen = 0;

		if (jscan_open(&s, '{') < 0)
			return -EINVAL;
		while ((r = jscan_next(&s, '}', &first_key, &k, &kn)) > 0) {
			int i = key_index(cols, k, kn);

			if (i < 0 || (seen & (1u << i)))
				return -EINVAL;
			seen |= 1u << i;
			if (i == 0 && s.p + 4 <= s.end && memcmp(s.p, "null", 4) == 0) {
				s.p += 4;
				continue;
			}
			if (jscan_string(&s, &cell[i], &cn[i], &plain) < 0 || !plain)
				return -EINVAL;
		}
		if (r < 0 || !cell[1] || !cell[2])
			return -EINVAL;
		for (int i = 0; i < 3; i++)
			if (pass == 0 && cn[i] > w[i])
				w[i] = cn[i];
			else if (pass == 1 && i < 2)
				printf("%.*s%*s  ", (int) cn[i], cell[i], (int) (w[i] - cn[i]), "");
			else if (pass == 1)
				printf("%.*s\n", (int) cn[i], cell[i]);
		n++;
	}
	if (r < 0)
		return -EINVAL;
	*ret_n = n;
	return 0;
}

/* The reply {"ok": true, "result": {"tasks": [...], ...}, "id": id} as
 * text: its tasks array's; false for any other reply. */
static bool reply_tasks(const char *line, size_t len, int64_t id, const char **ret, size_t *ret_len) {
	struct jscan s = { line, line + len, 0 };
	const char *tasks = NULL, *k;
	size_t kn, tasks_len = 0;
	bool first = true, ok = false, id_seen = false;
	int r;

	if (jscan_open(&s, '{') < 0)
		return false;
	while ((r = jscan_next(&s, '}', &first, &k, &kn)) > 0) {
		if (kn == 2 && memcmp(k, "ok", 2) == 0 && s.p + 4 <= s.end && memcmp(s.p, "true", 4) == 0) {
			s.p += 4;
			ok = true;
		} else if (kn == 2 && memcmp(k, "id", 2) == 0) {
			char *e;

			id_seen = strtoll(s.p, &e, 10) == id && e > s.p;
			if (!id_seen || jscan_value(&s) < 0)
				return false;
		} else if (kn == 6 && memcmp(k, "result", 6) == 0) {
			bool first_key = true;

			if (jscan_open(&s, '{') < 0)
				return false;
			while ((r = jscan_next(&s, '}', &first_key, &k, &kn)) > 0) {
				const char *at = s.p;

				if (jscan_value(&s) < 0)
					return false;
				if (kn == 5 && memcmp(k, "tasks", 5) == 0) {
					tasks = at;
					tasks_len = (size_t) (s.p - at);
				}
			}
			if (r < 0)
				return false;
		} else
			return false;
	}
	if (r < 0 || jscan_end(&s) < 0 || !ok || !id_seen || !tasks)
		return false;
	*ret = tasks;
	*ret_len = tasks_len;
	return true;
}

/* task.add_batch's reply taken as text: the table ctl_show_applied()
 * prints; 0 (not taken) for any other reply. */
static int take_applied(struct ctl *c, const char *line, size_t len, int64_t id, void *userdata) {
	const char *tasks;
	size_t tasks_len, w[3] = { 4, 2, 6 }, n;

	if (!reply_tasks(line, len, id, &tasks, &tasks_len) || walk_rows(tasks, tasks_len, 0, w, &n) < 0)
		return 0;
	printf("%-*s  %-*s  STATUS\n", (int) w[0], "NAME", (int) w[1], "ID");
	(void) walk_rows(tasks, tasks_len, 1, w, &n);
	printf("%zu added, 0 unchanged\n", n);
	return 1;
}

/* task.list's reply taken as text: whether it lists none. */
static int take_none(struct ctl *c, const char *line, size_t len, int64_t id, void *userdata) {
	const char *tasks;
	size_t tasks_len;

	if (!reply_tasks(line, len, id, &tasks, &tasks_len))
		return 0;
	*(bool *) userdata = tasks_len == 2 && memcmp(tasks, "[]", 2) == 0;
	return 1;
}

/* The file's settings, those of project p: what ctl-apply-update.c would
 * find no difference in. */
static bool same_settings(const struct file *f, json_object *p) {
	_cleanup_(json_object_putp) json_object *spec = NULL, *diffs = NULL;
	_cleanup_(freep) char *text = NULL;
	size_t size = 3;
	char *at;

	if (f->n_settings == 0)
		return true;
	for (size_t i = 0; i < f->n_settings; i++)
		size += f->settings[i].len + 1;
	text = at = malloc(size);
	if (!text)
		return false;
	put_str(&at, "{");
	for (size_t i = 0; i < f->n_settings; i++) {
		if (i > 0)
			put_str(&at, ",");
		put(&at, f->settings[i].text, f->settings[i].len, false);
	}
	put_str(&at, "}");
	*at = '\0';
	spec = json_tokener_parse(text);
	diffs = json_object_new_array();
	if (!spec || !diffs)
		return false;
	apply_diff_project(spec, p, diffs);
	return json_object_array_length(diffs) == 0;
}

/* To project p, which exists: done here only if it has none of the tasks
 * the file names and the file's settings are its own, so that all the
 * file's tasks are to be added, as ctl-apply-update.c would add them (one
 * task.add_batch of the file's tasks, its table, "N added, 0 unchanged").
 * A refused batch changed nothing, and is said by ctl-apply-update.c. */
static int apply_text_existing(struct ctl *c, const struct file *f, json_object *p) {
	_cleanup_(json_object_putp) json_object *reply = NULL, *result = NULL;
	_cleanup_(freep) char *line = NULL;
	const char *id = ctl_str(p, "id");
	size_t id_len = strlen(id), size;
	bool none = false;
	json_object *ok;
	char *at;
	int r;

	if (c->json || f->n_tasks == 0 || f->odd_names || !same_settings(f, p))
		return 0;
	size = id_len + 64 + f->tasks_len;
	for (size_t i = 0; i < f->n_names; i++)
		size += f->names[i].n + 3;
	line = at = malloc(size);
	if (!line)
		return -ENOMEM;
	put_str(&at, "{\"project\":\"");
	put(&at, id, id_len, false);
	put_str(&at, "\",\"names\":[");
	for (size_t i = 0; i < f->n_names; i++) {
		put_str(&at, i ? ",\"" : "\"");
		put(&at, f->names[i].s, f->names[i].n, false);
		put_str(&at, "\"");
	}
	/* one is enough to know: a project that has them all (the same file
	 * again) is not listed here and again by ctl-apply-update.c */
	put_str(&at, "],\"limit\":1}");
	r = ctl_request_text(c, "task.list", line, (size_t) (at - line), take_none, &none, &reply);
	if (r <= 0 || !none)
		return r < 0 ? r : 0;

	at = line;
	put_str(&at, "{\"project\":\"");
	put(&at, id, id_len, false);
	put_str(&at, "\",\"tasks\":");
	put(&at, f->tasks, f->tasks_len, true);
	put_str(&at, "}");
	r = ctl_request_text(c, "task.add_batch", line, (size_t) (at - line), take_applied, NULL, &reply);
	if (r != 0)
		return r < 0 ? r : 1;
	ok = ctl_get(reply, "ok", json_type_boolean);
	if (!ok || !json_object_get_boolean(ok))
		return 0;
	r = ctl_reply_result(c, reply, &result);
	if (r >= 0)
		r = ctl_show_applied(result);
	return r < 0 ? r : 1;
}

int apply_text(struct ctl *c, const char *text, size_t len, json_object *args) {
	_cleanup_(json_object_putp) json_object *p = NULL, *reply = NULL, *result = NULL;
	_cleanup_(freep) char *name = NULL, *line = NULL;
	const char *more;
	size_t line_len, more_len, size;
	_cleanup_(file_free) struct file f = {};
	char *at;
	int r;

	if (scan_file(text, len, &f) < 0)
		return 0;
	name = strndup(f.project, f.project_len);
	if (!name)
		return -ENOMEM;
	r = apply_find_project(c, name, &p);
	if (r < 0)
		return r;
	if (p)
		return apply_text_existing(c, &f, p);

	/* args as the command line gave them, then the project, its tasks
	 * and the settings to create it with */
	json_object_object_del(args, "update");
	more = json_object_to_json_string_ext(args, CTL_JSON_LINE);
	more_len = strlen(more);
	size = more_len + 2 * f.project_len + f.tasks_len + 64;
	for (size_t i = 0; i < f.n_settings; i++)
		size += f.settings[i].len + 1;
	line = at = malloc(size);
	if (!line)
		return -ENOMEM;
	put(&at, more, more_len - 1, false);
	if (more_len > 2)
		put_str(&at, ",");
	put_str(&at, "\"project\":\"");
	put(&at, f.project, f.project_len, false);
	put_str(&at, "\",\"tasks\":");
	put(&at, f.tasks, f.tasks_len, true);
	put_str(&at, ",\"create_project\":{\"name\":\"");
	put(&at, f.project, f.project_len, false);
	put_str(&at, "\"");
	for (size_t i = 0; i < f.n_settings; i++) {
		put_str(&at, ",");
		put(&at, f.settings[i].text, f.settings[i].len, true);
	}
	put_str(&at, "}}");
	line_len = (size_t) (at - line);

	r = ctl_request_text(c, "task.add_batch", line, line_len, c->json ? NULL : take_applied, NULL, &reply);
	if (r != 0)
		return r < 0 ? r : 1;
	r = ctl_reply_result(c, reply, &result);
	if (r < 0)
		return r;
	r = c->json ? ctl_print_json(result, CTL_JSON_PRETTY) : ctl_show_applied(result);
	return r < 0 ? r : 1;
}
