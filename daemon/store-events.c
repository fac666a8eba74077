/*
 * store-events.c - the event log: an event appended within the turn's
 * transaction, the events after a seq read back for followers, and the
 * last seq, which a rollback or a wipe finds again.
 *
 * An event is given its seq (the last one + 1) when appended, and joins
 * the chunk being made: the events appended one after another for one
 * project, held as records in one buffer and written as one row of
 * event_chunks (schema/012_event_chunks.sql) when the project changes, when
 * the chunk is full, and before the commit (store_events_flush()).  A
 * turn's seven events a task cost a row for hundreds of them, not one
 * each.  A record is text (store_event_append()), or compact for the
 * events a task makes by the thousand (store_event_record(), whose JSON
 * event-record.c builds for a reader).  A rollback drops the chunk with its
 * batch; a read asks for committed events only, which are never held.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dagd.h"
#include "event-record.h"
#include "store-private.h"

#define CHUNK_EVENTS 512        /* at most, a chunk */
#define CHUNK_BYTES 65536       /* a chunk is written once it holds this much */
#define CHUNK_KEPT 262144       /* room kept for the next chunk */

static int64_t last_seq;
static sqlite3_stmt *insert_st, *read_st, *read_project_st;

/* the chunk being made */
static struct {
	char *buf;
	size_t len, cap;
	int64_t first_seq;      /* of its first event */
	size_t n;               /* its events */
	int64_t project_id;     /* theirs; 0: none */
} chunk;

/* *st, prepared once; NULL (with errorf()) if it cannot be. */
static sqlite3_stmt *prepared(sqlite3_stmt **st, const char *sql)
{
	if (!*st && sqlite3_prepare_v3(store_sqlite(), sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL) != SQLITE_OK) {
		errorf(-EIO, "database: %s", sqlite3_errmsg(store_sqlite()));
		return NULL;
	}
	return *st;
}

static void chunk_drop(void)
{
	chunk.len = chunk.n = 0;
	if (chunk.cap > CHUNK_KEPT) {
		free(chunk.buf);
		chunk.buf = NULL;
		chunk.cap = 0;
	}
}

/* The last seq, as the database has it (after an open, a rollback, a wipe);
 * the events held are gone with the batch that appended them. */
int store_events_sync(void)
{
	sqlite3_stmt *st;

	chunk_drop();
	if (sqlite3_prepare_v2(store_sqlite(), "SELECT COALESCE(MAX(last_seq), 0) FROM event_chunks", -1, &st, NULL) != SQLITE_OK)
		return errorf(-EIO, "database: %s", sqlite3_errmsg(store_sqlite()));
	if (sqlite3_step(st) == SQLITE_ROW)
		last_seq = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return 0;
}

void store_events_close(void)
{
	sqlite3_finalize(insert_st);
	sqlite3_finalize(read_st);
	sqlite3_finalize(read_project_st);
	insert_st = read_st = read_project_st = NULL;
	free(chunk.buf);
	chunk.buf = NULL;
	chunk.cap = 0;
	chunk_drop();
}

/* The chunk made so far, written (within the transaction). */
int store_events_flush(void)
{
	sqlite3_stmt *st;
	int r;

	if (chunk.n == 0)
		return 0;
	st = prepared(&insert_st, "INSERT INTO event_chunks (last_seq, first_seq, project_id, events)"
		      " VALUES (?, ?, ?, ?)");
	if (!st) {
		chunk_drop();
		return -EIO;
	}
	sqlite3_bind_int64(st, 1, chunk.first_seq + (int64_t) chunk.n - 1);
	sqlite3_bind_int64(st, 2, chunk.first_seq);
	if (chunk.project_id > 0)
		sqlite3_bind_int64(st, 3, chunk.project_id);
	else
		sqlite3_bind_null(st, 3);
	sqlite3_bind_blob(st, 4, chunk.buf, (int) chunk.len, SQLITE_STATIC);
	r = store_step(st);
	chunk_drop();
	return r;
}

static void put(const void *p, size_t n)
{
	if (chunk.len + n > chunk.cap) {
		chunk.cap = chunk.cap * 2 > chunk.len + n ? chunk.cap * 2 : chunk.len + n + 4096;
		chunk.buf = xrealloc(chunk.buf, chunk.cap);
	}
	memcpy(chunk.buf + chunk.len, p, n);
	chunk.len += n;
}

static void put_field(const char *s)
{
	put(s, strlen(s));
	put("\t", 1);
}

static void put_number(uint64_t v)
{
	char b[24];
	size_t i = sizeof(b);

	b[--i] = '\t';
	do
		b[--i] = (char) ('0' + v % 10);
	while (v /= 10);
	put(b + i, sizeof(b) - i);
}

/* Room for the next event of project_id (0: none) in the chunk. */
static int event_begin(int64_t project_id)
{
	int r = store_begin();

	if (r < 0)
		return r;
	if (chunk.n > 0 && chunk.project_id != project_id)
		(void) store_events_flush();    /* a failure fails the commit */
	if (chunk.n == 0) {
		chunk.first_seq = last_seq + 1;
		chunk.project_id = project_id;
	}
	return 0;
}

static void event_end(int64_t *ret_seq)
{
	chunk.n++;
	last_seq++;
	if (chunk.n == CHUNK_EVENTS || chunk.len >= CHUNK_BYTES)
		(void) store_events_flush();
	if (ret_seq)
		*ret_seq = last_seq;
}

int store_event_append(const char *type, const char *entity, const char *entity_id,
		       int64_t project_id, const char *payload, int64_t *ret_seq)
{
	size_t lp;
	int r;

	project_id = project_id > 0 ? project_id : 0;
	r = event_begin(project_id);
	if (r < 0)
		return r;
	payload = payload ? payload : "{}";
	lp = strlen(payload);
	put_field(type);
	put_field(entity);
	put_field(entity_id);
	put_number((uint64_t) now_usec());
	put_number(lp);
	put(payload, lp);
	event_end(ret_seq);
	return 0;
}

/* An event of project_id as a compact record (event-record.c). */
int store_event_record(int64_t project_id, const struct evrec *rec)
{
	int r;

	project_id = project_id > 0 ? project_id : 0;
	r = event_begin(project_id);
	if (r < 0)
		return r;
	put(rec->buf, rec->len);
	event_end(NULL);
	return 0;
}

int64_t store_last_seq(void)
{
	return last_seq;
}

/* The text up to the next TAB of [*p, end), and *p past it; NULL if none. */
static const char *field(const char **p, const char *end, size_t *ret_len)
{
	const char *s = *p, *tab = memchr(s, '\t', (size_t) (end - s));

	if (!tab)
		return NULL;
	*ret_len = (size_t) (tab - s);
	*p = tab + 1;
	return s;
}

static bool number(const char **p, const char *end, uint64_t *ret)
{
	size_t n;
	const char *s = field(p, end, &n);
	uint64_t v = 0;

	if (!s || n == 0 || n > 19)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (uint64_t) (s[i] - '0');
	}
	*ret = v;
	return true;
}

/* The record at *p (of a chunk of project_id), and *p past it; false if
 * it is damaged. */
static bool record_next(const char **p, const char *end, int64_t project_id, struct event_view *e)
{
	uint64_t time, len;

	if (*p < end && evrec_is_compact(**p))
		return evrec_decode(p, end, project_id, e);
	if (!(e->type = field(p, end, &e->type_len)) ||
	    !(e->entity = field(p, end, &e->entity_len)) ||
	    !(e->entity_id = field(p, end, &e->entity_id_len)) ||
	    !number(p, end, &time) || !number(p, end, &len) || len > (uint64_t) (end - *p))
		return false;
	e->time = (int64_t) time;
	e->payload = *p;
	e->payload_len = (size_t) len;
	*p += len;
	return true;
}

static bool type_wanted(json_object *types, const struct event_view *e)
{
	size_t n;

	if (!types)
		return true;
	n = json_object_array_length(types);
	for (size_t i = 0; i < n; i++) {
		json_object *t = json_object_array_get_idx(types, i);

		if ((size_t) json_object_get_string_len(t) == e->type_len &&
		    memcmp(json_object_get_string(t), e->type, e->type_len) == 0)
			return true;
	}
	return false;
}

static int event_line(int64_t seq, int64_t project_id, struct event_view *e, event_cb cb, void *userdata)
{
	char ts[32], pid[24];
	char *line;
	int r;

	if (!e->payload)
		evrec_payload(e);       /* a compact record's, built for the reader only */
	if (project_id > 0)
		snprintf(pid, sizeof(pid), "\"p-%lld\"", (long long) project_id);
	else
		strcpy(pid, "null");
	line = xasprintf("{\"seq\":%lld,\"type\":\"%.*s\",\"entity\":\"%.*s\","
			 "\"entity_id\":\"%.*s\",\"project_id\":%s,\"time\":\"%s\","
			 "\"payload\":%.*s}",
			 (long long) seq, (int) e->type_len, e->type, (int) e->entity_len, e->entity,
			 (int) e->entity_id_len, e->entity_id, pid, format_time(e->time, ts),
			 (int) e->payload_len, e->payload);
	r = cb(seq, line, userdata);
	free(line);
	return r;
}

/* Calls cb with each event line (a JSON object's text) after `after` up to
 * `upto`, for at most max events that pass the filters.  *ret_last is the
 * last seq looked at, passed or not, so a caller can go on from there. */
int store_events_read(int64_t after, int64_t upto, int64_t project_id, json_object *types,
		      size_t max, event_cb cb, void *userdata, int64_t *ret_last)
{
	sqlite3_stmt *st = project_id > 0
		? prepared(&read_project_st, "SELECT first_seq, last_seq, project_id, events FROM event_chunks"
			   " WHERE project_id = ?3 AND last_seq > ?1 AND first_seq <= ?2 ORDER BY last_seq LIMIT ?4")
		: prepared(&read_st, "SELECT first_seq, last_seq, project_id, events FROM event_chunks"
			   " WHERE last_seq > ?1 AND first_seq <= ?2 ORDER BY last_seq LIMIT ?4");
	size_t sent = 0;
	int64_t last = after;
	int rc, r = 0;
	bool more = true;

	if (!st)
		return -EIO;
	while (r >= 0 && more && sent < max) {
		int64_t from = last;

		more = false;
		sqlite3_bind_int64(st, 1, last);
		sqlite3_bind_int64(st, 2, upto);
		if (project_id > 0)
			sqlite3_bind_int64(st, 3, project_id);
		sqlite3_bind_int64(st, 4, 64);
		while (r >= 0 && sent < max && (rc = sqlite3_step(st)) == SQLITE_ROW) {
			int64_t seq = sqlite3_column_int64(st, 0), chunk_last = sqlite3_column_int64(st, 1);
			int64_t pid = sqlite3_column_int64(st, 2);
			const char *p = sqlite3_column_blob(st, 3);
			const char *end = p + sqlite3_column_bytes(st, 3);
			struct event_view e;

			more = true;
			for (; r >= 0 && sent < max && seq <= chunk_last && seq <= upto; seq++) {
				if (!p || !record_next(&p, end, pid, &e)) {
					r = errorf(-EIO, "database: event %lld is damaged", (long long) seq);
					break;
				}
				if (seq <= last)
					continue;
				last = seq;
				if (!type_wanted(types, &e))
					continue;
				r = event_line(seq, pid, &e, cb, userdata);
				sent++;
			}
		}
		sqlite3_reset(st);
		if (last == from)
			more = false;   /* (a chunk past upto) */
		if (r >= 0 && !more)
			last = upto;    /* nothing more matches up to there */
	}
	sqlite3_clear_bindings(st);
	*ret_last = last;
	return r < 0 ? r : (int) sent;
}
