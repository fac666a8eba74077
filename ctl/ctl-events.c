/*
 * ctl-events.c - events: print the event log, page by page from a seq
 * (events.subscribe with follow: false), or follow it live until interrupted
 * (exit 0) or until the daemon goes away (exit 2).  One line per event:
 * "SEQ TIME TYPE ENTITY key=value...", or the event as compact JSON.
 */
#include <string.h>

#include "dagctl.h"

#define PAGE 1000

/* A payload string bare if it is one plain word, else quoted as JSON. */
static void put_word(json_object *v) {
	const char *s = json_object_get_string(v);
	bool plain = *s != '\0';

	for (const char *p = s; *p && plain; p++)
		plain = (unsigned char) *p > ' ' && *p != '"' && *p != '=' && *p != 0x7f;
	fputs(plain ? s : json_object_to_json_string_ext(v, CTL_JSON_LINE), stdout);
}

static void put_field(const char *key, json_object *v) {
	printf(" %s=", key);
	switch (json_object_get_type(v)) {
	case json_type_string:
		put_word(v);
		break;
	case json_type_array:
		for (size_t i = 0; i < json_object_array_length(v); i++) {
			json_object *e = json_object_array_get_idx(v, i);

			if (i > 0)
				putchar(',');
			if (json_object_is_type(e, json_type_string))
				put_word(e);
			else
				fputs(json_object_to_json_string_ext(e, CTL_JSON_LINE), stdout);
		}
		break;
	default:
		fputs(json_object_to_json_string_ext(v, CTL_JSON_LINE), stdout);
	}
}

static void print_event(struct ctl *c, json_object *ev) {
	static const char *const summary[] = { "name", "title", "status", NULL };
	const char *entity = ctl_str(ev, "entity_id");
	json_object *payload = ctl_get(ev, "payload", json_type_object);

	if (c->json) {
		ctl_print_json(ev, CTL_JSON_LINE);
		return;
	}
	printf("%s %s %s %s", json_object_get_string(ctl_get(ev, "seq", json_type_int)) ?: "-",
	       ctl_str(ev, "time"), ctl_str(ev, "type"), entity);
	if (!payload) {
		putchar('\n');
		return;
	}
	json_object_object_foreach(payload, key, val) {
		if (!val || (json_object_is_type(val, json_type_string) &&
			     strcmp(json_object_get_string(val), entity) == 0))
			continue;       /* nothing, or the entity again */
		if (!ctl_get(val, "id", json_type_string)) {
			put_field(key, val);
			continue;
		}
		/* a project or a task: a few words of it */
		for (const char *const *k = summary; *k; k++) {
			json_object *v = ctl_get(val, *k, json_type_string);

			if (v)
				put_field(*k, v);
		}
	}
	putchar('\n');
}

/* Prints the events of a reply; returns how many, and the last one's seq. */
static int print_events(struct ctl *c, json_object *result, int64_t *since) {
	json_object *evs = ctl_expect(result, "events", json_type_array);
	size_t n;

	if (!evs)
		return -EBADMSG;
	n = json_object_array_length(evs);
	for (size_t i = 0; i < n; i++)
		print_event(c, json_object_array_get_idx(evs, i));
	if (n > 0) {
		json_object *seq = ctl_get(json_object_array_get_idx(evs, n - 1), "seq", json_type_int);

		if (!seq)
			return ctl_bad_reply("an event without a seq");
		*since = json_object_get_int64(seq);
	}
	return (int) n;
}

static void on_signal(int sig) {
	/* nothing: it only interrupts ppoll() */
}

static int follow(struct ctl *c, json_object *args) {
	struct sigaction sa = { .sa_handler = on_signal };
	_cleanup_(json_object_putp) json_object *result = NULL;
	sigset_t block, wait;
	int r;

	/* SIGINT is blocked but while waiting for the daemon: no event is cut in half */
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigprocmask(SIG_BLOCK, &block, &wait);
	sigdelset(&wait, SIGINT);
	sigaction(SIGINT, &sa, NULL);
	c->waitmask = &wait;

	r = ctl_call(c, "events.subscribe", args, &result);
	if (r == -EINTR)
		return 0;
	if (r < 0)
		return r;
	for (;;) {
		_cleanup_(json_object_putp) json_object *line = NULL;
		json_object *ev;

		r = ctl_read(c, &line);
		if (r == -EINTR)
			return 0;
		if (r < 0)
			return r;
		ev = ctl_get(line, "event", json_type_object);
		if (!ev)
			continue;
		print_event(c, ev);
		if (fflush(stdout) != 0)
			return -errno;
	}
}

static int events_exec(struct ctl *c, const struct ctl_cmd *cmd, json_object *args,
		       int argc, char **argv) {
	int64_t since = 0;
	int r;

	if (json_object_get_boolean(ctl_get(args, "follow", json_type_boolean)))
		return follow(c, args);

	/* the whole log from since (default 0), a page at a time */
	since = json_object_get_int64(ctl_get(args, "since", json_type_int));
	json_object_object_add(args, "follow", json_object_new_boolean(false));
	json_object_object_add(args, "limit", json_object_new_int(PAGE));
	do {
		_cleanup_(json_object_putp) json_object *result = NULL;

		json_object_object_add(args, "since", json_object_new_int64(since));
		r = ctl_call(c, "events.subscribe", args, &result);
		if (r >= 0)
			r = print_events(c, result, &since);
		if (r >= 0 && fflush(stdout) != 0)
			return -errno;
	} while (r == PAGE);
	return r < 0 ? r : 0;
}

static const struct ctl_opt events_opts[] = {
	{ "since", "SEQ", ARG_INT, "since", 0,
	  "the events after SEQ (default: all; with --follow, only new ones)" },
	{ "follow", NULL, ARG_TRUE, "follow", 0, "go on printing events as they come, until ^C" },
	{ "project", "PROJECT", ARG_STRING, "project", 0, "only this project's events" },
	{ "type", "TYPE", ARG_STRINGS, "types", 0, "only events of TYPE; repeat for more" },
	{}
};

const struct ctl_cmd ctl_cmd_events = {
	.name = "events",
	.usage = "[--since SEQ] [--follow] [--project PROJECT] [--type TYPE]...",
	.summary = "Print the event log, or follow it",
	.details = "Each event is a line: SEQ TIME TYPE ENTITY key=value... (--json: the event).\n"
		   "Types: PROJECT_CREATED PROJECT_UPDATED PROJECT_DELETED AUTONOMOUS_MODE_CHANGED\n"
		   "TASK_CREATED TASK_STATUS_CHANGED TASK_COMPLETED TASK_FAILED TASKS_UNBLOCKED\n"
		   "TASK_DEPENDENCY_UPDATED SANDBOX_SPAWNED SANDBOX_EXITED.\n"
		   "Following ends with status 0 on ^C, 2 if the daemon goes away.\n",
	.example = "  dagctl events --follow --project build --type TASK_STATUS_CHANGED\n",
	.opts = events_opts,
	.exec = events_exec,
};
