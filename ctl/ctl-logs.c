/*
 * ctl-logs.c - logs (and task logs): the output of a task's attempt, at
 * once, or followed (task.logs with follow) as the sandbox writes it, until
 * the attempt is over: exit 0 if the task then completed, 1 if not, with how
 * it ended said on stderr; a task that never ran is said to have not run.  A
 * follower that loses the daemon comes back with the offset it had and misses
 * nothing; one that asks before the task has run waits for its first attempt;
 * one whose attempt ends in validation waits for the verdict.  With
 * --validation, the same of the output of the attempt's validator: one that
 * asks while the work still runs waits for the validator.
 */
#include <inttypes.h>
#include <string.h>

#include "dagctl.h"

struct logs {
	json_object *args;      /* task.logs's (borrowed) */
	const char *task_id;
	int64_t attempt, offset;        /* of the attempt followed; offset -1 before it is */
	char status[32];        /* the task's status when the attempt ended */
};

/* Prints the lines of a reply or of a "log" message (json: the object).
 * With "partial", its last line is a piece of one that goes on in the next
 * message: no newline after it. */
static int put_lines(bool json, json_object *o) {
	json_object *lines = ctl_expect(o, "lines", json_type_array);
	bool partial = json_object_get_boolean(ctl_get(o, "partial", json_type_boolean));
	size_t n;

	if (!lines)
		return -EBADMSG;
	n = json_object_array_length(lines);
	if (json)
		ctl_print_json(o, CTL_JSON_LINE);
	else
		for (size_t i = 0; i < n; i++) {
			const char *s = json_object_get_string(json_object_array_get_idx(lines, i));
			size_t len = s ? strlen(s) : 0;

			fputs(s ?: "", stdout);
			if ((len == 0 || s[len - 1] != '\n') && !(partial && i == n - 1))
				putchar('\n');
		}
	return fflush(stdout) == 0 ? 0 : -errno;
}

static void warn_truncated(json_object *result) {
	if (json_object_get_boolean(ctl_get(result, "truncated", json_type_boolean)))
		fprintf(stderr, "dagctl: the log of %s attempt %s is longer; this is its end\n",
			ctl_str(result, "task_id"),
			json_object_get_string(ctl_get(result, "attempt", json_type_int)) ?: "?");
}

static int show_logs(json_object *result) {
	warn_truncated(result);
	return put_lines(false, result);
}

/* The task as it is now; NULL (said) if it cannot be had. */
static json_object *get_task(struct ctl *c, const char *task_id, json_object **ret_result) {
	_cleanup_(json_object_putp) json_object *args = json_object_new_object();

	if (!args)
		return NULL;
	json_object_object_add(args, "task_id", json_object_new_string(task_id));
	if (ctl_call(c, "task.get", args, ret_result) < 0)
		return NULL;
	return ctl_expect(*ret_result, "task", json_type_object);
}

/* The log of a task that never ran is no output at all: say why. */
static int show_never_ran(struct ctl *c, const char *task_id) {
	_cleanup_(json_object_putp) json_object *result = NULL;
	json_object *t = get_task(c, task_id, &result);

	if (!t)
		return -EBADMSG;
	fprintf(stderr, "dagctl: %s has not run (it is %s); 'dagctl logs --follow %s' waits for it\n",
		task_id, ctl_str(t, "status"), task_id);
	return 0;
}

/* A validator that printed nothing, or has not run yet: say so. */
static int show_no_validation(struct ctl *c, json_object *result) {
	_cleanup_(json_object_putp) json_object *tr = NULL;
	const char *task_id = ctl_str(result, "task_id");
	json_object *t = get_task(c, task_id, &tr);

	if (!t)
		return -EBADMSG;
	fprintf(stderr, "dagctl: no validation output for %s attempt %s (it is %s)\n", task_id,
		json_object_get_string(ctl_get(result, "attempt", json_type_int)) ?: "?",
		ctl_str(t, "status"));
	return 0;
}

/* How a followed task ended: "t-3 is failed (attempt 1): exited with code 3". */
static void say_end(struct ctl *c, const char *task_id) {
	_cleanup_(json_object_putp) json_object *result = NULL;
	json_object *t = get_task(c, task_id, &result), *msg;

	if (!t)
		return;
	msg = ctl_get(t, "error_message", json_type_string);
	fprintf(stderr, "dagctl: %s is %s (attempt %s)%s%s\n", task_id, ctl_str(t, "status"),
		json_object_get_string(ctl_get(t, "attempt", json_type_int)) ?: "?",
		msg ? ": " : "", msg ? json_object_get_string(msg) : "");
}

/* Notes where the stream is; 1 and the status if the attempt is over. */
static int advance(struct logs *l, json_object *o) {
	json_object *offset = ctl_expect(o, "offset", json_type_int), *attempt;

	if (!offset)
		return -EBADMSG;
	l->offset = json_object_get_int64(offset);
	if ((attempt = ctl_get(o, "attempt", json_type_int)))
		l->attempt = json_object_get_int64(attempt);
	if (!json_object_get_boolean(ctl_get(o, "end", json_type_boolean)))
		return 0;
	snprintf(l->status, sizeof l->status, "%s", ctl_str(o, "status"));
	return 1;
}

/* Asks for the log, following: from the start (the end of a long one), or,
 * once a reply came, from where it was left. */
static int logs_open(struct ctl *c, void *userdata) {
	_cleanup_(json_object_putp) json_object *result = NULL;
	struct logs *l = userdata;
	bool first = l->offset < 0;
	int r;

	json_object_object_add(l->args, "follow", json_object_new_boolean(true));
	if (!first) {
		json_object_object_add(l->args, "attempt", json_object_new_int64(l->attempt));
		json_object_object_add(l->args, "offset", json_object_new_int64(l->offset));
	}
	r = ctl_call(c, "task.logs", l->args, &result);
	if (r < 0)
		return r;
	if (first)
		warn_truncated(result);
	r = put_lines(c->json, result);
	return r < 0 ? r : advance(l, result);
}

static int logs_line(struct ctl *c, json_object *line, void *userdata) {
	json_object *log = ctl_get(line, "log", json_type_object);
	int r;

	if (!log)
		return 0;
	r = put_lines(c->json, log);
	return r < 0 ? r : advance(userdata, log);
}

/* Whether the validator of the task's latest attempt is still to come. */
static bool validator_to_come(const char *status) {
	return strcmp(status, "spawning") == 0 || strcmp(status, "running") == 0 ||
	       strcmp(status, "pending_validation") == 0;
}

static int follow(struct ctl *c, json_object *args) {
	static const int sigs[] = { SIGINT, SIGTERM, 0 };
	struct logs l = { .args = args, .task_id = json_object_get_string(ctl_get(args, "task_id",
									       json_type_string)),
			  .offset = -1 };
	bool validation = json_object_get_boolean(ctl_get(args, "validation", json_type_boolean)),
	     pinned = json_object_object_get_ex(args, "attempt", NULL);
	int r;

	ctl_catch_signals(c, sigs);
	for (;;) {
		r = ctl_follow(c, logs_open, logs_line, &l);
		if (r == -EINTR)
			return 0;
		if (r < 0)
			return r;
		if (pinned || status_finished(l.status))
			break;
		/* not run yet: wait for its first attempt, then follow that; the
		 * validator of an attempt still at work: wait for it to start */
		if (!validation && l.attempt > 0)
			break;
		if (validation && l.attempt > 0 && !validator_to_come(l.status))
			break;
		r = ctl_wait_task(c, l.task_id, validation ? -1 : 0, validation, l.status);
		if (r < 0)
			return r == -EINTR ? 0 : r;
		json_object_object_del(args, "attempt");
		json_object_object_del(args, "offset");
		l.offset = -1;
	}
	/* the work is done; the validator has yet to judge it */
	if (strcmp(l.status, "pending_validation") == 0 || strcmp(l.status, "validating") == 0) {
		r = ctl_wait_task(c, l.task_id, -1, false, l.status);
		if (r < 0)
			return r == -EINTR ? 0 : r;
	}
	say_end(c, l.task_id);
	return strcmp(l.status, "completed") == 0 ? 0 : -ECANCELED;
}

static int logs_exec(struct ctl *c, const struct ctl_cmd *cmd, json_object *args,
		     int argc, char **argv) {
	_cleanup_(json_object_putp) json_object *result = NULL;
	json_object *lines;
	int r;

	if (json_object_get_boolean(ctl_get(args, "follow", json_type_boolean)))
		return follow(c, args);
	r = ctl_call(c, "task.logs", args, &result);
	if (r < 0)
		return r;
	lines = ctl_expect(result, "lines", json_type_array);
	if (!lines)
		return -EBADMSG;
	if (json_object_get_int64(ctl_get(result, "attempt", json_type_int)) == 0 &&
	    json_object_array_length(lines) == 0 && !c->json)
		return show_never_ran(c, ctl_str(result, "task_id"));
	if (json_object_get_boolean(ctl_get(result, "validation", json_type_boolean)) &&
	    json_object_array_length(lines) == 0 && !c->json)
		return show_no_validation(c, result);
	return c->json ? ctl_print_json(result, CTL_JSON_PRETTY) : show_logs(result);
}

static const struct ctl_opt logs_opts[] = {
	{ "attempt", "N", ARG_INT, "attempt", 1, "the log of attempt N (default: the latest)" },
	{ "follow", NULL, ARG_TRUE, "follow", 0,
	  "go on printing its output as it comes, until the attempt is over" },
	{ "max-bytes", "N", ARG_INT, "max_bytes", 1, "at most the last N bytes (default 1 MiB)" },
	{ "validation", NULL, ARG_TRUE, "validation", 0,
	  "the output of the attempt's validator instead of its work's" },
	CTL_OPT_PROJECT,
	{}
};

#define LOGS_DETAILS \
	"The log of a task that has not run is no output: dagctl says so on stderr.\n" \
	"With --follow, the output is printed as the task writes it, until its attempt\n" \
	"is over (a task that has not run yet is waited for); how it ended is then said\n" \
	"on stderr (\"dagctl: t-3 is failed (attempt 1): exited with code 3\") and the\n" \
	"exit status is 0 if the task completed, 1 if not.  A restart of the daemon is\n" \
	"followed through.  ^C stops following (exit 0).  --validation shows what the\n" \
	"attempt's validator printed (a task without a validation command is an\n" \
	"error); with --follow, a validator yet to start is waited for.  --json prints\n" \
	"each piece as a JSON object with its \"lines\".  TASK is an id (t-7),\n" \
	"PROJECT/NAME, or a NAME with --project PROJECT.\n"

const struct ctl_cmd ctl_cmd_logs = {
	.name = "logs",
	.usage = "TASK [-p PROJECT] [--attempt N] [--follow] [--max-bytes N] [--validation]",
	.summary = "Print the output of a task's run, or follow it",
	.details = LOGS_DETAILS,
	.example = "  dagctl logs t-3 --follow\n"
		   "  dagctl logs t-3 --attempt 1 | grep -i error\n"
		   "  dagctl logs t-3 --validation\n",
	.opts = logs_opts,
	.min_args = 1, .max_args = 1, .keys = { "task_id" },
	.exec = logs_exec,
};

const struct ctl_cmd ctl_cmd_task_logs = {
	.name = "task logs",
	.usage = "TASK [-p PROJECT] [--attempt N] [--follow] [--max-bytes N] [--validation]",
	.summary = "Print the output of a task's run (the same as 'logs')",
	.details = LOGS_DETAILS,
	.example = "  dagctl task logs t-3 --attempt 1\n",
	.opts = logs_opts,
	.min_args = 1, .max_args = 1, .keys = { "task_id" },
	.exec = logs_exec,
};
