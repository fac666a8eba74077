/*
 * ctl-client.c - the one way dagctl talks to dagd: connect to its socket,
 * send a request line, read reply lines of any length, match a reply to its
 * request by id, and turn an error reply into "dagctl: CODE: MESSAGE".
 * Lines of a stream (events, a followed log) that come while a reply is
 * awaited are kept, in order, for ctl_read().
 */
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <string.h>
#include <time.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "dagctl.h"

#define BUF_MIN (64 * 1024)
#define LINE_MAX_BYTES (512u * 1024 * 1024)
#define JSON_DEPTH 512

/* Records a transport error, prints it unless c->quiet, and returns r. */
int ctl_fail(struct ctl *c, int r, const char *format, ...) {
	va_list ap;

	va_start(ap, format);
	vsnprintf(c->err, sizeof c->err, format, ap);
	va_end(ap);
	if (!c->quiet)
		fprintf(stderr, "dagctl: %s\n", c->err);
	return r;
}

/* Parses exactly one JSON value, white space around it allowed; s[len] must be
 * '\0'.  JSON null is a NULL object. */
int ctl_parse_json(const char *s, size_t len, json_object **ret) {
	enum json_tokener_error e;
	json_tokener *tok;
	json_object *o;
	size_t end;

	if (len >= INT32_MAX)
		return -E2BIG;
	tok = json_tokener_new_ex(JSON_DEPTH);
	if (!tok)
		return -ENOMEM;
	o = json_tokener_parse_ex(tok, s, (int) len + 1);       /* the '\0' ends a bare number */
	e = json_tokener_get_error(tok);
	end = json_tokener_get_parse_end(tok);
	json_tokener_free(tok);
	if (e != json_tokener_success)
		return -EBADMSG;
	while (end < len && (s[end] == ' ' || s[end] == '\t' || s[end] == '\r' || s[end] == '\n'))
		end++;
	if (end < len) {
		json_object_put(o);
		return -EBADMSG;
	}
	*ret = o;
	return 0;
}

static int fail_connect(struct ctl *c, int r) {
	char hint[512];

	return ctl_fail(c, r, "cannot connect to dagd at '%s': %s\n%s", c->socket_path, strerror(-r),
			ctl_socket_hint(c, r, hint, sizeof hint));
}

int ctl_connect(struct ctl *c) {
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	_cleanup_(closep) int fd = -EBADF;

	if (c->fd >= 0)
		return 0;
	if (strlen(c->socket_path) >= sizeof sa.sun_path)
		return fail_connect(c, -ENAMETOOLONG);
	strcpy(sa.sun_path, c->socket_path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return fail_connect(c, -errno);
	if (connect(fd, (struct sockaddr *) &sa, sizeof sa) < 0)
		return fail_connect(c, -errno);
	c->fd = TAKE_FD(fd);
	return 0;
}

void ctl_disconnect(struct ctl *c) {
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -EBADF;
	c->buf_start = c->buf_end = c->buf_scanned = 0;
	json_object_put(TAKE_PTR(c->queue));
	c->queue_head = 0;
}

/* Whether r means the daemon went away (or is not back yet): worth reconnecting. */
bool ctl_lost(int r) {
	return r == -ECONNRESET || r == -EPIPE || r == -ECONNREFUSED || r == -ENOENT ||
	       r == -ENOTCONN || r == -ECONNABORTED;
}

int64_t ctl_monotonic(void) {
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Waits until fd (if >= 0) is readable or usec (-1: no limit) have passed,
 * letting in the signals of c->waitmask: -EINTR if one came, -ETIME if
 * c->deadline has passed, else 0. */
int ctl_pause(struct ctl *c, int fd, int64_t usec) {
	struct pollfd p = { .fd = fd, .events = POLLIN };
	struct timespec ts;

	if (c->deadline) {
		int64_t left = c->deadline - ctl_monotonic();

		if (left <= 0)
			return -ETIME;
		if (usec < 0 || usec > left)
			usec = left;
	}
	ts = (struct timespec) { usec / 1000000, usec % 1000000 * 1000 };
	if (ppoll(fd >= 0 ? &p : NULL, fd >= 0, usec >= 0 ? &ts : NULL, c->waitmask) < 0) {
		if (errno == EINTR)
			return -EINTR;
		return ctl_fail(c, -errno, "poll: %s", strerror(errno));
	}
	if (c->deadline && ctl_monotonic() >= c->deadline)
		return -ETIME;
	return 0;
}

static int gone(struct ctl *c) {
	return ctl_fail(c, -ECONNRESET, "dagd at '%s' closed the connection", c->socket_path);
}

static int send_all(struct ctl *c, const char *p, size_t n) {
	while (n > 0) {
		ssize_t k = send(c->fd, p, n, MSG_NOSIGNAL);

		if (k < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EPIPE || errno == ECONNRESET)
				return gone(c);
			return ctl_fail(c, -errno, "cannot write to dagd at '%s': %s",
					c->socket_path, strerror(errno));
		}
		p += k;
		n -= k;
	}
	return 0;
}

/* Reads more bytes into the buffer.  -EINTR, silent, if c->waitmask let a signal
 * in; -ETIME, silent, at c->deadline; -EAGAIN if !wait and nothing is there. */
static int fill(struct ctl *c, bool wait) {
	if (c->buf_start > 0) {
		memmove(c->buf, c->buf + c->buf_start, c->buf_end - c->buf_start);
		c->buf_end -= c->buf_start;
		c->buf_start = 0;
	}
	if (c->buf_end == c->buf_size) {
		size_t n = c->buf_size ? c->buf_size * 2 : BUF_MIN;
		char *b;

		if (n > LINE_MAX_BYTES)
			return ctl_fail(c, -EBADMSG, "dagd sent a line longer than %u bytes",
					LINE_MAX_BYTES);
		b = realloc(c->buf, n);
		if (!b)
			return ctl_fail(c, -ENOMEM, "out of memory");
		c->buf = b;
		c->buf_size = n;
	}
	for (;;) {
		ssize_t n;
		int r;

		if (wait && (c->waitmask || c->deadline)) {
			r = ctl_pause(c, c->fd, -1);
			if (r < 0)
				return r;
		}
		n = recv(c->fd, c->buf + c->buf_end, c->buf_size - c->buf_end, wait ? 0 : MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EAGAIN && !wait)
				return -EAGAIN;
			if (errno == EINTR || errno == EAGAIN)
				continue;
			if (errno == ECONNRESET)
				return gone(c);
			return ctl_fail(c, -errno, "cannot read from dagd at '%s': %s",
					c->socket_path, strerror(errno));
		}
		if (n == 0)
			return gone(c);
		c->buf_end += n;
		return 0;
	}
}

/* The next line from the socket as text, '\0'-terminated, in c's buffer
 * until the next read; blank lines are skipped. */
static int socket_text(struct ctl *c, char **ret, size_t *ret_len, bool wait) {
	for (;;) {
		char *line = c->buf + c->buf_start;
		char *nl = c->buf_end > c->buf_start + c->buf_scanned ?
			memchr(line + c->buf_scanned, '\n', c->buf_end - c->buf_start - c->buf_scanned) : NULL;
		size_t len;
		int r;

		if (!nl) {
			c->buf_scanned = c->buf_end - c->buf_start;
			r = fill(c, wait);
			if (r < 0)
				return r;
			continue;
		}
		len = nl - line;
		*nl = '\0';
		c->buf_start += len + 1;
		c->buf_scanned = 0;
		if (strspn(line, " \t\r") >= len)
			continue;
		*ret = line;
		*ret_len = len;
		return 0;
	}
}

static int line_json(struct ctl *c, char *line, size_t len, json_object **ret) {
	json_object *o = NULL;
	int r = ctl_parse_json(line, len, &o);

	if (r < 0 || !json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		return ctl_fail(c, -EBADMSG, "dagd sent a line that is not a JSON object: %.*s",
				(int) (len > 200 ? 200 : len), line);
	}
	*ret = o;
	return 0;
}

/* The next line from the socket, which must be a JSON object. */
static int socket_line(struct ctl *c, json_object **ret, bool wait) {
	char *line;
	size_t len;
	int r = socket_text(c, &line, &len, wait);

	return r < 0 ? r : line_json(c, line, len, ret);
}

/* The next line from the daemon: the kept ones first. */
static int next_line(struct ctl *c, json_object **ret, bool wait) {
	if (!c->queue)
		return socket_line(c, ret, wait);
	*ret = json_object_get(json_object_array_get_idx(c->queue, c->queue_head++));
	if (c->queue_head == json_object_array_length(c->queue)) {
		json_object_put(TAKE_PTR(c->queue));
		c->queue_head = 0;
	}
	return 0;
}

int ctl_read(struct ctl *c, json_object **ret) {
	return next_line(c, ret, true);
}

/* The next line if there is one without waiting: 1 and *ret, or 0. */
int ctl_read_ready(struct ctl *c, json_object **ret) {
	int r = next_line(c, ret, false);

	return r == -EAGAIN ? 0 : r < 0 ? r : 1;
}

/* Reads lines until the reply to request id, keeping the lines of a stream
 * for ctl_read().  take, if given, is shown each line as text first: 1 if
 * it took it as the reply (then *ret_reply is not set). */
static int await_reply(struct ctl *c, int64_t id, ctl_take_fn take, void *userdata, json_object **ret_reply) {
	for (;;) {
		_cleanup_(json_object_putp) json_object *reply = NULL;
		json_object *rid = NULL, *ok;
		char *line;
		size_t len;
		int r;

		r = socket_text(c, &line, &len, true);
		if (r < 0)
			return r;
		if (take && (r = take(c, line, len, id, userdata)) != 0)
			return r < 0 ? r : 1;
		r = line_json(c, line, len, &reply);
		if (r < 0)
			return r;
		ok = ctl_get(reply, "ok", json_type_boolean);
		if (!ok && (json_object_object_get_ex(reply, "event", NULL) ||
			    json_object_object_get_ex(reply, "log", NULL))) {
			/* a line of a stream, not the reply: kept for ctl_read() */
			if (!c->queue && !(c->queue = json_object_new_array()))
				return ctl_fail(c, -ENOMEM, "out of memory");
			json_object_array_add(c->queue, TAKE_PTR(reply));
			continue;
		}
		json_object_object_get_ex(reply, "id", &rid);
		/* a line the daemon could not read is answered with "id": null */
		if (json_object_is_type(rid, json_type_int) ? json_object_get_int64(rid) != id
		    : rid || !ok || json_object_get_boolean(ok))
			return ctl_fail(c, -EBADMSG, "dagd answered request %" PRId64 " with id %s",
					id, json_object_to_json_string_ext(rid, CTL_JSON_LINE));
		*ret_reply = TAKE_PTR(reply);
		return 0;
	}
}

/* Sends one request (args are borrowed) and reads its reply, whatever it says. */
int ctl_request(struct ctl *c, const char *cmd, json_object *args, json_object **ret_reply) {
	_cleanup_(json_object_putp) json_object *req = json_object_new_object();
	int64_t id = c->next_id++;
	const char *s;
	int r;

	if (!req)
		return ctl_fail(c, -ENOMEM, "out of memory");
	r = ctl_connect(c);
	if (r < 0)
		return r;
	json_object_object_add(req, "id", json_object_new_int64(id));
	json_object_object_add(req, "cmd", json_object_new_string(cmd));
	if (args)
		json_object_object_add(req, "args", json_object_get(args));
	s = json_object_to_json_string_ext(req, CTL_JSON_LINE);
	r = send_all(c, s, strlen(s));
	if (r >= 0)
		r = send_all(c, "\n", 1);
	if (r < 0)
		return r;
	return await_reply(c, id, NULL, NULL, ret_reply);
}

int ctl_request_text(struct ctl *c, const char *cmd, const char *args, size_t len,
		     ctl_take_fn take, void *userdata, json_object **ret_reply) {
	_cleanup_(json_object_putp) json_object *name = json_object_new_string(cmd);
	_cleanup_(freep) char *head = NULL;
	int64_t id = c->next_id++;
	int r;

	if (!name || asprintf(&head, "{\"id\":%" PRId64 ",\"cmd\":%s,\"args\":", id,
			      json_object_to_json_string_ext(name, CTL_JSON_LINE)) < 0)
		return ctl_fail(c, -ENOMEM, "out of memory");
	r = ctl_connect(c);
	if (r < 0)
		return r;
	r = send_all(c, head, strlen(head));
	if (r >= 0)
		r = send_all(c, args, len);
	if (r >= 0)
		r = send_all(c, "}\n", 2);
	if (r < 0)
		return r;
	return await_reply(c, id, take, userdata, ret_reply);
}

/* The result of a reply; an error reply is printed and is -EREMOTEIO. */
int ctl_result(json_object *reply, json_object **ret_result) {
	json_object *ok = ctl_get(reply, "ok", json_type_boolean), *v;

	if (!ok)
		return ctl_bad_reply("no \"ok\" in %s", json_object_to_json_string_ext(reply, CTL_JSON_LINE));
	if (!json_object_get_boolean(ok)) {
		json_object *e = ctl_get(reply, "error", json_type_object);
		const char *code = e ? ctl_str(e, "code") : "-", *msg = e ? ctl_str(e, "message") : "-";

		fprintf(stderr, "dagctl: %s: %s\n", strcmp(code, "-") ? code : "error",
			strcmp(msg, "-") ? msg : "(no message)");
		return -EREMOTEIO;
	}
	v = ctl_get(reply, "result", json_type_object);
	if (!v)
		return ctl_bad_reply("no result object in %s",
				     json_object_to_json_string_ext(reply, CTL_JSON_LINE));
	*ret_result = json_object_get(v);
	return 0;
}

/* Says an error: "dagctl: CODE: MESSAGE", or with --json the object
 * {"error": {"code": CODE, "message": MESSAGE}}, on stderr. */
void ctl_error(struct ctl *c, const char *code, const char *format, ...) {
	_cleanup_(json_object_putp) json_object *o = NULL;
	_cleanup_(freep) char *msg = NULL;
	json_object *e;
	va_list ap;
	int r;

	va_start(ap, format);
	r = vasprintf(&msg, format, ap);
	va_end(ap);
	if (r < 0)
		msg = NULL;
	if (!c->json || !(o = json_object_new_object()) || !(e = json_object_new_object())) {
		fprintf(stderr, "dagctl: %s: %s\n", code, msg ?: format);
		return;
	}
	json_object_object_add(e, "code", json_object_new_string(code));
	json_object_object_add(e, "message", json_object_new_string(msg ?: format));
	json_object_object_add(o, "error", e);
	fprintf(stderr, "%s\n", json_object_to_json_string_ext(o, CTL_JSON_LINE));
}

/* ctl_result(), the error said as c wants it (ctl_error), its code kept in c->code. */
int ctl_reply_result(struct ctl *c, json_object *reply, json_object **ret_result) {
	json_object *ok = ctl_get(reply, "ok", json_type_boolean), *e;

	c->code[0] = '\0';
	if (!ok || json_object_get_boolean(ok) || !c->json) {
		int r = ctl_result(reply, ret_result);

		if (r == -EREMOTEIO) {
			snprintf(c->code, sizeof c->code, "%s",
				 ctl_str(ctl_get(reply, "error", json_type_object), "code"));
			/* the socket let us in, as anyone: only operators may do more */
			if (strcmp(c->code, "permission_denied") == 0) {
				char hint[512];

				fprintf(stderr, "%s\n", ctl_socket_hint(c, -EACCES, hint, sizeof hint));
			}
		}
		return r;
	}
	e = ctl_get(reply, "error", json_type_object);
	snprintf(c->code, sizeof c->code, "%s", e ? ctl_str(e, "code") : "error");
	ctl_error(c, c->code, "%s", e ? ctl_str(e, "message") : "(no message)");
	return -EREMOTEIO;
}

int ctl_call(struct ctl *c, const char *cmd, json_object *args, json_object **ret_result) {
	_cleanup_(json_object_putp) json_object *reply = NULL;
	int r;

	r = ctl_request(c, cmd, args, &reply);
	if (r < 0)
		return r;
	return ctl_reply_result(c, reply, ret_result);
}

/* Calls cmd, then prints its result: as JSON if asked, else with show(). */
/* The commands whose answers may be long, and the list each answers with:
 * asked for page by page (keyset: "after" the last id of the page before),
 * so that no answer is huge, and put together again. */
static const struct { const char *cmd, *key; } paged[] = {
	{ "task.list", "tasks" }, { "project.list", "projects" },
};
#define PAGE_SIZE 1000

static int call_paged(struct ctl *c, const char *cmd, const char *key, json_object *args, json_object **ret) {
	_cleanup_(json_object_putp) json_object *all = NULL;
	json_object *list = json_object_new_array();
	int r;

	if (!list)
		return -ENOMEM;
	json_object_object_add(args, "limit", json_object_new_int(PAGE_SIZE));
	for (;;) {
		_cleanup_(json_object_putp) json_object *page = NULL;
		json_object *items, *next;

		r = ctl_call(c, cmd, args, &page);
		if (r < 0) {
			json_object_put(list);
			return r;
		}
		items = ctl_expect(page, key, json_type_array);
		if (!items) {
			json_object_put(list);
			return -EBADMSG;
		}
		for (size_t i = 0; i < json_object_array_length(items); i++)
			json_object_array_add(list, json_object_get(json_object_array_get_idx(items, i)));
		next = ctl_get(page, "next", json_type_string);
		if (!next)
			break;
		json_object_object_add(args, "after", json_object_get(next));
	}
	json_object_object_del(args, "limit");
	json_object_object_del(args, "after");
	all = json_object_new_object();
	if (!all) {
		json_object_put(list);
		return -ENOMEM;
	}
	json_object_object_add(all, key, list);
	*ret = TAKE_PTR(all);
	return 0;
}

int ctl_run(struct ctl *c, const char *cmd, json_object *args, int (*show)(json_object *result)) {
	_cleanup_(json_object_putp) json_object *result = NULL;
	const char *key = NULL;
	int r;

	for (size_t i = 0; i < ELEMENTSOF(paged); i++)
		if (strcmp(paged[i].cmd, cmd) == 0 && !json_object_object_get_ex(args, "limit", NULL))
			key = paged[i].key;
	r = key ? call_paged(c, cmd, key, args, &result) : ctl_call(c, cmd, args, &result);
	if (r < 0)
		return r;
	if (c->json || !show)
		return ctl_print_json(result, CTL_JSON_PRETTY);
	return show(result);
}
