/*
 * event-record.c - the compact records of the events a task makes by the
 * thousand: its status changes, its sandboxes' starts and exits, its
 * completion.  About six a task; written as their JSON they were most of
 * what a task wrote to the database, and building that text most of what
 * recording them cost.  Now each is a few bytes of what changed, and its
 * JSON is built only for a reader (store_events_read()), the same text as
 * before, field for field.
 *
 * A record sits in a chunk of schema/012 beside the text records (which
 * begin with their type's name, as the rarer events still are).  It begins
 * with its kind, a byte below 0x20, then its fields, each a number (an
 * unsigned LEB128 varint) or a string (a number: 0 for null, otherwise its
 * length + 1; then its bytes):
 *
 *   1 TASK_STATUS_CHANGED  time, task id, attempt, old status, new status
 *   2 SANDBOX_SPAWNED      time, task id, attempt, sandbox id, executor
 *   3 SANDBOX_EXITED       time, sandbox id, exit code + 1 (0: null),
 *                          signal (0: null), reason
 *   4 TASK_COMPLETED       time, task id, attempt, result (JSON text)
 *
 * The time is in microseconds; the project is the chunk's.  The encoders
 * and the decoder call nothing of the store's or the engine's.
 */
#include <stdio.h>
#include <string.h>

#include "dagd.h"
#include "event-record.h"
#include "jw.h"

enum {
	K_STATUS = 1,
	K_SPAWNED,
	K_EXITED,
	K_COMPLETED,
};

static void put(struct evrec *r, const void *p, size_t n)
{
	if (r->len + n > r->cap) {
		r->cap = r->len + n > 2 * r->cap ? r->len + n + 64 : 2 * r->cap;
		r->buf = xrealloc(r->buf, r->cap);
	}
	memcpy(r->buf + r->len, p, n);
	r->len += n;
}

static void put_num(struct evrec *r, uint64_t v)
{
	char b[10];
	size_t n = 0;

	do {
		b[n] = (char) (v & 0x7f);
		v >>= 7;
		if (v)
			b[n] |= (char) 0x80;
		n++;
	} while (v);
	put(r, b, n);
}

static void put_str(struct evrec *r, const char *s)
{
	size_t n;

	if (!s) {
		put_num(r, 0);
		return;
	}
	n = strlen(s);
	put_num(r, (uint64_t) n + 1);
	put(r, s, n);
}

static void start(struct evrec *r, int kind, int64_t time)
{
	char k = (char) kind;

	r->len = 0;
	put(r, &k, 1);
	put_num(r, (uint64_t) (time > 0 ? time : 0));
}

void evrec_status(struct evrec *r, int64_t time, int64_t task_id, unsigned attempt,
		  const char *old_status, const char *new_status)
{
	start(r, K_STATUS, time);
	put_num(r, (uint64_t) task_id);
	put_num(r, attempt);
	put_str(r, old_status);
	put_str(r, new_status);
}

void evrec_spawned(struct evrec *r, int64_t time, int64_t task_id, unsigned attempt,
		   const char *sandbox_id, const char *executor)
{
	start(r, K_SPAWNED, time);
	put_num(r, (uint64_t) task_id);
	put_num(r, attempt);
	put_str(r, sandbox_id);
	put_str(r, executor);
}

void evrec_exited(struct evrec *r, int64_t time, const char *sandbox_id, int code, int signal,
		  const char *reason)
{
	start(r, K_EXITED, time);
	put_str(r, sandbox_id);
	put_num(r, code >= 0 ? (uint64_t) code + 1 : 0);
	put_num(r, signal > 0 ? (uint64_t) signal : 0);
	put_str(r, reason);
}

void evrec_completed(struct evrec *r, int64_t time, int64_t task_id, unsigned attempt, const char *result)
{
	start(r, K_COMPLETED, time);
	put_num(r, (uint64_t) task_id);
	put_num(r, attempt);
	put_str(r, result);
}

/* --- reading ------------------------------------------------------------ */

static bool get_num(const char **p, const char *end, uint64_t *ret)
{
	uint64_t v = 0;

	for (unsigned shift = 0; shift < 64 && *p < end; shift += 7) {
		unsigned char c = (unsigned char) *(*p)++;

		v |= (uint64_t) (c & 0x7f) << shift;
		if (!(c & 0x80)) {
			*ret = v;
			return true;
		}
	}
	return false;
}

/* A string of the record, copied (NUL-terminated) into *buf: *ret NULL
 * for null. */
static bool get_str(const char **p, const char *end, char **buf, size_t *cap, const char **ret)
{
	uint64_t n;

	if (!get_num(p, end, &n))
		return false;
	if (n == 0) {
		*ret = NULL;
		return true;
	}
	n--;
	if (n > (uint64_t) (end - *p) || memchr(*p, 0, n))
		return false;
	if (n + 1 > *cap) {
		*cap = n + 1;
		*buf = xrealloc(*buf, *cap);
	}
	memcpy(*buf, *p, n);
	(*buf)[n] = 0;
	*p += n;
	*ret = *buf;
	return true;
}

/* the decoder's buffers: the payload, the entity id, two strings */
static struct jw payload;
static char entity_id[48];
static char *s1, *s2;
static size_t s1_cap, s2_cap;

static void ids(struct jw *w, int64_t task_id, int64_t project_id)
{
	char id[24];

	jw_key(w, "task_id");
	format_id(id, "t-", task_id);
	jw_str(w, id);
	if (project_id > 0) {
		format_id(id, "p-", project_id);
		jw_key(w, "project_id");
		jw_str(w, id);
	}
}

bool evrec_decode(const char **p, const char *end, int64_t project_id, struct event_view *v)
{
	struct jw *w = &payload;
	uint64_t time, a, b;
	const char *x, *y;
	int kind;

	if (*p >= end)
		return false;
	kind = (unsigned char) *(*p)++;
	if (!get_num(p, end, &time) || time > INT64_MAX)
		return false;
	v->time = (int64_t) time;
	w->len = 0;
	w->comma = false;
	jw_open(w, '{');
	switch (kind) {
	case K_STATUS:
		if (!get_num(p, end, &a) || !get_num(p, end, &b) || a > INT64_MAX || b > UINT32_MAX ||
		    !get_str(p, end, &s1, &s1_cap, &x) || !get_str(p, end, &s2, &s2_cap, &y))
			return false;
		v->type = "TASK_STATUS_CHANGED";
		v->entity = "task";
		format_id(entity_id, "t-", (int64_t) a);
		ids(w, (int64_t) a, project_id);
		jw_key(w, "old_status");
		jw_str(w, x);
		jw_key(w, "new_status");
		jw_str(w, y);
		jw_key(w, "attempt");
		jw_int(w, (int64_t) b);
		break;
	case K_SPAWNED:
		if (!get_num(p, end, &a) || !get_num(p, end, &b) || a > INT64_MAX || b > UINT32_MAX ||
		    !get_str(p, end, &s1, &s1_cap, &x) || !get_str(p, end, &s2, &s2_cap, &y) || !x)
			return false;
		v->type = "SANDBOX_SPAWNED";
		v->entity = "sandbox";
		snprintf(entity_id, sizeof(entity_id), "%s", x);
		jw_key(w, "sandbox_id");
		jw_str(w, x);
		ids(w, (int64_t) a, project_id);
		jw_key(w, "executor");
		jw_str(w, y);
		jw_key(w, "attempt");
		jw_int(w, (int64_t) b);
		break;
	case K_EXITED: {
		const char *dot;

		if (!get_str(p, end, &s1, &s1_cap, &x) || !x || !get_num(p, end, &a) || !get_num(p, end, &b) ||
		    a > (uint64_t) INT32_MAX + 1 || b > INT32_MAX || !get_str(p, end, &s2, &s2_cap, &y))
			return false;
		v->type = "SANDBOX_EXITED";
		v->entity = "sandbox";
		snprintf(entity_id, sizeof(entity_id), "%s", x);
		jw_key(w, "sandbox_id");
		jw_str(w, x);
		jw_key(w, "exit_code");
		if (a)
			jw_int(w, (int64_t) a - 1);
		else
			jw_raw(w, NULL);
		jw_key(w, "signal");
		if (b)
			jw_int(w, (int64_t) b);
		else
			jw_raw(w, NULL);
		jw_key(w, "reason");
		jw_str(w, y);
		/* its task's id is the sandbox id's first part (t-12 of t-12.1) */
		dot = strchr(x, '.');
		if (dot)
			s1[dot - x] = 0;
		jw_key(w, "task_id");
		jw_str(w, s1);
		if (project_id > 0) {
			char id[24];

			format_id(id, "p-", project_id);
			jw_key(w, "project_id");
			jw_str(w, id);
		}
		break;
	}
	case K_COMPLETED:
		if (!get_num(p, end, &a) || !get_num(p, end, &b) || a > INT64_MAX || b > UINT32_MAX ||
		    !get_str(p, end, &s1, &s1_cap, &x))
			return false;
		v->type = "TASK_COMPLETED";
		v->entity = "task";
		format_id(entity_id, "t-", (int64_t) a);
		ids(w, (int64_t) a, project_id);
		jw_key(w, "attempt");
		jw_int(w, (int64_t) b);
		jw_key(w, "result");
		jw_raw(w, x);
		break;
	default:
		return false;
	}
	jw_close(w, '}');
	v->type_len = strlen(v->type);
	v->entity_len = strlen(v->entity);
	v->entity_id = entity_id;
	v->entity_id_len = strlen(entity_id);
	v->payload = w->buf;
	v->payload_len = w->len;
	return true;
}
