/*
 * ctl-wait.c - wait: block until a task, or every task of a project, has
 * finished (completed, failed, upstream_failed or cancelled), from the
 * project's events, across restarts of the daemon; exit 0 if all completed,
 * 1 if not, 3 on timeout, 4 if there is no such task or project, so that
 * scripts and CI pipelines can wait on a DAG.  On a terminal it says each
 * change of status, and points out ready tasks that wait for a start and
 * tasks held until released.
 */
#include <inttypes.h>
#include <math.h>
#include <string.h>
#include <time.h>

#include "dagctl.h"

struct waiting {
	struct view v;
	const char *task_id;    /* NULL: every task of the project */
	int64_t after;          /* with a task: also done once its attempt is past this; -1 not */
	bool validating;        /* with a task: also done once its validator runs */
	bool talk;              /* say what changes (wait on a terminal) */
	bool hint;              /* point out ready tasks that wait for a start (wait) */
	json_object *seen;      /* talking: task id -> the status last said */
	size_t held;            /* the ready tasks of a manual project last said to wait */
	size_t holds;           /* the tasks waited for last said to be held */
};

/* Whether the task is one of those waited for. */
static bool waited(struct waiting *w, const char *id) {
	return !w->task_id || strcmp(w->task_id, id) == 0;
}

/* On a terminal: each change of status of a task waited for, as a line. */
static void say_changes(struct waiting *w) {
	size_t n;
	_cleanup_(freep) json_object **ts = view_sorted(&w->v, &n);
	bool first = !w->seen;

	if (!w->talk || (!w->seen && !(w->seen = json_object_new_object())))
		return;
	for (size_t i = 0; i < n; i++) {
		const char *id = ctl_str(ts[i], "id"), *status = ctl_str(ts[i], "status");
		json_object *old = ctl_get(w->seen, id, json_type_string);
		char when[16];
		time_t now = time(NULL);

		if (!waited(w, id) || (old && strcmp(json_object_get_string(old), status) == 0))
			continue;
		strftime(when, sizeof when, "%H:%M:%S", localtime(&now));
		if (!first)
			printf("%s %s%s%s: %s -> %s\n", when, id,
			       ctl_get(ts[i], "name", json_type_string) ? " " : "",
			       json_object_get_string(ctl_get(ts[i], "name", json_type_string)) ?: "",
			       old ? json_object_get_string(old) : "new", status);
		json_object_object_add(w->seen, id, json_object_new_string(status));
	}
	fflush(stdout);
}

/* Says, when their number grows, that ready tasks of a manual project wait
 * for a start, and that tasks waited for are held: without a start or a
 * release, the wait would never end. */
static void say_held(struct waiting *w) {
	size_t held = 0, holds = 0;

	if (!w->hint || !w->v.p || !w->v.tasks)
		return;
	json_object_object_foreach(w->v.tasks, id, t) {
		bool on_hold = json_object_get_boolean(ctl_get(t, "held", json_type_boolean));

		holds += on_hold && waited(w, id) && !status_finished(ctl_str(t, "status"));
		held += !on_hold && strcmp(ctl_str(t, "status"), "ready") == 0 &&
			!json_object_get_boolean(ctl_get(t, "released", json_type_boolean));
	}
	if (holds > w->holds)
		fprintf(stderr, "dagctl: %zu task%s held: %s for `dagctl task release`\n", holds,
			holds == 1 ? " is" : "s are", holds == 1 ? "it waits" : "they wait");
	w->holds = holds;
	if (json_object_get_boolean(ctl_get(w->v.p, "autonomous_execution_enabled", json_type_boolean)))
		return;
	if (held > w->held)
		fprintf(stderr, "dagctl: %zu ready task%s wait%s for `dagctl start %s`\n", held,
			held == 1 ? "" : "s", held == 1 ? "s" : "", ctl_str(w->v.p, "name"));
	w->held = held;
}

/* 1 if what is waited for is over, else 0. */
static int over(struct waiting *w) {
	json_object *t;

	if (w->v.deleted)
		return 1;
	if (!w->task_id) {
		json_object_object_foreach(w->v.tasks, id, task) {
			(void) id;
			if (!status_finished(ctl_str(task, "status")))
				return 0;
		}
		return 1;
	}
	t = ctl_get(w->v.tasks, w->task_id, json_type_object);
	if (!t)
		return ctl_bad_reply("task %s is not in project %s", w->task_id, w->v.project);
	return status_finished(ctl_str(t, "status")) ||
	       (w->after >= 0 && json_object_get_int64(ctl_get(t, "attempt", json_type_int)) > w->after) ||
	       (w->validating && strcmp(ctl_str(t, "status"), "validating") == 0);
}

static int wait_open(struct ctl *c, void *userdata) {
	struct waiting *w = userdata;
	int r = view_open(c, &w->v);

	if (r < 0)
		return r;
	say_changes(w);
	r = over(w);
	if (r == 0)
		say_held(w);
	return r;
}

static int wait_line(struct ctl *c, json_object *line, void *userdata) {
	struct waiting *w = userdata;
	int r;

	if (!view_apply(&w->v, line))
		return 0;
	say_changes(w);
	r = over(w);
	if (r == 0)
		say_held(w);
	return r;
}

/* Follows the project until it is over; the connection is closed after. */
static int wait_for(struct ctl *c, struct waiting *w) {
	int r = ctl_follow(c, wait_open, wait_line, w);

	ctl_disconnect(c);
	if (r > 0 && w->v.deleted) {
		fprintf(stderr, "dagctl: project %s was deleted\n", w->v.project);
		return -ECANCELED;
	}
	return r;
}

/* Starts a wait for a task: its project is what is followed. */
static int wait_task_init(struct ctl *c, struct waiting *w, const char *task_id) {
	_cleanup_(json_object_putp) json_object *args = json_object_new_object(), *result = NULL;
	json_object *t;
	int r;

	if (!args)
		return -ENOMEM;
	json_object_object_add(args, "task_id", json_object_new_string(task_id));
	r = ctl_call(c, "task.get", args, &result);
	if (r < 0)
		return r;
	t = ctl_expect(result, "task", json_type_object);
	if (!t || !ctl_expect(t, "project_id", json_type_string))
		return -EBADMSG;
	w->task_id = task_id;
	w->v.project = strdup(ctl_str(t, "project_id"));
	return w->v.project ? 0 : -ENOMEM;
}

/* Waits until the task has finished, or (after >= 0) has started an attempt
 * past `after`, or (validating) runs its validator; its status then goes into
 * status. */
int ctl_wait_task(struct ctl *c, const char *task_id, int64_t after, bool validating,
		  char status[static 32]) {
	struct waiting w = { .v = VIEW_INIT, .after = after, .validating = validating };
	int r;

	r = wait_task_init(c, &w, task_id);
	if (r >= 0)
		r = wait_for(c, &w);
	if (r >= 0)
		snprintf(status, 32, "%s", ctl_str(ctl_get(w.v.tasks, task_id, json_type_object), "status"));
	view_done(&w.v);
	return r;
}

/* Timed out: what is left, as JSON on stdout with --json, else on stderr. */
static int show_left(struct ctl *c, struct waiting *w, double timeout) {
	size_t n;
	_cleanup_(freep) json_object **ts = view_sorted(&w->v, &n);
	_cleanup_(json_object_putp) json_object *o = json_object_new_object();
	json_object *list = json_object_new_array();

	if (!o || !list)
		return -ENOMEM;
	json_object_object_add(o, "project", json_object_get(w->v.p));
	json_object_object_add(o, "timed_out", json_object_new_boolean(true));
	json_object_object_add(o, "left", list);
	for (size_t i = 0; i < n; i++)
		if (waited(w, ctl_str(ts[i], "id")) && !status_finished(ctl_str(ts[i], "status")))
			json_object_array_add(list, json_object_get(ts[i]));
	fprintf(stderr, "dagctl: still not finished after %g s", timeout);
	if (c->json) {
		fputc('\n', stderr);
		ctl_print_json(o, CTL_JSON_PRETTY);
	} else {
		for (size_t i = 0; i < json_object_array_length(list); i++) {
			json_object *t = json_object_array_get_idx(list, i);

			fprintf(stderr, "%s %s (%s)", i ? "," : ":", ctl_str(t, "id"), ctl_str(t, "status"));
		}
		fputc('\n', stderr);
	}
	return -ETIME;
}

static int show_result(struct ctl *c, struct waiting *w) {
	static const char *const statuses[] = {
		"completed", "skipped", "failed", "upstream_failed", "cancelled", "waiting", "ready", "spawning",
		"running", "pending_validation", "validating", "awaiting_approval", NULL
	};
	size_t n, completed = 0;
	_cleanup_(freep) json_object **ts = view_sorted(&w->v, &n);
	_cleanup_(json_object_putp) json_object *o = json_object_new_object();
	json_object *list = json_object_new_array();

	if (!o || !list)
		return -ENOMEM;
	json_object_object_add(o, "project", json_object_get(w->v.p));
	json_object_object_add(o, "tasks", list);
	for (size_t i = 0; i < n; i++)
		if (!w->task_id || strcmp(ctl_str(ts[i], "id"), w->task_id) == 0) {
			json_object_array_add(list, json_object_get(ts[i]));
			/* skipped by its trigger rule is not a failure */
			completed += strcmp(ctl_str(ts[i], "status"), "completed") == 0 ||
				     strcmp(ctl_str(ts[i], "status"), "skipped") == 0;
		}
	if (c->json)
		ctl_print_json(o, CTL_JSON_PRETTY);
	else if (w->task_id)
		printf("%s: %s\n", w->task_id, ctl_str(json_object_array_get_idx(list, 0), "status"));
	else {
		/* "build: 6 tasks, 4 completed, 1 failed, 1 upstream_failed" */
		printf("%s: %zu task%s", ctl_str(w->v.p, "name"), n, n == 1 ? "" : "s");
		for (const char *const *s = statuses; *s; s++) {
			size_t k = 0;

			for (size_t i = 0; i < n; i++)
				k += strcmp(ctl_str(ts[i], "status"), *s) == 0;
			if (k > 0)
				printf(", %zu %s", k, *s);
		}
		putchar('\n');
	}
	return completed == json_object_array_length(list) ? 0 : -ECANCELED;
}

static int wait_exec(struct ctl *c, const struct ctl_cmd *cmd, json_object *args,
		     int argc, char **argv) {
	struct waiting w = { .v = VIEW_INIT, .after = -1 };
	json_object *project = ctl_get(args, "project", json_type_string), *task;
	json_object *timeout = ctl_get(args, "timeout", json_type_double) ?:
			       ctl_get(args, "timeout", json_type_int);
	int r;

	if (argc == 0 && !project)
		return ctl_usage_error(cmd, "name a TASK or a --project");
	/* here, not before: a name that is not there is exit 4 */
	if (argc > 0) {
		json_object_object_add(args, "task_id", json_object_new_string(argv[0]));
		r = ctl_resolve_tasks(c, args, project ? json_object_get_string(project) : NULL);
		if (r < 0)
			return r == -ENXIO || strcmp(c->code, "not_found") == 0 ? -ENODEV : r;
	}
	task = ctl_get(args, "task_id", json_type_string);
	if (timeout) {
		double t = json_object_get_double(timeout);

		c->deadline = ctl_monotonic() + (int64_t) fmin(t * 1e6, 1e15);
	}
	w.talk = !c->json && isatty(STDOUT_FILENO);
	w.hint = true;
	if (task)
		r = wait_task_init(c, &w, json_object_get_string(task));
	else
		r = (w.v.project = strdup(json_object_get_string(project))) ? 0 : -ENOMEM;
	if (r >= 0)
		r = wait_for(c, &w);
	if (r == -ETIME)
		r = show_left(c, &w, json_object_get_double(timeout));
	else if (r >= 0)
		r = show_result(c, &w);
	else if (r == -ENXIO || strcmp(c->code, "not_found") == 0)
		r = -ENODEV;
	view_done(&w.v);
	json_object_put(w.seen);
	return r;
}

static const struct ctl_opt wait_opts[] = {
	{ "project", "PROJECT", ARG_STRING, "project", 0,
	  "wait for every task of PROJECT; with TASK, where its name is looked up" },
	{ "timeout", "SECONDS", ARG_SECONDS, "timeout", 0, "give up after this long (exit 3)" },
	{}
};

const struct ctl_cmd ctl_cmd_wait = {
	.name = "wait",
	.usage = "TASK | --project PROJECT [--timeout SECONDS]",
	.summary = "Wait until a task, or every task of a project, has finished",
	.details = "Finished is completed, skipped, failed, upstream_failed or cancelled.  Prints\n"
		   "the task's status, or the project's counts, then exits 0 if all completed (or\n"
		   "were skipped by their trigger rule), 1 if\n"
		   "not, 3 after --timeout (what is left goes to stderr; with --json, to stdout\n"
		   "as \"left\"), 4 if the task or project is not there.  On a terminal each\n"
		   "change of status is printed as it comes; ready tasks of a manual project that\n"
		   "wait for 'dagctl start' are pointed out.  A restart of the daemon is waited\n"
		   "through.\n"
		   "TASK is an id (t-7), PROJECT/NAME, or a NAME with --project PROJECT.\n",
	.example = "  dagctl apply dag.json && dagctl autonomous build on &&\n"
		   "  dagctl wait --project build --timeout 3600\n",
	.opts = wait_opts,
	.min_args = 0, .max_args = 1,
	.exec = wait_exec,
};
