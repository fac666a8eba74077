/*
 * store-load.c - the load at start-up: the rows of projects, tasks, their
 * trigger rules and their edges read from the database and handed, one by
 * one, to the engine's loader (engine-load.c builds its model from them).
 * The store knows its tables, not the engine's arrays.
 */
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

#include "dagd.h"
#include "store-private.h"

static const char *col_text(sqlite3_stmt *st, int i)
{
	return (const char *) sqlite3_column_text(st, i);
}

/* Each row of sql, given to row(); stops at the first error, its or the
 * database's. */
static int each_row(const char *sql, int (*row)(sqlite3_stmt *st, const struct store_loader *l),
		    const struct store_loader *l)
{
	sqlite3_stmt *st;
	int rc = SQLITE_DONE, r = 0;

	if (sqlite3_prepare_v2(store_sqlite(), sql, -1, &st, NULL) != SQLITE_OK)
		return errorf(-EIO, "database: %s", sqlite3_errmsg(store_sqlite()));
	while (r >= 0 && (rc = sqlite3_step(st)) == SQLITE_ROW)
		r = row(st, l);
	if (r >= 0 && rc != SQLITE_DONE)
		r = errorf(-EIO, "database: %s", sqlite3_errmsg(store_sqlite()));
	sqlite3_finalize(st);
	return r;
}

static int project_row(sqlite3_stmt *st, const struct store_loader *l)
{
	return l->project(&(const struct project_row) {
		.id = sqlite3_column_int64(st, 0),
		.name = col_text(st, 1),
		.autonomous = sqlite3_column_int(st, 2),
		.max_concurrency = (unsigned) sqlite3_column_int(st, 3),
		.executor = col_text(st, 4),
		.executor_options = col_text(st, 5),
		.created_at = sqlite3_column_int64(st, 6),
		.updated_at = sqlite3_column_int64(st, 7),
	});
}

static int task_row(sqlite3_stmt *st, const struct store_loader *l)
{
	return l->task(&(const struct task_row) {
		.id = sqlite3_column_int64(st, 0),
		.project_id = sqlite3_column_int64(st, 1),
		.name = col_text(st, 2),
		.title = col_text(st, 3),
		.command = col_text(st, 4),
		.env = col_text(st, 5),
		.cwd = col_text(st, 6),
		.executor = col_text(st, 7),
		.executor_options = col_text(st, 8),
		.priority = sqlite3_column_int(st, 9),
		.timeout_usec = (uint64_t) sqlite3_column_int64(st, 10),
		.max_retries = (unsigned) sqlite3_column_int(st, 11),
		.backoff_usec = (uint64_t) sqlite3_column_int64(st, 12),
		.validation_command = col_text(st, 13),
		.status = col_text(st, 14),
		.released = sqlite3_column_int(st, 15),
		.attempt = (unsigned) sqlite3_column_int(st, 16),
		.tries = (unsigned) sqlite3_column_int(st, 17),
		.not_before = sqlite3_column_int64(st, 18),
		.result = col_text(st, 19),
		.error_message = col_text(st, 20),
		.sandbox_id = col_text(st, 21),
		.sandbox_executor = col_text(st, 22),
		.sandbox_handle = col_text(st, 23),
		.token = col_text(st, 24),
		.report = col_text(st, 25),
		.created_at = sqlite3_column_int64(st, 26),
		.updated_at = sqlite3_column_int64(st, 27),
		.started_at = sqlite3_column_int64(st, 28),
		.finished_at = sqlite3_column_int64(st, 29),
		.status_changed_at = sqlite3_column_int64(st, 30),
		.held = sqlite3_column_int(st, 31),
		.paused = sqlite3_column_int(st, 32),
	});
}

static int trigger_row(sqlite3_stmt *st, const struct store_loader *l)
{
	return l->trigger(sqlite3_column_int64(st, 0), col_text(st, 1), sqlite3_column_int(st, 2));
}

static int dep_row(sqlite3_stmt *st, const struct store_loader *l)
{
	return l->dep(sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 1));
}

/* Projects, tasks, pools and task_attempts (store-attempts.c), trigger rules
 * and finally tasks (schema 005), edges, fan-out (store-map.c): in this
 * order, each row given to l's function for it. */
int store_load(const struct store_loader *l)
{
	int r;

	r = each_row("SELECT id, name, autonomous_execution_enabled, max_concurrency,"
		     " executor, executor_options, created_at, updated_at FROM projects"
		     " ORDER BY id", project_row, l);
	if (r < 0)
		return r;
	r = each_row("SELECT id, project_id, name, title, command, env, cwd, executor,"
		     " executor_options, priority, timeout_usec, max_retries, backoff_usec,"
		     " validation_command, status, released, attempt, tries, not_before,"
		     " result, error_message, sandbox_id, sandbox_executor, sandbox_handle,"
		     " token, report, created_at, updated_at, started_at, finished_at,"
		     " status_changed_at, held, paused FROM tasks ORDER BY id", task_row, l);
	if (r < 0)
		return r;
	r = store_attempts_load(l);
	if (r < 0)
		return r;
	r = each_row("SELECT id, trigger_rule, is_finally FROM tasks"
		     " WHERE trigger_rule IS NOT NULL OR is_finally", trigger_row, l);
	if (r < 0)
		return r;
	r = each_row("SELECT task_id, depends_on FROM deps", dep_row, l);
	if (r < 0)
		return r;
	return store_map_load(l);
}
