/*
 * store-state.c - where a task stands, saved: its row of task_state
 * (schemas 014 and 016), its status and one compact record of the rest, so
 * that a state change writes two values, not 20 columns (binding and
 * building a row of 20 was a third of what a task cost the daemon).
 *
 * The record, as event-record.c's, is numbers and strings as varint.h
 * writes them:
 *
 *   1 (its format), flags (1 released, 2 held, 4 paused), attempt, tries,
 *   reserved, not_before, updated_at, started_at, finished_at,
 *   status_changed_at (the last five zigzag-coded, as they are signed),
 *   then result, error_message, token, report, sandbox_id,
 *   sandbox_executor, sandbox_handle.
 *
 * A task added has no such row: its row of tasks holds what it was added
 * with.  Its first save makes the row.  A save whose definition is in
 * memory knows all of the record (its times are there, current): it waits
 * with the turn's others for one statement that makes or updates 64 rows
 * (an upsert), as the engine saves a turn's tasks one after another; that
 * is a third fewer instructions than a statement a row.  A save without it
 * takes from the row what it does not give (from the tasks row when it
 * makes it: the times not given, and the outcome, which is then as added:
 * null), one statement: the task's `stated` bit (set by the engine when a
 * save says it made the row, and by the load) says which to try first; the
 * other follows when the first touched no row, so that a bit out of date (a
 * row gone with a batch rolled back) costs a statement, never a save.
 *
 * The SQL function dagd_state() makes a record from columns: for the
 * migration of 016, and for a save whose definition is not in memory, which
 * takes from the row what it does not give.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "dagd.h"
#include "store-private.h"
#include "varint.h"

enum { FORMAT = 1 };

/* the times a record holds, in its order (AT_CREATED is the tasks row's) */
static const int times[] = { AT_UPDATED, AT_STARTED, AT_FINISHED, AT_STATUS_CHANGED };

#define INTS "?2, ?3, ?4, ?5, ?6, ?7, ?8"
#define OUTCOME "result, error_message, token, report, sandbox_id, sandbox_executor, sandbox_handle"

/* the statements of a save whose definition is not in memory, and those
 * that write the records of many at once (UPSERT of 1, 8 or 64 rows) */
enum { UPDATE, INSERT, UPSERT_1, UPSERT_8, UPSERT_64, _STMT_MAX };

static const char *const sql[UPSERT_1] = {
	/* the times not given (NULL), and the outcome, stay as they are */
	[UPDATE] = "UPDATE task_state SET status=?1, state=dagd_state(state, " INTS ", ?9, ?10, ?11, ?12)"
		" WHERE task_id=?13",
	[INSERT] = "INSERT OR IGNORE INTO task_state (task_id, status, state) SELECT id, ?1, dagd_state(NULL, "
		INTS ", coalesce(?9, updated_at), coalesce(?10, started_at), coalesce(?11, finished_at),"
		" coalesce(?12, status_changed_at), " OUTCOME ") FROM tasks WHERE id=?13",
};
static const unsigned upsert_rows[_STMT_MAX] = { [UPSERT_1] = 1, [UPSERT_8] = 8, [UPSERT_64] = 64 };

static sqlite3_stmt *stmts[_STMT_MAX];

/* --- the record ---------------------------------------------------------- */

/* records made: those of the saves waiting in pending[] (out.len bytes),
 * then room for the next */
static struct {
	unsigned char *buf;
	size_t len, cap;
} out;

/* The saves of tasks whose definitions are in memory, written together by
 * store_task_save_flush() (at the latest when 64 wait): each its id, status
 * and record (at out.buf + off). */
static struct {
	int64_t id;
	const char *status;
	size_t off, len;
} pending[64];
static size_t n_pending;

static uint64_t zigzag(int64_t v)
{
	return ((uint64_t) v << 1) ^ (uint64_t) (v >> 63);
}

static int64_t unzigzag(uint64_t v)
{
	return (int64_t) (v >> 1) ^ -(int64_t) (v & 1);
}

/* r as its record, at out.buf + out.len (which it does not move on): its
 * length */
static size_t encode(const struct state_record *r)
{
	size_t need = out.len + 1 + 9 * VARINT_MAX, n = 0;
	unsigned char *b;

	for (int i = 0; i < STATE_OUTCOME; i++)
		need += VARINT_MAX + (r->outcome[i] ? r->outcome_len[i] : 0);
	if (need > out.cap) {
		out.cap = need > 2 * out.cap ? need : 2 * out.cap;
		out.buf = xrealloc(out.buf, out.cap);
	}
	b = out.buf + out.len;
	b[n++] = FORMAT;
	n += varint_put(b + n, r->flags);
	n += varint_put(b + n, r->attempt);
	n += varint_put(b + n, r->tries);
	n += varint_put(b + n, r->reserved);
	n += varint_put(b + n, zigzag(r->not_before));
	for (size_t i = 0; i < ELEMENTSOF(times); i++)
		n += varint_put(b + n, zigzag(r->at[times[i]]));
	for (int i = 0; i < STATE_OUTCOME; i++)
		n += varint_put_str(b + n, r->outcome[i], r->outcome_len[i]);
	return n;
}

static bool get_uint(const char **p, const char *end, unsigned *v)
{
	uint64_t u;

	if (!varint_get(p, end, &u) || u > UINT32_MAX)
		return false;
	*v = (unsigned) u;
	return true;
}

static bool get_int(const char **p, const char *end, int64_t *v)
{
	uint64_t u;

	if (!varint_get(p, end, &u))
		return false;
	*v = unzigzag(u);
	return true;
}

bool store_state_decode(const void *blob, size_t len, struct state_record *r)
{
	const char *p = blob, *end = p + len;

	memset(r, 0, sizeof(*r));
	if (!len || *p++ != FORMAT || !get_uint(&p, end, &r->flags) ||
	    (r->flags & ~(unsigned) (STATE_RELEASED | STATE_HELD | STATE_PAUSED)) ||
	    !get_uint(&p, end, &r->attempt) || !get_uint(&p, end, &r->tries) ||
	    !get_uint(&p, end, &r->reserved) || !get_int(&p, end, &r->not_before))
		return false;
	for (size_t i = 0; i < ELEMENTSOF(times); i++)
		if (!get_int(&p, end, &r->at[times[i]]))
			return false;
	for (int i = 0; i < STATE_OUTCOME; i++)
		if (!varint_get_str(&p, end, &r->outcome[i], &r->outcome_len[i]))
			return false;
	return p == end;
}

/* dagd_state(old, released, attempt, tries, not_before, held, paused,
 * reserved, updated_at, started_at, finished_at, status_changed_at
 * [, result, error_message, token, report, sandbox_id, sandbox_executor,
 * sandbox_handle]): old (a record, or null) with what is given over it; a
 * time that is null is old's, and the outcome is old's unless given. */
static void sql_state(sqlite3_context *cx, int argc, sqlite3_value **v)
{
	struct state_record r = { 0 };
	int64_t ints[7];
	size_t n;

	if (sqlite3_value_type(v[0]) != SQLITE_NULL) {
		const void *blob = sqlite3_value_blob(v[0]);

		if (!store_state_decode(blob, (size_t) sqlite3_value_bytes(v[0]), &r)) {
			sqlite3_result_error(cx, "a task's state record is damaged", -1);
			return;
		}
	}
	for (int i = 0; i < 7; i++)
		ints[i] = sqlite3_value_int64(v[1 + i]);
	r.flags = (ints[0] ? STATE_RELEASED : 0) | (ints[4] ? STATE_HELD : 0) | (ints[5] ? STATE_PAUSED : 0);
	r.attempt = (unsigned) ints[1];
	r.tries = (unsigned) ints[2];
	r.not_before = ints[3];
	r.reserved = (unsigned) ints[6];
	for (size_t i = 0; i < ELEMENTSOF(times); i++)
		if (sqlite3_value_type(v[8 + i]) != SQLITE_NULL)
			r.at[times[i]] = sqlite3_value_int64(v[8 + i]);
	for (int i = 0; argc == 12 + STATE_OUTCOME && i < STATE_OUTCOME; i++) {
		r.outcome[i] = (const char *) sqlite3_value_text(v[12 + i]);
		r.outcome_len[i] = r.outcome[i] ? (size_t) sqlite3_value_bytes(v[12 + i]) : 0;
	}
	n = encode(&r);
	sqlite3_result_blob(cx, out.buf + out.len, (int) n, SQLITE_TRANSIENT);
}

/* At the open, before the migrations (016 makes records). */
int store_state_functions(sqlite3 *db)
{
	for (int argc = 12; argc <= 12 + STATE_OUTCOME; argc += STATE_OUTCOME)
		if (sqlite3_create_function(db, "dagd_state", argc, SQLITE_UTF8 | SQLITE_DETERMINISTIC |
					    SQLITE_DIRECTONLY, NULL, sql_state, NULL, NULL) != SQLITE_OK)
			return errorf(-EIO, "database: %s", sqlite3_errmsg(db));
	return 0;
}

/* --- the saves ------------------------------------------------------------ */

/* At the open, once the schema is current. */
int store_state_prepare(void)
{
	for (int i = 0; i < _STMT_MAX; i++) {
		char text[64 * 8 + 200];
		const char *q = text;
		size_t n;

		if (upsert_rows[i]) {
			n = (size_t) snprintf(text, sizeof(text), "INSERT INTO task_state (task_id, status, state) VALUES ");
			for (unsigned k = 0; k < upsert_rows[i]; k++)
				n += (size_t) snprintf(text + n, sizeof(text) - n, k ? ",(?,?,?)" : "(?,?,?)");
			snprintf(text + n, sizeof(text) - n, " ON CONFLICT(task_id) DO UPDATE SET status=excluded.status,"
				 " state=excluded.state");
		} else {
			q = sql[i];
		}
		if (sqlite3_prepare_v3(store_sqlite(), q, -1, SQLITE_PREPARE_PERSISTENT, &stmts[i], NULL) != SQLITE_OK)
			return errorf(-EIO, "database: %s", sqlite3_errmsg(store_sqlite()));
	}
	return 0;
}

/* what the engine holds of it, the definition's times (those of this save
 * over them) and outcome with it */
static size_t encode_held(const struct task *t, const struct task_times *at, const struct task_def *d)
{
	const char *outcome[STATE_OUTCOME] = {
		d->result, d->error_message, d->token, d->report, d->sandbox_id, d->sandbox_executor,
		d->sandbox_handle,
	};
	struct state_record r = {
		.flags = (t->released ? STATE_RELEASED : 0) | (t->held ? STATE_HELD : 0) |
			 (t->paused ? STATE_PAUSED : 0),
		.attempt = t->attempt,
		.tries = t->tries,
		.reserved = task_reserved(t),
		.not_before = ext_of(t)->not_before,
	};

	for (int k = 0; k < _AT_MAX; k++)
		r.at[k] = at->set & (1U << k) ? at->at[k] : d->at[k];
	for (int i = 0; i < STATE_OUTCOME; i++) {
		r.outcome[i] = outcome[i];
		r.outcome_len[i] = outcome[i] ? strlen(outcome[i]) : 0;
	}
	return encode(&r);
}

/* the columns of what it holds, for dagd_state() to make the record with
 * what the row has */
static void bind_state(sqlite3_stmt *st, const struct task *t, const struct task_times *at)
{
	sqlite3_bind_int(st, 2, t->released);
	sqlite3_bind_int(st, 3, (int) t->attempt);
	sqlite3_bind_int(st, 4, (int) t->tries);
	sqlite3_bind_int64(st, 5, ext_of(t)->not_before);
	sqlite3_bind_int(st, 6, t->held);
	sqlite3_bind_int(st, 7, t->paused);
	sqlite3_bind_int(st, 8, (int) task_reserved(t));
	for (size_t i = 0; i < ELEMENTSOF(times); i++)
		if (at->set & (1U << times[i]))
			sqlite3_bind_int64(st, 9 + (int) i, at->at[times[i]]);
		else
			sqlite3_bind_null(st, 9 + (int) i);
	sqlite3_bind_int64(st, 13, t->id);
}

static int run(int q, const struct task *t, const struct task_times *at)
{
	sqlite3_stmt *st = stmts[q];
	int r;

	sqlite3_bind_text(st, 1, status_to_string(t->status), -1, SQLITE_STATIC);
	bind_state(st, t, at);
	r = store_step(st);
	return r < 0 ? r : sqlite3_changes(store_sqlite());
}

/* The saves waiting, written: in statements of 64 rows, then 8, then 1. */
int store_task_save_flush(void)
{
	size_t i = 0;
	int r = 0;

	for (int q = UPSERT_64; q >= UPSERT_1 && r >= 0; q--)
		for (; r >= 0 && n_pending - i >= upsert_rows[q]; i += upsert_rows[q]) {
			for (unsigned k = 0; k < upsert_rows[q]; k++) {
				int col = 3 * (int) k;

				sqlite3_bind_int64(stmts[q], col + 1, pending[i + k].id);
				sqlite3_bind_text(stmts[q], col + 2, pending[i + k].status, -1, SQLITE_STATIC);
				sqlite3_bind_blob(stmts[q], col + 3, out.buf + pending[i + k].off,
						  (int) pending[i + k].len, SQLITE_STATIC);
			}
			r = store_step(stmts[q]);
		}
	n_pending = 0;
	out.len = 0;
	return r;
}

/* Its state, the times given in at; and its outcome (result, error,
 * token, report, sandbox) when its definition is in memory: otherwise
 * they did not change.  > 0 if its row was made now, or will be: a save
 * whose definition is in memory waits for store_task_save_flush(), which
 * makes the row or updates it, whichever it needs. */
int store_task_save(const struct task *t, const struct task_times *at)
{
	const struct task_def *d = task_def_held(t);
	int order[2], r;

	if (d && !d->lost) {
		if (n_pending == ELEMENTSOF(pending) && (r = store_task_save_flush()) < 0)
			return r;
		pending[n_pending].id = t->id;
		pending[n_pending].status = status_to_string(t->status);
		pending[n_pending].off = out.len;
		pending[n_pending].len = encode_held(t, at, d);
		out.len += pending[n_pending++].len;
		r = store_begin();
		return r < 0 ? r : 1;
	}
	order[0] = t->stated ? UPDATE : INSERT;
	order[1] = t->stated ? INSERT : UPDATE;
	for (int i = 0; i < 2; i++) {
		r = run(order[i], t, at);
		if (r != 0)
			return r < 0 ? r : order[i] == INSERT;
	}
	return 0;
}

void store_state_close(void)
{
	for (int i = 0; i < _STMT_MAX; i++) {
		sqlite3_finalize(stmts[i]);
		stmts[i] = NULL;
	}
	free(out.buf);
	out.buf = NULL;
	out.len = out.cap = 0;
	n_pending = 0;
}
