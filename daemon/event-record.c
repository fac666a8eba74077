/*
 * event-record.c - the compact records of the events a task makes by the
 * thousand: its creation, its status changes, its sandboxes' starts and
 * exits, its completion and the tasks it unblocked.  About seven a task;
 * written as their JSON they were most of what a task wrote to the
 * database, and building that text most of what recording them cost.
 * Now each is a few bytes of what changed, and its JSON is built only for a
 * reader (store_events_read()), the same text as before, field for field.
 *
 * A record sits in a chunk of schema/012 beside the text records (which
 * begin with their type's name, as the rarer events still are).  It begins
 * with its kind, a byte below 0x20, then its fields, each a number or a
 * string as varint.h writes them:
 *
 *   1 TASK_STATUS_CHANGED  time, task id, attempt, old status, new status
 *   2 SANDBOX_SPAWNED      time, task id, attempt, sandbox id, executor
 *   3 SANDBOX_EXITED       time, sandbox id, exit code + 1 (0: null),
 *                          signal (0: null), reason
 *   4 TASK_COMPLETED       time, task id, attempt, result (JSON text)
 *   5 TASK_CREATED         time, task id, attempt, name, title, priority,
 *                          status, flags (1 approval, 2 released, 4 held),
 *                          map_over, map_parent, map_index (0: none),
 *                          created_at, status_changed_at, the number of
 *                          its dependencies, then each one's id
 *   6 TASKS_UNBLOCKED      time, the completed task's id, its sandbox id,
 *                          the number of tasks unblocked, then each one's id
 *
 * The times are in microseconds; the project is the chunk's.  The encoders
 * and the decoder call nothing of the store's or the engine's.
 */
#include <stdio.h>
#include <string.h>

#include "dagd.h"
#include "event-record.h"
#include "jw.h"
#include "varint.h"

enum {
	K_STATUS = 1,
	K_SPAWNED,
	K_EXITED,
	K_COMPLETED,
	K_CREATED,
	K_UNBLOCKED,
};

enum {
	F_APPROVAL = 1,
	F_RELEASED = 2,
	F_HELD = 4,
};

/* Room for n more bytes at the record's end: where they go. */
static unsigned char *room(struct evrec *r, size_t n)
{
	if (r->len + n > r->cap) {
		r->cap = r->len + n > 2 * r->cap ? r->len + n + 64 : 2 * r->cap;
		r->buf = xrealloc(r->buf, r->cap);
	}
	return (unsigned char *) r->buf + r->len;
}

/* (written in place: a record is mostly such numbers) */
static void put_num(struct evrec *r, uint64_t v)
{
	r->len += varint_put(room(r, VARINT_MAX), v);
}

static void put_str(struct evrec *r, const char *s)
{
	size_t n = s ? strlen(s) : 0;

	r->len += varint_put_str(room(r, VARINT_MAX + n), s, n);
}

static void start(struct evrec *r, int kind, int64_t time)
{
	r->len = 0;
	*room(r, 1) = (unsigned char) kind;
	r->len = 1;
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

void evrec_created(struct evrec *r, int64_t time, const struct evrec_task *t)
{
	start_task(r, K_CREATED, time, t->id, t->attempt);
	put_str(r, t->name);
	put_str(r, t->title);
	put_str(r, t->priority);
	put_str(r, t->status);
	put_num(r, (t->approval ? F_APPROVAL : 0) | (t->released ? F_RELEASED : 0) | (t->held ? F_HELD : 0));
	put_num(r, (uint64_t) t->map_over);
	put_num(r, (uint64_t) t->map_parent);
	put_num(r, t->map_index);
	put_num(r, (uint64_t) (t->created_at > 0 ? t->created_at : 0));
	put_num(r, (uint64_t) (t->status_changed_at > 0 ? t->status_changed_at : 0));
	put_num(r, t->n_deps);
}

void evrec_unblocked(struct evrec *r, int64_t time, int64_t task_id, const char *sandbox_id, size_t n)
{
	start(r, K_UNBLOCKED, time);
	put_num(r, (uint64_t) task_id);
	put_str(r, sandbox_id);
	put_num(r, n);
}

void evrec_id(struct evrec *r, int64_t task_id)
{
	put_num(r, (uint64_t) task_id);
}

/* --- reading ------------------------------------------------------------ */

/* The record last decoded, until the next: its numbers, its strings (each
 * in a buffer of its own), where its list of task ids lies in the chunk
 * (which stays until the next decode), and the payload when asked for. */
enum { N_STR = 4, N_NUM = 8 };
static struct {
	int kind;
	int64_t project_id;
	uint64_t num[N_NUM];
	const char *str[N_STR];
	const char *ids, *ids_end;      /* a list of task ids, in the chunk */
} cur;
static struct {
	char *buf;
	size_t cap;
} sbuf[N_STR];
static char entity_id[48];
static struct jw payload;

/* the numbers of each kind, by name */
#define TASK_ID cur.num[0]      /* a task's record */
#define ATTEMPT cur.num[1]
#define EXIT_CODE cur.num[0]    /* SANDBOX_EXITED's */
#define SIGNAL cur.num[1]
#define FLAGS cur.num[2]        /* TASK_CREATED's */
#define MAP_OVER cur.num[3]
#define MAP_PARENT cur.num[4]
#define MAP_INDEX cur.num[5]
#define CREATED_AT cur.num[6]
#define STATUS_CHANGED_AT cur.num[7]

/* The record's next string, copied (NUL-terminated) into its buffer:
 * cur.str[i], NULL for null. */
static bool get_str(const char **p, const char *end, int i)
{
	const char *at;
	size_t n;

	if (!varint_get_str(p, end, &at, &n))
		return false;
	cur.str[i] = NULL;
	if (!at)
		return true;
	if (n + 1 > sbuf[i].cap) {
		sbuf[i].cap = n + 1;
		sbuf[i].buf = xrealloc(sbuf[i].buf, sbuf[i].cap);
	}
	memcpy(sbuf[i].buf, at, n);
	sbuf[i].buf[n] = 0;
	cur.str[i] = sbuf[i].buf;
	return true;
}

/* the record's next numbers, into cur.num[from..from + n), each at most max */
static bool get_nums(const char **p, const char *end, int from, int n, uint64_t max)
{
	for (int i = from; i < from + n; i++)
		if (!varint_get(p, end, &cur.num[i]) || cur.num[i] > max)
			return false;
	return true;
}

/* A list of task ids, its count first: checked here, where it lies kept
 * for evrec_payload() to write */
static bool get_ids(const char **p, const char *end)
{
	uint64_t n, id;

	if (!varint_get(p, end, &n))
		return false;
	cur.ids = *p;
	for (; n > 0; n--)
		if (!varint_get(p, end, &id) || id > INT64_MAX)
			return false;
	cur.ids_end = *p;
	return true;
}

/* TASK_CREATED's fields after its attempt */
static bool get_created(const char **p, const char *end)
{
	for (int i = 0; i < N_STR; i++)
		if (!get_str(p, end, i))
			return false;
	return cur.str[2] && cur.str[3] && cur.project_id > 0 && get_nums(p, end, 2, 6, INT64_MAX) && FLAGS <= 7 &&
	       MAP_INDEX <= UINT32_MAX && get_ids(p, end);
}

static const char *const types[] = {
	[K_STATUS] = "TASK_STATUS_CHANGED",
	[K_SPAWNED] = "SANDBOX_SPAWNED",
	[K_EXITED] = "SANDBOX_EXITED",
	[K_COMPLETED] = "TASK_COMPLETED",
	[K_CREATED] = "TASK_CREATED",
	[K_UNBLOCKED] = "TASKS_UNBLOCKED",
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

static void key_id(struct jw *w, const char *key, const char *prefix, uint64_t id)
{
	char buf[24];

	format_id(buf, prefix, (int64_t) id);
	key_str(w, key, buf);
}

/* what the payloads of a task's events begin or end with */
static void ids(struct jw *w, const char *task_id, int64_t project_id)
{
	key_str(w, "task_id", task_id);
	if (project_id > 0)
		key_id(w, "project_id", "p-", (uint64_t) project_id);
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
	if (!varint_get(p, end, &time) || time > INT64_MAX)
		return false;
	switch (cur.kind) {
	case K_STATUS:
	case K_SPAWNED:
	case K_COMPLETED:
	case K_CREATED:
		if (!get_nums(p, end, 0, 1, INT64_MAX) || !get_nums(p, end, 1, 1, UINT32_MAX))
			return false;
		if (cur.kind == K_CREATED) {
			if (!get_created(p, end))
				return false;
			break;
		}
		if (!get_str(p, end, 0) || (cur.kind != K_COMPLETED && !get_str(p, end, 1)) ||
		    (cur.kind == K_SPAWNED && !cur.str[0]))
			return false;
		break;
	case K_EXITED:
		if (!get_str(p, end, 0) || !cur.str[0] || !get_nums(p, end, 0, 1, (uint64_t) INT32_MAX + 1) ||
		    !get_nums(p, end, 1, 1, INT32_MAX) || !get_str(p, end, 1))
			return false;
		break;
	case K_UNBLOCKED:
		if (!get_nums(p, end, 0, 1, INT64_MAX) || !get_str(p, end, 0) || cur.project_id <= 0 ||
		    !get_ids(p, end))
			return false;
		break;
	default:
		return false;
	}
	sandbox = cur.kind == K_SPAWNED || cur.kind == K_EXITED;
	if (sandbox)
		snprintf(entity_id, sizeof(entity_id), "%s", cur.str[0]);
	else
		format_id(entity_id, "t-", (int64_t) TASK_ID);
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

/* the list of task ids, as an array of "t-N" */
static void ids_array(struct jw *w)
{
	char buf[24];
	uint64_t id;

	jw_open(w, '[');
	for (const char *p = cur.ids; p < cur.ids_end && varint_get(&p, cur.ids_end, &id);) {
		format_id(buf, "t-", (int64_t) id);
		jw_str(w, buf);
	}
	jw_close(w, ']');
}

/* TASK_CREATED's {"task": summary}, as engine-task.c's summary was written
 * before it was a record: the same fields in the same order. */
static void created_payload(struct jw *w)
{
	jw_key(w, "task");
	jw_open(w, '{');
	key_str(w, "id", entity_id);
	key_id(w, "project_id", "p-", (uint64_t) cur.project_id);
	key_str(w, "name", cur.str[0]);
	key_str(w, "title", cur.str[1]);
	key_str(w, "kind", FLAGS & F_APPROVAL ? "approval" : "command");
	key_str(w, "priority", cur.str[2]);
	key_str(w, "status", cur.str[3]);
	jw_key(w, "released");
	jw_bool(w, FLAGS & F_RELEASED);
	jw_key(w, "held");
	jw_bool(w, FLAGS & F_HELD);
	jw_key(w, "attempt");
	jw_int(w, (int64_t) ATTEMPT);
	jw_key(w, "depends_on");
	ids_array(w);
	if (MAP_OVER)
		key_id(w, "map_over", "t-", MAP_OVER);
	if (MAP_PARENT) {
		key_id(w, "map_parent", "t-", MAP_PARENT);
		jw_key(w, "map_index");
		jw_int(w, (int64_t) MAP_INDEX);
	}
	jw_key(w, "created_at");
	jw_time(w, (int64_t) CREATED_AT);
	jw_key(w, "status_changed_at");
	jw_time(w, (int64_t) STATUS_CHANGED_AT);
	jw_close(w, '}');
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
		key_str(w, "old_status", cur.str[0]);
		key_str(w, "new_status", cur.str[1]);
		jw_key(w, "attempt");
		jw_int(w, (int64_t) ATTEMPT);
		break;
	case K_SPAWNED:
		key_str(w, "sandbox_id", cur.str[0]);
		format_id(task_id, "t-", (int64_t) TASK_ID);
		ids(w, task_id, cur.project_id);
		key_str(w, "executor", cur.str[1]);
		jw_key(w, "attempt");
		jw_int(w, (int64_t) ATTEMPT);
		break;
	case K_EXITED:
		key_str(w, "sandbox_id", cur.str[0]);
		key_int(w, "exit_code", EXIT_CODE, 1);
		key_int(w, "signal", SIGNAL, 0);
		key_str(w, "reason", cur.str[1]);
		/* its task's id is the sandbox id's first part (t-12 of t-12.1) */
		snprintf(task_id, sizeof(task_id), "%.*s", (int) strcspn(cur.str[0], "."), cur.str[0]);
		ids(w, task_id, cur.project_id);
		break;
	case K_COMPLETED:
		ids(w, entity_id, cur.project_id);
		jw_key(w, "attempt");
		jw_int(w, (int64_t) ATTEMPT);
		jw_key(w, "result");
		jw_raw(w, cur.str[0]);
		break;
	case K_CREATED:
		created_payload(w);
		break;
	case K_UNBLOCKED:
		/* as engine.c wrote it as JSON: the same fields in the same order */
		key_str(w, "completed_task_id", entity_id);
		key_id(w, "project_id", "p-", (uint64_t) cur.project_id);
		jw_key(w, "unblocked_task_ids");
		ids_array(w);
		key_str(w, "sandbox_id", cur.str[0]);
		break;
	}
	jw_close(w, '}');
	v->payload = w->buf;
	v->payload_len = w->len;
}
