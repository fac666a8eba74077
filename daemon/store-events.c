/*
 * store-events.c - the events table: an event appended within the turn's
 * transaction, the events after a seq read back for followers, and the
 * last seq, which a rollback or a wipe finds again.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "dagd.h"
#include "store-private.h"

static int64_t last_seq;
static sqlite3_stmt *insert_st, *read_st;

/* *st, prepared once; NULL (with errorf()) if it cannot be. */
static sqlite3_stmt *prepared(sqlite3_stmt **st, const char *sql)
{
	if (!*st && sqlite3_prepare_v3(store_sqlite(), sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL) != SQLITE_OK) {
		errorf(-EIO, "database: %s", sqlite3_errmsg(store_sqlite()));
		return NULL;
	}
	return *st;
}

static void bind_text(sqlite3_stmt *st, int i, const char *s)
{
	if (s)
		sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, i);
}

/* The last seq, as the database has it (after an open, a rollback, a wipe). */
int store_events_sync(void)
{
	sqlite3_stmt *st;

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
	sqlite3_finalize(read_st);
	insert_st = read_st = NULL;
}

int store_event_append(const char *type, const char *entity, const char *entity_id,
		       int64_t project_id, const char *payload, int64_t *ret_seq)
{
	sqlite3_stmt *st = prepared(&insert_st, "INSERT INTO events (type, entity, entity_id, project_id,"
				    " time, payload) VALUES (?,?,?,?,?,?)");
	int r;

	if (!st)
		return -EIO;
	bind_text(st, 1, type);
	bind_text(st, 2, entity);
	bind_text(st, 3, entity_id);
	if (project_id > 0)
		sqlite3_bind_int64(st, 4, project_id);
	else
		sqlite3_bind_null(st, 4);
	sqlite3_bind_int64(st, 5, now_usec());
	bind_text(st, 6, payload ? payload : "{}");
	r = store_step(st);
	if (r < 0)
		return r;
	last_seq = sqlite3_last_insert_rowid(store_sqlite());
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
