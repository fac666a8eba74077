/*
 * web-sse.c - the page's live feeds as Server-Sent Events: dagd's events
 * (events.subscribe, each event an SSE message whose id is its seq) and a
 * task's log as it grows (task.logs with follow, the id being the byte
 * offset).  Each stream holds its own connection to dagd; when dagd goes
 * away it says so ("event: daemon", up false), reconnects with a growing
 * pause, and opens the feed again from the last seq or offset it sent, so
 * the page misses nothing across a daemon restart.  A browser that comes
 * back sends Last-Event-ID and is resumed the same way.  Many lines that are
 * there at once go out as one write.
 */
#include <inttypes.h>
#include <string.h>

#include "web.h"

#define TICK_USEC 1000000               /* how often a quiet stream looks at w->stopping */
#define KEEPALIVE_USEC 10000000         /* a comment line on a quiet stream this often */
#define BATCH_BYTES (256 * 1024)        /* what one write gathers at most */

struct stream {
	struct web *w;
	struct ctl c;
	const char *cmd;                /* the command that opens the feed */
	json_object *args;              /* its args, moved on (since, offset) as lines go out */
	void (*opened)(struct stream *s, json_object *result);
	void (*line)(struct stream *s, json_object *line);
	struct sbuf out;
	size_t out_off;
	int64_t last_write, pause;
	int up;                         /* -1 not known yet, 0 away, 1 there */
	bool end;                       /* end the stream once out is written */
};

static void stream_free(void *cls) {
	struct stream *s = cls;

	ctl_disconnect(&s->c);
	free(s->c.buf);
	json_object_put(s->args);
	sbuf_free(&s->out);
	free(s);
}

static void say_daemon(struct stream *s, bool up, const char *why) {
	_cleanup_(json_object_putp) json_object *o = json_object_new_object();

	if (!o || s->up == (int) up)
		return;
	s->up = up;
	json_object_object_add(o, "up", json_object_new_boolean(up));
	if (why)
		json_object_object_add(o, "error", json_object_new_string(why));
	sbuf_printf(&s->out, "event: daemon\ndata: %s\n\n", json_object_to_json_string_ext(o, CTL_JSON_LINE));
}

/* Sends the command that opens the feed on a new connection: 0, or the
 * transport's error, or -EREMOTEIO with the daemon's refusal said on the
 * stream. */
static int stream_open(struct stream *s) {
	_cleanup_(json_object_putp) json_object *reply = NULL;
	json_object *ok, *result;
	int r;

	ctl_disconnect(&s->c);
	s->c.deadline = ctl_monotonic() + 5 * TICK_USEC;
	r = ctl_request(&s->c, s->cmd, s->args, &reply);
	s->c.deadline = 0;
	if (r < 0) {
		ctl_disconnect(&s->c);
		return r;
	}
	ok = ctl_get(reply, "ok", json_type_boolean);
	result = ctl_get(reply, "result", json_type_object);
	if (!ok || !json_object_get_boolean(ok) || !result) {
		json_object *e = ctl_get(reply, "error", json_type_object);

		web_scrub(reply);
		sbuf_printf(&s->out, "event: failed\ndata: %s\n\n",
			    json_object_to_json_string_ext(e ?: reply, CTL_JSON_LINE));
		s->end = true;
		return -EREMOTEIO;
	}
	say_daemon(s, true, NULL);
	s->pause = 0;
	s->opened(s, result);
	return 0;
}

/* Gathers what comes from dagd into s->out, waiting at most a tick. */
static int stream_fill(struct stream *s) {
	_cleanup_(json_object_putp) json_object *o = NULL;
	int r;

	if (s->c.fd < 0) {
		if (s->pause > 0 && ctl_pause(&s->c, -1, s->pause < TICK_USEC ? s->pause : TICK_USEC) == -EINTR)
			return -EINTR;
		r = stream_open(s);
		if (r == -EREMOTEIO || r >= 0)
			return 0;
		if (!ctl_lost(r) && r != -ETIME)
			return r;
		say_daemon(s, false, s->c.err);
		s->pause = ctl_backoff(s->pause);
		return 0;
	}
	s->c.deadline = ctl_monotonic() + TICK_USEC;
	r = ctl_read(&s->c, &o);
	s->c.deadline = 0;
	if (r == -ETIME)
		return 0;
	if (r < 0) {
		ctl_disconnect(&s->c);
		if (!ctl_lost(r))
			return r;
		say_daemon(s, false, s->c.err);
		return 0;
	}
	s->line(s, o);
	while (s->out.len < BATCH_BYTES && !s->end) {
		json_object_put(TAKE_PTR(o));
		r = ctl_read_ready(&s->c, &o);
		if (r <= 0)
			break;
		s->line(s, o);
	}
	return 0;
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max) {
	struct stream *s = cls;

	for (;;) {
		if (s->out_off < s->out.len) {
			size_t n = s->out.len - s->out_off < max ? s->out.len - s->out_off : max;

			memcpy(buf, s->out.s + s->out_off, n);
			s->out_off += n;
			s->last_write = ctl_monotonic();
			return (ssize_t) n;
		}
		s->out.len = s->out_off = 0;
		if (s->end || s->w->stopping)
			return MHD_CONTENT_READER_END_OF_STREAM;
		if (ctl_monotonic() - s->last_write >= KEEPALIVE_USEC) {
			sbuf_printf(&s->out, ": keepalive\n\n");
			continue;
		}
		if (stream_fill(s) < 0)
			return MHD_CONTENT_READER_END_WITH_ERROR;
	}
}

/* Starts the stream: its first open happens now, so that a refusal (no such
 * project) is an HTTP error; a daemon that is away is said on the stream. */
static enum MHD_Result stream_start(struct web_req *q, struct stream *s) {
	struct MHD_Response *resp;
	int r;

	s->w = q->w;
	s->c = (struct ctl) { .socket_path = q->w->socket_path, .fd = -EBADF, .next_id = 1, .quiet = true };
	s->up = -1;
	s->last_write = ctl_monotonic();
	r = stream_open(s);
	if (r == -EREMOTEIO) {
		_cleanup_(json_object_putp) json_object *o = NULL;
		const char *data = strstr(s->out.s, "data: ");

		if (data && ctl_parse_json(data + 6, strlen(data + 6), &o) >= 0) {
			const char *code = ctl_str(o, "code");

			stream_free(s);
			return web_error(q, strcmp(code, "not_found") == 0 ? 404 : 400, code, "%s",
					 ctl_str(o, "message"));
		}
	} else if (r < 0)
		say_daemon(s, false, s->c.err);
	resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 32 * 1024, stream_read, s, stream_free);
	if (!resp) {
		stream_free(s);
		return MHD_NO;
	}
	MHD_add_response_header(resp, "Content-Type", "text/event-stream");
	MHD_add_response_header(resp, "X-Accel-Buffering", "no");
	return web_send(q, 200, resp);
}

/* A whole number from the query, or from Last-Event-ID (which wins). */
static int resume_from(struct web_req *q, const char *key, int64_t *ret) {
	const char *s = MHD_lookup_connection_value(q->conn, MHD_HEADER_KIND, "Last-Event-ID");
	char *end;
	long long n;

	if (!s || !*s)
		s = MHD_lookup_connection_value(q->conn, MHD_GET_ARGUMENT_KIND, key);
	if (!s || !*s)
		return 0;
	errno = 0;
	n = strtoll(s, &end, 10);
	if (errno || *end || n < 0)
		return -EINVAL;
	*ret = n;
	return 1;
}

static void events_opened(struct stream *s, json_object *result) {
	json_object *last = ctl_get(result, "last_seq", json_type_int);

	/* from now on, a reopened feed goes on from the last event sent */
	if (!json_object_object_get_ex(s->args, "since", NULL) && last)
		json_object_object_add(s->args, "since", json_object_get(last));
	sbuf_printf(&s->out, "event: hello\ndata: {\"last_seq\":%" PRId64 "}\n\n",
		    json_object_get_int64(last));
}

static void events_line(struct stream *s, json_object *line) {
	json_object *ev = ctl_get(line, "event", json_type_object), *seq;

	if (!ev || !(seq = ctl_get(ev, "seq", json_type_int)))
		return;
	web_scrub(ev);
	json_object_object_add(s->args, "since", json_object_get(seq));
	sbuf_printf(&s->out, "id: %" PRId64 "\ndata: %s\n\n", json_object_get_int64(seq),
		    json_object_to_json_string_ext(ev, CTL_JSON_LINE));
}

enum MHD_Result web_events(struct web_req *q) {
	struct stream *s = calloc(1, sizeof *s);
	const char *project = MHD_lookup_connection_value(q->conn, MHD_GET_ARGUMENT_KIND, "project");
	int64_t since;
	int r;

	if (!s || !(s->args = json_object_new_object())) {
		free(s);
		return MHD_NO;
	}
	s->cmd = "events.subscribe";
	s->opened = events_opened;
	s->line = events_line;
	r = resume_from(q, "since", &since);
	if (r < 0) {
		stream_free(s);
		return web_error(q, 400, "bad_request", "since is a seq");
	}
	if (r > 0)
		json_object_object_add(s->args, "since", json_object_new_int64(since));
	if (project && *project)
		json_object_object_add(s->args, "project", json_object_new_string(project));
	return stream_start(q, s);
}

/* One piece of a log, as the page gets it. */
static void log_piece(struct stream *s, json_object *o) {
	json_object *off = ctl_get(o, "offset", json_type_int), *att = ctl_get(o, "attempt", json_type_int);
	json_object *end = ctl_get(o, "end", json_type_boolean);

	if (att)
		json_object_object_add(s->args, "attempt", json_object_get(att));
	if (off) {
		json_object_object_add(s->args, "offset", json_object_get(off));
		json_object_object_del(s->args, "max_bytes");
	}
	web_scrub(o);
	sbuf_printf(&s->out, "id: %" PRId64 "\ndata: %s\n\n", json_object_get_int64(off),
		    json_object_to_json_string_ext(o, CTL_JSON_LINE));
	if (end && json_object_get_boolean(end))
		s->end = true;
}

static void log_opened(struct stream *s, json_object *result) {
	log_piece(s, result);
}

static void log_line(struct stream *s, json_object *line) {
	json_object *log = ctl_get(line, "log", json_type_object);

	if (log)
		log_piece(s, log);
}

enum MHD_Result web_log_stream(struct web_req *q, const char *task_id) {
	struct stream *s = calloc(1, sizeof *s);
	const char *attempt = MHD_lookup_connection_value(q->conn, MHD_GET_ARGUMENT_KIND, "attempt");
	int64_t offset;
	int r;

	if (!s || !(s->args = json_object_new_object())) {
		free(s);
		return MHD_NO;
	}
	s->cmd = "task.logs";
	s->opened = log_opened;
	s->line = log_line;
	json_object_object_add(s->args, "task_id", json_object_new_string(task_id));
	json_object_object_add(s->args, "follow", json_object_new_boolean(true));
	json_object_object_add(s->args, "max_bytes", json_object_new_int(256 * 1024));
	if (attempt && *attempt)
		json_object_object_add(s->args, "attempt", json_object_new_int64(strtoll(attempt, NULL, 10)));
	r = resume_from(q, "offset", &offset);
	if (r < 0) {
		stream_free(s);
		return web_error(q, 400, "bad_request", "offset is a byte offset");
	}
	if (r > 0) {
		json_object_object_add(s->args, "offset", json_object_new_int64(offset));
		json_object_object_del(s->args, "max_bytes");
	}
	return stream_start(q, s);
}
