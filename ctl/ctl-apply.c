/*
 * ctl-apply.c - apply: load a whole DAG from a JSON file in one
 * task.add_batch, creating its project if need be, all or nothing.  A
 * project that exists already is compared with the file by task name
 * (ctl-apply-update.c): only the tasks it lacks are added, and what differs
 * is said, and changed only with --update.  A new project is made from the
 * file's text where it can be (ctl-apply-text.c).
 *
 *   {"project": "NAME", "autonomous"?: bool, "max_concurrency"?: n,
 *    "executor"?: "...", "executor_options"?: {...},
 *    "tasks": [{"name": ..., "title": ..., "command": ..., "depends_on": [names or ids],
 *               "trigger"?: rule, "finally"?: bool}, ...]}
 */
#include <fcntl.h>
#include <limits.h>
#include <string.h>

#include "../daemon/closest.h"
#include "dagctl.h"

/* Reads a whole file ("-": standard input) into a '\0'-terminated buffer. */
static int read_file(const char *path, char **ret, size_t *ret_len) {
	_cleanup_(closep) int fd = -EBADF;
	_cleanup_(freep) char *buf = NULL;
	size_t len = 0, size = 0;

	if (strcmp(path, "-") != 0) {
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return -errno;
	}
	for (;;) {
		ssize_t n;

		if (size - len < 2) {
			char *b = realloc(buf, size = size ? size * 2 : 64 * 1024);

			if (!b)
				return -ENOMEM;
			buf = b;
		}
		n = read(fd >= 0 ? fd : STDIN_FILENO, buf + len, size - len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		len += n;
	}
	buf[len] = '\0';
	*ret = TAKE_PTR(buf);
	*ret_len = len;
	return 0;
}

/* The file's text as JSON; if it is not, where and why, as FILE:LINE:COL. */
static int parse_file(const char *path, const char *s, size_t len, json_object **ret) {
	enum json_tokener_error e;
	json_tokener *tok;
	json_object *o;
	size_t end, line = 1, col = 1;
	const char *why;

	if (len >= INT32_MAX) {
		fprintf(stderr, "dagctl: %s: too large\n", path);
		return -E2BIG;
	}
	tok = json_tokener_new_ex(512);
	if (!tok)
		return -ENOMEM;
	o = json_tokener_parse_ex(tok, s, (int) len + 1);
	e = json_tokener_get_error(tok);
	end = json_tokener_get_parse_end(tok);
	json_tokener_free(tok);
	why = e != json_tokener_success ? json_tokener_error_desc(e) : "unexpected text after the JSON value";
	if (e == json_tokener_success)
		while (end < len && strchr(" \t\r\n", s[end]))
			end++;
	if (e == json_tokener_success && end >= len) {
		*ret = o;
		return 0;
	}
	json_object_put(o);
	if (end > len)
		end = len;
	for (size_t i = 0; i < end; i++)
		if (s[i] == '\n')
			line++, col = 1;
		else if (((unsigned char) s[i] & 0xc0) != 0x80)
			col++;
	fprintf(stderr, "dagctl: %s:%zu:%zu: not valid JSON: %s\n", path, line, col, why);
	return -EINVAL;
}

int ctl_show_applied(json_object *result) {
	json_object *ts = ctl_expect(result, "tasks", json_type_array);
	_cleanup_(table_freep) struct table *t = NULL;

	if (!ts)
		return -EBADMSG;
	t = table_new(3, "NAME", "ID", "STATUS");
	for (size_t i = 0; i < json_object_array_length(ts); i++) {
		json_object *k = json_object_array_get_idx(ts, i);

		table_add(t, "%s", ctl_str(k, "name"));
		table_add(t, "%s", ctl_str(k, "id"));
		table_add(t, "%s", ctl_str(k, "status"));
	}
	table_print(t);
	printf("%zu added, 0 unchanged\n", json_object_array_length(ts));
	return 0;
}

static int apply_exec(struct ctl *c, const struct ctl_cmd *cmd, json_object *args,
		      int argc, char **argv) {
	static const char *const settings[] = {
		"autonomous", "max_concurrency", "executor", "executor_options", NULL
	};
	static const char *const keys[] = {
		"project", "tasks", "autonomous", "max_concurrency", "executor", "executor_options", NULL
	};
	_cleanup_(json_object_putp) json_object *spec = NULL, *create = NULL;
	_cleanup_(freep) char *text = NULL;
	json_object *name, *tasks;
	size_t len = 0;
	int r;

	r = read_file(argv[0], &text, &len);
	if (r < 0) {
		fprintf(stderr, "dagctl: cannot read '%s': %s\n", argv[0], strerror(-r));
		return r;
	}
	/* a new project, from a plain file: without a tree of it */
	r = apply_text(c, text, len, args);
	if (r != 0)
		return r < 0 ? r : 0;
	r = parse_file(argv[0], text, len, &spec);
	if (r < 0)
		return r;
	if (json_object_is_type(spec, json_type_object)) {
		json_object_object_foreach(spec, k, v) {
			const char *const *s = keys, *like;

			(void) v;
			while (*s && strcmp(*s, k) != 0)
				s++;
			if (*s)
				continue;
			like = closest_name(k, keys);
			fprintf(stderr, "dagctl: %s: unknown key \"%s\"%s%s%s\n", argv[0], k,
				like ? "; did you mean \"" : "", like ? like : "", like ? "\"?" : "");
			return -EINVAL;
		}
	}
	name = ctl_get(spec, "project", json_type_string);
	tasks = ctl_get(spec, "tasks", json_type_array);
	if (!name || !tasks) {
		fprintf(stderr, "dagctl: '%s' is not a JSON object with \"project\" (a name) and \"tasks\" "
			"(an array)\n", argv[0]);
		return -EINVAL;
	}
	r = apply_check_tasks(argv[0], tasks);
	if (r < 0)
		return r;
	r = apply_existing(c, argv[0], spec, json_object_get_boolean(ctl_get(args, "update", json_type_boolean)));
	if (r != 0)
		return r < 0 ? r : 0;   /* > 0: the project is there, and it is done */
	if (json_object_get_boolean(ctl_get(args, "update", json_type_boolean)))
		json_object_object_del(args, "update");

	create = json_object_new_object();
	if (!create)
		return -ENOMEM;
	json_object_object_add(create, "name", json_object_get(name));
	json_object_object_foreach(spec, key, val) {
		const char *const *s = settings;

		while (*s && strcmp(*s, key) != 0)
			s++;
		if (*s)
			json_object_object_add(create, key, json_object_get(val));
	}
	json_object_object_add(args, "project", json_object_get(name));
	json_object_object_add(args, "tasks", json_object_get(tasks));
	json_object_object_add(args, "create_project", TAKE_PTR(create));
	return ctl_run(c, "task.add_batch", args, ctl_show_applied);
}

static const struct ctl_opt apply_opts[] = {
	{ "update", NULL, ARG_TRUE, "update", 0,
	  "change the tasks not started yet that differ from the file" },
	{}
};

const struct ctl_cmd ctl_cmd_apply = {
	.name = "apply",
	.usage = "FILE [--update]",
	.summary = "Add a whole DAG from a JSON file (- for stdin), all or nothing",
	.details = "FILE holds {\"project\": NAME, \"tasks\": [...]} and, for a project that does not\n"
		   "exist yet, its settings: \"autonomous\", \"max_concurrency\", \"executor\",\n"
		   "\"executor_options\".  Each task has the args of 'task add' (\"name\", \"title\",\n"
		   "\"command\": [argv] or \"shell string\", \"priority\", \"env\", ...) and its\n"
		   "\"depends_on\" names tasks of the file by name, or existing tasks by id.\n"
		   "Prints each task's name and new id, and how many were added and unchanged.\n"
		   "If the project exists, the file is compared with it task by task (by name):\n"
		   "tasks it lacks are added, the same again is \"0 added, 5 unchanged\", and what\n"
		   "differs is said and nothing changed (exit 1), unless --update: then the tasks\n"
		   "that differ are edited (task edit), if none has started yet.  A mistake names\n"
		   "the task by its index in the file and its name; a file that is not JSON, the\n"
		   "line and column.\n",
	.example = "  echo '{\"project\": \"demo\", \"tasks\": [\n"
		   "    {\"name\": \"a\", \"title\": \"A\", \"command\": [\"echo\", \"a\"]},\n"
		   "    {\"name\": \"b\", \"title\": \"B\", \"command\": \"echo b\", \"depends_on\": [\"a\"]}]}' |\n"
		   "  dagctl apply -\n",
	.opts = apply_opts,
	.min_args = 1, .max_args = 1,
	.exec = apply_exec,
};
