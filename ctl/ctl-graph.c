/*
 * ctl-graph.c - graph: a project's DAG, as an indented tree for the terminal
 * (each task under the tasks it depends on; one with several of them is drawn
 * in full the first time, then named with "(see above)"), or as Graphviz dot,
 * a dependency's arrow pointing at its dependent, the statuses as colours;
 * of a whole project, or of the part of it a task is in.
 */
#include <string.h>

#include "dagctl.h"

/* A status's colours: dot's fill, the terminal's SGR. */
static const char *const colours[][3] = {
	{ "waiting", "#e0e0e0", "37" },
	{ "ready", "#9ecae1", "36" },
	{ "spawning", "#fdd49e", "33" },
	{ "running", "#fdae6b", "33" },
	{ "pending_validation", "#dadaeb", "35" },
	{ "validating", "#bcbddc", "35" },
	{ "completed", "#a1d99b", "32" },
	{ "failed", "#fc9272", "31" },
	{ "upstream_failed", "#fcbba1", "31" },
	{ "cancelled", "#bdbdbd", "2" },
	{ "awaiting_approval", "#fee391", "1;33" },
	{ "skipped", "#e5f5e0", "2;32" },
};

static const char *colour_of(const char *status, int which) {
	for (size_t i = 0; i < ELEMENTSOF(colours); i++)
		if (strcmp(colours[i][0], status) == 0)
			return colours[i][which];
	return which == 1 ? "#ffffff" : "0";
}

struct tree {
	struct view *v;
	json_object *drawn;     /* task id -> true: drawn in full already */
	struct sbuf out, prefix;
	int width;
	bool colour;
	const struct glyphs *g;
};

/* The ids of a task's list (depends_on, dependents) in the order of their numbers. */
static json_object **sorted_ids(struct view *v, json_object *t, const char *key, size_t *ret_n) {
	json_object *ids = ctl_get(t, key, json_type_array), **ts;
	size_t n = 0;

	*ret_n = 0;
	if (!ids || json_object_array_length(ids) == 0)
		return NULL;
	ts = calloc(json_object_array_length(ids), sizeof *ts);
	if (!ts)
		return NULL;
	for (size_t i = 0; i < json_object_array_length(ids); i++) {
		json_object *d = ctl_get(v->tasks, json_object_get_string(json_object_array_get_idx(ids, i)) ?: "",
					 json_type_object);

		if (d)
			ts[n++] = d;
	}
	for (size_t i = 1; i < n; i++)  /* a few: insertion sort */
		for (size_t j = i; j > 0 && task_number(ts[j - 1]) > task_number(ts[j]); j--) {
			json_object *x = ts[j];

			ts[j] = ts[j - 1];
			ts[j - 1] = x;
		}
	*ret_n = n;
	return ts;
}

/* "t-4 Link [running #2]", in what is left of the width after the prefix. */
static void tree_node(struct tree *tr, json_object *t, const char *branch, bool again) {
	const char *status = ctl_str(t, "status");
	char tail[64];
	int room = tr->width - text_width(tr->prefix.s ?: "") - text_width(branch), used;
	int64_t attempt = json_object_get_int64(ctl_get(t, "attempt", json_type_int));

	sbuf_put(&tr->out, tr->prefix.s ?: "", tr->prefix.len);
	sbuf_put(&tr->out, branch, strlen(branch));
	if (again)
		snprintf(tail, sizeof tail, " (see above)");
	else if (attempt > 1)
		snprintf(tail, sizeof tail, " [%s #%lld]", status, (long long) attempt);
	else
		snprintf(tail, sizeof tail, " [%s]", status);
	sbuf_style(&tr->out, tr->colour, "1");
	used = sbuf_text(&tr->out, ctl_str(t, "id"), room, false, tr->g);
	sbuf_style(&tr->out, tr->colour, NULL);
	if (used < room && room - used - (int) strlen(tail) > 1) {
		sbuf_put(&tr->out, " ", 1);
		used += 1 + sbuf_text(&tr->out, ctl_str(t, "title"), room - used - 1 - (int) strlen(tail),
				      false, tr->g);
	}
	if (used < room) {
		sbuf_style(&tr->out, tr->colour && !again, colour_of(status, 2));
		sbuf_text(&tr->out, tail, room - used, false, tr->g);
		sbuf_style(&tr->out, tr->colour && !again, NULL);
	}
	sbuf_end_line(&tr->out, false);
}

static int tree_draw(struct tree *tr, json_object *t, const char *branch, const char *indent) {
	_cleanup_(freep) json_object **kids = NULL;
	bool again = json_object_object_get_ex(tr->drawn, ctl_str(t, "id"), NULL);
	size_t n, len = tr->prefix.len;
	int r = 0;

	tree_node(tr, t, branch, again);
	if (again)
		return 0;
	json_object_object_add(tr->drawn, ctl_str(t, "id"), json_object_new_boolean(true));
	kids = sorted_ids(tr->v, t, "dependents", &n);
	sbuf_put(&tr->prefix, indent, strlen(indent));
	for (size_t i = 0; i < n && r >= 0; i++)
		r = tree_draw(tr, kids[i], i + 1 < n ? tr->g->tee : tr->g->corner,
			      i + 1 < n ? tr->g->pipe : "   ");
	tr->prefix.len = len;
	if (tr->prefix.s)
		tr->prefix.s[len] = '\0';
	return r;
}

static int show_tree(struct view *v, int width) {
	_cleanup_(freep) json_object **ts = NULL;
	_cleanup_(json_object_putp) json_object *drawn = json_object_new_object();
	struct tree tr = { .v = v, .drawn = drawn, .width = width, .colour = ctl_colour(STDOUT_FILENO),
			   .g = ctl_glyphs() };
	size_t n;
	int r = 0;

	if (!drawn)
		return -ENOMEM;
	ts = view_sorted(v, &n);
	sbuf_style(&tr.out, tr.colour, "1");
	sbuf_text(&tr.out, ctl_str(v->p, "name"), width, false, tr.g);
	sbuf_style(&tr.out, tr.colour, NULL);
	sbuf_printf(&tr.out, " (%s) %s %zu task%s", ctl_str(v->p, "id"), tr.g->dot, n, n == 1 ? "" : "s");
	sbuf_end_line(&tr.out, false);
	/* the roots, then whatever they do not reach (nothing, in a DAG) */
	for (int pass = 0; pass < 2; pass++)
		for (size_t i = 0; i < n && r >= 0; i++) {
			json_object *deps = ctl_get(ts[i], "depends_on", json_type_array);

			if (json_object_object_get_ex(drawn, ctl_str(ts[i], "id"), NULL) ||
			    (pass == 0 && deps && json_object_array_length(deps) > 0))
				continue;
			r = tree_draw(&tr, ts[i], "", "");
		}
	if (r >= 0)
		fputs(tr.out.s ?: "", stdout);
	sbuf_free(&tr.out);
	sbuf_free(&tr.prefix);
	return r;
}

/* s as the inside of a dot string: quotes and backslashes escaped, control
 * characters dropped. */
static void dot_string(struct sbuf *o, const char *s) {
	for (; *s; s++)
		if (*s == '"' || *s == '\\')
			sbuf_printf(o, "\\%c", *s);
		else if ((unsigned char) *s >= 0x20 && *s != 0x7f)
			sbuf_put(o, s, 1);
}

static int show_dot(struct view *v) {
	_cleanup_(sbuf_freep) struct sbuf o = {};
	_cleanup_(freep) json_object **ts = NULL;
	size_t n;

	ts = view_sorted(v, &n);
	sbuf_printf(&o, "digraph \"");
	dot_string(&o, ctl_str(v->p, "name"));
	sbuf_printf(&o, "\" {\n\tgraph [rankdir=LR, labelloc=t, fontname=\"Helvetica\", label=\"");
	dot_string(&o, ctl_str(v->p, "name"));
	sbuf_printf(&o, " (%s)\"];\n"
		    "\tnode [shape=box, style=\"rounded,filled\", fontname=\"Helvetica\"];\n"
		    "\tedge [color=\"#606060\"];\n", ctl_str(v->p, "id"));
	for (size_t i = 0; i < n; i++) {
		const char *status = ctl_str(ts[i], "status");
		int64_t attempt = json_object_get_int64(ctl_get(ts[i], "attempt", json_type_int));

		sbuf_printf(&o, "\t\"%s\" [label=\"%s\\n", ctl_str(ts[i], "id"), ctl_str(ts[i], "id"));
		dot_string(&o, ctl_str(ts[i], "title"));
		sbuf_printf(&o, "\\n%s", status);
		if (attempt > 1)
			sbuf_printf(&o, " #%lld", (long long) attempt);
		sbuf_printf(&o, "\", fillcolor=\"%s\"];\n", colour_of(status, 1));
	}
	for (size_t i = 0; i < n; i++) {
		_cleanup_(freep) json_object **deps = NULL;
		size_t k;

		deps = sorted_ids(v, ts[i], "depends_on", &k);
		for (size_t j = 0; j < k; j++)
			sbuf_printf(&o, "\t\"%s\" -> \"%s\";\n", ctl_str(deps[j], "id"), ctl_str(ts[i], "id"));
	}
	sbuf_printf(&o, "}\n");
	fputs(o.s, stdout);
	return 0;
}

/* Adds to keep the task and, following key (depends_on or dependents), all
 * it reaches. */
static void reach(struct view *v, json_object *keep, const char *id, const char *key) {
	json_object *t = ctl_get(v->tasks, id, json_type_object), *ids;

	if (!t || json_object_object_get_ex(keep, id, NULL))
		return;
	json_object_object_add(keep, id, json_object_new_boolean(true));
	ids = ctl_get(t, key, json_type_array);
	for (size_t i = 0; ids && i < json_object_array_length(ids); i++)
		reach(v, keep, json_object_get_string(json_object_array_get_idx(ids, i)) ?: "", key);
}

/* Keeps of the view only the task, what it depends on and what depends on it. */
static int narrow(struct view *v, const char *id) {
	_cleanup_(json_object_putp) json_object *keep = json_object_new_object(),
		*tasks = json_object_new_object();

	if (!keep || !tasks)
		return -ENOMEM;
	if (!ctl_get(v->tasks, id, json_type_object))
		return ctl_bad_reply("task %s is not in project %s", id, v->project);
	reach(v, keep, id, "depends_on");
	json_object_object_del(keep, id);
	reach(v, keep, id, "dependents");
	json_object_object_foreach(keep, k, val) {
		(void) val;
		json_object_object_add(tasks, k, json_object_get(ctl_get(v->tasks, k, json_type_object)));
	}
	json_object_put(v->tasks);
	v->tasks = TAKE_PTR(tasks);
	return 0;
}

/* A TASK operand (t-N, PROJECT/NAME): its id, and its project in v. */
static int task_operand(struct ctl *c, const char *s, struct view *v, char **ret_id) {
	_cleanup_(json_object_putp) json_object *args = json_object_new_object(), *result = NULL;
	json_object *t;
	int r;

	if (!args)
		return -ENOMEM;
	json_object_object_add(args, "task_id", json_object_new_string(s));
	r = ctl_resolve_tasks(c, args, NULL);
	if (r < 0)
		return r;
	r = ctl_call(c, "task.get", args, &result);
	if (r < 0)
		return r;
	t = ctl_expect(result, "task", json_type_object);
	if (!t || !ctl_expect(t, "project_id", json_type_string))
		return -EBADMSG;
	v->project = strdup(ctl_str(t, "project_id"));
	*ret_id = strdup(ctl_str(t, "id"));
	return v->project && *ret_id ? 0 : -ENOMEM;
}

static bool is_task_ref(const char *s) {
	return strchr(s, '/') || ctl_is_task_id(s);
}

static int graph_exec(struct ctl *c, const struct ctl_cmd *cmd, json_object *args,
		      int argc, char **argv) {
	_cleanup_(freep) char *task = NULL;
	const char *format = json_object_get_string(ctl_get(args, "format", json_type_string)) ?: "text";
	struct view v = { .seq = -1 };
	int rows, width, r;

	if (strcmp(format, "text") != 0 && strcmp(format, "dot") != 0)
		return ctl_usage_error(cmd, "--format: '%s' is neither dot nor text", format);
	ctl_size_option(args, "width", &width);
	if (!width && ctl_term_size(STDOUT_FILENO, &rows, &width) < 0)
		width = 0;
	if (is_task_ref(argv[0]))
		r = task_operand(c, argv[0], &v, &task);
	else
		r = (v.project = strdup(argv[0])) ? 0 : -ENOMEM;
	if (r >= 0)
		r = view_load(c, &v);
	if (r >= 0 && task)
		r = narrow(&v, task);
	if (r >= 0 && c->json) {
		_cleanup_(json_object_putp) json_object *o = json_object_new_object();
		_cleanup_(freep) json_object **ts = NULL;
		json_object *list = json_object_new_array();
		size_t n;

		ts = view_sorted(&v, &n);
		json_object_object_add(o, "project", json_object_get(v.p));
		for (size_t i = 0; i < n; i++)
			json_object_array_add(list, json_object_get(ts[i]));
		json_object_object_add(o, "tasks", list);
		r = ctl_print_json(o, CTL_JSON_PRETTY);
	} else if (r >= 0)
		r = strcmp(format, "dot") == 0 ? show_dot(&v) : show_tree(&v, width > 0 ? width : 100000);
	view_done(&v);
	return r;
}

static const struct ctl_opt graph_opts[] = {
	{ "format", "FORMAT", ARG_STRING, "format", 0, "text (the default: a tree) or dot (Graphviz)" },
	{ "width", "N", ARG_INT, "width", 20, "cut the tree's lines at N columns (default: the terminal's)" },
	{}
};

const struct ctl_cmd ctl_cmd_graph = {
	.name = "graph",
	.usage = "PROJECT|TASK [--format dot|text] [--width N]",
	.summary = "Draw a project's DAG: a tree for the terminal, or Graphviz dot",
	.details = "The tree has the tasks that depend on nothing at its roots and each task under\n"
		   "the tasks it depends on, with its status (and attempt, past the first); a\n"
		   "task that depends on several is drawn in full once, then \"(see above)\".\n"
		   "In dot, each arrow goes from a dependency to its dependent, and the fill\n"
		   "colour is the status.  Given a TASK (t-7 or PROJECT/NAME), only the part of\n"
		   "its project's DAG it is in: what it depends on and what depends on it.\n",
	.example = "  dagctl graph build\n"
		   "  dagctl graph build/compile\n"
		   "  dagctl graph build --format dot | dot -Tsvg > build.svg\n",
	.opts = graph_opts,
	.min_args = 1, .max_args = 1, .keys = { "project" },
	.exec = graph_exec,
};
