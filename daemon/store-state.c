/*
 * store-state.c - where a task stands, saved: its row of task_state
 * (schema/014_task_state.sql), narrow, so that a state change rewrites 20
 * columns, not the 45 of the task's definition.
 *
 * A task added has no such row: its row of tasks holds what it was added
 * with.  Its first save makes the row: from what the engine holds when its
 * definition is in memory (its times are there, current), else taking from
 * the tasks row what the save does not give (the times not given, and the
 * outcome, which is then as added: null).  The task's
 * `stated` bit (set by the engine when a save says it made the row, and by
 * the load) says which statement to try first; the other follows when the
 * first touched no row, so that a bit out of date (a row gone with a batch
 * rolled back) costs a statement, never a save.
 */
#include <errno.h>

#include "dagd.h"
#include "store-private.h"

#define COLUMNS "task_id, status, released, attempt, tries, not_before, held, paused, reserved," \
	" updated_at, started_at, finished_at, status_changed_at, result, error_message, token, report," \
	" sandbox_id, sandbox_executor, sandbox_handle"
/* the times not given (NULL) stay as they are */
#define SET_STATE "status=?1, released=?2, attempt=?3, tries=?4, not_before=?5, held=?6, paused=?7," \
	" reserved=?8, updated_at=coalesce(?9, updated_at), started_at=coalesce(?10, started_at)," \
	" finished_at=coalesce(?11, finished_at), status_changed_at=coalesce(?12, status_changed_at)"
#define SELECT_STATE "SELECT id, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, coalesce(?9, updated_at)," \
	" coalesce(?10, started_at), coalesce(?11, finished_at), coalesce(?12, status_changed_at)"

enum { UPDATE, UPDATE_OUTCOME, INSERT, INSERT_ALL, _STMT_MAX };

static const char *const sql[_STMT_MAX] = {
	[UPDATE] = "UPDATE task_state SET " SET_STATE " WHERE task_id=?13",
	[UPDATE_OUTCOME] = "UPDATE task_state SET " SET_STATE ", result=?13, error_message=?14, token=?15,"
		" report=?16, sandbox_id=?17, sandbox_executor=?18, sandbox_handle=?19 WHERE task_id=?20",
	[INSERT] = "INSERT OR IGNORE INTO task_state (" COLUMNS ") " SELECT_STATE ", result, error_message, token, report,"
		" sandbox_id, sandbox_executor, sandbox_handle FROM tasks WHERE id=?13",
	/* all of it known (the definition held, its times with it): nothing
	 * to take from the tasks row */
	[INSERT_ALL] = "INSERT OR IGNORE INTO task_state (" COLUMNS ") VALUES (?20, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8,"
		" ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)",
};

static sqlite3_stmt *stmts[_STMT_MAX];

/* At the open, once the schema is current. */
int store_state_prepare(void)
{
	for (int i = 0; i < _STMT_MAX; i++)
		if (sqlite3_prepare_v3(store_sqlite(), sql[i], -1, SQLITE_PREPARE_PERSISTENT, &stmts[i], NULL) !=
		    SQLITE_OK)
			return errorf(-EIO, "database: %s", sqlite3_errmsg(store_sqlite()));
	return 0;
}

static void bind_state(sqlite3_stmt *st, const struct task *t, const struct task_times *at,
		       const struct task_def *d)
{
	static const int times[] = { AT_UPDATED, AT_STARTED, AT_FINISHED, AT_STATUS_CHANGED };

	store_bind_text(st, 1, status_to_string(t->status));
	sqlite3_bind_int(st, 2, t->released);
	sqlite3_bind_int(st, 3, (int) t->attempt);
	sqlite3_bind_int(st, 4, (int) t->tries);
	sqlite3_bind_int64(st, 5, ext_of(t)->not_before);
	sqlite3_bind_int(st, 6, t->held);
	sqlite3_bind_int(st, 7, t->paused);
	sqlite3_bind_int(st, 8, (int) task_reserved(t));
	for (int i = 0; i < (int) ELEMENTSOF(times); i++)
		if (at->set & (1U << times[i]))
			sqlite3_bind_int64(st, 9 + i, at->at[times[i]]);
		else
			sqlite3_bind_null(st, 9 + i);
	if (d) {
		store_bind_text(st, 13, d->result);
		store_bind_text(st, 14, d->error_message);
		store_bind_text(st, 15, d->token);
		store_bind_text(st, 16, d->report);
		store_bind_text(st, 17, d->sandbox_id);
		store_bind_text(st, 18, d->sandbox_executor);
		store_bind_text(st, 19, d->sandbox_handle);
	}
	sqlite3_bind_int64(st, d ? 20 : 13, t->id);
}

static int run(int q, const struct task *t, const struct task_times *at, const struct task_def *d)
{
	int r;

	bind_state(stmts[q], t, at, d);
	r = store_step(stmts[q]);
	return r < 0 ? r : sqlite3_changes(store_sqlite());
}

/* Its state, the times given in at; and its outcome (result, error,
 * token, report, sandbox) when its definition is in memory: otherwise
 * they did not change.  > 0 if its row was made now. */
int store_task_save(const struct task *t, const struct task_times *at)
{
	const struct task_def *d = task_def_held(t);
	struct task_times all = { .set = ~0U };
	int update, insert, order[2];

	if (d && d->lost)
		d = NULL;
	update = d ? UPDATE_OUTCOME : UPDATE;
	insert = d ? INSERT_ALL : INSERT;
	/* a definition held has the row's times: with those of this save over
	 * them, the row is made from them */
	for (int k = 0; d && k < _AT_MAX; k++)
		all.at[k] = at->set & (1U << k) ? at->at[k] : d->at[k];
	order[0] = t->stated ? update : insert;
	order[1] = t->stated ? insert : update;
	for (int i = 0; i < 2; i++) {
		int r = run(order[i], t, order[i] == INSERT_ALL ? &all : at, d);

		if (r != 0)
			return r < 0 ? r : order[i] == insert;
	}
	return 0;
}

void store_state_close(void)
{
	for (int i = 0; i < _STMT_MAX; i++) {
		sqlite3_finalize(stmts[i]);
		stmts[i] = NULL;
	}
}
