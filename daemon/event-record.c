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

/* a record of a task's attempt: its kind, time, task id and attempt */
static void start_task(struct evrec *r, int kind, int64_t time, int64_t task_id, unsigned attempt)
{
	start(r, kind, time);
	put_num(r, (uint64_t) task_id);
	put_num(r, attempt);
}

void evrec_status(struct evrec *r, int64_t time, int64_t task_id, unsigned attempt,
		  const char *old_status, const char *new_status)
{
	start_task(r, K_STATUS, time, task_id, attempt);
	put_str(r, old_status);
	put_str(r, new_status);
}

void evrec_spawned(struct evrec *r, int64_t time, int64_t task_id, unsigned attempt,
		   const char *sandbox_id, const char *executor)
{
	start_task(r, K_SPAWNED, time, task_id, attempt);
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
	start_task(r, K_COMPLETED, time, task_id, attempt);
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

/* The record last decoded, until the next: its fields, its strings in
 * buffers of their own, and the payload when asked for. */
static struct {
	int kind;
	int64_t project_id;
	uint64_t a, b;          /* task id, attempt; or exit code + 1, signal */
	const char *x, *y;      /* its strings, in s1 and s2 */
} cur;
static char *s1, *s2;
static size_t s1_cap, s2_cap;
static char entity_id[48];
static struct jw payload;

static const char *const types[] = {
	[K_STATUS] = "TASK_STATUS_CHANGED",
	[K_SPAWNED] = "SANDBOX_SPAWNED",
	[K_EXITED] = "SANDBOX_EXITED",
	[K_COMPLETED] = "TASK_COMPLETED",
};

static void key_str(struct jw *w, const char *key, const char *s)
{
	jw_key(w, key);
	jw_str(w, s);
}

/* a number stored as v, 0 for null: null, or v - minus */
static void key_int(struct jw *w, const char *key, uint64_t v, int64_t minus)
{
	jw_key(w, key);
	if (v)
		jw_int(w, (int64_t) v - minus);
	else
		jw_raw(w, NULL);
}

/* what the payloads of a task's events begin or end with */
static void ids(struct jw *w, const char *task_id, int64_t project_id)
{
	char id[24];

	key_str(w, "task_id", task_id);
	if (project_id > 0) {
		format_id(id, "p-", project_id);
		key_str(w, "project_id", id);
	}
}

/* Its type, entity and time; its payload stays to be built (NULL) by
 * evrec_payload(), for an event a reader is given, not for one passed by. */
bool evrec_decode(const char **p, const char *end, int64_t project_id, struct event_view *v)
{
	uint64_t time;
	bool sandbox;

	if (*p >= end)
		return false;
	cur.kind = (unsigned char) *(*p)++;
	cur.project_id = project_id;
	if (!get_num(p, end, &time) || time > INT64_MAX)
		return false;
	switch (cur.kind) {
	case K_STATUS:
	case K_SPAWNED:
	case K_COMPLETED:
		if (!get_num(p, end, &cur.a) || !get_num(p, end, &cur.b) || cur.a > INT64_MAX || cur.b > UINT32_MAX ||
		    !get_str(p, end, &s1, &s1_cap, &cur.x) ||
		    (cur.kind != K_COMPLETED && !get_str(p, end, &s2, &s2_cap, &cur.y)) ||
		    (cur.kind == K_SPAWNED && !cur.x))
			return false;
		break;
	case K_EXITED:
		if (!get_str(p, end, &s1, &s1_cap, &cur.x) || !cur.x || !get_num(p, end, &cur.a) ||
		    !get_num(p, end, &cur.b) || cur.a > (uint64_t) INT32_MAX + 1 || cur.b > INT32_MAX ||
		    !get_str(p, end, &s2, &s2_cap, &cur.y))
			return false;
		break;
	default:
		return false;
	}
	sandbox = cur.kind == K_SPAWNED || cur.kind == K_EXITED;
	if (sandbox)
		snprintf(entity_id, sizeof(entity_id), "%s", cur.x);
	else
		format_id(entity_id, "t-", (int64_t) cur.a);
	v->type = types[cur.kind];
	v->type_len = strlen(v->type);
	v->entity = sandbox ? "sandbox" : "task";
	v->entity_len = strlen(v->entity);
	v->entity_id = entity_id;
	v->entity_id_len = strlen(entity_id);
	v->time = (int64_t) time;
	v->payload = NULL;
	v->payload_len = 0;
	return true;
}

void evrec_payload(struct event_view *v)
{
	struct jw *w = &payload;
	char task_id[48];

	w->len = 0;
	w->comma = false;
	jw_open(w, '{');
	switch (cur.kind) {
	case K_STATUS:
		ids(w, entity_id, cur.project_id);
		key_str(w, "old_status", cur.x);
		key_str(w, "new_status", cur.y);
		jw_key(w, "attempt");
		jw_int(w, (int64_t) cur.b);
		break;
	case K_SPAWNED:
		key_str(w, "sandbox_id", cur.x);
		format_id(task_id, "t-", (int64_t) cur.a);
		ids(w, task_id, cur.project_id);
		key_str(w, "executor", cur.y);
		jw_key(w, "attempt");
		jw_int(w, (int64_t) cur.b);
		break;
	case K_EXITED:
		key_str(w, "sandbox_id", cur.x);
		key_int(w, "exit_code", cur.a, 1);
		key_int(w, "signal", cur.b, 0);
		key_str(w, "reason", cur.y);
		/* its task's id is the sandbox id's first part (t-12 of t-12.1) */
		snprintf(task_id, sizeof(task_id), "%.*s", (int) strcspn(cur.x, "."), cur.x);
		ids(w, task_id, cur.project_id);
		break;
	case K_COMPLETED:
		ids(w, entity_id, cur.project_id);
		jw_key(w, "attempt");
		jw_int(w, (int64_t) cur.b);
		jw_key(w, "result");
		jw_raw(w, cur.x);
		break;
	}
	jw_close(w, '}');
	v->payload = w->buf;
	v->payload_len = w->len;
}
