/*
 * store-events.c - the events table: an event appended within the turn's
 * transaction, the events after a seq read back for followers, and the
 * last seq, which a rollback or a wipe finds again.
 *
 * An event is given its seq (the last one + 1) when appended, and held
 * until EVENT_ROWS are, then written by one statement: a batch of a
 * hundred thousand tasks writes its TASK_CREATED events as so many rows,
 * each statement's overhead shared.  What is held is written before the
 * commit (store_events_flush()), and dropped with its batch by a rollback;
 * a read asks for committed events only, which are never held.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dagd.h"
#include "store-private.h"

#define EVENT_ROWS 32
#define HELD_KEPT 4096          /* room kept for an event's text between flushes */
#define EVENT_COLS 7
#define EVENT_ROW "(?,?,?,?,?,?,?)"
#define EVENT_ROW4 EVENT_ROW "," EVENT_ROW "," EVENT_ROW "," EVENT_ROW
#define EVENT_ROW16 EVENT_ROW4 "," EVENT_ROW4 "," EVENT_ROW4 "," EVENT_ROW4
#define EVENT_INSERT "INSERT INTO events (seq, type, entity, entity_id, project_id, time, payload) VALUES "

static int64_t last_seq;
static sqlite3_stmt *insert_st, *insert_many_st, *read_st;

/* an event appended, not written yet */
static struct held {
	int64_t seq, project_id, time;
	char *text;             /* type, entity, entity_id and payload, each ending in '\0' */
	size_t cap;
	size_t entity, entity_id, payload;      /* where each begins in text */
} held[EVENT_ROWS];
static size_t n_held;

/* *st, prepared once; NULL (with errorf()) if it cannot be. */
static sqlite3_stmt *prepared(sqlite3_stmt **st, const char *sql)
{
	if (!*st && sqlite3_prepare_v3(store_sqlite(), sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL) != SQLITE_OK) {
		errorf(-EIO, "database: %s", sqlite3_errmsg(store_sqlite()));
		return NULL;
	}
	return *st;
}

/* The last seq, as the database has it (after an open, a rollback, a wipe);
 * the events held are gone with the batch that appended them. */
int store_events_sync(void)
{
	sqlite3_stmt *st;

	n_held = 0;
	if (sqlite3_prepare_v2(store_sqlite(), "SELECT COALESCE(MAX(seq), 0) FROM events", -1, &st, NULL) != SQLITE_OK)
		return errorf(-EIO, "database: %s", sqlite3_errmsg(store_sqlite()));
	if (sqlite3_step(st) == SQLITE_ROW)
		last_seq = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return 0;
}

void store_events_close(void)
{
	sqlite3_finalize(insert_st);
	sqlite3_finalize(insert_many_st);
	sqlite3_finalize(read_st);
	insert_st = insert_many_st = read_st = NULL;
	for (size_t i = 0; i < EVENT_ROWS; i++) {
		free(held[i].text);
		held[i] = (struct held) {};
	}
	n_held = 0;
}

static void bind_held(sqlite3_stmt *st, int at, const struct held *h)
{
	sqlite3_bind_int64(st, at + 1, h->seq);
	sqlite3_bind_text(st, at + 2, h->text, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, at + 3, h->text + h->entity, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, at + 4, h->text + h->entity_id, -1, SQLITE_STATIC);
	if (h->project_id > 0)
		sqlite3_bind_int64(st, at + 5, h->project_id);
	else
		sqlite3_bind_null(st, at + 5);
	sqlite3_bind_int64(st, at + 6, h->time);
	sqlite3_bind_text(st, at + 7, h->text + h->payload, -1, SQLITE_STATIC);
}

static int write_held(size_t n)
{
	sqlite3_stmt *st;
	int r = 0;

	if (n == EVENT_ROWS) {
		st = prepared(&insert_many_st, EVENT_INSERT EVENT_ROW16 "," EVENT_ROW16);
		if (!st)
			return -EIO;
		for (size_t i = 0; i < n; i++)
			bind_held(st, (int) i * EVENT_COLS, &held[i]);
		return store_step(st);
	}
	st = prepared(&insert_st, EVENT_INSERT EVENT_ROW);
	if (!st)
		return -EIO;
	for (size_t i = 0; r >= 0 && i < n; i++) {
		bind_held(st, 0, &held[i]);
		r = store_step(st);
	}
	return r;
}

int store_events_flush(void)
{
	size_t n = n_held;
	int r;

	n_held = 0;
	r = write_held(n);
	/* a large payload's room is not kept (a result may be 256 KiB) */
	for (size_t i = 0; i < n; i++)
		if (held[i].cap > HELD_KEPT) {
			free(held[i].text);
			held[i].text = NULL;
			held[i].cap = 0;
		}
	return r;
}

int store_event_append(const char *type, const char *entity, const char *entity_id,
		       int64_t project_id, const char *payload, int64_t *ret_seq)
{
	size_t lt = strlen(type) + 1, le = strlen(entity) + 1, li = strlen(entity_id) + 1;
	struct held *h = &held[n_held];
	size_t lp;
	int r;

	r = store_begin();
	if (r < 0)
		return r;
	payload = payload ? payload : "{}";
	lp = strlen(payload) + 1;
	if (h->cap < lt + le + li + lp) {
		h->cap = lt + le + li + lp;
		h->text = xrealloc(h->text, h->cap);
	}
	memcpy(h->text, type, lt);
	memcpy(h->text + (h->entity = lt), entity, le);
	memcpy(h->text + (h->entity_id = lt + le), entity_id, li);
	memcpy(h->text + (h->payload = lt + le + li), payload, lp);
	h->seq = ++last_seq;
	h->project_id = project_id;
	h->time = now_usec();
	if (++n_held == EVENT_ROWS)
		(void) store_events_flush();    /* a failure fails the commit */
	if (ret_seq)
		*ret_seq = last_seq;
	return 0;
}

int64_t store_last_seq(void)
{
	return last_seq;
}


static bool type_wanted(json_object *types, const char *type)
{
	size_t n;

	if (!types)
		return true;
	n = json_object_array_length(types);
	for (size_t i = 0; i < n; i++)
		if (strcmp(json_object_get_string(json_object_array_get_idx(types, i)), type) == 0)
			return true;
	return false;
}

/* Calls cb with each event line (a JSON object's text) after `after` up to
 * `upto`, for at most max events that pass the filters.  *ret_last is the
 * last seq looked at, passed or not, so a caller can go on from there. */
int store_events_read(int64_t after, int64_t upto, int64_t project_id, json_object *types,
		      size_t max, event_cb cb, void *userdata, int64_t *ret_last)
{
	sqlite3_stmt *st = prepared(&read_st, "SELECT seq, type, entity, entity_id, project_id, time, payload"
				    " FROM events WHERE seq > ?1 AND seq <= ?2 AND (?3 = 0 OR project_id = ?3)"
				    " ORDER BY seq LIMIT ?4");
	size_t sent = 0;
	int64_t last = after;
	int rc, r = 0;
	bool more = true;

	if (!st)
		return -EIO;
	while (more && sent < max) {
		more = false;
		sqlite3_bind_int64(st, 1, last);
		sqlite3_bind_int64(st, 2, upto);
		sqlite3_bind_int64(st, 3, project_id);
		sqlite3_bind_int64(st, 4, 256);
		while (sent < max && (rc = sqlite3_step(st)) == SQLITE_ROW) {
			char ts[32], pid[24], *line;
			int64_t seq = sqlite3_column_int64(st, 0);
			const char *type = (const char *) sqlite3_column_text(st, 1);

			more = true;
			last = seq;
			if (!type_wanted(types, type))
				continue;
			if (sqlite3_column_type(st, 4) == SQLITE_NULL)
				strcpy(pid, "null");
			else
				snprintf(pid, sizeof(pid), "\"p-%lld\"",
					 (long long) sqlite3_column_int64(st, 4));
			line = xasprintf("{\"seq\":%lld,\"type\":\"%s\",\"entity\":\"%s\","
					 "\"entity_id\":\"%s\",\"project_id\":%s,\"time\":\"%s\","
					 "\"payload\":%s}",
					 (long long) seq, type, sqlite3_column_text(st, 2),
					 sqlite3_column_text(st, 3), pid,
					 format_time(sqlite3_column_int64(st, 5), ts),
					 sqlite3_column_text(st, 6));
			r = cb(seq, line, userdata);
			free(line);
			sent++;
			if (r < 0)
				break;
		}
		sqlite3_reset(st);
		if (r < 0)
			break;
		if (!more)
			last = upto;    /* nothing more matches up to there */
	}
	sqlite3_clear_bindings(st);
	*ret_last = last;
	return r < 0 ? r : (int) sent;
}
