/*
 * server-follow.c - what a client follows: the event log (events.subscribe)
 * and an attempt's output, or its validator's (task.logs with follow).
 *
 * Followers are fed at the end of a turn, from the database and from the log
 * file, while their client has less than OUT_FEED waiting to be read, so a
 * slow reader costs a bounded buffer and misses nothing.  A log follower is
 * sent whole lines only; a line longer than a feed goes in pieces, each but
 * the last in a message with "partial": true.  A follower is "behind" (and
 * its socket watched for room) only while there is something it could be
 * sent: a last line still without its newline waits for the file to change.
 */
#include <stdio.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>

#include "dagd.h"

struct sub {
	char *id;                       /* the request's id, as JSON text */
	int64_t cursor;                 /* last seq looked at */
	int64_t project_id;
	json_object *types;
	struct sub *next;
};

/* A follower of an attempt's log, or of its validator's. */
struct logsub {
	char *id;
	int64_t task_id;
	unsigned attempt;
	bool validation;
	int fd;
	off_t offset;                   /* sent up to here */
	off_t looked;                   /* read up to here (the rest of a line held back) */
	bool ended;                     /* its sandbox is gone: send the rest, then end */
	sd_event_source *watch;
	struct logsub *next;
};

static void logsub_free(struct logsub *l)
{
	sd_event_source_disable_unref(l->watch);
	closep(&l->fd);
	free(l->id);
	free(l);
}

void follow_free(struct client *c)
{
	struct sub *next;
	struct logsub *lnext;

	for (struct sub *s = c->subs; s; s = next) {
		next = s->next;
		free(s->id);
		json_object_put(s->types);
		free(s);
	}
	for (struct logsub *l = c->logsubs; l; l = lnext) {
		lnext = l->next;
		logsub_free(l);
	}
	c->subs = NULL;
	c->logsubs = NULL;
}

int server_subscribe(struct client *c, json_object *id, int64_t since, int64_t project_id,
		     json_object *types)
{
	struct sub *s = calloc(1, sizeof(*s));

	if (!s)
		abort();
	s->id = xstrdup(id ? json_text(id) : "null");
	s->cursor = since >= 0 ? since : server_committed_seq();
	s->project_id = project_id;
	s->types = json_object_get(types);
	s->next = c->subs;
	c->subs = s;
	server_kick();
	return 0;
}

static int on_log_change(sd_event_source *s, const struct inotify_event *ev, void *userdata)
{
	server_kick();
	return 0;
}

int server_follow_log(struct client *c, json_object *id, int64_t task_id, unsigned attempt,
		      bool validation, int fd, off_t offset)
{
	struct logsub *l = calloc(1, sizeof(*l));
	int r;

	if (!l)
		abort();
	l->id = xstrdup(id ? json_text(id) : "null");
	l->task_id = task_id;
	l->attempt = attempt;
	l->validation = validation;
	l->fd = fd;
	l->offset = l->looked = offset;
	r = sd_event_add_inotify_fd(D.event, &l->watch, fd, IN_MODIFY | IN_CLOSE_WRITE, on_log_change, l);
	if (r < 0)
		log_warning("cannot watch the log of t-%lld: %s", (long long) task_id, strerror(-r));
	l->next = c->logsubs;
	c->logsubs = l;
	server_kick();
	return 0;
}

/* Each log whose sandbox ended (the engine keeps them for the flush to take):
 * its followers are sent the rest, then the end. */
void follow_ended(void)
{
	size_t n;
	const struct log_end *e = engine_take_ended(&n);

	for (size_t i = 0; i < n; i++)
		for (struct client *c = clients; c; c = c->next)
			for (struct logsub *l = c->logsubs; l; l = l->next)
				if (l->task_id == e[i].task_id && l->attempt == e[i].attempt &&
				    l->validation == e[i].validation)
					l->ended = true;
}

static off_t log_size(const struct logsub *l)
{
	struct stat st;

	return fstat(l->fd, &st) < 0 ? l->offset : st.st_size;
}

bool follow_behind(const struct client *c)
{
	int64_t committed = server_committed_seq();

	for (struct sub *s = c->subs; s; s = s->next)
		if (s->cursor < committed)
			return true;
	for (struct logsub *l = c->logsubs; l; l = l->next)
		if (l->ended || log_size(l) > l->looked)
			return true;
	return false;
}

static int feed_line(int64_t seq, const char *line, void *userdata)
{
	void **a = userdata;
	struct client *c = a[0];
	struct sub *s = a[1];
	char *l = xasprintf("{\"id\":%s,\"event\":%s}\n", s->id, line);
	size_t n = strlen(l);

	l = utf8_valid_line(l, &n);
	client_out(c, l, n);
	free(l);
	return client_unsent(c) >= OUT_FEED ? -ENOBUFS : 0;
}

/* Send a log follower what was written since, and the end once its
 * sandbox is gone.  Returns false when it is done with. */
static bool feed_log(struct client *c, struct logsub *l)
{
	off_t size = log_size(l), upto = size, end;
	json_object *o = json_object_new_object(), *log = json_object_new_object(), *lines;
	bool done = false, partial = false, last;
	char id[24], *line;

	if (upto > l->offset + OUT_FEED)
		upto = l->offset + OUT_FEED;
	/* the very end of an ended log may lack its newline; anything else
	 * waits for the rest of its line */
	last = l->ended && upto == size;
	lines = log_lines(l->fd, l->offset, upto, !last, OUT_FEED, &end, &partial);
	l->looked = upto;
	json_object_object_add(log, "task_id", json_object_new_string(task_id_string(l->task_id, id)));
	json_object_object_add(log, "attempt", json_object_new_int((int) l->attempt));
	if (l->validation)
		json_object_object_add(log, "validation", json_object_new_boolean(true));
	json_object_object_add(log, "lines", lines);
	if (partial)
		json_object_object_add(log, "partial", json_object_new_boolean(true));
	if (l->ended && end == size) {
		struct task *t = task_find(id);

		json_object_object_add(log, "end", json_object_new_boolean(true));
		json_object_object_add(log, "status", json_object_new_string(
			t ? status_to_string(t->status) : "deleted"));
		done = true;
	}
	json_object_object_add(log, "offset", json_object_new_int64(end));
	if (done || end > l->offset) {
		json_object_object_add(o, "log", log);
		line = xasprintf("{\"id\":%s,%s\n", l->id, json_text(o) + 1);
		client_out(c, line, strlen(line));
		free(line);
	} else
		json_object_put(log);
	json_object_put(o);
	l->offset = end;
	return !done;
}

void follow_feed(struct client *c)
{
	int64_t committed = server_committed_seq();

	for (struct logsub **p = &c->logsubs, *l; (l = *p);) {
		bool more = true;

		/* (a log grown by more than a feed takes several turns) */
		while (more && client_unsent(c) < OUT_FEED && (l->ended || log_size(l) > l->looked)) {
			off_t before = l->offset;

			more = feed_log(c, l);
			if (more && l->offset == before)
				break;
		}
		if (more) {
			p = &l->next;
			continue;
		}
		*p = l->next;
		logsub_free(l);
	}
	for (struct sub *s = c->subs; s; s = s->next) {
		while (s->cursor < committed && client_unsent(c) < OUT_FEED) {
			void *a[2] = { c, s };
			int64_t last;

			(void) store_events_read(s->cursor, committed, s->project_id, s->types, 256,
						 feed_line, a, &last);
			if (last == s->cursor)
				break;
			s->cursor = last;
		}
	}
}
