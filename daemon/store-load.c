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

/* A task's row of tasks (t) with its row of task_state (s), if it has one
 * (store-state.c): its status and state record are the latter's then, else
 * the former's columns are as it was added (its outcome null). */
#define TASKS "tasks t LEFT JOIN task_state s ON s.task_id = t.id"

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

static int damaged(int64_t id)
{
	return errorf(-EBADMSG, "database: task %lld: its state record is damaged", (long long) id);
}

/* column i's state record, if it is not null, into *r: false if it has none */
static bool state_of(sqlite3_stmt *st, int i, struct state_record *r, int *ret)
{
	const void *blob;

	*ret = 0;
	if (sqlite3_column_type(st, i) == SQLITE_NULL)
		return false;
	blob = sqlite3_column_blob(st, i);
	if (!store_state_decode(blob, (size_t) sqlite3_column_bytes(st, i), r))
		*ret = damaged(sqlite3_column_int64(st, 0));
	return true;
}

/* A task's row, with its trigger rule and fan-out (schemas 005 and 007)
 * when it has any: one pass over the table. */
static int task_row(sqlite3_stmt *st, const struct store_loader *l)
{
	int64_t id = sqlite3_column_int64(st, 0);
	struct task_row row = {
		.id = sqlite3_column_int64(st, 0),
		.project_id = sqlite3_column_int64(st, 1),
		.name = col_text(st, 2),
		.executor = col_text(st, 7),
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
		.held = sqlite3_column_int(st, 31),
		.paused = sqlite3_column_int(st, 32),
		.reserved = (unsigned) sqlite3_column_int(st, 41),
	};
	struct state_record s;
	int r;

	if (state_of(st, 42, &s, &r)) {
		if (r < 0)
			return r;
		row.status = col_text(st, 43);
		row.released = (s.flags & STATE_RELEASED) != 0;
		row.held = (s.flags & STATE_HELD) != 0;
		row.paused = (s.flags & STATE_PAUSED) != 0;
		row.attempt = s.attempt;
		row.tries = s.tries;
		row.not_before = s.not_before;
		row.reserved = s.reserved;
		row.stated = true;
	}
	r = l->task(&row);
	if (r >= 0 && (sqlite3_column_type(st, 33) != SQLITE_NULL || sqlite3_column_int(st, 34)))
		r = l->trigger(id, col_text(st, 33), sqlite3_column_int(st, 34));
	if (r >= 0 && (sqlite3_column_int64(st, 35) || sqlite3_column_int64(st, 39)))
		r = l->map(&(const struct map_row) {
			.task_id = id,
			.map_over = sqlite3_column_int64(st, 35),
			.map_concurrency = (unsigned) sqlite3_column_int(st, 36),
			.expanded = sqlite3_column_int(st, 37),
			.map_count = (unsigned) sqlite3_column_int(st, 38),
			.map_parent = sqlite3_column_int64(st, 39),
			.map_index = (unsigned) sqlite3_column_int(st, 40),
		});
	return r;
}

static int dep_row(sqlite3_stmt *st, const struct store_loader *l)
{
	return l->dep(sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 1));
}

/* Projects, tasks (each with its trigger rule and fan-out), pools and
 * task_attempts (store-attempts.c), edges: in this order, each row given to
 * l's function for it. */
int store_load(const struct store_loader *l)
{
	int r;

	r = each_row("SELECT id, name, autonomous_execution_enabled, max_concurrency,"
		     " executor, executor_options, created_at, updated_at FROM projects"
		     " ORDER BY id", project_row, l);
	if (r < 0)
		return r;
	/* a task's state; its definition stays in the database until asked
	 * for (store_task_def_read()), its name too: the loader keeps its hash */
	r = each_row("SELECT t.id, project_id, name, NULL, NULL, NULL, NULL, executor,"
		     " NULL, priority, timeout_usec, max_retries, backoff_usec,"
		     " validation_command, t.status, released, attempt, tries, not_before,"
		     " NULL, NULL, NULL, NULL, NULL,"
		     " NULL, NULL, NULL, NULL, NULL, NULL,"
		     " NULL, held, paused, trigger_rule, is_finally, map_over,"
		     " map_concurrency, expanded, map_count, map_parent, map_index, reserved,"
		     " s.state, s.status FROM " TASKS " ORDER BY t.id", task_row, l);
	if (r < 0)
		return r;
	r = store_attempts_load(l);
	if (r < 0)
		return r;
	return each_row("SELECT task_id, depends_on FROM deps", dep_row, l);
}

/* --- definitions, when asked for ---------------------------------------- */

/* what def_fill() reads, from the name on: the tasks row's columns (first
 * the TASK_DEF_BLOCK strings, in its order), then the task_state row's
 * record (or null, for ADDED) */
#define COLUMNS "name, title, command, env, cwd, executor_options, item, created_at, updated_at, started_at," \
	" finished_at, status_changed_at"
#define DEF_COLUMNS COLUMNS ", s.state"
#define ADDED_COLUMNS COLUMNS ", NULL"

static char *dup_outcome(const struct state_record *s, int i)
{
	return s->outcome[i] ? xstrndup(s->outcome[i], s->outcome_len[i]) : NULL;
}

/* its definition from the columns of the row from i on; its outcome and
 * times those of its state record s if it has one, else as added */
static void def_fill(sqlite3_stmt *st, int i, const struct state_record *s, struct task_def *d)
{
	char **own[] = TASK_DEF_BLOCK(d);
	const unsigned char *text[ELEMENTSOF(own)];
	size_t len[ELEMENTSOF(own)], all = 0;
	char *b;

	/* the strings in one allocation (struct task_def's block), the columns
	 * in its order */
	for (size_t k = 0; k < ELEMENTSOF(own); k++) {
		text[k] = sqlite3_column_text(st, i + (int) k);
		len[k] = text[k] ? (size_t) sqlite3_column_bytes(st, i + (int) k) : 0;
		all += text[k] ? len[k] + 1 : 0;
	}
	b = d->block = xrealloc(NULL, all);
	for (size_t k = 0; k < ELEMENTSOF(own); k++) {
		*own[k] = NULL;
		if (!text[k])
			continue;
		*own[k] = memcpy(b, text[k], len[k]);
		b[len[k]] = 0;
		b += len[k] + 1;
	}
	d->at[AT_CREATED] = sqlite3_column_int64(st, i + 7);
	d->at[AT_UPDATED] = sqlite3_column_int64(st, i + 8);
	d->at[AT_STARTED] = sqlite3_column_int64(st, i + 9);
	d->at[AT_FINISHED] = sqlite3_column_int64(st, i + 10);
	d->at[AT_STATUS_CHANGED] = sqlite3_column_int64(st, i + 11);
	if (s) {
		d->result = dup_outcome(s, 0);
		d->error_message = dup_outcome(s, 1);
		d->token = dup_outcome(s, 2);
		d->report = dup_outcome(s, 3);
		d->sandbox_id = dup_outcome(s, 4);
		d->sandbox_executor = dup_outcome(s, 5);
		d->sandbox_handle = dup_outcome(s, 6);
		for (int k = AT_UPDATED; k < _AT_MAX; k++)
			d->at[k] = s->at[k];
	}
	/* the row of a task whose status never changed since it was added
	 * has none (the insert leaves it out): it is its creation's */
	if (!d->at[AT_STATUS_CHANGED])
		d->at[AT_STATUS_CHANGED] = d->at[AT_CREATED];
}

static sqlite3_stmt *def_st;

/* A task's definition and outcome, for task_def(). */
int store_task_def_read(int64_t id, struct task_def *d)
{
	struct state_record s;
	sqlite3_stmt *st;
	int rc, r = 0;

	if (!def_st && sqlite3_prepare_v3(store_sqlite(), "SELECT " DEF_COLUMNS " FROM " TASKS " WHERE t.id=?", -1,
					  SQLITE_PREPARE_PERSISTENT, &def_st, NULL) != SQLITE_OK)
		return errorf(-EIO, "database: %s", sqlite3_errmsg(store_sqlite()));
	if ((rc = store_read_begin()) < 0)
		return rc;
	st = def_st;
	sqlite3_bind_int64(st, 1, id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		bool has = state_of(st, 12, &s, &r);

		if (r >= 0)
			def_fill(st, 0, has ? &s : NULL, d);
	}
	sqlite3_reset(st);
	if (rc != SQLITE_ROW)
		return errorf(rc == SQLITE_DONE ? -ENOENT : -EIO, "database: task %lld: %s", (long long) id,
			      rc == SQLITE_DONE ? "no row" : sqlite3_errmsg(store_sqlite()));
	return r;
}

static sqlite3_stmt *scan_st[2];

/* The definitions of the tasks with ids from lo to hi, in one pass over
 * their rows (a page of a listing: one read of each page of the table, not
 * a lookup each): want(id) says where to put each, or NULL to pass it by.
 * Tasks about to start for the first time (a dispatch round's) have no row
 * of task_state: their rows are read without looking for one.  A row whose
 * state record is damaged is passed by (task_def() finds it so). */
int store_task_defs_scan(int64_t lo, int64_t hi, bool stated, struct task_def *(*want)(int64_t id))
{
	static const char *const sql[2] = {
		"SELECT t.id, " ADDED_COLUMNS " FROM tasks t WHERE t.id BETWEEN ? AND ? ORDER BY t.id",
		"SELECT t.id, " DEF_COLUMNS " FROM " TASKS " WHERE t.id BETWEEN ? AND ? ORDER BY t.id",
	};
	struct state_record s;
	sqlite3_stmt *st;
	int rc, r, damage = 0;

	if (!scan_st[stated] && sqlite3_prepare_v3(store_sqlite(), sql[stated], -1, SQLITE_PREPARE_PERSISTENT,
						   &scan_st[stated], NULL) != SQLITE_OK)
		return errorf(-EIO, "database: %s", sqlite3_errmsg(store_sqlite()));
	if ((rc = store_read_begin()) < 0)
		return rc;
	st = scan_st[stated];
	sqlite3_bind_int64(st, 1, lo);
	sqlite3_bind_int64(st, 2, hi);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		bool has = state_of(st, 13, &s, &r);
		struct task_def *d = r < 0 ? NULL : want(sqlite3_column_int64(st, 0));

		if (d)
			def_fill(st, 1, has ? &s : NULL, d);
		damage = damage ?: r;
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return errorf(-EIO, "database: %s", sqlite3_errmsg(store_sqlite()));
	return damage;
}

void store_task_def_close(void)
{
	sqlite3_finalize(def_st);
	def_st = NULL;
	for (int i = 0; i < 2; i++) {
		sqlite3_finalize(scan_st[i]);
		scan_st[i] = NULL;
	}
}
