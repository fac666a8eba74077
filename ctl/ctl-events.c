/*
 * ctl-events.c - events: print the event log, page by page from a seq
 * (events.subscribe with follow: false) after a seq or from a time, or only
 * its last N events, or follow it live until interrupted
 * (exit 0), through restarts of the daemon: the subscription resumes after
 * the last event printed.  One line per event: "SEQ TIME TYPE ENTITY
 * key=value...", or the event as compact JSON.
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

/* Where a followed stream of events is. */
struct events {
	json_object *args;      /* events.subscribe's (borrowed) */
	int64_t seq;            /* the last event printed; -1: none yet */
};

/* Subscribes, after the last event printed if there was one. */
static int events_open(struct ctl *c, void *userdata) {
	_cleanup_(json_object_putp) json_object *result = NULL;
	struct events *e = userdata;
	json_object *last;
	int r;

	if (e->seq >= 0)
		json_object_object_add(e->args, "since", json_object_new_int64(e->seq));
	r = ctl_call(c, "events.subscribe", e->args, &result);
	if (r < 0)
		return r;
	last = ctl_expect(result, "last_seq", json_type_int);
	if (!last)
		return -EBADMSG;
	if (e->seq < 0 && !json_object_object_get_ex(e->args, "since", NULL))
		e->seq = json_object_get_int64(last);       /* only new ones: from here on */
	return 0;
}

static int events_line(struct ctl *c, json_object *line, void *userdata) {
	struct events *e = userdata;
	json_object *ev = ctl_get(line, "event", json_type_object),
		*seq = ctl_get(ev, "seq", json_type_int);

	if (!ev)
		return 0;
	if (!seq)
		return ctl_bad_reply("an event without a seq");
	if (json_object_get_int64(seq) <= e->seq)
		return 0;
	e->seq = json_object_get_int64(seq);
	print_event(c, ev);
	return fflush(stdout) == 0 ? 0 : -errno;
}

static int follow(struct ctl *c, json_object *args) {
	static const int sigs[] = { SIGINT, SIGTERM, 0 };
	struct events e = { .args = args, .seq = -1 };
	int r;

	ctl_catch_signals(c, sigs);
	r = ctl_follow(c, events_open, events_line, &e);
	return r == -EINTR ? 0 : r;
}

static const char *const types[] = {
	"PROJECT_CREATED", "PROJECT_UPDATED", "PROJECT_DELETED", "AUTONOMOUS_MODE_CHANGED",
	"TASK_CREATED", "TASK_STATUS_CHANGED", "TASK_COMPLETED", "TASK_FAILED", "TASKS_UNBLOCKED",
	"TASK_DEPENDENCY_UPDATED", "TASK_UPDATED", "TASK_REMOVED", "TASK_PAUSED", "TASK_RESUMED",
	"SANDBOX_SPAWNED", "SANDBOX_EXITED", NULL
};

static int check_types(const struct ctl_cmd *cmd, json_object *args) {
	json_object *list = ctl_get(args, "types", json_type_array);

	for (size_t i = 0; list && i < json_object_array_length(list); i++) {
		const char *t = json_object_get_string(json_object_array_get_idx(list, i));
		const char *const *k = types;

		while (*k && strcmp(*k, t) != 0)
			k++;
		if (!*k) {
			fprintf(stderr, "dagctl events: --type: no event type '%s'; the types are:\n", t);
			for (k = types; *k; k++)
				fprintf(stderr, "  %s\n", *k);
			return ctl_usage_error(cmd, NULL);
		}
	}
	return 0;
}

/* Calls fn for each event of the log after since that args select, a page at
 * a time, until it returns non-zero; the last seq seen goes into *since. */
static int scan(struct ctl *c, json_object *args, int64_t *since,
		int (*fn)(struct ctl *c, json_object *ev, void *userdata), void *userdata) {
	int r;

	json_object_object_add(args, "follow", json_object_new_boolean(false));
	json_object_object_add(args, "limit", json_object_new_int(PAGE));
	for (;;) {
		_cleanup_(json_object_putp) json_object *result = NULL;
		json_object *evs;
		size_t n;

		json_object_object_add(args, "since", json_object_new_int64(*since));
		r = ctl_call(c, "events.subscribe", args, &result);
		if (r < 0)
			return r;
		evs = ctl_expect(result, "events", json_type_array);
		if (!evs)
			return -EBADMSG;
		n = json_object_array_length(evs);
		for (size_t i = 0; i < n; i++) {
			json_object *ev = json_object_array_get_idx(evs, i),
				*seq = ctl_get(ev, "seq", json_type_int);

			if (!seq)
				return ctl_bad_reply("an event without a seq");
			r = fn(c, ev, userdata);
			if (r != 0)
				return r;
			*since = json_object_get_int64(seq);
		}
		if (n < PAGE)
			return 0;
	}
}

/* --since TIME: stops at the first event at TIME or later. */
static int at_or_after(struct ctl *c, json_object *ev, void *userdata) {
	double t;

	if (ctl_parse_time(ctl_str(ev, "time"), &t) < 0)
		return ctl_bad_reply("an event with a bad time: %s", ctl_str(ev, "time"));
	return t >= *(double *) userdata;
}

/* -n N: keeps the last N events. */
struct last {
	json_object *ring;
	size_t n;
};

static int keep_last(struct ctl *c, json_object *ev, void *userdata) {
	struct last *l = userdata;

	json_object_array_add(l->ring, json_object_get(ev));
	if (json_object_array_length(l->ring) > l->n)
		json_object_array_del_idx(l->ring, 0, json_object_array_length(l->ring) - l->n);
	return 0;
}

static int print_one(struct ctl *c, json_object *ev, void *userdata) {
	print_event(c, ev);
	return 0;
}

/* --since: a seq as it is, or an RFC 3339 time: the seq of the last event
 * before it. */
static int since_seq(struct ctl *c, const struct ctl_cmd *cmd, json_object *args, int64_t *ret) {
	const char *s = json_object_get_string(ctl_get(args, "since", json_type_string));
	_cleanup_(json_object_putp) json_object *all = NULL;
	int64_t seq = 0;
	double t;
	char *end;
	int r;

	*ret = -1;
	if (!s)
		return 0;
	errno = 0;
	seq = strtoll(s, &end, 10);
	if (*s && !*end && errno == 0 && seq >= 0) {
		*ret = seq;
		return 0;
	}
	if (ctl_parse_time(s, &t) < 0)
		return ctl_usage_error(cmd, "--since: '%s' is neither a seq nor an RFC 3339 time", s);
	/* any event of the log will do: its seqs and times grow together */
	all = json_object_new_object();
	if (!all)
		return -ENOMEM;
	seq = 0;
	r = scan(c, all, &seq, at_or_after, &t);
	if (r < 0)
		return r;
	*ret = seq;
	return 0;
}

static int events_exec(struct ctl *c, const struct ctl_cmd *cmd, json_object *args,
		       int argc, char **argv) {
	json_object *last = ctl_get(args, "last", json_type_int);
	struct last l = { .n = last ? (size_t) json_object_get_int64(last) : 0 };
	int64_t since;
	int r;

	r = check_types(cmd, args);
	if (r < 0)
		return r;
	r = since_seq(c, cmd, args, &since);
	if (r < 0)
		return r;
	json_object_object_del(args, "since");
	json_object_object_del(args, "last");

	if (l.n > 0) {
		l.ring = json_object_new_array();
		if (!l.ring)
			return -ENOMEM;
		if (since < 0)
			since = 0;
		r = scan(c, args, &since, keep_last, &l);
		for (size_t i = 0; r >= 0 && i < json_object_array_length(l.ring); i++)
			print_event(c, json_object_array_get_idx(l.ring, i));
		json_object_put(l.ring);
		if (r < 0)
			return r;
		if (fflush(stdout) != 0)
			return -errno;
	}
	if (json_object_get_boolean(ctl_get(args, "follow", json_type_boolean))) {
		if (since >= 0)
			json_object_object_add(args, "since", json_object_new_int64(since));
		return follow(c, args);
	}
	if (l.n > 0)
		return 0;

	/* the whole log from since (default 0), a page at a time */
	if (since < 0)
		since = 0;
	r = scan(c, args, &since, print_one, NULL);
	if (r >= 0 && fflush(stdout) != 0)
		return -errno;
	return r < 0 ? r : 0;
}

static const struct ctl_opt events_opts[] = {
	{ "since", "SEQ|TIME", ARG_STRING, "since", 0,
	  "the events after SEQ, or from TIME (RFC 3339) on (default: all)" },
	{ "last", "N", ARG_INT, "last", 1, "only the last N of them" },
	{ "follow", NULL, ARG_TRUE, "follow", 0, "go on printing events as they come, until ^C" },
	{ "project", "PROJECT", ARG_STRING, "project", 0, "only this project's events" },
	{ "type", "TYPE", ARG_STRINGS, "types", 0, "only events of TYPE; repeat for more" },
	{}
};

const struct ctl_cmd ctl_cmd_events = {
	.name = "events",
	.usage = "[--since SEQ|TIME] [-n N] [--follow] [--project PROJECT] [--type TYPE]...",
	.summary = "Print the event log, or follow it",
	.details = "Each event is a line: SEQ TIME TYPE ENTITY key=value... (--json: the event).\n"
		   "Types: PROJECT_CREATED PROJECT_UPDATED PROJECT_DELETED AUTONOMOUS_MODE_CHANGED\n"
		   "TASK_CREATED TASK_STATUS_CHANGED TASK_COMPLETED TASK_FAILED TASKS_UNBLOCKED\n"
		   "TASK_DEPENDENCY_UPDATED TASK_UPDATED TASK_REMOVED TASK_PAUSED TASK_RESUMED\n"
		   "SANDBOX_SPAWNED SANDBOX_EXITED; another is refused.\n"
		   "With --follow, only new events unless --since or -n says from where.\n"
		   "Following goes on until ^C (exit 0); if the daemon goes away, dagctl says so\n"
		   "on stderr, reconnects when it is back and goes on after the last event it\n"
		   "printed: nothing is missed, nothing is printed twice.\n",
	.example = "  dagctl events -f -p build --type TASK_STATUS_CHANGED\n"
		   "  dagctl events --since 2026-11-25T12:00:00Z -n 20\n",
	.opts = events_opts,
	.exec = events_exec,
};
